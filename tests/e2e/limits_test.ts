/**
 * End to end: `--max-per-client` against the real CLI in every mode of
 * `serverModes()`. Clients are raw node:net sockets bound to 127.0.0.2 and
 * 127.0.0.3 (both loopback), so the server sees two client addresses; every
 * connection stays on the machine.
 *
 * With `--max-per-client 2`: two relaying CONNECT sessions from 127.0.0.2,
 * a third from it closed before any SOCKS byte (one warning line, outcome
 * `over_client_limit`; a repeat within the second adds no warning),
 * 127.0.0.3 still served, and the slot back once a session from 127.0.0.2
 * ends, whether it relayed or failed its handshake.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { type FakeServer, startEchoServer } from "../helpers/fake_hops.ts";
import { waitForNewOutput } from "../helpers/server_log.ts";
import { socks5ConnectBytes } from "../helpers/socks_client.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";

process.env.DENO_NO_UPDATE_CHECK = "1";

const A = "127.0.0.2";
const B = "127.0.0.3";

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
