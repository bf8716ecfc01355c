/**
 * End to end: `--proxy-protocol` (issue 18) against the real CLI in every
 * mode of `serverModes()`, behind a real HAProxy (Debian's `haproxy`,
 * started here with its own config on loopback and stopped by PID; the
 * system service is never touched).
 *
 * Per mode: two srelay instances (`--proxy-protocol-from 127.0.0.1,::1`,
 * `-w` with a hosts.allow that admits 127.0.0.9 and a hosts.deny of ALL)
 * behind one HAProxy frontend in round robin with `send-proxy-v2` and
 * `check check-send-proxy` (v2 LOCAL health checks). curl bound to
 * 127.0.0.9 goes through HAProxy to both instances, which log 127.0.0.9 and
 * not HAProxy's 127.0.0.1 (tcp_wrappers would deny that); curl bound to
 * 127.0.0.10 is denied by hosts.deny behind HAProxy. Then raw v1 and v2
 * headers straight to one instance: good ones, bad ones, a slow one, and
 * one from 127.0.0.9, which is not in --proxy-protocol-from.
 *
 * Once, outside the modes: HAProxy's own v1 and v2 headers (crc32c,
 * unique-id) captured and decoded with srelay's codec, the cross-check
 * against an independent encoder.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeProxyHeader, encodeProxyHeader, type ProxyHeader } from "../../src/protocol/proxy_protocol.ts";
import { type FakeServer, startEchoServer } from "../helpers/fake_hops.ts";
import { needs, which } from "../helpers/peers.ts";
import { runCommand } from "../helpers/run_command.ts";
import { waitForNewOutput } from "../helpers/server_log.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";
import { startHttpServer, type TestServer } from "../helpers/targets.ts";

process.env.DENO_NO_UPDATE_CHECK = "1";

const HAPROXY_SKIP = needs("haproxy");
const CURL_SKIP = needs("curl");
const SKIP = HAPROXY_SKIP || CURL_SKIP;

/** The client HAProxy forwards (admitted by hosts.allow) and the one hosts.deny refuses. */
const CLIENT = "127.0.0.9";
const DENIED_CLIENT = "127.0.0.10";

// ---- helpers ----------------------------------------------------------------------

/** A free TCP port on 127.0.0.1 (for HAProxy's frontend, which cannot report a port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A running HAProxy with the given config, stopped by PID. */
interface Haproxy {
  output(): string;
  stop(): Promise<void>;
}

async function startHaproxy(dir: string, config: string, frontends: readonly number[]): Promise<Haproxy> {
  const file = join(dir, `haproxy-${Date.now()}.cfg`);
  writeFileSync(file, config);
  const child: ChildProcess = spawn(which("haproxy")!, ["-f", file, "-db"], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (text: string) => (output += text));
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (output += text));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  let gone = false;
  exited.then(() => (gone = true));
  const stop = async () => {
    if (gone) return;
    try {
      process.kill(child.pid!, "SIGTERM");
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => !gone && process.kill(child.pid!, "SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  };
  // Ready once HAProxy holds every frontend port. (Probing by connecting would send a header
  // for the probe to the backends.)
  const deadline = Date.now() + 5000;
  for (const port of frontends) {
    for (;;) {
      if (gone) throw new Error(`haproxy exited:\n${output}`);
      if (listeningOn(port)) break;
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`haproxy did not listen on ${port}:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  return { output: () => output, stop };
}

/**
 * True when a socket listens on 127.0.0.1:`port` (HAProxy), read from
 * /proc/net/tcp: a probe that bound the port itself could take it just as
 * HAProxy binds it, which then fails with EADDRINUSE.
 */
function listeningOn(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return readFileSync("/proc/net/tcp", "utf8").split("\n").some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[1] === local && fields[3] === "0A";
  });
}

/** A raw TCP client from `localAddress`: what it sent, what it got until the server's FIN. */
interface RawClient {
  send(bytes: Uint8Array | number[] | string): void;
  end(): void;
  /** Resolves with at least `length` bytes (or everything, if the server ends first). */
  read(length: number, timeoutMs?: number): Promise<Uint8Array>;
  /** Resolves with everything received once the server has ended the connection. */
  readToEnd(timeoutMs?: number): Promise<Uint8Array>;
  readonly localPort: number;
  close(): void;
}

function rawClient(port: number, localAddress: string): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: "127.0.0.1", port, localAddress, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let ended = false;
    const waiters = new Set<() => void>();
    const wake = () => [...waiters].forEach((waiter) => waiter());
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
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
    const received = () => new Uint8Array(Buffer.concat(chunks));
    socket.once("error", reject);
    socket.once("connect", () =>
      resolve({
        localPort: socket.localPort!,
        send: (bytes) => socket.write(typeof bytes === "string" ? bytes : Uint8Array.from(bytes)),
        end: () => socket.end(),
        async read(length, timeoutMs = 5000) {
          await until(() => received().length >= length || ended, timeoutMs, `${length} bytes`);
          return received();
        },
        async readToEnd(timeoutMs = 5000) {
          await until(() => ended, timeoutMs, "the server to end the connection");
          return received();
        },
        close: () => socket.destroy(),
      }));
  });
}

function socks5Connect(port: number): number[] {
  return [5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff];
}

function v1(source: string, sourcePort: number, protocol = "TCP4", destination = "127.0.0.1"): string {
  return `PROXY ${protocol} ${source} ${destination} ${sourcePort} 1080\r\n`;
}

function v2(source: string, sourcePort: number): Uint8Array {
  const header: ProxyHeader = {
    version: 2,
    command: "proxy",
    family: 4,
    transport: "stream",
    source: { host: source, port: sourcePort },
    destination: { host: "127.0.0.1", port: 1080 },
    tlvs: [{ type: 0x05, value: new TextEncoder().encode("request-1") }],
  };
  return encodeProxyHeader(header, { crc32c: true });
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// ---- srelay behind HAProxy, per mode ------------------------------------------------

for (const { mode, skip: modeSkip } of serverModes()) {
  const skip = modeSkip || SKIP;
  describe(`srelay (${mode}) --proxy-protocol`, () => {
    let dir: string;
    let http: TestServer;
    let echo: FakeServer;
    let servers: RunningServer[] = [];
    let haproxy: Haproxy | undefined;
    let front = 0;
    let allowFile = "";
    let denyFile = "";

    before(async () => {
      if (skip) return;
      dir = mkdtempSync(join(tmpdir(), "srelay-proxy-protocol-"));
      allowFile = join(dir, "hosts.allow");
      denyFile = join(dir, "hosts.deny");
      writeFileSync(allowFile, `srelay : ${CLIENT}\n`);
      writeFileSync(denyFile, "srelay : ALL\n");
      http = await startHttpServer();
      echo = await startEchoServer();
      const args = (level: string) => [
        "-i",
        "127.0.0.1:0",
        "--proxy-protocol-from",
        "127.0.0.1,::1",
        "--hosts-allow",
        allowFile,
        "--hosts-deny",
        denyFile,
        "--handshake-timeout",
        "1",
        // Behind a load balancer every listener counts as exposed; the test's targets are on loopback.
        "--allow-internal",
        "--log-level",
        level,
      ];
      servers = await Promise.all([startServer(mode, args("debug")), startServer(mode, args("info"))]);
      front = await freePort();
      haproxy = await startHaproxy(
        dir,
        `global
  maxconn 100
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
  timeout check 2s
frontend socks
  bind 127.0.0.1:${front}
  default_backend srelays
backend srelays
  balance roundrobin
  server a 127.0.0.1:${servers[0]!.port} send-proxy-v2 check check-send-proxy inter 500ms
  server b 127.0.0.1:${servers[1]!.port} send-proxy-v2 check check-send-proxy inter 500ms
`,
        [front],
      );
    });

    after(async () => {
      if (skip) return;
      await haproxy?.stop();
      await Promise.all(servers.map((server) => server.stop()));
      await http?.close();
      await echo?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const curl = (from: string) =>
      runCommand("curl", [
        "-sS",
        "--max-time",
        "5",
        "--interface",
        from,
        "--socks5",
        `127.0.0.1:${front}`,
        `http://127.0.0.1:${http.port}/via-haproxy`,
      ]);

    test("curl through HAProxy reaches both instances; each logs the real client, 127.0.0.9", { skip }, async () => {
      const marks = servers.map((server) => server.output().length);
      for (let i = 0; i < 4; i++) {
        const result = await curl(CLIENT);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, "hello from 127.0.0.1 /via-haproxy");
      }
      const line = new RegExp(`${escape(CLIENT)}:\\d+ 5-CON 127\\.0\\.0\\.1:${http.port}\\(ipv4\\) - direct`);
      for (const [i, server] of servers.entries()) {
        await waitForNewOutput(server, marks[i]!, line);
        assert.doesNotMatch(server.output().slice(marks[i]), /127\.0\.0\.1:\d+ 5-CON/);
      }
    });

    test("a hosts.deny entry for the real client is enforced behind HAProxy", { skip }, async () => {
      const marks = servers.map((server) => server.output().length);
      const result = await curl(DENIED_CLIENT);
      assert.notEqual(result.code, 0, "curl was refused");
      const denied = new RegExp(`${escape(DENIED_CLIENT)}:\\d+ denied: ${escape(denyFile)}:1`);
      await Promise.any(servers.map((server, i) => waitForNewOutput(server, marks[i]!, denied)));
    });

    test("HAProxy's health checks (check-send-proxy) keep both instances up without a warning", { skip }, async () => {
      // HAProxy resets its check connections right after the LOCAL header, so most never get
      // read; the raw LOCAL test below checks what srelay does with one.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      // servers[0] gets only HAProxy's connections (the raw tests below go to servers[1]).
      assert.doesNotMatch(servers[0]!.output(), /warning: 127\.0\.0\.1:\d+ /);
      assert.doesNotMatch(haproxy!.output(), /is DOWN/);
    });

    test(
      "a raw v2 LOCAL header (HAProxy's health-check bytes) is closed quietly: one debug line",
      { skip },
      async () => {
        const server = servers[0]!;
        const mark = server.output().length;
        const client = await rawClient(server.port, "127.0.0.1");
        client.send(encodeProxyHeader({ version: 2, command: "local" }));
        assert.equal((await client.readToEnd()).length, 0);
        const line = await waitForNewOutput(server, mark, new RegExp(`.* 127\\.0\\.0\\.1:${client.localPort} .*`));
        assert.match(line, /srelay\[\d+\]: 127\.0\.0\.1:\d+ PROXY: v2 LOCAL header \(a health check\): closed$/);
      },
    );

    test(
      "raw v1 and v2 headers from a trusted peer name the client; SOCKS pipelined behind works",
      { skip },
      async () => {
        const server = servers[1]!;
        const mark = server.output().length;
        for (const header of [new TextEncoder().encode(v1(CLIENT, 41001)), v2(CLIENT, 41002)]) {
          const client = await rawClient(server.port, "127.0.0.1");
          client.send([...header, ...socks5Connect(echo.port), 0x61]);
          const reply = await client.read(13);
          assert.equal(reply[3], 0, "REP 00");
          assert.equal(reply[12], 0x61, "echoed");
          client.close();
        }
        await waitForNewOutput(server, mark, new RegExp(`${escape(CLIENT)}:41001 5-CON`));
        await waitForNewOutput(server, mark, new RegExp(`${escape(CLIENT)}:41002 5-CON`));
      },
    );

    test("a raw header from 127.0.0.9, not in --proxy-protocol-from, is never believed", { skip }, async () => {
      const server = servers[1]!;
      const mark = server.output().length;
      const client = await rawClient(server.port, CLIENT);
      client.send([...new TextEncoder().encode(v1(CLIENT, 41003)), ...socks5Connect(echo.port)]);
      assert.equal((await client.readToEnd()).length, 0);
      await waitForNewOutput(
        server,
        mark,
        new RegExp(`${escape(CLIENT)}:${client.localPort} denied: PROXY protocol: 127\\.0\\.0\\.9 is not in`),
      );
      assert.doesNotMatch(server.output().slice(mark), /41003/);
    });

    const BAD: Array<[string, (client: RawClient) => void, RegExp]> = [
      ["no header (SOCKS at once)", (c) => c.send(socks5Connect(1)), /Cannot decode PROXY header: first byte 0x05/],
      ["a v1 header with a bad port", (c) => c.send(v1(CLIENT, 70000)), /Cannot decode PROXY header: v1 port "70000"/],
      ["an oversized v1 header", (c) => c.send(`PROXY TCP4 ${"9".repeat(110)}`), /no CRLF in 107 bytes/],
      ["a v1 UNKNOWN header", (c) => c.send("PROXY UNKNOWN\r\n"), /denied: PROXY header carries no IP client address/],
      [
        "a v2 header with a bad CRC32C",
        (c) => c.send(v2(CLIENT, 41004).map((byte, i) => (i === 19 ? byte ^ 1 : byte))),
        /Cannot decode PROXY header: v2 CRC32C/,
      ],
      [
        "a truncated v2 header",
        (c) => {
          c.send(v2(CLIENT, 41005).subarray(0, 20));
          c.end();
        },
        /Cannot decode PROXY header: connection ended after 20 of/,
      ],
      [
        "a header too slow for --handshake-timeout 1",
        (c) => c.send("PROXY TCP4 127."),
        /Cannot read PROXY header: Handshake not completed within 1 s/,
      ],
    ];
    test(
      "bad, truncated, slow and missing headers are closed with a log line; the instance keeps serving",
      { skip },
      async () => {
        const server = servers[1]!;
        for (const [name, send, reason] of BAD) {
          const mark = server.output().length;
          const client = await rawClient(server.port, "127.0.0.1");
          send(client);
          assert.equal((await client.readToEnd(4000)).length, 0, name);
          client.close();
          const line = await waitForNewOutput(server, mark, new RegExp(`127\\.0\\.0\\.1:${client.localPort} .*`));
          assert.match(line, reason, name);
        }
        const result = await curl(CLIENT);
        assert.equal(result.code, 0, result.stderr);
      },
    );
  });
}

// ---- HAProxy as an independent encoder ---------------------------------------------------

describe("HAProxy's headers decode with srelay's codec", () => {
  let dir: string;
  let capture: Server;
  let captured: Uint8Array[] = [];
  let haproxy: Haproxy | undefined;
  const fronts: number[] = [];

  before(async () => {
    if (HAPROXY_SKIP) return;
    dir = mkdtempSync(join(tmpdir(), "srelay-proxy-capture-"));
    capture = createServer((socket) => {
      const chunks: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.on("error", () => {});
      socket.on("end", () => {
        captured.push(new Uint8Array(Buffer.concat(chunks)));
        socket.destroy();
      });
    });
    await new Promise<void>((resolve) => capture.listen(0, "127.0.0.1", resolve));
    const port = (capture.address() as { port: number }).port;
    for (let i = 0; i < 3; i++) fronts.push(await freePort());
    haproxy = await startHaproxy(
      dir,
      `defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend v1
  bind 127.0.0.1:${fronts[0]}
  default_backend v1
frontend v2
  bind 127.0.0.1:${fronts[1]}
  default_backend v2
frontend v2crc
  bind 127.0.0.1:${fronts[2]}
  unique-id-format srelay-%ci-%cp
  default_backend v2crc
backend v1
  server s 127.0.0.1:${port} send-proxy
backend v2
  server s 127.0.0.1:${port} send-proxy-v2
backend v2crc
  server s 127.0.0.1:${port} send-proxy-v2 proxy-v2-options crc32c,unique-id
`,
      fronts,
    );
  });

  after(async () => {
    if (HAPROXY_SKIP) return;
    await haproxy?.stop();
    await new Promise<void>((resolve) => capture.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  test("send-proxy, send-proxy-v2 and send-proxy-v2 with crc32c,unique-id", { skip: HAPROXY_SKIP }, async () => {
    captured = [];
    const ports: number[] = [];
    for (const front of fronts) {
      const client = await rawClient(front, CLIENT);
      ports.push(client.localPort);
      client.send([5, 1, 0]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      client.end();
      await client.readToEnd();
      client.close();
    }
    const deadline = Date.now() + 3000;
    while (captured.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(captured.length, 3);
    for (const [i, bytes] of captured.entries()) {
      const decoded = decodeProxyHeader(bytes);
      assert.ok(decoded.ok, `header ${i} is complete`);
      assert.deepEqual([...bytes.subarray(decoded.size)], [5, 1, 0], "the client's bytes follow the header");
      const header = decoded.value;
      assert.equal(header.version, i === 0 ? 1 : 2);
      assert.ok(header.command === "proxy");
      assert.deepEqual(header.source, { host: CLIENT, port: ports[i] });
      assert.deepEqual(header.destination, { host: "127.0.0.1", port: fronts[i] });
      if (i === 2) {
        // The CRC32C was checked by the decoder; the unique ID is what the format made of the client.
        assert.deepEqual(header.tlvs.map((tlv) => tlv.type), [0x03, 0x05]);
        assert.equal(new TextDecoder().decode(header.tlvs[1]!.value), `srelay-${CLIENT}-${ports[i]}`);
      } else {
        // Without options HAProxy writes exactly what srelay's encoder writes.
        assert.deepEqual([...encodeProxyHeader(header)], [...bytes.subarray(0, decoded.size)]);
      }
    }
  });
});
