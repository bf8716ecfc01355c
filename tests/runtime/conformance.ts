/**
 * Conformance suite for `NetRuntime` adapters, run against real loopback
 * sockets. Most cases build a minimal proxy: a client (node:net) connects to
 * a listener of the adapter, the accepted connection is relayed to a
 * connection the adapter dials to a node:net server:
 *
 *   client → [accepted ⇄ relay ⇄ dialled] → server
 *
 * Bulk data follows a deterministic position-dependent pattern whose period
 * (1 MiB + 4099 bytes) matches no chunk size, so lost, duplicated, reordered
 * or overwritten bytes are all detected.
 *
 * The peer listener (BIND) and datagram (UDP ASSOCIATE) cases live in
 * `peer_listener_conformance.ts` and `datagram_conformance.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { describe, test } from "node:test";
import { relay, type RelayOptions, type RelayResult } from "../../src/io/relay.ts";
import type { Connection, ConnectionHandlers, NetError, NetErrorCode, NetRuntime } from "../../src/runtime/types.ts";
import { deferred, ignore, rejection, sleep, within } from "./async_helpers.ts";
import { startSynSink } from "../helpers/syn_sink.ts";
import { datagramConformance } from "./datagram_conformance.ts";
import { peerListenerConformance } from "./peer_listener_conformance.ts";

/** Known limits of the runtime hosting the adapter. */
export interface ConformanceOptions {
  /**
   * The host runtime reports every failed connect as ECONNREFUSED (Bun,
   * oven-sh/bun#37093), so an unreachable address may map to `refused`.
   */
  readonly connectErrnoLost?: boolean;
  /**
   * The adapter's UDP sockets report ICMP errors for earlier datagrams (a
   * closed port answers "port unreachable"): Bun turns on `IP_RECVERR`; an
   * unconnected Linux socket without it never hears of them.
   */
  readonly datagramIcmpErrors?: boolean;
}

const MiB = 1024 * 1024;
const BULK = 64 * MiB;
/** Most bytes the proxy may hold between client and server under backpressure. */
const BUFFER_BOUND = 16 * MiB;
const PERIOD = MiB + 4099;
const MAX_SLICE = 256 * 1024;
const PATTERN = makePattern();
const LOOPBACK = "127.0.0.1";

/** Registers the conformance tests of one adapter with node:test. */
export function runConformance(
  adapterName: string,
  runtime: NetRuntime,
  options: ConformanceOptions = {},
): void {
  const name = adapterName;
  describe(`${name} adapter conformance`, () => {
    test(`${name}: relays 64 MiB each way intact`, { timeout: 120_000 }, async () => {
      const serverIn = new Verifier();
      const serverEnded = deferred<void>();
      const server = await nodeServer((socket) => {
        socket.on("data", (chunk: Uint8Array) => serverIn.push(chunk));
        socket.on("end", () => serverEnded.resolve());
        new Sender(socket, BULK, true);
      });
      const proxy = await startProxy(runtime, server.port);
      try {
        const client = await connectNode(proxy.port);
        const clientIn = new Verifier();
        const clientEnded = eventOnce(client, "end");
        client.on("data", (chunk: Uint8Array) => clientIn.push(chunk));
        new Sender(client, BULK, true);
        await within(Promise.all([serverEnded.promise, clientEnded]), 100_000, "both ends");
        assert.deepEqual(serverIn.summary(), { received: BULK, mismatchAt: -1 });
        assert.deepEqual(clientIn.summary(), { received: BULK, mismatchAt: -1 });
        const result = await within(proxy.session, 5_000, "the relay result");
        assert.deepEqual(result, { bytesUp: BULK, bytesDown: BULK, outcome: "done" });
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: backpressure bounds what the relay buffers`, { timeout: 120_000 }, async () => {
      const accepted = deferred<net.Socket>();
      const server = await nodeServer((socket) => {
        socket.pause();
        accepted.resolve(socket);
      });
      const proxy = await startProxy(runtime, server.port);
      try {
        const client = await connectNode(proxy.port);
        const clientEnded = eventOnce(client, "end");
        client.resume();
        const sender = new Sender(client, BULK, true);
        const target = await within(accepted.promise, 5_000, "the server to accept");
        await sleep(1_000);
        const held = proxy.accepted.bytes;
        assert.ok(sender.sent < BULK, "the client handed over all its data: no backpressure");
        assert.ok(client.writableLength > 0, "the client's writes did not stall");
        assert.ok(held <= BUFFER_BOUND, `the proxy accepted ${held} bytes the server did not read`);

        const serverIn = new Verifier();
        const serverEnded = eventOnce(target, "end");
        target.on("data", (chunk: Uint8Array) => serverIn.push(chunk));
        target.resume();
        await within(serverEnded, 100_000, "the server to read everything");
        target.end();
        await within(clientEnded, 5_000, "the client to see EOF");
        assert.deepEqual(serverIn.summary(), { received: BULK, mismatchAt: -1 });
        const result = await within(proxy.session, 5_000, "the relay result");
        assert.deepEqual(result, { bytesUp: BULK, bytesDown: 0, outcome: "done" });
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: client FIN first, the server replies after EOF`, { timeout: 30_000 }, async () => {
      const upload = 300 * 1024 + 17;
      const serverGot = deferred<Verifier>();
      const server = await nodeServer((socket) => {
        const incoming = new Verifier();
        socket.on("data", (chunk: Uint8Array) => incoming.push(chunk));
        socket.on("end", () => {
          serverGot.resolve(incoming);
          new Sender(socket, MiB, true);
        });
      });
      const proxy = await startProxy(runtime, server.port);
      try {
        const client = await connectNode(proxy.port);
        const clientIn = new Verifier();
        const clientEnded = eventOnce(client, "end");
        client.on("data", (chunk: Uint8Array) => clientIn.push(chunk));
        new Sender(client, upload, true);
        const incoming = await within(serverGot.promise, 10_000, "the server to see EOF");
        assert.deepEqual(incoming.summary(), { received: upload, mismatchAt: -1 });
        await within(clientEnded, 10_000, "the client to see EOF");
        assert.deepEqual(clientIn.summary(), { received: MiB, mismatchAt: -1 });
        const result = await within(proxy.session, 5_000, "the relay result");
        assert.deepEqual(result, { bytesUp: upload, bytesDown: MiB, outcome: "done" });
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: server FIN first, the client uploads after EOF`, { timeout: 30_000 }, async () => {
      const serverGot = deferred<Verifier>();
      const server = await nodeServer((socket) => {
        const incoming = new Verifier();
        socket.on("data", (chunk: Uint8Array) => incoming.push(chunk));
        socket.on("end", () => serverGot.resolve(incoming));
        new Sender(socket, MiB, true);
      });
      const proxy = await startProxy(runtime, server.port);
      try {
        const client = await connectNode(proxy.port);
        const clientIn = new Verifier();
        client.on("data", (chunk: Uint8Array) => clientIn.push(chunk));
        await within(eventOnce(client, "end"), 10_000, "the client to see EOF");
        assert.deepEqual(clientIn.summary(), { received: MiB, mismatchAt: -1 });
        new Sender(client, MiB, true);
        const incoming = await within(serverGot.promise, 10_000, "the server to see EOF");
        assert.deepEqual(incoming.summary(), { received: MiB, mismatchAt: -1 });
        const result = await within(proxy.session, 5_000, "the relay result");
        assert.deepEqual(result, { bytesUp: MiB, bytesDown: MiB, outcome: "done" });
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: connect to a closed port is refused`, { timeout: 10_000 }, async () => {
      const port = await closedPort();
      const error = await rejection(runtime.connect({ host: LOOPBACK, port }));
      assert.equal(error.code, "refused");
      assert.equal(error.message, `Cannot connect to 127.0.0.1:${port}: connection refused`);
      assert.ok(error.cause !== undefined, "the runtime's error is kept as cause");
    });

    test(`${name}: connect to an unreachable address`, { timeout: 10_000 }, async () => {
      const expected: NetErrorCode[] = ["net_unreachable", "host_unreachable", "timeout"];
      if (options.connectErrnoLost) expected.push("refused");
      const error = await rejection(
        runtime.connect({ host: "255.255.255.255", port: 80, signal: AbortSignal.timeout(5_000) }),
      );
      assert.ok(expected.includes(error.code), `unexpected code ${error.code}: ${error.message}`);
    });

    test(`${name}: connect gives up at timeoutMs when the SYN is never answered`, { timeout: 15_000 }, async () => {
      const sink = await startSynSink();
      try {
        const port = sink.port;
        const started = performance.now();
        const error = await within(
          rejection(runtime.connect({ host: LOOPBACK, port, timeoutMs: 300, signal: new AbortController().signal })),
          5_000,
          "the connect to give up",
        );
        const took = performance.now() - started;
        assert.equal(error.code, "timeout");
        assert.equal(error.message, `Cannot connect to 127.0.0.1:${port}: no connection within 300 ms`);
        assert.ok(took >= 250 && took < 2_000, `gave up after ${took} ms, not at 300 ms`);
      } finally {
        sink.close();
      }
    });

    test(`${name}: connect aborted by its signal`, { timeout: 10_000 }, async () => {
      const server = await nodeServer(() => {});
      try {
        const already = new AbortController();
        already.abort();
        const early = await rejection(
          runtime.connect({ host: LOOPBACK, port: server.port, signal: already.signal }),
        );
        assert.equal(early.code, "aborted");
        const controller = new AbortController();
        const attempt = runtime.connect({
          host: LOOPBACK,
          port: server.port,
          signal: controller.signal,
        });
        controller.abort();
        const late = await rejection(attempt);
        assert.equal(late.code, "aborted");
        await sleep(100);
        await within(
          Promise.all([...server.sockets].map((socket) => closedOrEnded(socket))),
          5_000,
          "the aborted connection to be closed",
        );
      } finally {
        server.close();
      }
    });

    test(`${name}: a server reset mid-transfer closes the client`, { timeout: 30_000 }, async () => {
      const server = await nodeServer((socket) => {
        let received = 0;
        socket.on("data", (chunk: Uint8Array) => {
          received += chunk.length;
          if (received >= MiB && !socket.destroyed) socket.resetAndDestroy();
        });
      });
      const proxy = await startProxy(runtime, server.port);
      try {
        const client = await connectNode(proxy.port);
        client.on("error", ignore);
        client.resume();
        new Sender(client, BULK, true);
        await within(eventOnce(client, "close"), 10_000, "the client to be closed");
        const result = await within(proxy.session, 5_000, "the relay result");
        assert.equal(result.outcome, "target_error");
        assert.equal(result.error?.code, "reset");
        assert.ok(result.bytesUp >= MiB);
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: a client reset closes the dialled socket`, { timeout: 30_000 }, async () => {
      const serverClosed = deferred<void>();
      const server = await nodeServer((socket) => {
        socket.on("error", ignore);
        socket.on("close", () => serverClosed.resolve());
        new Sender(socket, BULK, true);
      });
      const proxy = await startProxy(runtime, server.port);
      try {
        const client = await connectNode(proxy.port);
        client.on("error", ignore);
        await sleep(200);
        client.resetAndDestroy();
        await within(serverClosed.promise, 10_000, "the server's socket to be closed");
        const result = await within(proxy.session, 5_000, "the relay result");
        assert.equal(result.outcome, "client_error");
        assert.equal(result.error?.code, "reset");
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: a client that goes away ends the server side`, { timeout: 30_000 }, async () => {
      const serverEnded = deferred<void>();
      const server = await nodeServer((socket) => {
        socket.resume();
        socket.on("end", () => {
          serverEnded.resolve();
          socket.end();
        });
      });
      const proxy = await startProxy(runtime, server.port);
      try {
        const client = await connectNode(proxy.port);
        client.write("bye");
        client.destroy();
        await within(serverEnded.promise, 10_000, "the server to see EOF");
        const result = await within(proxy.session, 5_000, "the relay result");
        assert.deepEqual(result, { bytesUp: 3, bytesDown: 0, outcome: "done" });
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: idle timeout closes a silent session`, { timeout: 30_000 }, async () => {
      const server = await nodeServer((socket) => socket.resume());
      const proxy = await startProxy(runtime, server.port, { idleTimeoutMs: 300 });
      try {
        const client = await connectNode(proxy.port);
        client.resume();
        const result = await within(proxy.session, 5_000, "the idle timeout");
        assert.deepEqual(result, { bytesUp: 0, bytesDown: 0, outcome: "idle_timeout" });
        await within(closedOrEnded(client), 5_000, "the client to be closed");
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: fin-wait closes a half-closed session the other side never ends`, { timeout: 30_000 }, async () => {
      const server = await nodeServer((socket) => socket.resume());
      const proxy = await startProxy(runtime, server.port, { finWaitMs: 300 });
      try {
        const client = await connectNode(proxy.port);
        client.resume();
        client.end("bye");
        const result = await within(proxy.session, 5_000, "the fin-wait timeout");
        assert.deepEqual(result, { bytesUp: 3, bytesDown: 0, outcome: "fin_wait_timeout" });
        await within(closedOrEnded(client), 5_000, "the client to be closed");
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: fin-wait spares a half-close that completes in time`, { timeout: 30_000 }, async () => {
      const server = await nodeServer((socket) => {
        socket.resume();
        socket.on("end", () => setTimeout(() => socket.end("late reply"), 100));
      });
      const proxy = await startProxy(runtime, server.port, { finWaitMs: 2_000 });
      try {
        const client = await connectNode(proxy.port);
        let received = "";
        client.setEncoding("utf8").on("data", (text: string) => received += text);
        client.end("bye");
        const result = await within(proxy.session, 5_000, "the session end");
        assert.deepEqual(result, { bytesUp: 3, bytesDown: 10, outcome: "done" });
        await within(closedOrEnded(client), 5_000, "the client to see the end");
        assert.equal(received, "late reply");
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: idle timeout spares an active session`, { timeout: 30_000 }, async () => {
      const server = await nodeServer((socket) => socket.pipe(socket));
      const proxy = await startProxy(runtime, server.port, { idleTimeoutMs: 300 });
      try {
        const client = await connectNode(proxy.port);
        let echoed = 0;
        client.on("data", (chunk: Uint8Array) => echoed += chunk.length);
        let sessionOver = false;
        const session = proxy.session.then((result) => {
          sessionOver = true;
          return result;
        });
        const pings = 24;
        for (let i = 0; i < pings && !sessionOver; i++) {
          client.write("ping");
          await sleep(50);
        }
        assert.equal(sessionOver, false, "the session was closed while active");
        const result = await within(session, 5_000, "the idle timeout");
        assert.deepEqual(result, {
          bytesUp: pings * 4,
          bytesDown: pings * 4,
          outcome: "idle_timeout",
        });
        assert.equal(echoed, pings * 4);
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: early data goes first and in order`, { timeout: 10_000 }, async () => {
      const serverGot = deferred<string>();
      const server = await nodeServer((socket) => {
        collect(socket).then((bytes) => {
          serverGot.resolve(text(bytes));
          socket.end();
        });
        socket.write("world");
      });
      const proxy = await startProxy(runtime, server.port, {
        clientRest: bytesOf("REST-UP|"),
        targetRest: bytesOf("REST-DOWN|"),
      });
      try {
        const client = await connectNode(proxy.port);
        const received = collect(client);
        client.end("hello");
        assert.equal(await within(serverGot.promise, 5_000, "the server"), "REST-UP|hello");
        assert.equal(text(await within(received, 5_000, "the client")), "REST-DOWN|world");
        const result = await within(proxy.session, 5_000, "the relay result");
        assert.deepEqual(result, { bytesUp: 13, bytesDown: 15, outcome: "done" });
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: early data with the client's FIN already seen`, { timeout: 10_000 }, async () => {
      const serverGot = deferred<string>();
      const server = await nodeServer((socket) => {
        collect(socket).then((bytes) => {
          serverGot.resolve(text(bytes));
          socket.end("reply");
        });
      });
      const proxy = await startProxy(runtime, server.port, {
        clientRest: bytesOf("request"),
        clientEnded: true,
      });
      try {
        const client = await connectNode(proxy.port);
        const received = collect(client);
        assert.equal(await within(serverGot.promise, 5_000, "the server"), "request");
        assert.equal(text(await within(received, 5_000, "the client")), "reply");
        const result = await within(proxy.session, 5_000, "the relay result");
        assert.deepEqual(result, { bytesUp: 7, bytesDown: 5, outcome: "done" });
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: aborting the relay closes both sides`, { timeout: 10_000 }, async () => {
      const serverGone = deferred<Promise<void>>();
      const server = await nodeServer((socket) => {
        serverGone.resolve(closedOrEnded(socket));
        socket.write("hi");
      });
      const controller = new AbortController();
      const proxy = await startProxy(runtime, server.port, { signal: controller.signal });
      try {
        const client = await connectNode(proxy.port);
        const clientGone = closedOrEnded(client);
        await within(eventOnce(client, "data"), 5_000, "the server's greeting");
        controller.abort();
        const result = await within(proxy.session, 5_000, "the relay result");
        assert.deepEqual(result, { bytesUp: 0, bytesDown: 2, outcome: "aborted" });
        const sides = Promise.all([clientGone, serverGone.promise.then((gone) => gone)]);
        await within(sides, 5_000, "both sides to close");
      } finally {
        proxy.close();
        server.close();
      }
    });

    test(`${name}: listen reports the bound port and rejects a busy one`, { timeout: 10_000 }, async () => {
      const accepted = deferred<Connection>();
      const listener = await runtime.listen({
        host: LOOPBACK,
        port: 0,
        onConnection: (connection) => accepted.resolve(connection),
      });
      try {
        assert.equal(listener.address.host, LOOPBACK);
        assert.equal(listener.address.family, 4);
        assert.ok(listener.address.port > 0);
        const client = await connectNode(listener.address.port);
        const connection = await within(accepted.promise, 5_000, "the connection");
        assert.deepEqual(connection.local, listener.address);
        assert.deepEqual(connection.remote, { host: LOOPBACK, port: client.localPort, family: 4 });
        connection.close();
        const busy = await rejection(
          runtime.listen({ host: LOOPBACK, port: listener.address.port, onConnection: ignore }),
        );
        assert.equal(busy.code, "address_in_use");
        assert.equal(
          busy.message,
          `Cannot listen on 127.0.0.1:${listener.address.port}: address already in use`,
        );
      } finally {
        listener.close();
      }
    });

    test(`${name}: listens and dials over IPv6 loopback`, { timeout: 10_000 }, async () => {
      const accepted = deferred<Connection>();
      const listener = await runtime.listen({
        host: "::1",
        port: 0,
        onConnection: (connection) => accepted.resolve(connection),
      });
      try {
        assert.equal(listener.address.host, "::1");
        assert.equal(listener.address.family, 6);
        const dialled = await runtime.connect({ host: "::1", port: listener.address.port });
        const connection = await within(accepted.promise, 5_000, "the connection");
        assert.deepEqual(dialled.remote, listener.address);
        assert.deepEqual(connection.remote, dialled.local);
        dialled.close();
        connection.close();
      } finally {
        listener.close();
      }
    });

    test(`${name}: late setHandlers gets earlier data, FIN and close`, { timeout: 10_000 }, async () => {
      const accepted = deferred<Connection>();
      const listener = await runtime.listen({
        host: LOOPBACK,
        port: 0,
        onConnection: (connection) => accepted.resolve(connection),
      });
      try {
        const client = await connectNode(listener.address.port);
        const reply = collect(client);
        client.end("early bytes");
        const connection = await within(accepted.promise, 5_000, "the connection");
        await sleep(200);
        const chunks: Uint8Array[] = [];
        const ended = deferred<void>();
        const closed = deferred<NetError | undefined>();
        let closes = 0;
        connection.setHandlers({
          onData: (chunk) => chunks.push(chunk.slice()),
          onEnd: () => ended.resolve(),
          onClose: (error) => {
            closes += 1;
            closed.resolve(error);
          },
        });
        await within(ended.promise, 5_000, "onEnd");
        assert.equal(text(chunks), "early bytes");
        connection.write(bytesOf("reply"));
        connection.closeWrite();
        assert.equal(text(await within(reply, 5_000, "the reply")), "reply");
        assert.equal(await within(closed.promise, 5_000, "onClose"), undefined);
        assert.equal(connection.closed, true);
        connection.close();
        connection.write(bytesOf("dropped"));
        await sleep(50);
        assert.equal(closes, 1);
      } finally {
        listener.close();
      }
    });

    test(`${name}: close() fires onClose once and closes the peer`, { timeout: 10_000 }, async () => {
      const server = await nodeServer((socket) => socket.resume());
      try {
        const connection = await runtime.connect({ host: LOOPBACK, port: server.port });
        let closes = 0;
        connection.setHandlers({ onData: ignore, onEnd: ignore, onClose: () => closes += 1 });
        const [peer] = await within(waitForSockets(server, 1), 5_000, "the server to accept");
        connection.close();
        connection.close();
        assert.equal(connection.closed, true);
        assert.equal(connection.write(bytesOf("dropped")), true);
        await within(closedOrEnded(peer as net.Socket), 5_000, "the peer to see the close");
        assert.equal(closes, 1);
      } finally {
        server.close();
      }
    });

    if (runtime.canBindSource) {
      test(`${name}: connect binds the requested source address`, { timeout: 10_000 }, async () => {
        const server = await nodeServer((socket) => socket.resume());
        try {
          const connection = await runtime.connect({
            host: LOOPBACK,
            port: server.port,
            localHost: LOOPBACK,
          });
          assert.equal(connection.local.host, LOOPBACK);
          connection.close();
        } finally {
          server.close();
        }
      });
    } else {
      test(`${name}: connect refuses a source address it cannot bind`, { timeout: 10_000 }, async () => {
        const error = await rejection(
          runtime.connect({ host: LOOPBACK, port: 9, localHost: LOOPBACK }),
        );
        assert.equal(error.code, "other");
      });
    }

    if (runtime.canReusePort) {
      test(`${name}: two listeners share a port with reusePort`, { timeout: 10_000 }, async () => {
        const first = await runtime.listen({
          host: LOOPBACK,
          port: 0,
          reusePort: true,
          onConnection: ignore,
        });
        try {
          const second = await runtime.listen({
            host: LOOPBACK,
            port: first.address.port,
            reusePort: true,
            onConnection: ignore,
          });
          assert.equal(second.address.port, first.address.port);
          second.close();
        } finally {
          first.close();
        }
      });
    }

    peerListenerConformance(name, runtime);
    datagramConformance(name, runtime, options);
  });
}

// ---------------------------------------------------------------- the proxy

interface Proxy {
  readonly port: number;
  /** The relay result of the first accepted connection. */
  readonly session: Promise<RelayResult>;
  /** Bytes the relay accepted from the client so far. */
  readonly accepted: { bytes: number };
  close(): void;
}

async function startProxy(
  runtime: NetRuntime,
  targetPort: number,
  options: Partial<RelayOptions> = {},
): Promise<Proxy> {
  const accepted = { bytes: 0 };
  const session = deferred<RelayResult>();
  const connections: Connection[] = [];
  const listener = await runtime.listen({
    host: LOOPBACK,
    port: 0,
    onConnection: (client) => {
      connections.push(client);
      runtime.connect({ host: LOOPBACK, port: targetPort }).then(
        (target) => {
          connections.push(target);
          relay(counted(client, accepted), target, { idleTimeoutMs: 0, ...options })
            .then(session.resolve);
        },
        (error: unknown) => {
          client.close();
          session.reject(error);
        },
      );
    },
  });
  return {
    port: listener.address.port,
    session: session.promise,
    accepted,
    close() {
      listener.close();
      for (const connection of connections) connection.close();
    },
  };
}

/** Wraps a connection to count the bytes it delivers. */
function counted(connection: Connection, counter: { bytes: number }): Connection {
  return {
    local: connection.local,
    remote: connection.remote,
    reusesChunks: connection.reusesChunks,
    keepsWrittenChunks: connection.keepsWrittenChunks,
    setHandlers(handlers: ConnectionHandlers) {
      connection.setHandlers({
        onData: (chunk) => {
          counter.bytes += chunk.length;
          handlers.onData(chunk);
        },
        onEnd: () => handlers.onEnd(),
        onClose: (error) => handlers.onClose(error),
      });
    },
    pause: () => connection.pause(),
    resume: () => connection.resume(),
    write: (chunk) => connection.write(chunk),
    get onDrain() {
      return connection.onDrain;
    },
    set onDrain(callback) {
      connection.onDrain = callback;
    },
    closeWrite: () => connection.closeWrite(),
    close: () => connection.close(),
    get closed() {
      return connection.closed;
    },
  };
}

// ------------------------------------------------------- node:net endpoints

interface NodeServer {
  readonly port: number;
  readonly sockets: Set<net.Socket>;
  close(): void;
}

async function nodeServer(onSocket: (socket: net.Socket) => void): Promise<NodeServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", ignore);
    onSocket(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close() {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}

function connectNode(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: LOOPBACK, port, allowHalfOpen: true });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

async function waitForSockets(server: NodeServer, count: number): Promise<net.Socket[]> {
  for (let i = 0; i < 100 && server.sockets.size < count; i++) await sleep(20);
  return [...server.sockets];
}

async function closedPort(): Promise<number> {
  const server = await nodeServer(ignore);
  server.close();
  await sleep(20);
  return server.port;
}

/** Resolves when the socket has been closed or has received FIN. */
function closedOrEnded(socket: net.Socket): Promise<void> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve();
  socket.resume();
  return Promise.race([eventOnce(socket, "close"), eventOnce(socket, "end")]);
}

function eventOnce(socket: net.Socket, event: "end" | "close" | "data"): Promise<void> {
  return new Promise((resolve) => socket.once(event, () => resolve()));
}

/** Collects everything a socket receives until FIN. */
function collect(socket: net.Socket): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  socket.on("data", (chunk: Uint8Array) => chunks.push(chunk));
  return new Promise((resolve) => socket.once("end", () => resolve(chunks)));
}

// ------------------------------------------------------------------- data

function makePattern(): Uint8Array {
  const pattern = new Uint8Array(PERIOD + MAX_SLICE);
  let state = 0x2545f491;
  for (let i = 0; i < PERIOD; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    pattern[i] = state & 0xff;
  }
  pattern.copyWithin(PERIOD, 0, MAX_SLICE);
  return pattern;
}

/** Writes `total` pattern bytes to a socket, honouring its backpressure. */
class Sender {
  sent = 0;

  constructor(socket: net.Socket, total: number, end: boolean) {
    const pump = () => {
      while (this.sent < total && !socket.destroyed) {
        const offset = this.sent % PERIOD;
        const size = Math.min(MAX_SLICE, total - this.sent);
        this.sent += size;
        if (!socket.write(PATTERN.subarray(offset, offset + size))) {
          socket.once("drain", pump);
          return;
        }
      }
      if (end && !socket.destroyed) socket.end();
    };
    pump();
  }
}

/** Checks received bytes against the pattern as they arrive. */
class Verifier {
  received = 0;
  mismatchAt = -1;

  push(chunk: Uint8Array): void {
    let done = 0;
    while (done < chunk.length) {
      const offset = (this.received + done) % PERIOD;
      const size = Math.min(chunk.length - done, PATTERN.length - offset);
      if (this.mismatchAt < 0) {
        const got = Buffer.from(chunk.buffer, chunk.byteOffset + done, size);
        if (!got.equals(PATTERN.subarray(offset, offset + size))) {
          this.mismatchAt = this.received + done;
        }
      }
      done += size;
    }
    this.received += chunk.length;
  }

  summary(): { received: number; mismatchAt: number } {
    return { received: this.received, mismatchAt: this.mismatchAt };
  }
}

function bytesOf(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

function text(chunks: Uint8Array[]): string {
  return Buffer.concat(chunks).toString("utf8");
}
