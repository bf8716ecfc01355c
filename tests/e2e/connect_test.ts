/**
 * End to end: the real CLI under Bun, Deno, the compiled binary and the
 * node:net adapter, driven by real clients (curl, ncat, the npm `socks`
 * client, scripted sockets) over IPv4 and IPv6.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { SocksClient } from "socks";
import { startEchoServer } from "../helpers/fake_hops.ts";
import { needs } from "../helpers/peers.ts";
import { runCommand } from "../helpers/run_command.ts";
import { openClient, socks5ConnectBytes } from "../helpers/socks_client.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";
import { patternBytes, sha256, startDrainServer, startHttpServer, type TestServer } from "../helpers/targets.ts";

const CURL = needs("curl");
const NCAT = needs("ncat");

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) CONNECT end to end`, () => {
    let server: RunningServer;
    let http4: TestServer;
    let http6: TestServer;
    let echo4: TestServer;
    let echo6: TestServer;
    let drain: TestServer;
    const proxy4 = () => `127.0.0.1:${server.port}`;
    const proxy6 = () => server.addresses[1]!;

    before(async () => {
      if (skip) return;
      [http4, http6, echo4, echo6, drain] = await Promise.all([
        startHttpServer("127.0.0.1"),
        startHttpServer("::1"),
        startEchoServer({ host: "127.0.0.1" }),
        startEchoServer({ host: "::1" }),
        startDrainServer(1 << 20),
      ]);
      server = await startServer(mode, ["-i", "127.0.0.1:0", "-i", "[::1]:0", "--handshake-timeout", "2"], {
        listeners: 2,
      });
    });

    after(async () => {
      if (skip) return;
      await server?.stop();
      await Promise.all([http4, http6, echo4, echo6, drain].map((s) => s?.close()));
    });

    const curlCases: Array<[string, () => string[], string]> = [
      [
        "--socks5 to an IPv4 target",
        () => ["--socks5", proxy4(), `http://127.0.0.1:${http4.port}/a`],
        "hello from 127.0.0.1 /a",
      ],
      [
        "--socks5-hostname with a name resolving to ::1 and 127.0.0.1",
        () => ["--socks5-hostname", proxy4(), `http://localhost:${http4.port}/b`],
        "hello from 127.0.0.1 /b",
      ],
      [
        "--socks4 to an IPv4 target",
        () => ["--socks4", proxy4(), `http://127.0.0.1:${http4.port}/c`],
        "hello from 127.0.0.1 /c",
      ],
      [
        "--socks4a with a host name",
        () => ["--socks4a", proxy4(), `http://localhost:${http4.port}/d`],
        "hello from 127.0.0.1 /d",
      ],
      [
        "--socks5 over IPv6 to an IPv6 target",
        () => ["--socks5", proxy6(), `http://[::1]:${http6.port}/e`],
        "hello from ::1 /e",
      ],
      [
        "IPv4 client to an IPv6 target (gateway)",
        () => ["--socks5", proxy4(), `http://[::1]:${http6.port}/f`],
        "hello from ::1 /f",
      ],
      [
        "IPv6 client to an IPv4 target (gateway)",
        () => ["--socks5-hostname", proxy6(), `http://127.0.0.1:${http4.port}/g`],
        "hello from 127.0.0.1 /g",
      ],
    ];
    for (const [name, args, expected] of curlCases) {
      test(`curl ${name}`, { skip: skip || CURL }, async () => {
        const result = await runCommand("curl", ["-sS", "--max-time", "10", ...args()]);
        assert.equal(result.stderr, "");
        assert.equal(result.stdout, expected);
      });
    }

    for (const type of ["socks5", "socks4"] as const) {
      test(`ncat --proxy-type ${type} echoes stdin`, { skip: skip || NCAT }, async () => {
        const input = "line one\nline two\n".repeat(100);
        const result = await runCommand(
          "ncat",
          ["--proxy", proxy4(), "--proxy-type", type, "127.0.0.1", String(echo4.port)],
          { input, timeoutMs: 10_000 },
        );
        assert.equal(result.stdout, input);
      });
    }

    test("npm socks client: SOCKS5 CONNECT to an IPv6 echo server", { skip }, async () => {
      const { socket } = await SocksClient.createConnection({
        proxy: { host: "127.0.0.1", port: server.port, type: 5 },
        command: "connect",
        destination: { host: "::1", port: echo6.port },
        timeout: 5000,
      });
      const echoed = await new Promise<string>((resolve) => {
        let text = "";
        socket.setEncoding("utf8");
        socket.on("data", (chunk: string) => {
          text += chunk;
          if (text.length >= 5) resolve(text);
        });
        socket.write("hello");
      });
      socket.destroy();
      assert.equal(echoed, "hello");
    });

    test("half-close: the client's FIN reaches the target and the full reply still arrives", { skip }, async () => {
      const upload = patternBytes(3 << 20);
      const client = await openClient("127.0.0.1", server.port);
      client.send(socks5ConnectBytes("127.0.0.1", drain.port));
      assert.deepEqual([...await client.read(2)], [5, 0]);
      const reply = await client.read(10);
      assert.equal(reply[1], 0, "CONNECT succeeded");
      client.socket.end(upload);
      const answer = await client.readToEnd(15_000);
      const newline = answer.indexOf(10);
      const header = new TextDecoder().decode(answer.subarray(0, newline));
      assert.equal(header, `${upload.length} ${sha256(upload)}`);
      assert.equal(answer.length - newline - 1, 1 << 20);
      assert.equal(sha256(answer.subarray(newline + 1)), sha256(patternBytes(1 << 20)));
    });

    test("early data sent with the request is relayed, not dropped", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send([...socks5ConnectBytes("127.0.0.1", echo4.port), ...new TextEncoder().encode("early")]);
      await client.read(12);
      assert.equal(new TextDecoder().decode(await client.read(5)), "early");
      client.close();
    });

    test("256 KiB pipelined behind the request (more than the handshake buffers) all arrive", { skip }, async () => {
      const early = patternBytes(256 * 1024);
      const request = Uint8Array.from(socks5ConnectBytes("127.0.0.1", echo4.port));
      const client = await openClient("127.0.0.1", server.port);
      const both = new Uint8Array(request.length + early.length);
      both.set(request);
      both.set(early, request.length);
      client.socket.write(both);
      await client.read(12);
      assert.equal(sha256(await client.read(early.length, 10_000)), sha256(early));
      client.close();
    });

    test("BND.ADDR/BND.PORT is the outbound socket's local address", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send(socks5ConnectBytes("127.0.0.1", echo4.port));
      const reply = await client.read(12);
      assert.deepEqual([...reply.subarray(2, 8)], [5, 0, 0, 1, 127, 0]);
      const port = (reply[10]! << 8) | reply[11]!;
      assert.notEqual(port, 0);
      assert.notEqual(port, server.port);
      client.close();
    });

    test("200 concurrent transfers arrive intact", { skip }, async () => {
      const payload = patternBytes(64 * 1024);
      const one = async (index: number) => {
        const socket = connect({ host: "127.0.0.1", port: server.port });
        const chunks: Uint8Array[] = [];
        let total = 0;
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`transfer ${index} timed out`)), 30_000);
          socket.on("error", reject);
          socket.once("connect", () => socket.write(Uint8Array.from(socks5ConnectBytes("127.0.0.1", echo4.port))));
          socket.on("data", (chunk: Uint8Array) => {
            chunks.push(chunk);
            total += chunk.length;
            if (total === 12) socket.write(payload);
            if (total === 12 + payload.length) {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        socket.destroy();
        const all = new Uint8Array(total);
        let offset = 0;
        for (const chunk of chunks) {
          all.set(chunk, offset);
          offset += chunk.length;
        }
        return sha256(all.subarray(12));
      };
      const hashes = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
      const expected = sha256(payload);
      assert.equal(hashes.filter((h) => h === expected).length, 200);
    });

    test("the session log line names client, target, route, bytes and outcome", { skip }, async () => {
      const result = await runCommand("curl", ["-sS", "--socks5", proxy4(), `http://127.0.0.1:${http4.port}/log`]);
      assert.equal(result.code, 0);
      const line = await server.waitForOutput(
        new RegExp(
          `127\\.0\\.0\\.1:\\d+ 5-CON 127\\.0\\.0\\.1:${http4.port} direct bound=127\\.0\\.0\\.1:\\d+ up=\\d+ down=\\d+ time=[\\d.]+s done`,
        ),
      );
      assert.match(line, /up=[1-9]\d* down=[1-9]\d*/);
    });
  });
}
