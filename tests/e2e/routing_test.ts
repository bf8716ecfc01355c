/**
 * End to end: routing and chaining by srelay.conf, driving the real CLI with
 * real next hops from Debian. Every hop has its own outgoing address, and
 * the targets are "whoami" servers on several loopback addresses that
 * answer with the peer address they see, so each test checks the path a
 * connection really took:
 *
 * | hop                                   | outgoing   |
 * |---------------------------------------|------------|
 * | direct from the server under test     | 127.0.0.1  |
 * | microsocks A                          | 127.0.0.11 |
 * | microsocks B (user/password)          | 127.0.0.12 |
 * | Dante (SOCKS5 and SOCKS4, one block)  | 127.0.0.13 |
 * | tinyproxy (HTTP CONNECT, Basic auth)  | 127.0.0.14 |
 * | srelay as a hop (`-x`)                | 127.0.0.15 |
 * | microsocks on ::1                     | 127.0.0.16 |
 * | microsocks C, D (credentials missing / wrong) | 127.0.0.17, .18 |
 * | server under test with `-x`           | 127.0.0.20 |
 * | server under test with `-g`           | 127.0.0.21 |
 *
 * The hops are started once; the server under test runs in every mode of
 * `serverModes()` (Bun, Deno, the compiled binary, node:net sockets).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closedPort } from "../helpers/fake_hops.ts";
import {
  NO_DANTE,
  NO_MICROSOCKS,
  NO_TINYPROXY,
  startDante,
  startMicrosocks,
  startTinyproxy,
} from "../helpers/next_hops.ts";
import type { PeerProcess } from "../helpers/peer_process.ts";
import { needs } from "../helpers/peers.ts";
import { runCommand } from "../helpers/run_command.ts";
import { waitForNewOutput } from "../helpers/server_log.ts";
import { openClient, socks5ConnectBytes } from "../helpers/socks_client.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";
import { parseWhoami, startWhoamiServer, type WhoamiAnswer, type WhoamiServer } from "../helpers/whoami_server.ts";

const NO_CURL = needs("curl");
const NO_PROXYCHAINS = needs("proxychains4", "proxychains4");
const CREDENTIALS = { username: "relayuser", password: "relaypass" };

/** The first skip reason among `reasons`, or false. */
function skipUnless(...reasons: Array<string | false>): string | false {
  return reasons.find((reason) => reason !== false) ?? false;
}

/** Hops, by role; a hop whose daemon is missing is null (its rules point at a closed port). */
interface Hops {
  microsocksA: PeerProcess | null;
  microsocksB: PeerProcess | null;
  dante: PeerProcess | null;
  tinyproxy: PeerProcess | null;
  srelay: RunningServer;
  microsocks6: PeerProcess | null;
  microsocksNoEntry: PeerProcess | null;
  microsocksWrongEntry: PeerProcess | null;
}

const targets = new Map<string, WhoamiServer>();
/** The whoami server a test reaches, by name. */
function target(name: string): WhoamiServer {
  const server = targets.get(name);
  if (server === undefined) throw new Error(`Cannot find target ${name}`);
  return server;
}

let hops: Hops;
/** Every daemon and server started, for `after`. */
const running: Array<{ stop(): Promise<unknown> }> = [];
let workDir: string;
let confPath: string;
let passwdPath: string;
/** Ports rules use for each hop (a closed port when the daemon is missing). */
const port: Record<string, number> = {};

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), "srelay-routing-"));
  const addresses: Array<[string, string]> = [
    ["1.1", "127.0.1.1"],
    ["1.2", "127.0.1.2"],
    ["1.3", "127.0.1.3"],
    ["1.4", "127.0.1.4"],
    ["1.5", "127.0.1.5"],
    ["1.6", "127.0.1.6"],
    ["1.7", "127.0.1.7"],
    ["1.8", "127.0.1.8"],
    ["1.9", "127.0.1.9"],
    ["1.10-a", "127.0.1.10"],
    ["1.10-b", "127.0.1.10"],
    ["2.5", "127.0.2.5"],
    ["2.200", "127.0.2.200"],
    ["local-a", "127.0.0.1"],
    ["local-b", "127.0.0.1"],
    ["3.1", "127.0.3.1"],
    ["3.2", "127.0.3.2"],
    ["3.3", "127.0.3.3"],
    ["3.4", "127.0.3.4"],
    ["3.5", "127.0.3.5"],
    ["3.6", "127.0.3.6"],
  ];
  await Promise.all(
    addresses.map(async ([name, host]) => targets.set(name, await startWhoamiServer(host))),
  );
  // The port-range rule needs 1.10-low below 1.10-high.
  const [low, high] = [target("1.10-a"), target("1.10-b")].sort((a, b) => a.port - b.port);
  targets.set("1.10-low", low!);
  targets.set("1.10-high", high!);

  const emptyConf = join(workDir, "empty.conf");
  writeFileSync(emptyConf, "");
  /** Starts a daemon unless it is missing; whatever starts is stopped by `after`, even if another fails. */
  const startIf = async (missing: string | false, start: () => Promise<PeerProcess>) => {
    if (missing !== false) return null;
    const peer = await start();
    running.push(peer);
    return peer;
  };
  const tinyproxyPorts = [...targets.entries()]
    .filter(([name]) => name !== "3.3")
    .map(([, server]) => server.port);
  const hopServer = startServer("bun", [
    "-i",
    "127.0.0.1:0",
    "-x",
    "127.0.0.15",
    "-c",
    emptyConf,
    "--grace",
    "1",
  ]).then((server) => {
    running.push(server);
    return server;
  });
  const [
    microsocksA,
    microsocksB,
    dante,
    tinyproxy,
    srelay,
    microsocks6,
    microsocksNoEntry,
    microsocksWrongEntry,
  ] = await Promise.all([
    startIf(NO_MICROSOCKS, () => startMicrosocks({ outgoing: "127.0.0.11" })),
    startIf(
      NO_MICROSOCKS,
      () => startMicrosocks({ outgoing: "127.0.0.12", credentials: CREDENTIALS }),
    ),
    startIf(NO_DANTE, () => startDante({ outgoing: "127.0.0.13", blocked: ["127.0.3.4/32"] })),
    startIf(
      NO_TINYPROXY,
      () =>
        startTinyproxy({
          outgoing: "127.0.0.14",
          connectPorts: tinyproxyPorts,
          credentials: CREDENTIALS,
        }),
    ),
    hopServer,
    startIf(NO_MICROSOCKS, () => startMicrosocks({ host: "::1", outgoing: "127.0.0.16" })),
    startIf(
      NO_MICROSOCKS,
      () => startMicrosocks({ outgoing: "127.0.0.17", credentials: CREDENTIALS }),
    ),
    startIf(
      NO_MICROSOCKS,
      () => startMicrosocks({ outgoing: "127.0.0.18", credentials: CREDENTIALS }),
    ),
  ]);
  hops = {
    microsocksA,
    microsocksB,
    dante,
    tinyproxy,
    srelay,
    microsocks6,
    microsocksNoEntry,
    microsocksWrongEntry,
  };
  const portOf = async (peer: PeerProcess | null, host = "127.0.0.1") => peer?.port ?? await closedPort(host);
  port.A = await portOf(microsocksA);
  port.B = await portOf(microsocksB);
  port.D = await portOf(dante);
  port.T = await portOf(tinyproxy);
  port.S = srelay.port;
  port.V6 = await portOf(microsocks6, "::1");
  port.C = await portOf(microsocksNoEntry);
  port.W = await portOf(microsocksWrongEntry);
  port.closed = await closedPort();

  confPath = join(workDir, "srelay.conf");
  writeFileSync(
    confPath,
    [
      "# routing_test.ts: one rule per hop kind; hops are listed farthest first",
      `127.0.1.1 any 127.0.0.1 ${port.A}/5`,
      `127.0.1.2 any 127.0.0.1 ${port.B}/5`,
      `127.0.1.3 any 127.0.0.1 ${port.D}/5`,
      `127.0.1.4 any 127.0.0.1 ${port.D}/4`,
      `127.0.1.5 any 127.0.0.1 ${port.T}/H`,
      `127.0.1.6 any 127.0.0.1 ${port.S}`,
      "; two hops: microsocks A, then tinyproxy",
      `127.0.1.7 any 127.0.0.1 ${port.T}/H 127.0.0.1 ${port.A}/5`,
      "; three hops: microsocks B (credentials), then srelay, then Dante over SOCKS4",
      `127.0.1.8 any 127.0.0.1 ${port.D}/4 127.0.0.1 ${port.S} 127.0.0.1 ${port.B}/5`,
      "# ports from the higher whoami port up; the lower one has no rule (direct)",
      `127.0.1.10 ${target("1.10-high").port}- 127.0.0.1 ${port.S}`,
      "# first match wins: 127.0.2.0-127 via microsocks A, the rest of the /24 via Dante",
      `127.0.2.0/25 any 127.0.0.1 ${port.A}/5`,
      `127.0.2.0/255.255.255.0 any 127.0.0.1 ${port.D}/5`,
      "# names: '.localhost' is subdomains only and must not catch 'localhost'",
      `.localhost any 127.0.0.1 ${port.S}`,
      `localhost ${target("local-a").port} 127.0.0.1 ${port.A}/5`,
      "# second stage: 'localhost' resolved locally matches this address rule",
      `127.0.0.1 ${target("local-b").port} 127.0.0.1 ${port.D}/5`,
      "# an IPv6 hop",
      `127.0.3.1 any [::1] ${port.V6}/5`,
      "# failures: hop down, tinyproxy 403, Dante block, credentials missing, wrong credentials",
      `127.0.3.2 any 127.0.0.1 ${port.closed}/5`,
      `127.0.3.3 any 127.0.0.1 ${port.T}/H`,
      `127.0.3.4 any 127.0.0.1 ${port.D}/5`,
      `127.0.3.5 any 127.0.0.1 ${port.C}/5`,
      `127.0.3.6 any 127.0.0.1 ${port.W}/5`,
      "",
    ].join("\n"),
  );
  passwdPath = join(workDir, "srelay.passwd");
  writeFileSync(
    passwdPath,
    [
      "# hop[/port] user password",
      `127.0.0.1/${port.B} ${CREDENTIALS.username} ${CREDENTIALS.password}`,
      `127.0.0.1/${port.T} ${CREDENTIALS.username} ${CREDENTIALS.password}`,
      `127.0.0.1/${port.W} ${CREDENTIALS.username} not-the-password`,
      "",
    ].join("\n"),
  );
});

after(async () => {
  await Promise.all([
    ...running.map((started) => started.stop()),
    ...[...new Set(targets.values())].map((server) => server.close()),
  ]);
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
});

/** Runs curl through a SOCKS proxy and parses the whoami answer. */
async function curlWhoami(flag: string, proxy: string, url: string): Promise<WhoamiAnswer> {
  const result = await runCommand("curl", ["-sS", "--max-time", "10", flag, proxy, url]);
  assert.equal(result.stderr, "", `curl ${flag} ${proxy} ${url} failed`);
  return parseWhoami(result.stdout);
}

/** The route text of a session log line, nearest hop first. */
function relay(...hopPorts: number[]): string {
  return `relay=${hopPorts.map((p) => `127.0.0.1:${p}`).join(",")}`;
}

/** One curl through the server and the path it must take. */
interface RouteCase {
  readonly name: string;
  /** curl's proxy option. */
  readonly flag: "--socks5" | "--socks5-hostname" | "--socks4" | "--socks4a";
  readonly target: string;
  /** Host written in the URL (default the target's address). */
  readonly urlHost?: string;
  /** What the log line says: version, and the target as `HOST:PORT(ATYP)`. */
  readonly version: "5" | "4" | "4a";
  readonly atyp: "ipv4" | "fqdn";
  /** The peer address the target must see. */
  readonly peer: string;
  /** The route field of the log line. */
  readonly route: () => string;
  readonly skip: string | false;
}

const CHAIN_CASES: RouteCase[] = [
  {
    name: "no rule: direct",
    flag: "--socks5",
    target: "1.9",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.1",
    route: () => "direct",
    skip: NO_CURL,
  },
  {
    name: "microsocks (/5)",
    flag: "--socks5",
    target: "1.1",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.11",
    route: () => relay(port.A!),
    skip: skipUnless(NO_CURL, NO_MICROSOCKS),
  },
  {
    name: "microsocks with credentials from srelay.passwd (/5)",
    flag: "--socks5-hostname",
    target: "1.2",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.12",
    route: () => relay(port.B!),
    skip: skipUnless(NO_CURL, NO_MICROSOCKS),
  },
  {
    name: "Dante over SOCKS5 (/5), client SOCKS4",
    flag: "--socks4",
    target: "1.3",
    version: "4",
    atyp: "ipv4",
    peer: "127.0.0.13",
    route: () => relay(port.D!),
    skip: skipUnless(NO_CURL, NO_DANTE),
  },
  {
    name: "Dante over SOCKS4 (/4), client SOCKS5",
    flag: "--socks5",
    target: "1.4",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.13",
    route: () => relay(port.D!),
    skip: skipUnless(NO_CURL, NO_DANTE),
  },
  {
    name: "tinyproxy over HTTP CONNECT with Basic auth from srelay.passwd (/H)",
    flag: "--socks5",
    target: "1.5",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.14",
    route: () => relay(port.T!),
    skip: skipUnless(NO_CURL, NO_TINYPROXY),
  },
  {
    name: "srelay as a hop (default /S), client SOCKS4a (curl sends the IP as a name)",
    flag: "--socks4a",
    target: "1.6",
    version: "4a",
    atyp: "fqdn",
    peer: "127.0.0.15",
    route: () => relay(port.S!),
    skip: NO_CURL,
  },
  {
    name: "two hops: microsocks then tinyproxy",
    flag: "--socks5",
    target: "1.7",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.14",
    route: () => relay(port.A!, port.T!),
    skip: skipUnless(NO_CURL, NO_MICROSOCKS, NO_TINYPROXY),
  },
  {
    name: "three hops: microsocks (credentials) then srelay then Dante over SOCKS4",
    flag: "--socks5",
    target: "1.8",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.13",
    route: () => relay(port.B!, port.S!, port.D!),
    skip: skipUnless(NO_CURL, NO_MICROSOCKS, NO_DANTE),
  },
];

const MATCH_CASES: RouteCase[] = [
  {
    name: "subnet /25 matches before the /255.255.255.0 rule",
    flag: "--socks5",
    target: "2.5",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.11",
    route: () => relay(port.A!),
    skip: skipUnless(NO_CURL, NO_MICROSOCKS),
  },
  {
    name: "outside the /25, the dotted-mask /24 rule matches",
    flag: "--socks5",
    target: "2.200",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.13",
    route: () => relay(port.D!),
    skip: skipUnless(NO_CURL, NO_DANTE),
  },
  {
    name: "a port inside the range 'P-' goes through the hop",
    flag: "--socks5",
    target: "1.10-high",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.15",
    route: () => relay(port.S!),
    skip: NO_CURL,
  },
  {
    name: "a port below the range is direct",
    flag: "--socks5",
    target: "1.10-low",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.1",
    route: () => "direct",
    skip: NO_CURL,
  },
  {
    name: "name rule 'localhost' (not '.localhost', subdomains only)",
    flag: "--socks5-hostname",
    target: "local-a",
    urlHost: "localhost",
    version: "5",
    atyp: "fqdn",
    peer: "127.0.0.11",
    route: () => relay(port.A!),
    skip: skipUnless(NO_CURL, NO_MICROSOCKS),
  },
  {
    name: "second stage: 'localhost' resolved locally matches the 127.0.0.1 rule",
    flag: "--socks4a",
    target: "local-b",
    urlHost: "localhost",
    version: "4a",
    atyp: "fqdn",
    peer: "127.0.0.13",
    route: () => relay(port.D!),
    skip: skipUnless(NO_CURL, NO_DANTE),
  },
  {
    name: "an IPv6 hop [::1]",
    flag: "--socks5",
    target: "3.1",
    version: "5",
    atyp: "ipv4",
    peer: "127.0.0.16",
    route: () => `relay=[::1]:${port.V6}`,
    skip: skipUnless(NO_CURL, NO_MICROSOCKS),
  },
];

/** A request the hop refuses, and what the client and the log must say. */
interface FailureCase {
  readonly name: string;
  readonly target: string;
  readonly rep: number;
  /** What the failure log line must contain, after `failed: `. */
  readonly log: () => RegExp;
  readonly skip: string | false;
}

const FAILURE_CASES: FailureCase[] = [
  {
    name: "next hop down: REP 05, the log names the hop",
    target: "3.2",
    rep: 0x05,
    log: () =>
      new RegExp(
        `connection_refused: Next hop 127\\.0\\.0\\.1:${port.closed} \\(socks5\\) is unreachable`,
      ),
    skip: false,
  },
  {
    name: "tinyproxy answers 403 for a port outside ConnectPort: REP 02",
    target: "3.3",
    rep: 0x02,
    log: () => new RegExp(`not_allowed: Next hop 127\\.0\\.0\\.1:${port.T} \\(http\\) .*HTTP 403`),
    skip: NO_TINYPROXY,
  },
  {
    name: "Dante blocks the destination ('socks block'): REP 02",
    target: "3.4",
    rep: 0x02,
    log: () => new RegExp(`not_allowed: Next hop 127\\.0\\.0\\.1:${port.D} \\(socks5\\) refused CONNECT`),
    skip: NO_DANTE,
  },
  {
    name: "the hop wants credentials srelay.passwd does not have: REP 02",
    target: "3.5",
    rep: 0x02,
    log: () =>
      new RegExp(
        `not_allowed: Next hop 127\\.0\\.0\\.1:${port.C} \\(socks5\\) .*needs credentials \\(add it to srelay\\.passwd\\)`,
      ),
    skip: NO_MICROSOCKS,
  },
  {
    name: "wrong credentials in srelay.passwd: REP 02",
    target: "3.6",
    rep: 0x02,
    log: () =>
      new RegExp(
        `not_allowed: Next hop 127\\.0\\.0\\.1:${port.W} \\(socks5\\) rejected username/password authentication`,
      ),
    skip: NO_MICROSOCKS,
  },
];

for (const { mode, skip: modeSkip } of serverModes()) {
  describe(`srelay (${mode}) routing by srelay.conf`, () => {
    let server: RunningServer;
    const proxy = () => `127.0.0.1:${server.port}`;

    before(async () => {
      if (modeSkip) return;
      server = await startServer(mode, [
        "-i",
        "127.0.0.1:0",
        "-c",
        confPath,
        "-u",
        passwdPath,
        "--grace",
        "1",
      ]);
    });

    after(async () => {
      await server?.stop();
    });

    for (const routeCase of [...CHAIN_CASES, ...MATCH_CASES]) {
      test(
        `curl ${routeCase.flag}: ${routeCase.name}`,
        { skip: modeSkip || routeCase.skip },
        async () => {
          const whoami = target(routeCase.target);
          const mark = server.output().length;
          const path = `/${mode}/${routeCase.target}`;
          const url = `http://${routeCase.urlHost ?? whoami.host}:${whoami.port}${path}`;
          const answer = await curlWhoami(routeCase.flag, proxy(), url);
          assert.deepEqual(answer, {
            peer: routeCase.peer,
            at: `${whoami.host}:${whoami.port}`,
            path,
          });
          const logTarget = `${routeCase.urlHost ?? whoami.host}:${whoami.port}(${routeCase.atyp})`;
          await waitForNewOutput(
            server,
            mark,
            new RegExp(
              `${escape(routeCase.version)}-CON ${escape(logTarget)} \\S+ ${escape(routeCase.route())}\\n`,
            ),
          );
        },
      );
    }

    test("proxychains4 (strict_chain) through srelay follows the rules", {
      skip: modeSkip || skipUnless(NO_CURL, NO_PROXYCHAINS, NO_MICROSOCKS),
    }, async () => {
      const conf = join(workDir, `proxychains-${mode}.conf`);
      writeFileSync(
        conf,
        [
          "strict_chain",
          "quiet_mode",
          "tcp_read_time_out 5000",
          "tcp_connect_time_out 5000",
          "[ProxyList]",
          `socks5 127.0.0.1 ${server.port}`,
          "",
        ]
          .join("\n"),
      );
      const cases = [["1.1", "127.0.0.11", relay(port.A!)], [
        "1.9",
        "127.0.0.1",
        "direct",
      ]] as const;
      for (const [name, peer, route] of cases) {
        const whoami = target(name);
        const mark = server.output().length;
        const result = await runCommand("proxychains4", [
          "-q",
          "-f",
          conf,
          "curl",
          "-sS",
          "--max-time",
          "10",
          whoami.url("/pc"),
        ]);
        assert.equal(result.stderr, "");
        assert.deepEqual(parseWhoami(result.stdout), {
          peer,
          at: `${whoami.host}:${whoami.port}`,
          path: "/pc",
        });
        await waitForNewOutput(
          server,
          mark,
          new RegExp(`5-CON ${escape(whoami.host)}:${whoami.port}\\(ipv4\\) - ${escape(route)}\\n`),
        );
      }
    });

    for (const failure of FAILURE_CASES) {
      test(failure.name, { skip: modeSkip || failure.skip }, async () => {
        const whoami = target(failure.target);
        const mark = server.output().length;
        const client = await openClient("127.0.0.1", server.port);
        try {
          client.send(socks5ConnectBytes(whoami.host, whoami.port));
          assert.deepEqual([...await client.read(2)], [5, 0]);
          const reply = await client.read(10);
          assert.equal(reply[0], 5);
          assert.equal(reply[1], failure.rep, `REP 0x${reply[1]?.toString(16)}`);
          assert.equal(
            await client.closedWithin(3000),
            true,
            "the server closes after a failure reply",
          );
        } finally {
          client.close();
        }
        const line = await waitForNewOutput(
          server,
          mark,
          new RegExp(`5-CON ${escape(whoami.host)}:${whoami.port} relay=\\S+ failed: .*`),
        );
        assert.match(line, failure.log());
      });
    }

    for (
      const [option, value, listen] of [["-x", "127.0.0.20", "127.0.0.1"], [
        "-g",
        null,
        "127.0.0.21",
      ]] as const
    ) {
      test(`${option}: direct traffic and the nearest hop see ${value ?? listen}`, {
        skip: modeSkip || NO_CURL,
        timeout: 30_000,
      }, async () => {
        const source = value ?? listen;
        const sourced = await startServer(mode, [
          "-i",
          `${listen}:0`,
          ...(value === null ? [option] : [option, value]),
          "-c",
          confPath,
          "--grace",
          "1",
        ]);
        try {
          const direct = target("1.9");
          const answer = await curlWhoami(
            "--socks5",
            `${listen}:${sourced.port}`,
            direct.url(`/${option}`),
          );
          assert.equal(answer.peer, source);
          const hopMark = hops.srelay.output().length;
          const viaHop = target("1.6");
          const hopAnswer = await curlWhoami(
            "--socks5",
            `${listen}:${sourced.port}`,
            viaHop.url(`/${option}`),
          );
          assert.equal(hopAnswer.peer, "127.0.0.15");
          await waitForNewOutput(
            hops.srelay,
            hopMark,
            new RegExp(
              `${escape(source)}:\\d+ 5-CON ${escape(viaHop.host)}:${viaHop.port}\\(ipv4\\)`,
            ),
          );
        } finally {
          await sourced.stop();
        }
      });
    }
  });
}
