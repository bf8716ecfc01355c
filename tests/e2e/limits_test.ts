/**
 * End to end: `--max-per-client`, and the BIND and UDP ASSOCIATE limits
 * (`--max-binds`, `--max-binds-per-client`, `--max-udp`,
 * `--max-udp-per-client`), against the real CLI in every mode of
 * `serverModes()`. Clients are raw node:net sockets bound to 127.0.0.2,
 * 127.0.0.3 and 127.0.0.4 (all loopback), so the server sees several client
 * addresses; every connection stays on the machine.
 *
 * With `--max-per-client 2`: two relaying CONNECT sessions from 127.0.0.2,
 * a third from it closed before any SOCKS byte (one warning line, outcome
 * `over_client_limit`; a repeat within the second adds no warning),
 * 127.0.0.3 still served, and the slot back once a session from 127.0.0.2
 * ends, whether it relayed or failed its handshake.
 *
 * With 2 per client and 3 in all, for BIND and for UDP ASSOCIATE: a client's
 * third request gets REP 01 (SOCKS4 BIND: CD 5B) and exactly one line
 * naming the per-client limit; another client gets the third slot; a fourth
 * in all gets REP 01 and a line naming the total; CONNECT and the granted
 * BINDs and associations keep working; a BIND whose peer connected, and an
 * association whose control connection closed, give their slots back; and
 * the server's descriptors return to their baseline.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { connect, type Socket } from "node:net";
import { type FakeServer, startEchoServer } from "../helpers/fake_hops.ts";
import { waitForNewOutput } from "../helpers/server_log.ts";
import { socks4Request, socks5Request } from "../helpers/socks_bytes.ts";
import { socks5ConnectBytes } from "../helpers/socks_client.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";
import { descriptorsBackTo, openDescriptors } from "../helpers/descriptors.ts";

process.env.DENO_NO_UPDATE_CHECK = "1";

const A = "127.0.0.2";
const B = "127.0.0.3";
const C = "127.0.0.4";

/** A raw TCP client bound to `localAddress`. */
interface RawClient {
  readonly localPort: number;
  send(bytes: Uint8Array | number[] | string): void;
  /** Resolves with exactly `length` bytes; rejects when the server ends first or after `timeoutMs`. */
  read(length: number, timeoutMs?: number): Promise<Uint8Array>;
  /** Resolves with everything received once the server has ended the connection. */
  readToEnd(timeoutMs?: number): Promise<Uint8Array>;
  close(): void;
}

function rawClient(port: number, localAddress: string): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: "127.0.0.1", port, localAddress, allowHalfOpen: true });
    let buffer = Buffer.alloc(0);
    let ended = false;
    const waiters = new Set<() => void>();
    const wake = () => [...waiters].forEach((waiter) => waiter());
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      wake();
    });
    for (const event of ["end", "close", "error"]) {
      socket.on(event, () => {
        ended = true;
        wake();
      });
    }
    const until = (ready: () => boolean, timeoutMs: number, what: string) =>
      new Promise<void>((done, fail) => {
        const check = () => {
          if (!ready()) return;
          clearTimeout(timer);
          waiters.delete(check);
          done();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          fail(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    socket.once("error", reject);
    socket.once("connect", () =>
      resolve({
        localPort: socket.localPort!,
        send: (bytes) => socket.write(typeof bytes === "string" ? bytes : Uint8Array.from(bytes)),
        async read(length, timeoutMs = 5000) {
          await until(() => buffer.length >= length || ended, timeoutMs, `${length} bytes`);
          if (buffer.length < length) throw new Error(`Server ended after ${buffer.length} of ${length} bytes`);
          const out = new Uint8Array(buffer.subarray(0, length));
          buffer = buffer.subarray(length);
          return out;
        },
        async readToEnd(timeoutMs = 5000) {
          await until(() => ended, timeoutMs, "the server to end the connection");
          return new Uint8Array(buffer);
        },
        close: () => socket.destroy(),
      }));
  });
}

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) --max-per-client`, () => {
    let server: RunningServer;
    let echo: FakeServer;
    const open: RawClient[] = [];

    before(async () => {
      if (skip) return;
      echo = await startEchoServer();
      server = await startServer(mode, ["-i", "127.0.0.1:0", "--max-per-client", "2"]);
    });

    after(async () => {
      if (skip) return;
      for (const client of open) client.close();
      await server?.stop();
      await echo?.close();
    });

    /** A CONNECT session from `from` to the echo server that relays one byte each way. */
    async function relaying(from: string): Promise<RawClient> {
      const client = await rawClient(server.port, from);
      open.push(client);
      client.send(socks5ConnectBytes("127.0.0.1", echo.port));
      const reply = await client.read(12);
      assert.equal(reply[3], 0, `CONNECT from ${from} succeeded`);
      client.send("x");
      assert.equal(new TextDecoder().decode(await client.read(1)), "x");
      return client;
    }

    /** A client from `from` closed before any SOCKS byte; resolves with its port. */
    async function refused(from: string): Promise<number> {
      const client = await rawClient(server.port, from);
      open.push(client);
      client.send([5, 1, 0]);
      assert.equal((await client.readToEnd()).length, 0, `the client from ${from} got no byte`);
      return client.localPort;
    }

    const deniedLine = (port: number) =>
      new RegExp(
        `127\\.0\\.0\\.2:${port} denied: 2 sessions from 127\\.0\\.0\\.2 already running \\(--max-per-client 2\\); \\d+ refused`,
      );

    test("the third session from one address is closed at once; another address is served; slots come back", {
      skip,
    }, async () => {
      const first = await relaying(A);
      await relaying(A);
      const start = Date.now();
      const from = server.output().length;
      const port = await refused(A);
      await waitForNewOutput(server, from, deniedLine(port));
      const again = await refused(A);
      const quick = Date.now() - start < 900;
      await relaying(B);
      await relaying(B);
      const denials = server.output().slice(from).match(/ denied: /g) ?? [];
      if (quick) assert.equal(denials.length, 1, `one warning a second for ${A}, not one for port ${again}`);

      // A relayed session ends: its slot serves again.
      const ended = server.output().length;
      first.close();
      await waitForNewOutput(server, ended, new RegExp(`127\\.0\\.0\\.2:${first.localPort} 5-CON .* time=`));
      const third = await relaying(A);
      await refused(A);

      // A failed handshake gives its slot back too.
      third.close();
      await waitForNewOutput(server, ended, new RegExp(`127\\.0\\.0\\.2:${third.localPort} 5-CON .* time=`));
      const garbage = await rawClient(server.port, A);
      open.push(garbage);
      const failed = server.output().length;
      garbage.send("GET / HTTP/1.0\r\n\r\n");
      assert.equal((await garbage.readToEnd()).length, 0);
      garbage.close();
      await waitForNewOutput(server, failed, new RegExp(`127\\.0\\.0\\.2:${garbage.localPort} handshake failed`));
      await relaying(A);
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A SOCKS5 reply with an IPv4 address: its code and address. */
function parseReply(bytes: Uint8Array): { code: number; host: string; port: number } {
  return { code: bytes[1]!, host: [...bytes.subarray(4, 8)].join("."), port: (bytes[8]! << 8) | bytes[9]! };
}

/** The SOCKS5 UDP header for an IPv4 destination, then `payload`. */
function udpFrame(host: string, port: number, payload: string): Buffer {
  return Buffer.concat([
    Buffer.from([0, 0, 0, 1, ...host.split(".").map(Number), port >> 8, port & 0xff]),
    Buffer.from(payload),
  ]);
}

const LIMIT_ARGS = ["--max-binds", "3", "--max-binds-per-client", "2", "--max-udp", "3", "--max-udp-per-client", "2"];

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) --max-binds, --max-binds-per-client, --max-udp, --max-udp-per-client`, () => {
    let server: RunningServer;
    let echo: FakeServer;
    let udpEcho: dgram.Socket;
    let baseline = 0;
    const open: RawClient[] = [];
    const udpSockets: dgram.Socket[] = [];

    before(async () => {
      if (skip) return;
      echo = await startEchoServer();
      udpEcho = dgram.createSocket("udp4");
      udpEcho.on("message", (message, from) => udpEcho.send(message, from.port, from.address));
      await new Promise<void>((resolve) => udpEcho.bind(0, "127.0.0.1", () => resolve()));
      server = await startServer(mode, ["-i", "127.0.0.1:0", ...LIMIT_ARGS]);
      // Warm up (lazy descriptors) with one CONNECT, one BIND and one association, then take the baseline.
      (await connected(C)).close();
      const warm = await bound(C);
      const peer = await peerOf(warm);
      peer.destroy();
      warm.client.close();
      const association = await associated(C);
      association.control.close();
      await sleep(500);
      baseline = openDescriptors(server.process.pid!);
    });

    after(async () => {
      if (skip) return;
      for (const client of open) client.close();
      for (const socket of udpSockets) socket.close();
      await server?.stop();
      await echo?.close();
      udpEcho?.close();
    });

    /** A CONNECT from `from` to the echo server that relays one byte each way. */
    async function connected(from: string): Promise<RawClient> {
      const client = await rawClient(server.port, from);
      open.push(client);
      client.send(socks5ConnectBytes("127.0.0.1", echo.port));
      assert.equal((await client.read(12))[3], 0, `CONNECT from ${from} succeeded`);
      client.send("x");
      assert.equal(new TextDecoder().decode(await client.read(1)), "x");
      return client;
    }

    /** A granted SOCKS5 BIND from `from` for a peer on 127.0.0.1; resolves with the listening port. */
    async function bound(from: string): Promise<{ client: RawClient; port: number }> {
      const client = await rawClient(server.port, from);
      open.push(client);
      client.send([5, 1, 0, ...socks5Request(2, "127.0.0.1", 0)]);
      assert.deepEqual([...await client.read(2)], [5, 0]);
      const reply = parseReply(await client.read(10));
      assert.equal(reply.code, 0, `BIND from ${from} granted`);
      return { client, port: reply.port };
    }

    /** The peer of a granted BIND connects; the second reply and one byte each way cross. */
    async function peerOf(bind: { client: RawClient; port: number }): Promise<Socket> {
      const peer = connect({ host: "127.0.0.1", port: bind.port, localAddress: "127.0.0.1" });
      peer.on("data", (chunk) => peer.write(chunk));
      peer.on("error", () => {});
      assert.equal(parseReply(await bind.client.read(10)).code, 0, "second BIND reply");
      bind.client.send("y");
      assert.equal(new TextDecoder().decode(await bind.client.read(1)), "y");
      return peer;
    }

    /** A granted UDP ASSOCIATE from `from`, whose UDP socket (on `from`) is echoed by udpEcho through the relay. */
    async function associated(
      from: string,
    ): Promise<{ control: RawClient; udp: dgram.Socket; relay: [number, string] }> {
      const udp = dgram.createSocket("udp4");
      udpSockets.push(udp);
      await new Promise<void>((resolve) => udp.bind(0, from, () => resolve()));
      const control = await rawClient(server.port, from);
      open.push(control);
      control.send([5, 1, 0, ...socks5Request(3, from, udp.address().port)]);
      assert.deepEqual([...await control.read(2)], [5, 0]);
      const relay = parseReply(await control.read(10));
      assert.equal(relay.code, 0, `UDP ASSOCIATE from ${from} granted`);
      const echoed = new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no datagram back through ${from}'s association`)), 5000);
        udp.once("message", (message) => {
          clearTimeout(timer);
          resolve(message);
        });
      });
      udp.send(udpFrame("127.0.0.1", udpEcho.address().port, `from ${from}`), relay.port, relay.host);
      assert.equal((await echoed).subarray(10).toString(), `from ${from}`);
      return { control, udp, relay: [relay.port, relay.host] };
    }

    /** A request from `from` refused with `expected`; resolves with the client's port once the server closed. */
    async function refused(from: string, request: number[], expected: number[]): Promise<number> {
      const client = await rawClient(server.port, from);
      open.push(client);
      client.send(request);
      assert.deepEqual([...await client.readToEnd()], expected, `refused request from ${from}`);
      client.close();
      return client.localPort;
    }

    /** Waits for the one line about the client at `from`:`port`, which must match `pattern`. */
    async function oneLine(mark: number, from: string, port: number, pattern: RegExp): Promise<void> {
      const line = await waitForNewOutput(
        server,
        mark,
        new RegExp(`[^\\n]*${from.replaceAll(".", "\\.")}:${port} [^\\n]*`),
      );
      assert.match(line, pattern);
      const lines = server.output().slice(mark).split("\n").filter((text) => text.includes(`${from}:${port} `));
      assert.equal(lines.length, 1, `one line for ${from}:${port}:\n${lines.join("\n")}`);
    }

    const SOCKS5_BIND = [5, 1, 0, ...socks5Request(2, "127.0.0.1", 0)];
    const REP_01 = [5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0];

    test("BIND: REP 01 / CD 5B past 2 per client and 3 in all, one line naming the limit; slots come back", {
      skip,
    }, async () => {
      const first = await bound(A);
      const second = await bound(A);
      const mark = server.output().length;
      const overA = await refused(A, SOCKS5_BIND, REP_01);
      await oneLine(
        mark,
        A,
        overA,
        /5-BND: 127\.0\.0\.2 already holds 2 BIND listeners \(--max-binds-per-client 2\)/,
      );
      const socks4 = await refused(A, socks4Request(2, "127.0.0.1", 0), [0, 91, 0, 0, 0, 0, 0, 0]);
      await oneLine(mark, A, socks4, /4-BND: 127\.0\.0\.2 already holds 2 BIND listeners/);
      const third = await bound(B);
      const overAll = await refused(C, SOCKS5_BIND, REP_01);
      await oneLine(mark, C, overAll, /5-BND: 3 BIND listeners already open in all \(--max-binds 3\)/);
      // Other clients' CONNECTs are served meanwhile.
      (await connected(C)).close();
      // A peer connects to the first BIND: it relays, and its slot is back.
      const peer = await peerOf(first);
      const again = await bound(A);
      // A client that leaves while waiting gives its slot back too.
      third.client.close();
      await waitForNewOutput(
        server,
        mark,
        new RegExp(`127\\.0\\.0\\.3:${third.client.localPort} 5-BND [^\\n]*client left`),
      );
      const fourth = await bound(C);
      assert.ok(fourth.port > 0);
      for (const client of [first.client, second.client, again.client, fourth.client]) client.close();
      peer.destroy();
      await descriptorsBackTo(server, baseline);
    });

    test("UDP ASSOCIATE: REP 01 past 2 per client and 3 in all, one line naming the limit; slots come back", {
      skip,
    }, async () => {
      const first = await associated(A);
      const second = await associated(A);
      const mark = server.output().length;
      const overA = await refused(A, [5, 1, 0, ...socks5Request(3, A, 0)], REP_01);
      await oneLine(
        mark,
        A,
        overA,
        /5-UDP: 127\.0\.0\.2 already holds 2 UDP associations \(--max-udp-per-client 2\)/,
      );
      const third = await associated(B);
      const overAll = await refused(C, [5, 1, 0, ...socks5Request(3, C, 0)], REP_01);
      await oneLine(mark, C, overAll, /5-UDP: 3 UDP associations already open in all \(--max-udp 3\)/);
      // Other clients' CONNECTs are served meanwhile, and the granted associations still relay.
      (await connected(C)).close();
      const echoed = new Promise<Buffer>((resolve) => first.udp.once("message", resolve));
      first.udp.send(udpFrame("127.0.0.1", udpEcho.address().port, "still"), ...first.relay);
      assert.equal((await echoed).subarray(10).toString(), "still");
      // An association whose control connection closes gives its slot back, to its client and to the total.
      first.control.close();
      await waitForNewOutput(
        server,
        mark,
        new RegExp(`127\\.0\\.0\\.2:${first.control.localPort} 5-UDP [^\\n]*bound=`),
      );
      const again = await associated(A);
      third.control.close();
      await waitForNewOutput(
        server,
        mark,
        new RegExp(`127\\.0\\.0\\.3:${third.control.localPort} 5-UDP [^\\n]*bound=`),
      );
      const fourth = await associated(C);
      for (const association of [second, again, fourth]) association.control.close();
      await descriptorsBackTo(server, baseline);
    });
  });
}
