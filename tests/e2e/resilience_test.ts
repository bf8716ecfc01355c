/**
 * End to end: resilience of the real CLI in the modes of `serverModes()`
 * (bun, deno, binary; node-io is left to the other suites to keep this file
 * short). Everything is on loopback.
 *
 * - `-m 2` is exact: two relaying sessions held, the third closed at once
 *   with the log line, a slot back once a session ends (the client vanishing
 *   with a reset, no FIN), and the server's descriptors back to baseline.
 * - `--handshake-timeout 1` beats slowloris: one byte every 300 ms in the
 *   SOCKS5 greeting, inside an RFC 1929 sub-negotiation (`-a p -U FILE`) and
 *   inside a PROXY header (`--proxy-protocol`).
 * - `-o 0.02` (1.2 s): a session where only the target sends stays open past
 *   the timeout; one where nobody sends is closed.
 * - Faults: a target that resets, a name that does not resolve (REP 04),
 *   a log file on /dev/full (every write ENOSPC), syslog unreachable.
 *   Each ends with the descriptors back to baseline and the server serving.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChildProcess, spawn } from "node:child_process";
import { closedPort, type FakeServer, startEchoServer } from "../helpers/fake_hops.ts";
import { NO_MICROSOCKS } from "../helpers/next_hops.ts";
import { which } from "../helpers/peers.ts";
import { waitForNewOutput } from "../helpers/server_log.ts";
import { openClient, type ScriptedClient, socks5ConnectBytes } from "../helpers/socks_client.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";

process.env.DENO_NO_UPDATE_CHECK = "1";

const HOST = "127.0.0.1";
// `openssl passwd -6 -salt abcdefgh secret-Pass1`
const USERS =
  "alice:$6$abcdefgh$WRkk3rASAPcv1k5a/PLEpZMPLENeqSLS5xHxYk4RJ33nkIgHDA7t/fXDIRBNY0WmiqMIvtGfbF6Xsw74QwnzZ.\n";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Open descriptors of the server process. */
function fdCount(server: RunningServer): number {
  return readdirSync(`/proc/${server.process.pid}/fd`).length;
}

/** Waits (at most 5 s) until the server holds no more descriptors than `baseline`. */
async function fdsBackTo(server: RunningServer, baseline: number): Promise<void> {
  const deadline = Date.now() + 5000;
  let count = fdCount(server);
  while (count > baseline && Date.now() < deadline) {
    await sleep(50);
    count = fdCount(server);
  }
  assert.ok(count <= baseline, `server descriptors back to ${baseline}, still ${count}`);
}

/** A target that sends `tick` every 200 ms to each connection while `ticking`. */
async function startTicker(): Promise<{ port: number; stopTicking(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setInterval>>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    const timer = setInterval(() => socket.write("tick"), 200);
    timers.add(timer);
    socket.on("close", () => {
      clearInterval(timer);
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as { port: number }).port;
  const stopTicking = () => {
    for (const timer of timers) clearInterval(timer);
    timers.clear();
  };
  return {
    port,
    stopTicking,
    close: () =>
      new Promise<void>((resolve) => {
        stopTicking();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A target that resets every connection as soon as it receives a byte. */
async function startResetter(): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", () => socket.resetAndDestroy());
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A target on 127.0.0.20 that streams 4 KiB chunks every 10 ms to each connection until it closes. */
async function startStreamer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    const chunk = new Uint8Array(4096).fill(0x61);
    const timer = setInterval(() => socket.write(chunk), 10);
    const stop = setTimeout(() => socket.destroy(), 15_000);
    socket.on("close", () => {
      clearInterval(timer);
      clearTimeout(stop);
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.20", resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Starts microsocks on 127.0.0.1 (our own child, so we can SIGKILL it by PID). */
async function startOwnMicrosocks(): Promise<{ port: number; child: ChildProcess }> {
  const port = await closedPort();
  const child = spawn(which("microsocks") ?? "microsocks", ["-i", HOST, "-p", String(port)], { stdio: "ignore" });
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      (await openClient(HOST, port)).close();
      return { port, child };
    } catch {
      await sleep(50);
    }
  }
  child.kill("SIGKILL");
  throw new Error("microsocks did not start");
}

/** A SOCKS5 CONNECT through `port` to the echo server that relays one byte. */
async function relaying(port: number, echoPort: number, open: ScriptedClient[]): Promise<ScriptedClient> {
  const client = await openClient(HOST, port);
  open.push(client);
  client.send(socks5ConnectBytes(HOST, echoPort));
  assert.deepEqual([...await client.read(2)], [5, 0]);
  const reply = await client.read(10);
  assert.equal(reply[1], 0, "CONNECT succeeded");
  client.send("x");
  assert.equal(new TextDecoder().decode(await client.read(1)), "x");
  return client;
}

/** Sends `bytes` one at a time every 300 ms until the server closes; resolves with the ms it took. */
async function dribble(client: ScriptedClient, bytes: number[], maxMs: number): Promise<number> {
  const start = Date.now();
  for (const byte of bytes) {
    if (Date.now() - start > maxMs) break;
    if (client.socket.destroyed || client.socket.readableEnded) break;
    client.send([byte]);
    if (await client.closedWithin(300)) break;
  }
  assert.ok(await client.closedWithin(Math.max(0, maxMs - (Date.now() - start))), "the server closed the staller");
  return Date.now() - start;
}

for (const { mode, skip } of serverModes()) {
  if (mode === "node-io") continue;
  describe(`srelay (${mode}) resilience`, () => {
    let server: RunningServer;
    let guarded: RunningServer;
    let echo: FakeServer;
    let ticker: Awaited<ReturnType<typeof startTicker>>;
    let resetter: Awaited<ReturnType<typeof startResetter>>;
    let dir: string;
    let baseline = 0;
    let streamer: Awaited<ReturnType<typeof startStreamer>>;
    let hop: { port: number; child: ChildProcess } | undefined;
    const open: ScriptedClient[] = [];

    before(async () => {
      if (skip) return;
      dir = mkdtempSync(join(tmpdir(), "srelay-resilience-"));
      writeFileSync(join(dir, "users"), USERS);
      echo = await startEchoServer();
      streamer = await startStreamer();
      if (!NO_MICROSOCKS) hop = await startOwnMicrosocks();
      writeFileSync(join(dir, "srelay.conf"), hop ? `127.0.0.20 any ${HOST} ${hop.port}/5\n` : "");
      ticker = await startTicker();
      resetter = await startResetter();
      const conf = ["-c", join(dir, "srelay.conf")];
      [server, guarded] = await Promise.all([
        startServer(mode, ["-i", `${HOST}:0`, ...conf, "-m", "2", "--handshake-timeout", "1", "-o", "0.02"]),
        startServer(mode, [
          "-i",
          `${HOST}:0`,
          ...conf,
          "--proxy-protocol",
          "-a",
          "p",
          "-U",
          join(dir, "users"),
          "--handshake-timeout",
          "1",
        ]),
      ]);
      // Warm up (lazy descriptors), then take the baseline.
      const warm = await relaying(server.port, echo.port, open);
      warm.close();
      await sleep(300);
      baseline = fdCount(server);
    });

    after(async () => {
      if (skip) return;
      for (const client of open) client.close();
      await Promise.all([server?.stop(), guarded?.stop()]);
      hop?.child.kill("SIGKILL");
      await Promise.all([echo?.close(), ticker?.close(), resetter?.close(), streamer?.close()]);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test("-m 2 is exact: the third is closed at once with the log line; a reset client frees its slot", {
      skip,
    }, async () => {
      const first = await relaying(server.port, echo.port, open);
      const second = await relaying(server.port, echo.port, open);
      const from = server.output().length;
      const third = await openClient(HOST, server.port);
      open.push(third);
      third.send([5, 1, 0]);
      const start = Date.now();
      assert.equal((await third.readToEnd(1000)).length, 0, "the third got no byte");
      assert.ok(Date.now() - start < 1000, "closed at once");
      await waitForNewOutput(server, from, /closed: 2 sessions already running \(-m 2\); \d+ rejected so far/);
      // The first client vanishes without FIN; its slot comes back.
      const firstPort = first.socket.localPort;
      const resetFrom = server.output().length;
      first.socket.resetAndDestroy();
      let fourth: ScriptedClient | undefined;
      for (let attempt = 0; attempt < 20 && fourth === undefined; attempt++) {
        await sleep(100);
        try {
          fourth = await relaying(server.port, echo.port, open);
        } catch {
          // Slot not back yet.
        }
      }
      assert.ok(fourth !== undefined, "a slot came back after the reset");
      await waitForNewOutput(
        server,
        resetFrom,
        new RegExp(
          `127\\.0\\.0\\.1:${firstPort} 5-CON [^\\n]* client_error \\(Cannot (?:read from|exchange data with) 127\\.0\\.0\\.1:${firstPort}: connection reset\\)`,
        ),
      );
      second.close();
      fourth.close();
      await fdsBackTo(server, baseline);
    });

    test("slowloris in the SOCKS5 greeting is closed at the handshake timeout", { skip }, async () => {
      const from = server.output().length;
      const client = await openClient(HOST, server.port);
      open.push(client);
      const took = await dribble(client, [5, 3, 0, 1, 2, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80], 3000);
      assert.ok(took >= 800 && took < 2500, `closed after ${took} ms`);
      await waitForNewOutput(server, from, /handshake failed: Handshake not completed within 1 s/);
      client.close();
      await fdsBackTo(server, baseline);
    });

    test("slowloris inside a PROXY header is closed at the handshake timeout", { skip }, async () => {
      const from = guarded.output().length;
      const client = await openClient(HOST, guarded.port);
      open.push(client);
      const header = [..."PROXY TCP4 127.0.0.9 127.0.0.1 5555 1080\r\n"].map((c) => c.charCodeAt(0));
      const took = await dribble(client, header, 3000);
      assert.ok(took >= 800 && took < 2500, `closed after ${took} ms`);
      await waitForNewOutput(
        guarded,
        from,
        /handshake failed: Cannot read PROXY header: Handshake not completed within 1 s/,
      );
      client.close();
    });

    test("slowloris inside an RFC 1929 sub-negotiation is closed at the handshake timeout", { skip }, async () => {
      const from = guarded.output().length;
      const client = await openClient(HOST, guarded.port);
      open.push(client);
      client.send("PROXY TCP4 127.0.0.9 127.0.0.1 5556 1080\r\n");
      client.send([5, 1, 2]);
      assert.deepEqual([...await client.read(2)], [5, 2]);
      const login = [1, 5, ..."alice".split("").map((c) => c.charCodeAt(0)), 12];
      const took = await dribble(client, [...login, ..."secret-Pass1".split("").map((c) => c.charCodeAt(0))], 3000);
      assert.ok(took >= 500 && took < 2500, `closed after ${took} ms`);
      await waitForNewOutput(
        guarded,
        from,
        /127\.0\.0\.9:5556 handshake failed: [^\n]*Handshake not completed within 1 s/,
      );
      client.close();
    });

    test("-o: a session where only the target sends stays open; a silent one is closed", { skip }, async () => {
      const from = server.output().length;
      const talking = await openClient(HOST, server.port);
      const silent = await openClient(HOST, server.port);
      open.push(talking, silent);
      talking.send(socks5ConnectBytes(HOST, ticker.port));
      silent.send(socks5ConnectBytes(HOST, echo.port));
      await talking.read(12);
      await silent.read(12);
      const start = Date.now();
      assert.equal(await silent.closedWithin(3500), true, "the silent session was closed");
      const took = Date.now() - start;
      assert.ok(took >= 1000, `silent session closed after ${took} ms, not before the 1.2 s timeout`);
      const silentPort = silent.socket.localPort;
      await waitForNewOutput(
        server,
        from,
        new RegExp(`:${silentPort} 5-CON [^\\n]* up=0 down=0 time=1\\.\\d+s idle_timeout`),
      );
      // By now (>= 1.2 s) the ticking session has passed the timeout.
      await sleep(Math.max(0, 2000 - (Date.now() - start)));
      assert.equal(talking.socket.readableEnded || talking.socket.destroyed, false, "the talking session is open");
      const ticks = new TextDecoder().decode(await talking.read(4 * 8, 1000));
      assert.match(ticks, /^(tick)+$/);
      ticker.stopTicking();
      assert.equal(await talking.closedWithin(3500), true, "closed once the target went silent too");
      const talkingPort = talking.socket.localPort;
      await waitForNewOutput(
        server,
        from,
        new RegExp(`:${talkingPort} 5-CON [^\\n]* up=0 down=[1-9]\\d* time=[2-9]\\.\\d+s idle_timeout`),
      );
      talking.close();
      silent.close();
      await fdsBackTo(server, baseline);
    });

    test("a target that resets: the client is closed, descriptors back, still serving", { skip }, async () => {
      const from = server.output().length;
      const client = await openClient(HOST, server.port);
      open.push(client);
      client.send(socks5ConnectBytes(HOST, resetter.port));
      await client.read(12);
      client.send("boom");
      assert.equal(await client.closedWithin(3000), true, "the client was closed");
      await waitForNewOutput(
        server,
        from,
        new RegExp(
          `target_error \\(Cannot (?:read from|exchange data with) 127\\.0\\.0\\.1:${resetter.port}: connection reset\\)`,
        ),
      );
      client.close();
      await fdsBackTo(server, baseline);
      (await relaying(server.port, echo.port, open)).close();
    });

    test("microsocks as next hop killed (-9) mid-transfer: client closed, descriptors back, still serving", {
      skip: skip || NO_MICROSOCKS,
    }, async () => {
      const from = server.output().length;
      const client = await openClient(HOST, server.port);
      open.push(client);
      client.send(socks5ConnectBytes("127.0.0.20", streamer.port));
      const reply = await client.read(12);
      assert.equal(reply[3], 0, "CONNECT through microsocks succeeded");
      await client.read(64 * 1024, 5000);
      hop!.child.kill("SIGKILL");
      // The kernel closes the dead hop's sockets: srelay sees the hop's FIN
      // (its side had no unread data), passes it on, and the session ends
      // when the client ends its side too (or by a reset from the hop).
      assert.equal(await client.closedWithin(3000), true, "the client got the end");
      client.socket.end();
      await waitForNewOutput(
        server,
        from,
        new RegExp(
          `127\\.0\\.0\\.20:${streamer.port} relay=127\\.0\\.0\\.1:${
            hop!.port
          } [^\\n]* up=0 down=\\d+ time=0\\.\\d+s (?:done|target_error)`,
        ),
      );
      client.close();
      await fdsBackTo(server, baseline);
      (await relaying(server.port, echo.port, open)).close();
    });

    test("a name that does not resolve gets REP 04 under SOCKS5", { skip }, async () => {
      const from = server.output().length;
      const client = await openClient(HOST, server.port);
      open.push(client);
      const name = "no-such-host.invalid";
      client.send([5, 1, 0, 5, 1, 0, 3, name.length, ...name.split("").map((c) => c.charCodeAt(0)), 0, 80]);
      assert.deepEqual([...await client.read(2)], [5, 0]);
      const reply = await client.read(10, 15_000);
      assert.equal(reply[1], 4, `REP 04 host unreachable, got ${reply[1]}`);
      await waitForNewOutput(
        server,
        from,
        /no-such-host\.invalid:80 direct failed: host_unreachable: Cannot resolve no-such-host\.invalid/,
      );
      client.close();
      await fdsBackTo(server, baseline);
    });
  });

  describe(`srelay (${mode}) out of descriptors (ulimit -n 64)`, () => {
    let echo: FakeServer;
    let server: RunningServer;
    const open: ScriptedClient[] = [];

    before(async () => {
      if (skip) return;
      echo = await startEchoServer();
      server = await startServer(mode, ["-i", `${HOST}:0`], {
        wrapper: ["bash", "-c", 'ulimit -n 64; exec "$0" "$@"'],
      });
    });

    after(async () => {
      if (skip) return;
      for (const client of open) client.close();
      await server?.stop();
      await echo?.close();
    });

    test("a flood of 100 connections: accept errors handled, then it recovers", { skip }, async () => {
      const from = server.output().length;
      const flood: ScriptedClient[] = [];
      for (let i = 0; i < 100; i++) {
        const client = await openClient(HOST, server.port);
        client.send([5]); // A partial greeting: each session holds its descriptor.
        flood.push(client);
        open.push(client);
      }
      const start = Date.now();
      await sleep(2500);
      if (mode === "deno") {
        const lines = await waitForNewOutput(
          server,
          from,
          /Cannot accept connections: [^\n]* \((\d+) failures since the last report\); retrying/,
        );
        const count = (server.output().slice(from).match(/Cannot accept connections/g) ?? []).length;
        const seconds = (Date.now() - start) / 1000;
        assert.ok(count >= 1 && count <= seconds + 2, `${count} accept-error lines in ${seconds} s: ${lines}`);
      }
      for (const client of flood) client.close();
      let served = false;
      for (let attempt = 0; attempt < 30 && !served; attempt++) {
        try {
          (await relaying(server.port, echo.port, open)).close();
          served = true;
        } catch {
          await sleep(200);
        }
      }
      assert.ok(served, `serves again once descriptors free up:\n${server.output().slice(from)}`);
      assert.equal(server.process.exitCode, null);
    });
  });

  describe(`srelay (${mode}) broken log sinks`, () => {
    let echo: FakeServer;
    const open: ScriptedClient[] = [];
    const servers: RunningServer[] = [];

    before(async () => {
      if (skip) return;
      echo = await startEchoServer();
    });

    after(async () => {
      if (skip) return;
      for (const client of open) client.close();
      await Promise.all(servers.map((s) => s.stop()));
      await echo?.close();
    });

    test("--log-file /dev/full: every write fails, the server keeps serving", { skip }, async () => {
      const server = await startServer(mode, ["-i", `${HOST}:0`, "--log-file", "/dev/full"]);
      servers.push(server);
      for (let i = 0; i < 5; i++) (await relaying(server.port, echo.port, open)).close();
      await sleep(200);
      assert.equal(server.process.exitCode, null, `still running:\n${server.output()}`);
      assert.equal(server.output().match(/cannot write the log file \/dev\/full/g)?.length, 1, server.output());
      (await relaying(server.port, echo.port, open)).close();
    });

    test("syslog unreachable (missing socket, UDP port with nobody): serves", { skip }, async () => {
      const unix = await startServer(mode, ["-i", `${HOST}:0`, "-s", "--syslog-address", "/nonexistent/socket"]);
      servers.push(unix);
      const udp = await startServer(mode, ["-i", `${HOST}:0`, "-s", "--syslog-address", `${HOST}:9`]);
      servers.push(udp);
      for (const server of [unix, udp]) {
        for (let i = 0; i < 3; i++) (await relaying(server.port, echo.port, open)).close();
        await sleep(200);
        assert.equal(server.process.exitCode, null, `still running:\n${server.output()}`);
      }
      assert.equal(unix.output().match(/cannot log to syslog at \/nonexistent\/socket/g)?.length, 1, unix.output());
      // Deno's node:dgram does not report ICMP port unreachable on a connected
      // socket, so there the lines are dropped without a warning (reported).
      if (mode !== "deno") {
        assert.equal(udp.output().match(/syslog: cannot send to 127\.0\.0\.1:9/g)?.length, 1, udp.output());
      }
    });
  });
}
