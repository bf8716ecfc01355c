/**
 * End to end: BIND on the real CLI under Bun, Deno, the compiled binary and
 * the node:net adapter. Raw-byte exchanges (SOCKS5 and SOCKS4, IPv4 and
 * IPv6), the npm `socks` client, an active-FTP-style transfer of 5 MiB,
 * BIND through Dante as next hop, and the failure paths: a wrong peer, the
 * wait timeout, a client that leaves, low and high ports with and without
 * `-b`. Every case also checks that the server holds no more descriptors
 * afterwards than before (`/proc/PID/fd`).
 *
 * Addresses: the peer connects from 127.0.0.1 (the right one) or 127.0.0.2
 * (a wrong one); Dante listens on 127.0.0.1 and is the route for the
 * expected peers 127.0.0.5 (as a SOCKS5 hop) and 127.0.0.7 (as a SOCKS4
 * hop), which connect from those addresses.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SocksClient } from "socks";
import { closedPort } from "../helpers/fake_hops.ts";
import { NO_DANTE } from "../helpers/next_hops.ts";
import { type PeerProcess, startPeer } from "../helpers/peer_process.ts";
import { which } from "../helpers/peers.ts";
import { waitForNewOutput } from "../helpers/server_log.ts";
import { openClient, type ScriptedClient } from "../helpers/socks_client.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";
import { patternBytes, sha256 } from "../helpers/targets.ts";

const BIND_TIMEOUT_SECONDS = 1;
const IS_ROOT = process.getuid?.() === 0;

/** Dante's expected peers, by the protocol srelay speaks to it. */
const DANTE_PEER_5 = "127.0.0.5";
const DANTE_PEER_4 = "127.0.0.7";

let dante: PeerProcess | null = null;
let danteDir: string | null = null;

before(async () => {
  if (NO_DANTE) return;
  danteDir = mkdtempSync(join(tmpdir(), "srelay-bind-dante-"));
  const port = await closedPort();
  const config = join(danteDir, "sockd.conf");
  writeFileSync(
    config,
    [
      "logoutput: stderr",
      `internal: 127.0.0.1 port = ${port}`,
      "external: 127.0.0.1",
      "socksmethod: none",
      "clientmethod: none",
      "user.privileged: root",
      "user.unprivileged: nobody",
      "client pass {",
      "  from: 0.0.0.0/0 to: 0.0.0.0/0",
      "}",
      "socks pass {",
      "  from: 0.0.0.0/0 to: 0.0.0.0/0",
      "  command: bind connect",
      "}",
      "socks pass {",
      "  from: 0.0.0.0/0 to: 0.0.0.0/0",
      "  command: bindreply",
      "}",
      "",
    ].join("\n"),
  );
  dante = await startPeer({
    command: [which("danted") ?? "danted", "-f", config, "-N", "1", "-p", join(danteDir, "sockd.pid")],
    host: "127.0.0.1",
    port,
  });
});

after(async () => {
  await dante?.stop();
  if (danteDir !== null) rmSync(danteDir, { recursive: true, force: true });
});

/** Open descriptors of a process. */
function descriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Waits (at most 3 s) until the server holds no more descriptors than `baseline`. */
async function expectNoLeak(server: RunningServer, baseline: number): Promise<void> {
  const pid = server.process.pid!;
  const deadline = Date.now() + 3000;
  let now = descriptors(pid);
  while (now > baseline && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    now = descriptors(pid);
  }
  assert.ok(now <= baseline, `the server holds ${now} descriptors, ${baseline} before the test`);
}

/** An IPv4 or IPv6 SOCKS5 BIND request with no greeting. */
function socks5Bind(host: string, port: number): number[] {
  if (host.includes(":")) {
    const bytes = ipv6Bytes(host);
    return [5, 2, 0, 4, ...bytes, port >> 8, port & 0xff];
  }
  return [5, 2, 0, 1, ...host.split(".").map(Number), port >> 8, port & 0xff];
}

function ipv6Bytes(host: string): number[] {
  const [head, tail] = host.split("::") as [string, string | undefined];
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = [...left, ...Array(8 - left.length - right.length).fill("0"), ...right].map((g) => parseInt(g, 16));
  return groups.flatMap((group) => [group >> 8, group & 0xff]);
}

/** A decoded SOCKS5 reply. */
interface Reply {
  readonly code: number;
  readonly host: string;
  readonly port: number;
}

/** Reads one SOCKS5 reply (IPv4 or IPv6 BND). */
async function readSocks5Reply(client: ScriptedClient, timeoutMs = 5000): Promise<Reply> {
  const head = await client.read(4, timeoutMs);
  assert.equal(head[0], 5);
  if (head[3] === 4) {
    const rest = await client.read(18, timeoutMs);
    const groups = Array.from({ length: 8 }, (_, i) => ((rest[2 * i]! << 8) | rest[2 * i + 1]!).toString(16));
    return {
      code: head[1]!,
      host: groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::"),
      port: (rest[16]! << 8) | rest[17]!,
    };
  }
  assert.equal(head[3], 1, `ATYP ${head[3]}`);
  const rest = await client.read(6, timeoutMs);
  return { code: head[1]!, host: [...rest.subarray(0, 4)].join("."), port: (rest[4]! << 8) | rest[5]! };
}

/** Reads one SOCKS4 reply. */
async function readSocks4Reply(client: ScriptedClient, timeoutMs = 5000): Promise<Reply> {
  const bytes = await client.read(8, timeoutMs);
  assert.equal(bytes[0], 0, "VN 0");
  return { code: bytes[1]!, host: [...bytes.subarray(4, 8)].join("."), port: (bytes[2]! << 8) | bytes[3]! };
}

/** Opens a client and sends the no-auth greeting plus a BIND; returns the client after the method reply. */
async function bindClient(proxyHost: string, proxyPort: number, host: string, port: number): Promise<ScriptedClient> {
  const client = await openClient(proxyHost, proxyPort);
  client.send([5, 1, 0, ...socks5Bind(host, port)]);
  assert.deepEqual([...await client.read(2)], [5, 0]);
  return client;
}

/** A connected peer socket with buffered reads. */
interface PeerSocket {
  readonly socket: Socket;
  readonly local: { address: string; port: number };
  read(length: number, timeoutMs?: number): Promise<Buffer>;
  /** Resolves with everything until FIN (bounded). */
  readToEnd(timeoutMs?: number): Promise<Buffer>;
}

/** Connects to `host:port` from `localAddress`. */
function connectPeer(host: string, port: number, localAddress?: string): Promise<PeerSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port,
      allowHalfOpen: true,
      ...(localAddress === undefined ? {} : { localAddress }),
    });
    let buffer = Buffer.alloc(0);
    let ended = false;
    const waiters = new Set<() => void>();
    const wake = () => [...waiters].forEach((waiter) => waiter());
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      wake();
    });
    socket.on("end", () => {
      ended = true;
      wake();
    });
    socket.on("close", () => {
      ended = true;
      wake();
    });
    socket.on("error", () => {});
    const wait = (ready: () => boolean, timeoutMs: number, what: string) =>
      new Promise<void>((done, fail) => {
        const check = () => {
          if (!ready()) return;
          clearTimeout(timer);
          waiters.delete(check);
          done();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          fail(new Error(`Peer: timed out after ${timeoutMs} ms waiting for ${what} (have ${buffer.length})`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    socket.once("error", reject);
    socket.once("connect", () => {
      resolve({
        socket,
        local: { address: socket.localAddress!, port: socket.localPort! },
        async read(length, timeoutMs = 5000) {
          await wait(() => buffer.length >= length || ended, timeoutMs, `${length} bytes`);
          if (buffer.length < length) throw new Error(`Peer: closed after ${buffer.length} of ${length} bytes`);
          const out = buffer.subarray(0, length);
          buffer = buffer.subarray(length);
          return out;
        },
        async readToEnd(timeoutMs = 5000) {
          await wait(() => ended, timeoutMs, "the end");
          const out = buffer;
          buffer = Buffer.alloc(0);
          return out;
        },
      });
    });
  });
}

/** True when a TCP connection to `host:port` is refused (nothing listens). */
function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

/** Waits (at most 2 s) until nothing listens on `host:port`. */
async function expectPortFreed(host: string, port: number): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!(await refused(host, port))) {
    if (Date.now() > deadline) assert.fail(`${host}:${port} still accepts connections`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Data both ways between a BIND client and its peer, then FIN from each side. */
async function exchange(client: ScriptedClient, peer: PeerSocket): Promise<void> {
  client.send("hello peer");
  assert.equal((await peer.read(10)).toString(), "hello peer");
  peer.socket.write("hello client!");
  assert.equal(new TextDecoder().decode(await client.read(13)), "hello client!");
  client.socket.end();
  assert.equal((await peer.readToEnd()).length, 0);
  peer.socket.end();
  assert.equal((await client.readToEnd()).length, 0);
  peer.socket.destroy();
}

/** A minimal active-FTP-like server: on `PORT h1,h2,h3,h4,p1,p2` it connects there and sends `file`. */
async function startFtpLikeServer(file: Uint8Array): Promise<{ server: Server; port: number }> {
  const server = createServer((control) => {
    control.on("error", () => {});
    let text = "";
    control.setEncoding("latin1");
    control.on("data", (chunk: string) => {
      text += chunk;
      const match = text.match(/^PORT (\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\r\n/);
      if (match === null) return;
      text = "";
      const [h1, h2, h3, h4, p1, p2] = match.slice(1).map(Number) as [number, number, number, number, number, number];
      const data = connect({ host: `${h1}.${h2}.${h3}.${h4}`, port: p1 * 256 + p2, localAddress: "127.0.0.1" });
      data.on("error", () => {});
      data.once("connect", () => {
        control.write("150 Opening data connection\r\n");
        data.end(file, () => control.write("226 Transfer complete\r\n"));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  return { server, port: (server.address() as { port: number }).port };
}

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) BIND end to end`, () => {
    let server: RunningServer;
    let withB: RunningServer;
    let configDir: string;
    let baseline = 0;

    before(async () => {
      if (skip) return;
      configDir = mkdtempSync(join(tmpdir(), "srelay-bind-conf-"));
      const conf = join(configDir, "srelay.conf");
      const dantePort = dante?.port ?? (await closedPort());
      writeFileSync(
        conf,
        `${DANTE_PEER_5} any 127.0.0.1 ${dantePort}/5\n${DANTE_PEER_4} any 127.0.0.1 ${dantePort}/4\n`,
      );
      [server, withB] = await Promise.all([
        startServer(mode, [
          "-i",
          "127.0.0.1:0",
          "-i",
          "[::1]:0",
          "-c",
          conf,
          "--bind-timeout",
          String(BIND_TIMEOUT_SECONDS),
        ], { listeners: 2 }),
        startServer(mode, ["-i", "127.0.0.1:0", "-b", "--bind-timeout", String(BIND_TIMEOUT_SECONDS)]),
      ]);
      // Warm up: the first BIND may open descriptors the runtime keeps for good.
      for (const target of [server, withB]) {
        const client = await bindClient("127.0.0.1", target.port, "127.0.0.1", 0);
        const first = await readSocks5Reply(client);
        const peer = await connectPeer(first.host, first.port, "127.0.0.1");
        await readSocks5Reply(client);
        await exchange(client, peer);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      baseline = descriptors(server.process.pid!);
    });

    after(async () => {
      if (skip) return;
      await Promise.all([server?.stop(), withB?.stop()]);
      rmSync(configDir, { recursive: true, force: true });
    });

    test(
      "raw SOCKS5 over IPv4: two replies, the listener on 127.0.0.1, relay with half-close, log line",
      { skip },
      async () => {
        const from = server.output().length;
        const client = await bindClient("127.0.0.1", server.port, "127.0.0.1", 0);
        const first = await readSocks5Reply(client);
        assert.deepEqual([first.code, first.host], [0, "127.0.0.1"]);
        const peer = await connectPeer(first.host, first.port, "127.0.0.1");
        const second = await readSocks5Reply(client);
        assert.deepEqual(second, { code: 0, host: "127.0.0.1", port: peer.local.port });
        await exchange(client, peer);
        await waitForNewOutput(
          server,
          from,
          new RegExp(
            String
              .raw`5-BND 127\.0\.0\.1:0 direct listen=127\.0\.0\.1:${first.port} peer=127\.0\.0\.1:${peer.local.port} ` +
              String.raw`up=10 down=13 time=\S+ done`,
          ),
        );
        await expectNoLeak(server, baseline);
      },
    );

    test("raw SOCKS4: VN 0, CD 5A twice, the peer's address in the second reply", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send([4, 2, 0, 0, 127, 0, 0, 1, ...new TextEncoder().encode("ftp"), 0]);
      const first = await readSocks4Reply(client);
      assert.deepEqual([first.code, first.host], [0x5a, "127.0.0.1"]);
      const peer = await connectPeer(first.host, first.port, "127.0.0.1");
      assert.deepEqual(await readSocks4Reply(client), { code: 0x5a, host: "127.0.0.1", port: peer.local.port });
      await exchange(client, peer);
      await expectNoLeak(server, baseline);
    });

    test("raw SOCKS5 over IPv6: the listener on ::1, ATYP 04 replies", { skip }, async () => {
      const client = await bindClient("::1", Number(server.addresses[1]!.split(":").at(-1)), "::1", 0);
      const first = await readSocks5Reply(client);
      assert.deepEqual([first.code, first.host], [0, "::1"]);
      const peer = await connectPeer("::1", first.port, "::1");
      assert.deepEqual(await readSocks5Reply(client), { code: 0, host: "::1", port: peer.local.port });
      await exchange(client, peer);
      await expectNoLeak(server, baseline);
    });

    test(
      "npm socks client: BIND to 0.0.0.0 (any peer); the announced address is never a wildcard",
      { skip },
      async () => {
        const socks = new SocksClient({
          proxy: { host: "127.0.0.1", port: server.port, type: 5 },
          command: "bind",
          destination: { host: "0.0.0.0", port: 0 },
          timeout: 10_000,
        });
        const bound = new Promise<{ host: string; port: number }>((resolve, reject) => {
          socks.once("bound", (info) => resolve(info.remoteHost!));
          socks.once("error", reject);
        });
        const established = new Promise<{ socket: Socket; remoteHost: { host: string; port: number } }>(
          (resolve, reject) => {
            socks.once("established", (info) => resolve(info as never));
            socks.once("error", reject);
          },
        );
        socks.connect();
        const listen = await bound;
        assert.notEqual(listen.host, "0.0.0.0");
        assert.notEqual(listen.host, "::");
        const peer = await connectPeer(listen.host, listen.port);
        const info = await established;
        assert.equal(info.remoteHost.port, peer.local.port);
        const echoed = new Promise<string>((resolve) =>
          info.socket.once("data", (chunk: Buffer) => resolve(chunk.toString()))
        );
        peer.socket.write("ping");
        assert.equal(await echoed, "ping");
        info.socket.destroy();
        await peer.readToEnd();
        peer.socket.destroy();
        await expectNoLeak(server, baseline);
      },
    );

    test(
      "FTP-style: CONNECT for control, BIND for data, PORT to the announced address, 5 MiB byte-exact",
      { skip },
      async () => {
        const file = patternBytes(5 << 20);
        const ftp = await startFtpLikeServer(file);
        try {
          const control = await openClient("127.0.0.1", server.port);
          control.send([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, ftp.port >> 8, ftp.port & 0xff]);
          assert.deepEqual([...await control.read(2)], [5, 0]);
          assert.equal((await readSocks5Reply(control)).code, 0);
          const data = await bindClient("127.0.0.1", server.port, "127.0.0.1", 0);
          const first = await readSocks5Reply(data);
          assert.equal(first.code, 0);
          control.send(`PORT ${first.host.replaceAll(".", ",")},${first.port >> 8},${first.port & 0xff}\r\n`);
          const second = await readSocks5Reply(data);
          assert.deepEqual([second.code, second.host], [0, "127.0.0.1"]);
          const received = await data.readToEnd(20_000);
          assert.equal(received.length, file.length);
          assert.equal(sha256(received), sha256(file));
          data.close();
          control.close();
        } finally {
          await new Promise<void>((resolve) => ftp.server.close(() => resolve()));
        }
        await expectNoLeak(server, baseline);
      },
    );

    for (const version of [5, 4] as const) {
      test(`through Dante: a SOCKS${version} client's BIND goes to the hop; both replies come back`, {
        skip: skip || NO_DANTE,
      }, async () => {
        const from = server.output().length;
        let client: ScriptedClient;
        let first: Reply;
        if (version === 5) {
          client = await bindClient("127.0.0.1", server.port, DANTE_PEER_5, 0);
          first = await readSocks5Reply(client);
          assert.equal(first.code, 0);
        } else {
          client = await openClient("127.0.0.1", server.port);
          client.send([4, 2, 0, 0, ...DANTE_PEER_5.split(".").map(Number), 0]);
          first = await readSocks4Reply(client);
          assert.equal(first.code, 0x5a);
        }
        assert.equal(first.host, "127.0.0.1", "Dante's external address");
        const peer = await connectPeer(first.host, first.port, DANTE_PEER_5);
        const second = version === 5 ? await readSocks5Reply(client) : await readSocks4Reply(client);
        assert.deepEqual(second, { code: version === 5 ? 0 : 0x5a, host: DANTE_PEER_5, port: peer.local.port });
        await exchange(client, peer);
        await waitForNewOutput(
          server,
          from,
          new RegExp(
            String.raw`${version}-BND 127\.0\.0\.5:0 relay=127\.0\.0\.1:${
              dante!.port
            } listen=127\.0\.0\.1:${first.port} peer=127\.0\.0\.5:\d+ up=10 down=13`,
          ),
        );
        await expectNoLeak(server, baseline);
      });
    }

    test("through Dante as a SOCKS4 hop: srelay speaks SOCKS4 BIND to it", { skip: skip || NO_DANTE }, async () => {
      const client = await bindClient("127.0.0.1", server.port, DANTE_PEER_4, 0);
      const first = await readSocks5Reply(client);
      assert.deepEqual([first.code, first.host], [0, "127.0.0.1"]);
      const peer = await connectPeer(first.host, first.port, DANTE_PEER_4);
      assert.deepEqual(await readSocks5Reply(client), { code: 0, host: DANTE_PEER_4, port: peer.local.port });
      await exchange(client, peer);
      await expectNoLeak(server, baseline);
    });

    test("a wrong peer (127.0.0.2) is closed at once and logged; the right one (127.0.0.1) still gets through", {
      skip,
    }, async () => {
      const from = server.output().length;
      const client = await bindClient("127.0.0.1", server.port, "127.0.0.1", 0);
      const first = await readSocks5Reply(client);
      const intruder = await connectPeer(first.host, first.port, "127.0.0.2");
      assert.equal((await intruder.readToEnd()).length, 0, "the wrong peer gets nothing");
      intruder.socket.destroy();
      await waitForNewOutput(
        server,
        from,
        /refused a connection from 127\.0\.0\.2:\d+ to 127\.0\.0\.1:\d+: not the expected peer/,
      );
      const peer = await connectPeer(first.host, first.port, "127.0.0.1");
      assert.deepEqual(await readSocks5Reply(client), { code: 0, host: "127.0.0.1", port: peer.local.port });
      await exchange(client, peer);
      await expectNoLeak(server, baseline);
    });

    test("the wait timeout: REP 01 after --bind-timeout, the port closed, the session over", { skip }, async () => {
      const client = await bindClient("127.0.0.1", server.port, "127.0.0.1", 0);
      const first = await readSocks5Reply(client);
      const started = Date.now();
      const second = await readSocks5Reply(client, 5000);
      assert.equal(second.code, 1);
      assert.ok(Date.now() - started >= BIND_TIMEOUT_SECONDS * 1000 - 100);
      assert.equal((await client.readToEnd()).length, 0);
      client.close();
      await expectPortFreed(first.host, first.port);
      await expectNoLeak(server, baseline);
    });

    test("the wait timeout, SOCKS4: CD 5B", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send([4, 2, 0, 0, 127, 0, 0, 1, 0]);
      assert.equal((await readSocks4Reply(client)).code, 0x5a);
      assert.equal((await readSocks4Reply(client, 5000)).code, 0x5b);
      await client.readToEnd();
      client.close();
      await expectNoLeak(server, baseline);
    });

    test("a client that leaves while waiting frees the port at once", { skip }, async () => {
      const from = server.output().length;
      // The expected peer is 127.0.0.3, so the probes from 127.0.0.1 that check the port are refused, not served.
      const client = await bindClient("127.0.0.1", server.port, "127.0.0.3", 0);
      const first = await readSocks5Reply(client);
      assert.equal(first.host, "127.0.0.1");
      client.close();
      await expectPortFreed(first.host, first.port);
      await waitForNewOutput(server, from, /5-BND 127\.0\.0\.3:0 direct: client left while waiting for the peer/);
      await expectNoLeak(server, baseline);
    });

    test(
      "ports: a free requested port above 1024 is used; one below 1024 is replaced without -b",
      { skip },
      async () => {
        const high = await closedPort();
        const a = await bindClient("127.0.0.1", server.port, "127.0.0.1", high);
        assert.equal((await readSocks5Reply(a)).port, high);
        a.close();
        const b = await bindClient("127.0.0.1", server.port, "127.0.0.1", 1000);
        const port = (await readSocks5Reply(b)).port;
        assert.ok(port >= 1024, `port ${port}`);
        b.close();
        await expectNoLeak(server, baseline);
      },
    );

    test("ports with -b: a port below 1024 is used (as root), one above as well", { skip }, async () => {
      const before = descriptors(withB.process.pid!);
      const low = await bindClient("127.0.0.1", withB.port, "127.0.0.1", 1000);
      const port = (await readSocks5Reply(low)).port;
      if (IS_ROOT) assert.equal(port, 1000);
      else assert.ok(port >= 1024, `not root: port ${port}`);
      const peer = await connectPeer("127.0.0.1", port, "127.0.0.1");
      await readSocks5Reply(low);
      await exchange(low, peer);
      const high = await closedPort();
      const other = await bindClient("127.0.0.1", withB.port, "127.0.0.3", high); // probes from .1 are refused
      assert.equal((await readSocks5Reply(other)).port, high);
      other.close();
      await expectPortFreed("127.0.0.1", high);
      await expectNoLeak(withB, before);
    });
  });
}
