/**
 * End to end, under load, in every mode of `serverModes()` (issue 19):
 *
 * - SIGTERM with 100 sessions in flight (CONNECT, BIND and UDP ASSOCIATE):
 *   every transfer arrives whole, and the server exits 0 after the last one
 *   ends and before grace + 1 s.
 * - SIGHUP during the same load with every reloadable file changed at once
 *   (srelay.conf, the -U users file, hosts.allow/deny with -w, --rules): no
 *   session is dropped, and new sessions follow the new files.
 * - A bounded soak of mixed churn from 100 clients, reporting sessions,
 *   errors, open sockets and RSS at its start and end: 60 s on Bun, Deno
 *   and the binary (`SRELAY_SOAK_SECONDS` changes it), 15 s with node:net
 *   sockets (node-io, which runs the soak only). Each client's rounds are
 *   CONNECTs through a next hop (microsocks) and direct, BINDs, UDP
 *   associations, wrong passwords and CONNECTs the rules refuse.
 *
 * Every client logs in (`-a p -U`); targets are a whoami echo server on
 * 127.0.1.1 (reached through the next hop), another on 127.0.1.3 (reached
 * directly), a UDP echo server on 127.0.0.1 and BIND peers on 127.0.0.1.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { SocksClient } from "socks";
import { NO_MICROSOCKS, startMicrosocks } from "../helpers/next_hops.ts";
import type { PeerProcess } from "../helpers/peer_process.ts";
import { waitForNewOutput } from "../helpers/server_log.ts";
import { openClient, type ScriptedClient } from "../helpers/socks_client.ts";
import { type RunningServer, type ServerMode, serverModes, startServer } from "../helpers/srelay_process.ts";
import { sha256 } from "../helpers/targets.ts";
import { parseWhoami, startWhoamiEcho, type WhoamiServer } from "../helpers/whoami_server.ts";

/** Sessions in flight for the SIGTERM and SIGHUP tests: 90 CONNECT, 5 BIND, 5 UDP. */
const IN_FLIGHT = 100;
const BINDS = 5;
const UDPS = 5;
const CHUNK_BYTES = 2048;
const CHUNKS = 10;
const CHUNK_INTERVAL_MS = 150;
const GRACE_SECONDS = 4;
/** Soak length on Bun, Deno and the binary: the 60 s unless SRELAY_SOAK_SECONDS says otherwise. */
const SOAK_SECONDS = Number(process.env.SRELAY_SOAK_SECONDS ?? 60);
/** Soak length with node:net sockets (node-io), kept short for CI's time. */
const NODE_IO_SOAK_SECONDS = Math.min(SOAK_SECONDS, 15);
const SOAK_CLIENTS = 100;

const ALICE = { user: "alice", password: "alice-pw" };
const BOB = { user: "bob", password: "bob-pw" };
const ECHO_HOST = "127.0.1.1";
const BLOCKED_HOST = "127.0.1.2";
/** A target no route names: reached directly. */
const DIRECT_HOST = "127.0.1.3";
const DENIED_CLIENT = "127.0.0.5";

type Login = { user: string; password: string };

let dir: string;
let echo: WhoamiServer;
let blocked: WhoamiServer;
let direct: WhoamiServer;
let udpEcho: dgram.Socket;
let udpEchoPort: number;
let hopA: PeerProcess | null = null;
let hopB: PeerProcess | null = null;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "srelay-load-"));
  echo = await startWhoamiEcho(ECHO_HOST);
  blocked = await startWhoamiEcho(BLOCKED_HOST);
  direct = await startWhoamiEcho(DIRECT_HOST);
  udpEcho = dgram.createSocket("udp4");
  udpEcho.on("message", (message, from) => udpEcho.send(message, from.port, from.address));
  await new Promise<void>((resolve) => udpEcho.bind(0, "127.0.0.1", () => resolve()));
  udpEchoPort = udpEcho.address().port;
  if (NO_MICROSOCKS === false) {
    hopA = await startMicrosocks({ outgoing: "127.0.0.11" });
    hopB = await startMicrosocks({ outgoing: "127.0.0.12" });
  }
});

after(async () => {
  await Promise.all([hopA?.stop(), hopB?.stop(), echo?.close(), blocked?.close(), direct?.close()]);
  udpEcho?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ruleVia = (hop: PeerProcess | null) => `${ECHO_HOST} any/T 127.0.0.1 ${hop?.port ?? 1}/5\n`;
const usersLine = (login: Login) => `${login.user}:${bcrypt.hashSync(login.password, 4)}\n`;

/** Payload of session `index`: different for every session, so crossed streams show. */
function payloadFor(index: number, length = CHUNK_BYTES * CHUNKS): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + index * 7 + 1) & 0xff;
  return bytes;
}

/** Greeting and RFC 1929 login; resolves with the login status (0 = success). */
async function login(client: ScriptedClient, who: Login): Promise<number> {
  client.send([5, 1, 2]);
  assert.deepEqual([...await client.read(2, 10_000)], [5, 2]);
  client.send([1, who.user.length, ...Buffer.from(who.user), who.password.length, ...Buffer.from(who.password)]);
  const status = await client.read(2, 10_000);
  return status[1]!;
}

/** A SOCKS5 request for an IPv4 address. */
function request(command: number, host: string, port: number): number[] {
  return [5, command, 0, 1, ...host.split(".").map(Number), port >> 8, port & 0xff];
}

/** Reads a SOCKS5 reply with an IPv4 address. */
async function readReply(client: ScriptedClient): Promise<{ code: number; host: string; port: number }> {
  const bytes = await client.read(10, 10_000);
  return { code: bytes[1]!, host: [...bytes.subarray(4, 8)].join("."), port: (bytes[8]! << 8) | bytes[9]! };
}

async function readLine(client: ScriptedClient): Promise<string> {
  const bytes: number[] = [];
  while (bytes.length < 200) {
    const [byte] = await client.read(1, 10_000);
    if (byte === 10) return Buffer.from(bytes).toString();
    bytes.push(byte!);
  }
  throw new Error("no end of line");
}

/** Paced sending of `payload` on `send`, then `receive` must give it back whole. */
async function paced(payload: Uint8Array, chunks: number, intervalMs: number, send: (b: Uint8Array) => void) {
  const size = payload.length / chunks;
  for (let chunk = 0; chunk < chunks; chunk++) {
    send(payload.subarray(chunk * size, (chunk + 1) * size));
    await sleep(intervalMs);
  }
}

/** What one session reports. */
interface Outcome {
  kind: "connect" | "bind" | "udp";
  peer?: string;
  intact: boolean;
  endedAt: number;
}

interface Pace {
  chunks: number;
  intervalMs: number;
  /** Resolves when the session may start its paced transfer (called once it is established). */
  ready(): Promise<void>;
}

/** CONNECT to a whoami echo server (`echo` unless `target` says another), then a paced echo. */
async function connectSession(
  port: number,
  who: Login,
  index: number,
  pace: Pace,
  target: WhoamiServer = echo,
): Promise<Outcome> {
  const client = await openClient("127.0.0.1", port);
  try {
    assert.equal(await login(client, who), 0, "login");
    client.send(request(1, target.host, target.port));
    const reply = await readReply(client);
    assert.equal(reply.code, 0, `CONNECT REP ${reply.code}`);
    const peer = parseWhoami(await readLine(client)).peer;
    await pace.ready();
    const payload = payloadFor(index, CHUNK_BYTES * pace.chunks);
    const echoed = client.read(payload.length, 20_000);
    echoed.catch(() => {}); // awaited below; a failure while sending must not go unhandled
    await paced(payload, pace.chunks, pace.intervalMs, (b) => client.send(b));
    const intact = sha256(await echoed) === sha256(payload);
    return { kind: "connect", peer, intact, endedAt: Date.now() };
  } finally {
    client.close();
  }
}

/** BIND, a peer that connects and echoes, then a paced echo through the BIND session. */
async function bindSession(port: number, who: Login, index: number, pace: Pace): Promise<Outcome> {
  const client = await openClient("127.0.0.1", port);
  let peer: Socket | undefined;
  try {
    assert.equal(await login(client, who), 0, "login");
    client.send(request(2, "127.0.0.1", 0));
    const first = await readReply(client);
    assert.equal(first.code, 0, `BIND REP ${first.code}`);
    peer = connect({ host: "127.0.0.1", port: first.port });
    peer.on("data", (chunk) => peer!.write(chunk));
    peer.on("error", () => {});
    const second = await readReply(client);
    assert.equal(second.code, 0, `BIND second REP ${second.code}`);
    await pace.ready();
    const payload = payloadFor(index, CHUNK_BYTES * pace.chunks);
    const echoed = client.read(payload.length, 20_000);
    echoed.catch(() => {}); // awaited below; a failure while sending must not go unhandled
    await paced(payload, pace.chunks, pace.intervalMs, (b) => client.send(b));
    const intact = sha256(await echoed) === sha256(payload);
    return { kind: "bind", intact, endedAt: Date.now() };
  } finally {
    peer?.destroy();
    client.close();
  }
}

/** UDP ASSOCIATE, then datagrams to the UDP echo server in lockstep (each echo awaited before the next). */
async function udpSession(port: number, who: Login, index: number, pace: Pace): Promise<Outcome> {
  const control = await openClient("127.0.0.1", port);
  const udp = dgram.createSocket("udp4");
  try {
    await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", () => resolve()));
    assert.equal(await login(control, who), 0, "login");
    control.send(request(3, "127.0.0.1", udp.address().port));
    const relay = await readReply(control);
    assert.equal(relay.code, 0, `UDP ASSOCIATE REP ${relay.code}`);
    const relayHost = relay.host === "0.0.0.0" ? "127.0.0.1" : relay.host;
    const queue: Buffer[] = [];
    let wake: (() => void) | null = null;
    udp.on("message", (message) => {
      queue.push(message);
      wake?.();
    });
    await pace.ready();
    const payload = payloadFor(index, CHUNK_BYTES * pace.chunks);
    let intact = true;
    for (let chunk = 0; chunk < pace.chunks; chunk++) {
      const data = Buffer.from(payload.subarray(chunk * CHUNK_BYTES, (chunk + 1) * CHUNK_BYTES));
      udp.send(
        SocksClient.createUDPFrame({ remoteHost: { host: "127.0.0.1", port: udpEchoPort }, data }),
        relay.port,
        relayHost,
      );
      const deadline = Date.now() + 5000;
      while (queue.length === 0 && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
      const message = queue.shift();
      if (message === undefined || !SocksClient.parseUDPFrame(message).data.equals(data)) intact = false;
      await sleep(pace.intervalMs);
    }
    return { kind: "udp", intact, endedAt: Date.now() };
  } finally {
    udp.close();
    control.close();
  }
}

/** Starts IN_FLIGHT sessions (CONNECT, BIND, UDP) and resolves once all are established. */
async function startLoad(server: RunningServer, who: Login) {
  let established = 0;
  let release!: () => void;
  const go = new Promise<void>((resolve) => (release = resolve));
  const pace: Pace = {
    chunks: CHUNKS,
    intervalMs: CHUNK_INTERVAL_MS,
    ready: () => {
      established++;
      return go;
    },
  };
  const sessions = Array.from({ length: IN_FLIGHT }, (_, index) => {
    if (index < BINDS) return bindSession(server.port, who, index, pace);
    if (index < BINDS + UDPS) return udpSession(server.port, who, index, pace);
    return connectSession(server.port, who, index, pace);
  });
  const all = Promise.all(sessions);
  all.catch(() => {});
  const deadline = Date.now() + 30_000;
  while (established < IN_FLIGHT) {
    const failed = await Promise.race([all.then(() => false, () => true), sleep(20).then(() => false)]);
    if (failed) await all; // throws the session's error
    assert.ok(Date.now() < deadline, `only ${established} of ${IN_FLIGHT} sessions established`);
  }
  return { release, all };
}

/** The files a test server reads; `write` rewrites them all. */
function serverFiles(name: string) {
  const path = (file: string) => join(dir, `${name}.${file}`);
  return {
    args: [
      "-c",
      path("conf"),
      "-a",
      "p",
      "-U",
      path("users"),
      "-w",
      "--hosts-allow",
      path("allow"),
      "--hosts-deny",
      path("deny"),
      "--rules",
      path("rules"),
    ],
    write(files: { conf: string; users: string; allow: string; deny: string; rules: string }) {
      for (const [file, text] of Object.entries(files)) writeFileSync(path(file), text);
    },
  };
}

/** Connects from `localAddress`, sends `bytes`, and resolves with the first `length` bytes answered (or fewer at close). */
function rawExchange(port: number, localAddress: string, bytes: number[], length: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, localAddress });
    const got: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(got));
    };
    const timer = setTimeout(done, 10_000);
    socket.on("data", (chunk) => {
      got.push(chunk);
      if (Buffer.concat(got).length >= length) done();
    });
    socket.on("error", done);
    socket.on("close", done);
    socket.write(Buffer.from(bytes));
  });
}

/** Open sockets of a process (/proc/PID/fd entries that are sockets). */
function openSockets(pid: number): number {
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) count++;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

/** VmRSS of a process, in KiB. */
function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
}

/**
 * RSS growth allowed from the soak's start (the server just started) to its end, in MiB, per
 * runtime. Measured here over the 60 s soak (24,000-32,000 sessions, the machine shared): Bun
 * +46 to +50, the binary +40 to +57, Deno +105 to +114; 15 s with node-io: +37 to +69. Most of
 * it comes in the first 5-8 s (Bun then swings between 90 and 115 MiB as its GC returns memory;
 * Deno creeps from about 175 to 188 MiB).
 * RSS after warm-up is too noisy to bound on Bun, so the bound is from the start: a scratch leak
 * of 8 KiB a session gave Bun +115 over 20 s and failed it. Deno's bound is large because its
 * warm-up growth is (V8's young generation); the same leak would still break it. node-io's
 * (Bun with node:net sockets) is set from its own warm-up, which reaches 125 MiB in its 15 s.
 */
const RSS_GROWTH_MIB: Record<string, number> = { bun: 80, binary: 80, deno: 140, "node-io": 100 };

for (const { mode, skip } of serverModes()) {
  const soakSeconds = mode === "node-io" ? NODE_IO_SOAK_SECONDS : SOAK_SECONDS;
  describe(`srelay (${mode}) under load`, () => {
    // node-io runs the soak only: SIGTERM and SIGHUP do not depend on the socket layer.
    if (mode !== "node-io") defineShutdownAndReloadTests(mode, skip);

    test(`soak: ${soakSeconds} s of mixed churn from ${SOAK_CLIENTS} clients`, {
      skip: skip || NO_MICROSOCKS,
      timeout: (soakSeconds + 60) * 1000,
    }, () => soak(mode, soakSeconds));
  });
}

/** The SIGTERM and SIGHUP tests of one mode. */
function defineShutdownAndReloadTests(mode: ServerMode, skip: string | false): void {
  test(`SIGTERM with ${IN_FLIGHT} sessions in flight lets every one finish within the grace period`, {
    skip,
    timeout: 60_000,
  }, async () => {
    const files = serverFiles(`term-${mode}`);
    files.write({ conf: "", users: usersLine(ALICE), allow: "", deny: "", rules: "" });
    const server = await startServer(mode, ["-i", "127.0.0.1:0", "--grace", String(GRACE_SECONDS), ...files.args]);
    try {
      const { release, all } = await startLoad(server, ALICE);
      const termAt = Date.now();
      server.signal("SIGTERM");
      let exitAt = 0;
      const exited = server.exited.then((code) => {
        exitAt = Date.now();
        return code;
      });
      await sleep(100);
      release();
      const outcomes = await all;
      const code = await exited;
      assert.equal(code, 0, `exit code\n${server.output().slice(-2000)}`);
      const broken = outcomes.filter((o) => !o.intact);
      assert.deepEqual(broken, [], "every transfer arrives whole");
      const lastEnd = Math.max(...outcomes.map((o) => o.endedAt));
      assert.ok(exitAt >= lastEnd - 50, `exited ${lastEnd - exitAt} ms before the last session ended`);
      assert.ok(exitAt - termAt < (GRACE_SECONDS + 1) * 1000, `exited ${exitAt - termAt} ms after SIGTERM`);
    } finally {
      await server.stop();
    }
  });

  test("SIGHUP under load with every reloadable file changed drops none; new sessions follow the new files", {
    skip: skip || NO_MICROSOCKS,
    timeout: 60_000,
  }, async () => {
    const files = serverFiles(`hup-${mode}`);
    files.write({ conf: ruleVia(hopA), users: usersLine(ALICE), allow: "", deny: "", rules: "pass\n" });
    const server = await startServer(mode, ["-i", "127.0.0.1:0", "--grace", "1", ...files.args]);
    try {
      const { release, all } = await startLoad(server, ALICE);
      files.write({
        conf: ruleVia(hopB),
        users: usersLine(ALICE) + usersLine(BOB),
        allow: "",
        deny: `srelay : ${DENIED_CLIENT}\n`,
        rules: `block to ${BLOCKED_HOST}\npass\n`,
      });
      const mark = server.output().length;
      server.signal("SIGHUP");
      await waitForNewOutput(server, mark, /Route table \S+: 1 rules|Reload rejected[^\n]*/, 10_000);
      assert.doesNotMatch(server.output().slice(mark), /Reload rejected/);
      release();

      // A new user logs in, and a new session takes the new route.
      const fresh = await connectSession(server.port, BOB, 0, { chunks: 1, intervalMs: 0, ready: async () => {} });
      assert.equal(fresh.peer, "127.0.0.12", "new sessions go through hop B");
      // A newly blocked target is refused.
      const client = await openClient("127.0.0.1", server.port);
      try {
        assert.equal(await login(client, BOB), 0);
        client.send(request(1, blocked.host, blocked.port));
        assert.equal((await readReply(client)).code, 2, "blocked target gets REP 02");
      } finally {
        client.close();
      }
      // A newly denied client is closed before any SOCKS byte.
      const denied = connect({ host: "127.0.0.1", port: server.port, localAddress: DENIED_CLIENT });
      const got: Buffer[] = [];
      denied.on("data", (chunk) => got.push(chunk));
      denied.on("error", () => {});
      denied.write(Buffer.from([5, 1, 2]));
      await new Promise<void>((resolve) => {
        denied.on("close", () => resolve());
        setTimeout(resolve, 5000);
      });
      assert.ok(denied.destroyed || denied.readableEnded, "denied client is closed");
      assert.equal(Buffer.concat(got).length, 0, "denied client gets no SOCKS byte");
      denied.destroy();

      const outcomes = await all;
      assert.deepEqual(outcomes.filter((o) => !o.intact), [], "no session dropped or corrupted");
      const moved = outcomes.filter((o) => o.kind === "connect" && o.peer !== "127.0.0.11");
      assert.equal(moved.length, 0, "running sessions keep hop A");
    } finally {
      await server.stop();
    }
  });
}

/**
 * The soak of one mode: SOAK_CLIENTS clients, each running rounds for
 * `seconds`; every round is one session of a kind picked by turn.
 */
async function soak(mode: ServerMode, seconds: number): Promise<void> {
  const files = serverFiles(`soak-${mode}`);
  files.write({
    conf: ruleVia(hopA),
    users: usersLine(ALICE),
    allow: "",
    deny: "",
    rules: `block to ${BLOCKED_HOST}\npass\n`,
  });
  const server = await startServer(mode, ["-i", "127.0.0.1:0", "--grace", "1", ...files.args]);
  const pid = server.process.pid!;
  try {
    const startRss = rssKiB(pid);
    const counts = {
      sessions: 0,
      errors: 0,
      viaHop: 0,
      direct: 0,
      bind: 0,
      udp: 0,
      badLogin: 0,
      refused: 0,
    };
    const errors: string[] = [];
    const badLogins: number[] = [];
    const quick: Pace = { chunks: 2, intervalMs: 20, ready: async () => {} };
    /** One session of `kind` (0-9) for client `id`; throws when it goes wrong. */
    const session = async (kind: number, id: number) => {
      if (kind < 3) {
        const outcome = await connectSession(server.port, ALICE, id, quick);
        assert.ok(outcome.intact);
        assert.equal(outcome.peer, "127.0.0.11", "through the next hop");
        counts.viaHop++;
      } else if (kind < 5) {
        const outcome = await connectSession(server.port, ALICE, id, quick, direct);
        assert.ok(outcome.intact);
        assert.notEqual(outcome.peer, "127.0.0.11", "directly, not through the next hop");
        counts.direct++;
      } else if (kind === 5 || kind === 6) {
        assert.ok((await bindSession(server.port, ALICE, id, quick)).intact);
        counts.bind++;
      } else if (kind === 7) {
        assert.ok((await udpSession(server.port, ALICE, id, quick)).intact);
        counts.udp++;
      } else if (kind === 8) {
        // Each wrong password from its own address: 5 failures from one address block it (README).
        const from = `127.3.${id}.${(badLogins[id] = (badLogins[id] ?? 0) + 1)}`;
        const answer = await rawExchange(server.port, from, [
          5,
          1,
          2,
          1,
          5,
          ...Buffer.from("alice"),
          5,
          ...Buffer.from("wrong"),
        ], 4);
        assert.equal(answer.length, 4, "method and login replies");
        assert.deepEqual([...answer.subarray(0, 3)], [5, 2, 1]);
        assert.notEqual(answer[3], 0, "wrong password refused");
        counts.badLogin++;
      } else {
        const client = await openClient("127.0.0.1", server.port);
        try {
          assert.equal(await login(client, ALICE), 0);
          client.send(request(1, blocked.host, blocked.port));
          assert.equal((await readReply(client)).code, 2);
        } finally {
          client.close();
        }
        counts.refused++;
      }
    };
    // One session of each kind first: descriptors a runtime opens once (a log stream) are in the baseline.
    for (const kind of [0, 3, 5, 7, 8, 9]) await session(kind, SOAK_CLIENTS);
    for (const key of Object.keys(counts) as Array<keyof typeof counts>) counts[key] = 0;
    await sleep(300);
    const start = { sockets: openSockets(pid), rss: startRss };
    const stopAt = Date.now() + seconds * 1000;
    const worker = async (id: number) => {
      for (let round = 0; Date.now() < stopAt && round < 100_000; round++) {
        try {
          await session((id + round) % 10, id);
          counts.sessions++;
        } catch (error) {
          counts.errors++;
          if (errors.length < 5) errors.push(String(error));
        }
      }
    };
    // RSS once the runtime has warmed up (40% into the soak), reported only.
    let warmRss = NaN;
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(Math.round(rssKiB(pid) / 1024)), 5000);
    const warmTimer = setTimeout(() => (warmRss = rssKiB(pid)), seconds * 400);
    await Promise.all(Array.from({ length: SOAK_CLIENTS }, (_, id) => worker(id)));
    clearTimeout(warmTimer);
    clearInterval(sampler);
    // Let the server close what the clients closed (bounded).
    let endSockets = openSockets(pid);
    for (let i = 0; i < 50 && endSockets > start.sockets; i++) {
      await sleep(100);
      endSockets = openSockets(pid);
    }
    const end = { sockets: endSockets, rss: rssKiB(pid) };
    console.log(
      `soak ${mode}: ${seconds} s, ${SOAK_CLIENTS} clients, sessions=${counts.sessions} ` +
        `(connect via hop=${counts.viaHop} direct=${counts.direct} bind=${counts.bind} udp=${counts.udp} badLogin=${counts.badLogin} ` +
        `refused=${counts.refused}) errors=${counts.errors} sockets ${start.sockets}->${end.sockets} ` +
        `RSS start ${(start.rss / 1024).toFixed(1)} warm ${(warmRss / 1024).toFixed(1)} end ${
          (end.rss / 1024).toFixed(1)
        } MiB ` +
        `(every 5 s: ${samples.join(" ")})`,
    );
    assert.equal(counts.errors, 0, errors.join("\n"));
    assert.ok(counts.sessions > SOAK_CLIENTS * 10, `only ${counts.sessions} sessions`);
    assert.equal(end.sockets, start.sockets, "open sockets return to baseline");
    const growthMiB = (end.rss - start.rss) / 1024;
    assert.ok(growthMiB < RSS_GROWTH_MIB[mode]!, `RSS grew ${growthMiB.toFixed(1)} MiB`);
  } finally {
    await server.stop();
  }
}
