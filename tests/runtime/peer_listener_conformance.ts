/**
 * Conformance cases for `NetRuntime.listenForPeer` (SOCKS BIND), registered
 * inside an adapter's `describe` by `runConformance`. Peers are node:net
 * clients on loopback.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { test } from "node:test";
import { NetError, type NetRuntime, type PeerListener } from "../../src/runtime/types.ts";
import { deferred, ignore, rejection, sleep, within } from "./async_helpers.ts";

/** Long enough for an adapter to accept a connection into its queue. */
const SETTLE_MS = 150;

/** Registers the peer listener cases of one adapter. */
export function peerListenerConformance(name: string, runtime: NetRuntime): void {
  for (const host of ["127.0.0.1", "::1"]) {
    test(
      `${name}: listenForPeer on ${host} reports the bound port and hands over the peer`,
      { timeout: 10_000 },
      async () => {
        const listener = await runtime.listenForPeer({ host, port: 0 });
        const peers = new Peers();
        try {
          assert.equal(listener.address.host, host);
          assert.equal(listener.address.family, host.includes(":") ? 6 : 4);
          assert.ok(listener.address.port > 0, "port 0 is resolved");
          const client = await peers.connect(host, listener.address.port);
          const reply = received(client);
          client.end("hello");
          const connection = await within(listener.accept(), 5_000, "the peer");
          assert.deepEqual(connection.local, listener.address);
          assert.deepEqual(connection.remote, { host, port: client.localPort, family: listener.address.family });
          const chunks: Uint8Array[] = [];
          const ended = deferred<void>();
          connection.setHandlers({
            onData: (chunk) => chunks.push(chunk.slice()),
            onEnd: () => ended.resolve(),
            onClose: ignore,
          });
          await within(ended.promise, 5_000, "the peer's data and FIN");
          assert.equal(Buffer.concat(chunks).toString(), "hello");
          connection.write(new TextEncoder().encode("welcome"));
          connection.closeWrite();
          assert.equal(await within(reply, 5_000, "the reply"), "welcome");
          connection.close();
        } finally {
          listener.close();
          peers.destroy();
        }
      },
    );
  }

  test(
    `${name}: listenForPeer queues connections and accept() hands them out in order`,
    { timeout: 10_000 },
    async () => {
      const listener = await runtime.listenForPeer({ host: "127.0.0.1", port: 0 });
      const peers = new Peers();
      try {
        const first = await peers.connect("127.0.0.1", listener.address.port);
        first.write("first");
        const second = await peers.connect("127.0.0.1", listener.address.port);
        await sleep(SETTLE_MS);
        const a = await within(listener.accept(), 5_000, "the first connection");
        const b = await within(listener.accept(), 5_000, "the second connection");
        assert.equal(a.remote.port, first.localPort);
        assert.equal(b.remote.port, second.localPort);
        const chunks: Uint8Array[] = [];
        const got = deferred<void>();
        a.setHandlers({
          onData: (chunk) => {
            chunks.push(chunk.slice());
            if (Buffer.concat(chunks).length >= 5) got.resolve();
          },
          onEnd: ignore,
          onClose: ignore,
        });
        await within(got.promise, 5_000, "the data sent while queued");
        assert.equal(Buffer.concat(chunks).toString(), "first");
        a.close();
        b.close();
      } finally {
        listener.close();
        peers.destroy();
      }
    },
  );

  test(
    `${name}: listenForPeer serves the next peer after the caller closes a wrong one`,
    { timeout: 10_000 },
    async () => {
      const listener = await runtime.listenForPeer({ host: "127.0.0.1", port: 0 });
      const peers = new Peers();
      try {
        const wrong = await peers.connect("127.0.0.1", listener.address.port);
        const wrongGone = closedOrEnded(wrong);
        const rejected = await within(listener.accept(), 5_000, "the wrong peer");
        const next = listener.accept();
        rejected.close();
        await within(wrongGone, 5_000, "the wrong peer to see the close");
        const right = await peers.connect("127.0.0.1", listener.address.port);
        const connection = await within(next, 5_000, "the next peer");
        assert.equal(connection.remote.port, right.localPort);
        connection.close();
      } finally {
        listener.close();
        peers.destroy();
      }
    },
  );

  test(`${name}: listenForPeer accept() rejects when its signal aborts`, { timeout: 10_000 }, async () => {
    const listener = await runtime.listenForPeer({ host: "127.0.0.1", port: 0 });
    const peers = new Peers();
    try {
      const already = new AbortController();
      already.abort();
      assert.equal((await rejection(listener.accept(already.signal))).code, "aborted");
      const controller = new AbortController();
      const waiting = listener.accept(controller.signal);
      controller.abort();
      const aborted = await rejection(waiting);
      assert.equal(aborted.code, "aborted");
      assert.match(aborted.message, /accept a connection on 127\.0\.0\.1:\d+: aborted/);
      const custom = new NetError("timeout", "BIND timed out");
      const timed = new AbortController();
      const waitingForTimeout = listener.accept(timed.signal);
      timed.abort(custom);
      assert.equal(await rejection(waitingForTimeout), custom);
      const client = await peers.connect("127.0.0.1", listener.address.port);
      const connection = await within(listener.accept(), 5_000, "a peer after the aborts");
      assert.equal(connection.remote.port, client.localPort, "an aborted accept took no connection");
      connection.close();
    } finally {
      listener.close();
      peers.destroy();
    }
  });

  test(`${name}: listenForPeer close() frees the port at once`, { timeout: 10_000 }, async () => {
    const first = await runtime.listenForPeer({ host: "127.0.0.1", port: 0 });
    const { port } = first.address;
    first.close();
    first.close();
    const again = await runtime.listenForPeer({ host: "127.0.0.1", port });
    const peers = new Peers();
    try {
      assert.equal(again.address.port, port);
      const client = await peers.connect("127.0.0.1", port);
      const connection = await within(again.accept(), 5_000, "a peer on the rebound port");
      assert.equal(connection.remote.port, client.localPort);
      connection.close();
    } finally {
      again.close();
      peers.destroy();
    }
  });

  test(`${name}: listenForPeer close() rejects a waiting accept() with closed`, { timeout: 10_000 }, async () => {
    const listener = await runtime.listenForPeer({ host: "127.0.0.1", port: 0 });
    const waiting = listener.accept();
    listener.close();
    const error = await rejection(waiting);
    assert.equal(error.code, "closed");
    assert.equal((await rejection(listener.accept())).code, "closed");
  });

  test(`${name}: listenForPeer close() closes the connections nobody accepted`, { timeout: 10_000 }, async () => {
    let listener: PeerListener | null = await runtime.listenForPeer({ host: "127.0.0.1", port: 0 });
    const peers = new Peers();
    try {
      const clients = [
        await peers.connect("127.0.0.1", listener.address.port),
        await peers.connect("127.0.0.1", listener.address.port),
      ];
      await sleep(SETTLE_MS);
      listener.close();
      listener = null;
      await within(Promise.all(clients.map(closedOrEnded)), 5_000, "the queued peers to be closed");
    } finally {
      listener?.close();
      peers.destroy();
    }
  });
}

/** node:net clients of one test, destroyed when it ends. */
class Peers {
  readonly #sockets: net.Socket[] = [];

  connect(host: string, port: number): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, allowHalfOpen: true });
      this.#sockets.push(socket);
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        socket.on("error", ignore);
        resolve(socket);
      });
    });
  }

  destroy(): void {
    for (const socket of this.#sockets) socket.destroy();
  }
}

/** Resolves with everything the socket receives until FIN, as text. */
function received(socket: net.Socket): Promise<string> {
  const chunks: Uint8Array[] = [];
  socket.on("data", (chunk: Uint8Array) => chunks.push(chunk));
  return new Promise((resolve) => socket.once("end", () => resolve(Buffer.concat(chunks).toString())));
}

/** Resolves when the socket has been closed or has received FIN. */
function closedOrEnded(socket: net.Socket): Promise<void> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve();
  socket.resume();
  return new Promise((resolve) => {
    socket.once("close", () => resolve());
    socket.once("end", () => resolve());
  });
}
