import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createConnectionPair } from "../../tests/helpers/memory_connection.ts";
import { type Decoded, needBytes, ProtocolError } from "../protocol/decoded.ts";
import { NetError } from "../runtime/types.ts";
import { Inbox } from "./inbox.ts";

/** A toy length-prefixed message: one length byte, then that many bytes. */
function decodeFrame(bytes: Uint8Array): Decoded<string> {
  const length = bytes[0];
  if (length === undefined) return needBytes(1);
  if (length === 0xff) throw new ProtocolError("Cannot decode frame: length 255 is reserved");
  if (bytes.length < 1 + length) return needBytes(1 + length);
  return { ok: true, value: new TextDecoder().decode(bytes.subarray(1, 1 + length)), size: 1 + length };
}

const never = new AbortController().signal;

describe("Inbox", () => {
  test("read() assembles a message sent one byte at a time", async () => {
    const [client, server] = createConnectionPair();
    const inbox = new Inbox(server);
    const pending = inbox.read(decodeFrame, never);
    for (const byte of [5, ...new TextEncoder().encode("hello")]) {
      client.write(Uint8Array.of(byte));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.equal(await pending, "hello");
  });

  test("abort() fails the waiting read and every later one with its error; bytes already there still decode", async () => {
    const [client, server] = createConnectionPair();
    const inbox = new Inbox(server);
    const pending = inbox.read(decodeFrame);
    const error = new NetError("timeout", "Handshake not completed within 1 s");
    inbox.abort(error);
    inbox.abort(new NetError("aborted", "second"));
    await assert.rejects(pending, (thrown) => thrown === error);
    assert.equal(inbox.failure, error);
    client.write(Uint8Array.of(1, 0x61));
    for (let i = 0; i < 100 && inbox.buffered < 2; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.equal(await inbox.read(decodeFrame), "a");
    await assert.rejects(inbox.read(decodeFrame), (thrown) => thrown === error);
  });

  test("read() returns pipelined messages in order and keeps the rest", async () => {
    const [client, server] = createConnectionPair();
    const inbox = new Inbox(server);
    client.write(Uint8Array.of(2, 0x61, 0x62, 1, 0x63, 0x7a, 0x7a));
    assert.equal(await inbox.read(decodeFrame, never), "ab");
    assert.equal(await inbox.read(decodeFrame, never), "c");
    assert.deepEqual([...inbox.takeRest()], [0x7a, 0x7a]);
    assert.equal(inbox.buffered, 0);
  });

  test("read() passes the decoder's ProtocolError on", async () => {
    const [client, server] = createConnectionPair();
    const inbox = new Inbox(server);
    client.write(Uint8Array.of(0xff));
    await assert.rejects(inbox.read(decodeFrame, never), ProtocolError);
  });

  test("read() rejects with a ProtocolError when the peer ends mid-message", async () => {
    const [client, server] = createConnectionPair();
    const inbox = new Inbox(server);
    client.write(Uint8Array.of(4, 0x61));
    client.closeWrite();
    await assert.rejects(inbox.read(decodeFrame, never), /connection ended after 2 of 5 bytes/);
  });

  test("read() rejects with NetError closed when the peer ends before any byte", async () => {
    const [client, server] = createConnectionPair();
    const inbox = new Inbox(server);
    client.closeWrite();
    await assert.rejects(inbox.read(decodeFrame, never), (error: unknown) => {
      assert.ok(error instanceof NetError);
      assert.equal(error.code, "closed");
      return true;
    });
  });

  test("read() rejects with the abort reason when the deadline passes", async () => {
    const [, server] = createConnectionPair();
    const inbox = new Inbox(server);
    const deadline = new AbortController();
    const pending = inbox.read(decodeFrame, deadline.signal);
    deadline.abort(new NetError("timeout", "Handshake not completed within 1 s"));
    await assert.rejects(pending, /Handshake not completed within 1 s/);
  });
});
