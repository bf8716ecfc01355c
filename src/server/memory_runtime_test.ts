// Self-checks of the in-memory NetRuntime the server tests run on
// (tests/helpers/memory_runtime.ts): if it lied, every server test would.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type Connection, NetError } from "../runtime/types.ts";
import { createMemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { ScriptPeer } from "../../tests/helpers/script_peer.ts";

function isNetError(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof NetError, `expected a NetError, got ${error}`);
    assert.equal(error.code, code);
    return true;
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("memory runtime", () => {
  test("listen on port 0 takes a fresh port; dial reaches onConnection with both addresses", async () => {
    const runtime = createMemoryRuntime();
    const accepted: Connection[] = [];
    const listener = await runtime.listen({ host: "127.0.0.1", port: 0, onConnection: (c) => accepted.push(c) });
    assert.notEqual(listener.address.port, 0);
    assert.deepEqual(listener.address, { host: "127.0.0.1", port: listener.address.port, family: 4 });
    const client = runtime.dial(listener.address, { host: "192.0.2.7", port: 40000, family: 4 });
    assert.equal(accepted.length, 1);
    const server = accepted[0] as Connection;
    assert.deepEqual(server.remote, { host: "192.0.2.7", port: 40000, family: 4 });
    assert.deepEqual(server.local, { host: "127.0.0.1", port: listener.address.port, family: 4 });
    assert.deepEqual(client.remote, server.local);
    const peer = new ScriptPeer(server);
    client.write(Uint8Array.of(1, 2, 3));
    assert.deepEqual(await peer.read(3), Uint8Array.of(1, 2, 3));
  });

  test("a second listen on a taken port fails with address_in_use; close frees the port", async () => {
    const runtime = createMemoryRuntime();
    const listener = await runtime.listen({ host: "127.0.0.1", port: 1080, onConnection: () => {} });
    await assert.rejects(
      runtime.listen({ host: "127.0.0.1", port: 1080, onConnection: () => {} }),
      isNetError("address_in_use"),
    );
    assert.equal(runtime.isListening("127.0.0.1", 1080), true);
    listener.close();
    assert.equal(runtime.isListening("127.0.0.1", 1080), false);
    assert.throws(() => runtime.dial({ host: "127.0.0.1", port: 1080 }), isNetError("refused"));
    const again = await runtime.listen({ host: "127.0.0.1", port: 1080, onConnection: () => {} });
    assert.equal(again.address.port, 1080);
  });

  test("a wildcard listener serves every address of its family", async () => {
    const runtime = createMemoryRuntime();
    let count = 0;
    await runtime.listen({ host: "0.0.0.0", port: 80, onConnection: () => count++ });
    runtime.dial({ host: "203.0.113.10", port: 80 });
    assert.equal(count, 1);
    assert.throws(() => runtime.dial({ host: "2001:db8::1", port: 80 }), isNetError("refused"));
  });

  test("connect reaches a listener from the source address, and is refused where nothing listens", async () => {
    const runtime = createMemoryRuntime({ sourceHost4: "10.0.0.5" });
    const peers: ScriptPeer[] = [];
    await runtime.listen({ host: "203.0.113.10", port: 80, onConnection: (c) => peers.push(new ScriptPeer(c)) });
    const connection = await runtime.connect({ host: "203.0.113.10", port: 80 });
    assert.equal(connection.local.host, "10.0.0.5");
    assert.deepEqual(connection.remote, { host: "203.0.113.10", port: 80, family: 4 });
    connection.write(Uint8Array.of(9));
    assert.deepEqual(await peers[0]?.read(1), Uint8Array.of(9));
    const bound = await runtime.connect({ host: "203.0.113.10", port: 80, localHost: "192.0.2.1" });
    assert.equal(bound.local.host, "192.0.2.1");
    await assert.rejects(runtime.connect({ host: "203.0.113.10", port: 81 }), isNetError("refused"));
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(
      runtime.connect({ host: "203.0.113.10", port: 80, signal: aborted.signal }),
      isNetError("aborted"),
    );
    assert.equal(runtime.connects.length, 4);
    assert.equal(runtime.outbound.length, 2);
  });

  test("failAccept calls the listener's onAcceptError", async () => {
    const runtime = createMemoryRuntime();
    const errors: NetError[] = [];
    const listener = await runtime.listen({
      host: "127.0.0.1",
      port: 0,
      onConnection: () => {},
      onAcceptError: (error) => errors.push(error),
    });
    assert.equal(runtime.failAccept(listener.address), true);
    assert.equal(runtime.failAccept(listener.address, new NetError("other", "ENFILE")), true);
    assert.deepEqual(errors.map((error) => error.message), ["accept EMFILE: too many open files", "ENFILE"]);
    listener.close();
    assert.equal(runtime.failAccept(listener.address), false);
  });

  test("listenForPeer queues connections from the moment it is bound and hands them out in order", async () => {
    const runtime = createMemoryRuntime();
    const listener = await runtime.listenForPeer({ host: "127.0.0.1", port: 0 });
    const first = runtime.dial(listener.address, { host: "198.51.100.1", port: 1, family: 4 });
    const second = await runtime.connect({ host: "127.0.0.1", port: listener.address.port });
    const a = await listener.accept();
    const b = await listener.accept();
    assert.deepEqual(a.remote, first.local);
    assert.deepEqual(b.remote, second.local);
    const pending = listener.accept();
    runtime.dial(listener.address, { host: "198.51.100.3", port: 3, family: 4 });
    assert.equal((await pending).remote.host, "198.51.100.3");
  });

  test("listenForPeer: accept rejects with the signal's NetError, or closed when the listener closes", async () => {
    const runtime = createMemoryRuntime();
    const listener = await runtime.listenForPeer({ host: "127.0.0.1", port: 0 });
    const controller = new AbortController();
    const aborted = listener.accept(controller.signal);
    controller.abort(new NetError("timeout", "BIND timed out"));
    await assert.rejects(aborted, isNetError("timeout"));
    const plain = new AbortController();
    const plainAborted = listener.accept(plain.signal);
    plain.abort();
    await assert.rejects(plainAborted, isNetError("aborted"));
    const waiting = listener.accept();
    const queued = runtime.dial(listener.address);
    listener.close();
    listener.close();
    assert.equal((await waiting).remote.port, queued.local.port);
    await assert.rejects(listener.accept(), isNetError("closed"));
    assert.equal(runtime.isListening("127.0.0.1", listener.address.port), false);
    assert.throws(() => runtime.dial(listener.address), isNetError("refused"));
  });

  test("listenForPeer: close closes queued connections and rejects a pending accept", async () => {
    const runtime = createMemoryRuntime();
    const listener = await runtime.listenForPeer({ host: "127.0.0.1", port: 0 });
    const client = new ScriptPeer(runtime.dial(listener.address));
    listener.close();
    await client.waitForClose(500);
    const other = await runtime.listenForPeer({ host: "127.0.0.1", port: 0 });
    const pending = other.accept();
    other.close();
    await assert.rejects(pending, isNetError("closed"));
    await assert.rejects(runtime.listenForPeer({ host: "localhost", port: 0 }), isNetError("address_not_available"));
  });

  test("bindDatagram delivers whole datagrams with the sender's address, queued until handlers exist", async () => {
    const runtime = createMemoryRuntime();
    const a = await runtime.bindDatagram({ host: "127.0.0.1", port: 0 });
    const b = await runtime.bindDatagram({ host: "0.0.0.0", port: 5353 });
    a.send(Uint8Array.of(1, 2), "127.0.0.1", 5353);
    a.send(Uint8Array.of(3), "127.0.0.1", 5353);
    await tick();
    const got: Array<[number[], string, number]> = [];
    b.setHandlers({ onMessage: (bytes, from) => got.push([[...bytes], from.host, from.port]) });
    assert.deepEqual(got, [[[1, 2], "127.0.0.1", a.local.port], [[3], "127.0.0.1", a.local.port]]);
    const back: number[][] = [];
    a.setHandlers({ onMessage: (bytes) => back.push([...bytes]) });
    b.send(Uint8Array.of(7), "127.0.0.1", a.local.port);
    await tick();
    assert.deepEqual(back, [[7]]);
  });

  test("bindDatagram: errors go to onError, never thrown; close frees the port", async () => {
    const runtime = createMemoryRuntime();
    const socket = await runtime.bindDatagram({ host: "127.0.0.1", port: 0 });
    const errors: string[] = [];
    socket.setHandlers({ onMessage: () => {}, onError: (error) => errors.push(error.code) });
    socket.send(new Uint8Array(70000), "127.0.0.1", 9);
    socket.send(Uint8Array.of(1), "127.0.0.1", 9); // nobody there: dropped, as UDP does
    await tick();
    assert.deepEqual(errors, ["other"]);
    await assert.rejects(
      runtime.bindDatagram({ host: "127.0.0.1", port: socket.local.port }),
      isNetError("address_in_use"),
    );
    socket.close();
    socket.close();
    assert.equal(socket.closed, true);
    assert.equal(runtime.isBound("127.0.0.1", socket.local.port), false);
    socket.send(Uint8Array.of(1), "127.0.0.1", 9);
    await tick();
    assert.deepEqual(errors, ["other", "closed"]);
    const again = await runtime.bindDatagram({ host: "127.0.0.1", port: socket.local.port });
    assert.equal(again.local.port, socket.local.port);
  });

  test("a memory connection delivers nothing after onClose, and reset reaches the peer as an error", async () => {
    const runtime = createMemoryRuntime();
    let server: Connection | undefined;
    await runtime.listen({ host: "127.0.0.1", port: 1, onConnection: (c) => (server = c) });
    const client = runtime.dial({ host: "127.0.0.1", port: 1 });
    const peer = new ScriptPeer(server as Connection);
    client.reset(new NetError("reset", "connection reset"));
    client.write(Uint8Array.of(1));
    await peer.waitForClose(500);
    assert.equal(peer.closeError?.code, "reset");
    assert.equal(peer.receivedLength, 0);
  });
});
