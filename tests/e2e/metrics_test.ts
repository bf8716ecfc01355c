/**
 * End to end: `--metrics` of the real CLI under Bun, Deno, the compiled
 * binary and the node:net adapter. Each server is scraped before and after
 * known traffic (CONNECT sessions with known byte counts, a password login
 * and a wrong password, a rule refusal, a refused connection, a client
 * denied by tcp_wrappers, a UDP association with two round trips), and
 * every counter must have risen by exactly what was sent. promtool (Debian's
 * `prometheus` package) checks both scrapes. `/healthz` is 200 while the
 * server accepts and 503 while it drains after SIGTERM. With `--workers 2`
 * (Bun) one scrape of the supervisor reports both workers' sessions.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { closedPort, type FakeServer, startEchoServer } from "../helpers/fake_hops.ts";
import { needs } from "../helpers/peers.ts";
import { openClient, type ScriptedClient } from "../helpers/socks_client.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";

process.env.DENO_NO_UPDATE_CHECK = "1";

const PROMTOOL = needs("promtool", "prometheus");
const USER = { user: "metrics-user", password: "s3cret-metrics" };
/** The client address hosts.deny names. */
const DENIED_CLIENT = "127.0.0.9";
/** The port the rules block. */
const BLOCKED_PORT = 9;

let dir: string;
let echo: FakeServer;
let udpEcho: dgram.Socket;
let udpEchoPort: number;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "srelay-metrics-"));
  writeFileSync(join(dir, "srelay.conf"), "");
  writeFileSync(join(dir, "users"), `${USER.user}:${bcrypt.hashSync(USER.password, 4)}\n`);
  writeFileSync(join(dir, "rules"), `block to 127.0.0.1 port ${BLOCKED_PORT}\n`);
  writeFileSync(join(dir, "hosts.allow"), "# nobody in particular\n");
  writeFileSync(join(dir, "hosts.deny"), `srelay : ${DENIED_CLIENT}\n`);
  echo = await startEchoServer();
  udpEcho = dgram.createSocket("udp4");
  udpEcho.on("message", (bytes, from) => udpEcho.send(bytes, from.port, from.address));
  await new Promise<void>((resolve) => udpEcho.bind(0, "127.0.0.1", resolve));
  udpEchoPort = udpEcho.address().port;
});

after(async () => {
  await echo?.close();
  udpEcho?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

// ---- scraping ---------------------------------------------------------------

/** Every sample of an exposition, by its series as written (`name{a="b"}`). */
function parse(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    series.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return series;
}

async function scrape(base: string): Promise<{ text: string; series: Map<string, number> }> {
  const response = await fetch(`${base}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  return { text, series: parse(text) };
}

async function health(base: string): Promise<number> {
  const response = await fetch(`${base}/healthz`);
  await response.arrayBuffer();
  return response.status;
}

function promtoolCheck(text: string): void {
  const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.equal(`${result.stdout}${result.stderr}`.trim(), "", "promtool reports no problem");
  assert.equal(result.status, 0);
}

/** The sum of every sample whose series starts with `prefix` (all label values of the rest). */
function sumOf(series: Map<string, number>, prefix: string): number {
  let total = 0;
  for (const [name, value] of series) if (name.startsWith(prefix)) total += value;
  return total;
}

/** Waits until `condition` holds for a fresh scrape; returns that scrape. */
async function scrapeUntil(
  base: string,
  condition: (series: Map<string, number>) => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<{ text: string; series: Map<string, number> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await scrape(base);
    if (condition(result.series)) return result;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}:\n${result.text}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The metrics base URL the server printed (`http://host:port`). */
async function metricsBase(server: RunningServer): Promise<string> {
  const line = await server.waitForOutput(/metrics on http:\/\/\S+\/metrics/);
  return line.slice("metrics on ".length, -"/metrics".length);
}

// ---- traffic ----------------------------------------------------------------

function connectRequest(port: number): number[] {
  return [5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff];
}

/** Greets without authentication (or logs in), sends CONNECT to 127.0.0.1:`port`; returns the reply code. */
async function socksConnect(
  proxyPort: number,
  port: number,
  login?: { user: string; password: string },
): Promise<{ client: ScriptedClient; rep: number }> {
  const client = await openClient("127.0.0.1", proxyPort);
  if (login === undefined) {
    client.send([5, 1, 0]);
    assert.deepEqual([...await client.read(2)], [5, 0]);
  } else {
    client.send([5, 1, 2]);
    assert.deepEqual([...await client.read(2)], [5, 2]);
    client.send([
      1,
      login.user.length,
      ...Buffer.from(login.user),
      login.password.length,
      ...Buffer.from(login.password),
    ]);
    const status = await client.read(2);
    if (status[1] !== 0) return { client, rep: -1 };
  }
  client.send(connectRequest(port));
  const reply = await client.read(10);
  return { client, rep: reply[1]! };
}

/** One CONNECT session to the echo server that relays `size` bytes each way, then ends. */
async function echoSession(proxyPort: number, size: number, login?: { user: string; password: string }) {
  const { client, rep } = await socksConnect(proxyPort, echo.port, login);
  assert.equal(rep, 0);
  const payload = Buffer.alloc(size, 0x61);
  client.send(payload);
  assert.equal((await client.read(size)).length, size);
  client.socket.end();
  await client.readToEnd();
  client.close();
}

/** A UDP association with two round trips (`sizes` bytes) through the echo server. */
async function udpSession(proxyPort: number, sizes: readonly number[]): Promise<void> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const control = await openClient("127.0.0.1", proxyPort);
  try {
    const local = socket.address().port;
    control.send([5, 1, 0]);
    assert.deepEqual([...await control.read(2)], [5, 0]);
    control.send([5, 3, 0, 1, 127, 0, 0, 1, local >> 8, local & 0xff]);
    const reply = await control.read(10);
    assert.equal(reply[1], 0, "UDP ASSOCIATE succeeded");
    const relayPort = (reply[8]! << 8) | reply[9]!;
    const header = [0, 0, 0, 1, 127, 0, 0, 1, udpEchoPort >> 8, udpEchoPort & 0xff];
    for (const size of sizes) {
      const answered = new Promise<Buffer>((resolve) => socket.once("message", resolve));
      socket.send(Buffer.concat([Buffer.from(header), Buffer.alloc(size, 0x62)]), relayPort, "127.0.0.1");
      assert.equal((await answered).length, header.length + size);
    }
  } finally {
    control.socket.end();
    await control.readToEnd().catch(() => {});
    control.close();
    socket.close();
  }
}

/** Connects from `DENIED_CLIENT`; resolves once the server closed the connection. */
function deniedClient(proxyPort: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: proxyPort, localAddress: DENIED_CLIENT });
    socket.on("error", () => {});
    socket.on("close", () => resolve());
    setTimeout(() => reject(new Error("the denied client was not closed")), 5000);
    socket.resume();
  });
}

/** A CONNECT session that stays open until `close`. */
async function heldSession(proxyPort: number): Promise<{ close(): Promise<void> }> {
  const { client, rep } = await socksConnect(proxyPort, echo.port);
  assert.equal(rep, 0);
  return {
    async close() {
      client.socket.end();
      await client.readToEnd().catch(() => {});
      client.close();
    },
  };
}

const S = (labels: string) => `srelay_sessions_total{${labels}}`;

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) --metrics end to end`, () => {
    let server: RunningServer;
    let base: string;

    before(async () => {
      if (skip) return;
      server = await startServer(mode, [
        "-i",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "-c",
        join(dir, "srelay.conf"),
        "-a",
        "np",
        "-U",
        join(dir, "users"),
        "--rules",
        join(dir, "rules"),
        "--hosts-allow",
        join(dir, "hosts.allow"),
        "--hosts-deny",
        join(dir, "hosts.deny"),
        "--grace",
        "10",
      ]);
      base = await metricsBase(server);
    });

    after(async () => {
      if (!skip) await server?.stop();
    });

    test("counters rise by exactly the traffic sent; promtool accepts both scrapes", { skip }, async () => {
      assert.equal(await health(base), 200);
      const before = await scrape(base);
      if (PROMTOOL === false) promtoolCheck(before.text);
      const sizes = [1000, 1001, 1002, 65_536, 3];
      for (const size of sizes) await echoSession(server.port, size);
      await echoSession(server.port, 10, USER);
      const wrong = await socksConnect(server.port, echo.port, { user: USER.user, password: "wrong" });
      assert.equal(wrong.rep, -1);
      wrong.client.close();
      const blocked = await socksConnect(server.port, BLOCKED_PORT);
      assert.equal(blocked.rep, 2, "REP 02 from the rules");
      blocked.client.close();
      const refused = await socksConnect(server.port, await closedPort());
      assert.equal(refused.rep, 5, "REP 05 connection refused");
      refused.client.close();
      await deniedClient(server.port);
      await udpSession(server.port, [100, 200]);
      const handshakes = "srelay_handshake_duration_seconds_count";
      const after = await scrapeUntil(
        base,
        (s) =>
          (s.get(handshakes) ?? 0) - (before.series.get(handshakes) ?? 0) === 9 &&
          s.get("srelay_sessions_active") === 0 &&
          sumOf(s, 'srelay_sessions_total{command="udp"') ===
            sumOf(before.series, 'srelay_sessions_total{command="udp"') + 1,
        "every session to be counted",
      );
      if (PROMTOOL === false) promtoolCheck(after.text);
      const rise = (name: string) => (after.series.get(name) ?? 0) - (before.series.get(name) ?? 0);
      const bytes = sizes.reduce((a, b) => a + b, 0) + 10;
      assert.equal(rise(S('command="connect",route="direct",outcome="done"')), 6);
      assert.equal(rise(S('command="connect",route="direct",outcome="failed"')), 1);
      assert.equal(rise(S('command="connect",route="none",outcome="not_allowed"')), 1);
      assert.equal(rise(S('command="none",route="none",outcome="auth_failed"')), 1);
      assert.equal(rise(S('command="none",route="none",outcome="denied_by_tcp_wrappers"')), 1);
      assert.equal(
        sumOf(after.series, 'srelay_sessions_total{command="udp",route="direct"') -
          sumOf(before.series, 'srelay_sessions_total{command="udp",route="direct"'),
        1,
      );
      assert.equal(sumOf(after.series, "srelay_sessions_total{") - sumOf(before.series, "srelay_sessions_total{"), 11);
      assert.equal(rise('srelay_relayed_bytes_total{command="connect",direction="up"}'), bytes);
      assert.equal(rise('srelay_relayed_bytes_total{command="connect",direction="down"}'), bytes);
      assert.equal(rise('srelay_relayed_bytes_total{command="udp",direction="up"}'), 300);
      assert.equal(rise('srelay_relayed_bytes_total{command="udp",direction="down"}'), 300);
      assert.equal(rise('srelay_udp_datagrams_total{direction="up"}'), 2);
      assert.equal(rise('srelay_udp_datagrams_total{direction="down"}'), 2);
      assert.equal(rise('srelay_auth_attempts_total{result="success"}'), 1);
      assert.equal(rise('srelay_auth_attempts_total{result="failure"}'), 1);
      assert.equal(rise('srelay_clients_denied_total{by="rules"}'), 1);
      assert.equal(rise('srelay_clients_denied_total{by="tcp_wrappers"}'), 1);
      assert.equal(rise('srelay_request_failures_total{command="connect",reason="not_allowed"}'), 1);
      assert.equal(rise('srelay_request_failures_total{command="connect",reason="connection_refused"}'), 1);
      assert.equal(rise(handshakes), 9);
      assert.equal(rise('srelay_handshake_duration_seconds_bucket{le="+Inf"}'), 9);
      assert.equal(rise("srelay_connect_duration_seconds_count"), 6);
      assert.ok(rise("srelay_connect_duration_seconds_sum") > 0);
      assert.ok((after.series.get("process_resident_memory_bytes") ?? 0) > 10 * 1024 * 1024);
      assert.ok((after.series.get("srelay_open_sockets") ?? 0) >= 1, "at least the listener");
      assert.ok((after.series.get("process_open_fds") ?? 0) >= (after.series.get("srelay_open_sockets") ?? 0));
    });

    test("/healthz is 503 while the server drains after SIGTERM; /metrics still answers", { skip }, async () => {
      const held = await heldSession(server.port);
      await scrapeUntil(base, (s) => s.get("srelay_sessions_active") === 1, "one active session");
      assert.equal(await health(base), 200);
      server.signal("SIGTERM");
      const deadline = Date.now() + 5000;
      while ((await health(base)) !== 503) {
        assert.ok(Date.now() < deadline, "/healthz turned 503");
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const draining = await scrape(base);
      assert.equal(draining.series.get("srelay_sessions_active"), 1);
      const notFound = await fetch(`${base}/nothing`);
      assert.equal(notFound.status, 404);
      await notFound.arrayBuffer();
      await held.close();
      assert.equal(await server.exited, 0);
    });
  });
}

describe("srelay (bun) --workers 2 --metrics: the supervisor adds up its workers", () => {
  let server: RunningServer;
  let base: string;

  before(async () => {
    server = await startServer("bun", [
      "-i",
      "127.0.0.1:0",
      "--workers",
      "2",
      "--metrics",
      "127.0.0.1:0",
      "-c",
      join(dir, "srelay.conf"),
    ]);
    base = await metricsBase(server);
  });

  after(async () => {
    await server?.stop();
  });

  test("one scrape reports every worker's sessions and bytes", async () => {
    const first = await scrapeUntil(base, (s) => s.get("srelay_workers") === 2, "both workers");
    if (PROMTOOL === false) promtoolCheck(first.text);
    const done = S('command="connect",route="direct",outcome="done"');
    const up = 'srelay_relayed_bytes_total{command="connect",direction="up"}';
    // Parallel sessions, so the kernel spreads them over both workers.
    await Promise.all(Array.from({ length: 12 }, () => echoSession(server.port, 100)));
    const after = await scrapeUntil(
      base,
      (s) => (s.get(done) ?? 0) - (first.series.get(done) ?? 0) === 12,
      "12 sessions",
    );
    if (PROMTOOL === false) promtoolCheck(after.text);
    assert.equal((after.series.get(up) ?? 0) - (first.series.get(up) ?? 0), 1200);
    assert.equal(after.series.get("srelay_workers"), 2);
    assert.ok((after.series.get("process_resident_memory_bytes") ?? 0) > 30 * 1024 * 1024, "three processes");
  });

  test("/healthz is 503 once the supervisor was told to stop", async () => {
    const held = await heldSession(server.port);
    assert.equal(await health(base), 200);
    server.signal("SIGTERM");
    const deadline = Date.now() + 5000;
    while ((await health(base)) !== 503) {
      assert.ok(Date.now() < deadline, "/healthz turned 503");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await held.close();
    assert.equal(await server.exited, 0);
  });
});
