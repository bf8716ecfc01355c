import assert from "node:assert/strict";
import { DeadlineQueue } from "../io/deadline_queue.ts";
import { describe, test } from "node:test";
import { type Decoded, needBytes, ProtocolError } from "../protocol/decoded.ts";
import { NetError } from "../runtime/types.ts";
import { createConnectionPair } from "../../tests/helpers/memory_connection.ts";
import { ScriptPeer } from "../../tests/helpers/script_peer.ts";
import { sleep } from "../../tests/helpers/server_script.ts";
import { Handshake } from "./handshake.ts";

/** Two bytes, the first of which must not be 0xff. */
function decodePair(bytes: Uint8Array): Decoded<number[]> {
  if (bytes[0] === 0xff) throw new ProtocolError("Cannot decode pair: 0xff");
  return bytes.length < 2 ? needBytes(2) : { ok: true, value: [...bytes.subarray(0, 2)], size: 2 };
}

function setup(timeoutMs: number) {
  const [clientEnd, serverEnd] = createConnectionPair();
  const shutdown = new AbortController();
  const handshake = new Handshake(serverEnd, new DeadlineQueue(timeoutMs), shutdown.signal);
  return { client: new ScriptPeer(clientEnd), serverEnd, shutdown, handshake };
}

function reasonOf(signal: AbortSignal): NetError {
  assert.ok(signal.reason instanceof NetError, `reason is ${signal.reason}`);
  return signal.reason;
}

describe("Handshake", () => {
  test("the deadline aborts the signal with a timeout NetError and disarms", async () => {
    const { handshake, serverEnd } = setup(30);
    assert.equal(handshake.armed, true);
    await sleep(60);
    assert.equal(handshake.signal.aborted, true);
    assert.equal(reasonOf(handshake.signal).code, "timeout");
    assert.equal(reasonOf(handshake.signal).message, "Handshake not completed within 0.03 s");
    assert.equal(handshake.armed, false);
    serverEnd.close();
  });

  test("finish() disarms: neither the timeout nor the shutdown aborts the signal afterwards", async () => {
    const { handshake, shutdown, serverEnd } = setup(30);
    handshake.finish();
    assert.equal(handshake.armed, false);
    handshake.finish();
    await sleep(60);
    assert.equal(handshake.signal.aborted, false, "the handshake timeout fired after finish()");
    shutdown.abort();
    assert.equal(handshake.signal.aborted, false, "the shutdown listener fired after finish()");
    serverEnd.close();
  });

  test("a shutdown while armed aborts the signal with `aborted` and disarms the timer", async () => {
    const { handshake, shutdown, serverEnd } = setup(30);
    shutdown.abort();
    assert.equal(handshake.signal.aborted, true);
    assert.equal(reasonOf(handshake.signal).code, "aborted");
    assert.equal(reasonOf(handshake.signal).message, "Server is shutting down");
    assert.equal(handshake.armed, false);
    await sleep(60);
    assert.equal(reasonOf(handshake.signal).code, "aborted");
    serverEnd.close();
  });

  test("read() rejects with the timeout when the client stalls", async () => {
    const { handshake, client, serverEnd } = setup(30);
    client.send([1]);
    const started = Date.now();
    await assert.rejects(handshake.read(decodePair), /Handshake not completed within 0\.03 s/);
    assert.ok(Date.now() - started >= 20);
    serverEnd.close();
  });

  test("read() sends replyFor(error) on a ProtocolError, then FIN, then rethrows", async () => {
    const { handshake, client } = setup(1000);
    client.send([0xff, 0]);
    const read = handshake.read(decodePair, (error) => new TextEncoder().encode(`no: ${error.message}`));
    assert.equal(new TextDecoder().decode(await client.readToEnd()), "no: Cannot decode pair: 0xff");
    client.close();
    await assert.rejects(read, ProtocolError);
    handshake.finish();
  });

  test("read() returns messages split across chunks and leaves the rest in the inbox", async () => {
    const { handshake, client, serverEnd } = setup(1000);
    client.send([1]);
    await sleep(1);
    client.send([2, 3]);
    assert.deepEqual(await handshake.read(decodePair), [1, 2]);
    assert.deepEqual([...handshake.inbox.takeRest()], [3]);
    handshake.finish();
    serverEnd.close();
  });

  test("refuse() lingers until the client closes, but a shutdown cuts the linger short", async () => {
    const { handshake, client, shutdown } = setup(1000);
    handshake.finish();
    let done = false;
    const refused = handshake.refuse(Uint8Array.of(5, 0xff)).then(() => (done = true));
    assert.deepEqual([...(await client.readToEnd())], [5, 0xff]);
    await sleep(20);
    assert.equal(done, false, "refuse() closed before the client did");
    const started = Date.now();
    shutdown.abort();
    await refused;
    assert.ok(Date.now() - started < 500);
    await client.waitForClose(500);
  });

  test("refuse() during a shutdown sends the reply and closes at once", async () => {
    const { handshake, client, shutdown } = setup(1000);
    shutdown.abort();
    await handshake.refuse(Uint8Array.of(0, 0x5b, 0, 0, 0, 0, 0, 0));
    assert.equal(handshake.connection.closed, true);
    await client.waitForClose(500);
    assert.deepEqual([...client.received()], [0, 0x5b, 0, 0, 0, 0, 0, 0]);
  });
});
