/**
 * End to end: access control (issue 15) against the real CLI in every mode
 * of `serverModes()`, driven by curl, ncat and byte-level clients bound to
 * chosen loopback source addresses.
 *
 * Three servers per mode:
 *
 * - "guarded": loopback listeners only (127.0.0.1, [::1], and 127.0.1.53 /
 *   127.0.1.54 for the rules that name hosts), `-w` with a hosts.allow and
 *   hosts.deny that use every hosts_access(5) pattern form, `-r` for client
 *   names, and `--rules`. hosts.deny ends in `ALL : ALL`, so each client is
 *   admitted only by the rule meant for it.
 * - "exposed": listens on a non-loopback address of this machine without
 *   authentication, so destinations on the machine itself are refused.
 * - "exposed --allow-internal": the same, with the default lifted (and
 *   tcp_wrappers without -r, where every client is UNKNOWN).
 *
 * Names are made up and put in /etc/hosts for the run (the original is
 * restored afterwards, on failure too): with `-r` every client address is
 * looked up, and every address and name used here is answered from
 * /etc/hosts, so no DNS query leaves the machine. Every connection stays on
 * the machine: the "exposed" address is this host's own.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  accessSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { connect, type Socket } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { closedPort, type FakeServer, startEchoServer } from "../helpers/fake_hops.ts";
import { needs } from "../helpers/peers.ts";
import { runCommand } from "../helpers/run_command.ts";
import { waitForNewOutput } from "../helpers/server_log.ts";
import {
  type RunningServer,
  serverCommand,
  type ServerMode,
  serverModes,
  startServer,
} from "../helpers/srelay_process.ts";

process.env.DENO_NO_UPDATE_CHECK = "1";

const CURL = needs("curl");
const NCAT = needs("ncat");

// ---- /etc/hosts -----------------------------------------------------------------

const HOSTS = "/etc/hosts";
const BLOCK_BEGIN = "# srelay access_control_test: begin (removed when the test ends)";
const BLOCK_END = "# srelay access_control_test: end";

const HOSTS_SKIP: string | false = (() => {
  try {
    accessSync(HOSTS, constants.W_OK);
    return false;
  } catch {
    return `${HOSTS} is not writable (run as root): the -r tests need names this test controls`;
  }
})();

/** Clients of the name rules, and target names, with their addresses. */
const NAMED: ReadonlyArray<[string, string]> = [
  ["::1", "v6.srelay-e2e.test"],
  ["127.0.0.2", "client2.srelay-e2e.test"],
  ["127.0.0.3", "client3.srelay-e2e.test"],
  ["127.0.3.1", "trusted.lab.srelay-e2e.test"],
  ["127.0.3.11", "notlab.srelay-e2e.test"],
  ["127.0.3.2", "build7.srelay-e2e.test"],
  ["127.0.3.12", "build12.srelay-e2e.test"],
  ["127.0.3.3", "gw.srelay-e2e.test"],
  ["127.0.3.13", "gw2.srelay-e2e.test"],
  ["127.0.3.8", "a.b.wild.srelay-e2e.test"],
  ["127.0.3.18", "wild.srelay-e2e.test"],
  ["127.0.3.4", "srelaylocal"],
  ["127.0.3.5", "known.elsewhere.test"],
  ["127.0.3.9", "x.denied.srelay-e2e.test"],
  ["127.0.3.99", "liar.srelay-e2e.test"],
  ["127.0.20.5", "sneaky.srelay-e2e.test"],
  ["127.0.21.1", "www.blocked.srelay-e2e.test"],
  ["127.0.21.2", "notblocked.srelay-e2e.test"],
  ["127.0.20.6", "mixed.srelay-e2e.test"],
  ["127.0.27.1", "mixed.srelay-e2e.test"],
  ["127.0.30.2", "internal.srelay-e2e.test"],
];

/** The PARANOID client: its reverse name is liar.srelay-e2e.test, whose (cached) forward answer is 127.0.3.99. */
const LIAR = "127.0.3.7";

let originalHosts: string | null = null;
let hostsLines: string[] = [];

function stripBlock(text: string): string {
  const lines = text.split("\n");
  const begin = lines.indexOf(BLOCK_BEGIN);
  const end = lines.indexOf(BLOCK_END);
  if (begin < 0 || end < begin) return text;
  return [...lines.slice(0, begin), ...lines.slice(end + 1)].join("\n");
}

function writeHosts(extra: readonly string[] = []): void {
  if (originalHosts === null) return;
  const base = originalHosts.endsWith("\n") || originalHosts === "" ? originalHosts : `${originalHosts}\n`;
  writeFileSync(HOSTS, `${base}${[BLOCK_BEGIN, ...hostsLines, ...extra, BLOCK_END].join("\n")}\n`);
}

function restoreHosts(): void {
  if (originalHosts === null) return;
  writeFileSync(HOSTS, originalHosts);
  originalHosts = null;
}

process.on("exit", restoreHosts);

// ---- the machine's non-loopback address -------------------------------------------

/** An IPv4 address of this machine that is not loopback or link-local, or null. */
function externalAddress(): string | null {
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) {
      const v4 = entry.family === "IPv4" || (entry.family as unknown) === 4;
      if (v4 && !entry.internal && !entry.address.startsWith("169.254.") && !entry.address.startsWith("127.")) {
        return entry.address;
      }
    }
  }
  return null;
}

const EXTERNAL = externalAddress();
const EXTERNAL_SKIP: string | false = EXTERNAL === null
  ? "this machine has no non-loopback IPv4 address to listen on"
  : false;

// ---- targets --------------------------------------------------------------------

/** A target that counts the connections it accepted. */
interface Target {
  readonly host: string;
  readonly port: number;
  readonly accepted: number;
  close(): Promise<void>;
}

/** An HTTP target answering `hello from HOST PATH`. */
async function startWeb(host: string, port = 0): Promise<Target> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const server = createHttpServer((request, response) => {
    response.setHeader("connection", "close");
    response.end(`hello from ${host} ${request.url}`);
  });
  server.on("connection", (socket: Socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : 0);
    });
  });
  return {
    host,
    port: bound,
    get accepted() {
      return accepted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function startEcho(host: string): Promise<FakeServer> {
  return await startEchoServer({ host });
}

let dir: string;
let echo: FakeServer; // 127.0.0.1: the target of every admission probe
let web: Target; // 127.0.0.1
let subnetWeb: Target; // 127.0.20.1, in a blocked subnet
let sneakyWeb: Target; // 127.0.20.5: sneaky.srelay-e2e.test, in the blocked subnet
let blockedWeb: Target; // 127.0.21.1: www.blocked.srelay-e2e.test
let notBlockedWeb: Target; // 127.0.21.2: notblocked.srelay-e2e.test
let portX: FakeServer; // 127.0.22.1, its port in a blocked range
let portY: FakeServer; // 127.0.22.1, outside it
let connectBlocked: FakeServer; // 127.0.23.1: CONNECT blocked
let bindBlocked: FakeServer; // 127.0.24.1: BIND and UDP blocked
let fromBlocked: FakeServer; // 127.0.25.1: blocked for client 127.0.0.3
let fromNameBlocked: FakeServer; // 127.0.28.1: blocked for client client3.srelay-e2e.test
let userBlocked: FakeServer; // 127.0.26.1: blocked for users alice and bob
let mixedGood: Target; // 127.0.27.1: mixed.srelay-e2e.test's allowed address
let mixedBad: Target; // 127.0.20.6, same port: its blocked address
let passedEcho: FakeServer; // 127.0.30.1: passed by address on the exposed listener
let namedInternal: FakeServer; // 127.0.30.2: internal.srelay-e2e.test
let ownEcho: FakeServer | null = null; // on the external address
let refusedPort: number;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "srelay-acl-"));
  if (HOSTS_SKIP === false) {
    originalHosts = stripBlock(readFileSync(HOSTS, "utf8"));
    const named = new Set(NAMED.map(([address]) => address));
    const generated = CLIENT_ADDRESSES.filter((address) => !named.has(address) && address !== "127.0.0.1")
      .map((address) => `${address} c-${address.replaceAll(".", "-")}.srelay-e2e.test`);
    hostsLines = [...NAMED.map(([address, name]) => `${address} ${name}`), ...generated];
    writeHosts();
  }
  [
    echo,
    web,
    subnetWeb,
    sneakyWeb,
    blockedWeb,
    notBlockedWeb,
    portX,
    connectBlocked,
    bindBlocked,
    fromBlocked,
    fromNameBlocked,
    userBlocked,
    mixedGood,
    passedEcho,
    namedInternal,
    refusedPort,
  ] = await Promise.all([
    startEcho("127.0.0.1"),
    startWeb("127.0.0.1"),
    startWeb("127.0.20.1"),
    startWeb("127.0.20.5"),
    startWeb("127.0.21.1"),
    startWeb("127.0.21.2"),
    startEcho("127.0.22.1"),
    startEcho("127.0.23.1"),
    startEcho("127.0.24.1"),
    startEcho("127.0.25.1"),
    startEcho("127.0.28.1"),
    startEcho("127.0.26.1"),
    startWeb("127.0.27.1"),
    startEcho("127.0.30.1"),
    startEcho("127.0.30.2"),
    closedPort("127.0.3.99"),
  ]);
  // A second port on 127.0.22.1 outside the blocked range X-1..X+1.
  for (;;) {
    portY = await startEcho("127.0.22.1");
    if (Math.abs(portY.port - portX.port) > 1) break;
    await portY.close();
  }
  mixedBad = await startWeb("127.0.20.6", mixedGood.port);
  if (EXTERNAL !== null) ownEcho = await startEcho(EXTERNAL);
});

after(async () => {
  restoreHosts();
  await Promise.all(
    [
      echo,
      web,
      subnetWeb,
      sneakyWeb,
      blockedWeb,
      notBlockedWeb,
      portX,
      portY,
      connectBlocked,
      bindBlocked,
      fromBlocked,
      fromNameBlocked,
      userBlocked,
      mixedGood,
      mixedBad,
      passedEcho,
      namedInternal,
      ownEcho,
    ].map((server) => server?.close()),
  );
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

// ---- the files ------------------------------------------------------------------

/** The listeners of the guarded server, by role. */
type Listener = "main" | "v6" | "names" | "known";
const GUARDED_LISTENERS: Record<Listener, string> = {
  main: "127.0.0.1",
  v6: "[::1]",
  names: "127.0.1.53",
  known: "127.0.1.54",
};

function hostsAllowText(patternFile: string, sandbox: string): string {
  return [
    "# hosts.allow for srelay's access-control end-to-end test (daemon name srelay).",
    "  # Comments and blank lines are skipped; so is a comment after a rule.",
    "",
    "sshd, in.ftpd : ALL                          # other daemons' rules never apply to srelay",
    "ALL EXCEPT srelay : 127.0.4.2                # every daemon but srelay",
    "ALL EXCEPT sshd : 127.0.4.3                  # every daemon but sshd: srelay included",
    "ALL : 127.0.4.1                              # every daemon",
    "srelay@127.0.0.1 : 127.0.4.5                 # srelay on its 127.0.0.1 listener only",
    "srelay : 127.0.0.2, 127.0.0.3                # the test's clients (127.0.0.1 is in hosts.deny)",
    "srelay : [::1]",
    "srelay : [::ffff:127.0.7.0]/120              # IPv4 clients match in their ::ffff: form",
    "srelay : 127.0.5. EXCEPT 127.0.5.0/255.255.255.240 EXCEPT 127.0.5.1",
    "srelay : 127.0.6.0/25 EXCEPT 127.0.6.64/26",
    "srelay : 127.0.10.1 \\",
    "         127.0.11.0/24                       # continued from the line above",
    "srelay : 127.0.12.1                          # 127.0.12.2 is only in this comment",
    "srelay : 127.0.13.2 : deny",
    "srelay : 127.0.13.",
    "srelay : 127.0.8.?",
    "srelay : 127.0.9.*",
    `srelay : ${patternFile}`,
    `srelay : 127.0.14.1 : spawn (/bin/touch ${sandbox}/spawned-%a) : allow`,
    `srelay : 127.0.14.2 : twist (/bin/touch ${sandbox}/twisted-%a)`,
    "srelay@127.0.1.53 : gw.srelay-e2e.test",
    "srelay@127.0.1.53 : .lab.srelay-e2e.test",
    "srelay@127.0.1.53 : build?.srelay-e2e.test",
    "srelay@127.0.1.53 : *.wild.srelay-e2e.test",
    "srelay@127.0.1.54 : LOCAL : deny",
    "srelay@127.0.1.54 : PARANOID : deny",
    "srelay@127.0.1.54 : KNOWN EXCEPT .denied.srelay-e2e.test",
    "",
  ].join("\n");
}

const HOSTS_DENY_TEXT = [
  "# hosts.deny for srelay's access-control end-to-end test",
  "srelay : 127.0.0.1                           # denied, while 127.0.0.2 is allowed",
  "srelay : 127.0.18.1 : allow                  # an allow option in hosts.deny grants",
  "ALL : ALL",
  "",
].join("\n");

const PATTERN_FILE_TEXT = "# clients from a /path pattern file\n127.0.16.0/24\n";

function rulesText(): string {
  return [
    "# destination rules for srelay's access-control end-to-end test",
    "block to 127.0.20.0/24                       # a subnet (sneaky.srelay-e2e.test resolves into it)",
    "block to .blocked.srelay-e2e.test            # a domain",
    `block to 127.0.22.1 port ${portX.port - 1}-${portX.port + 1}`,
    "block to 127.0.23.1 command connect",
    "block to 127.0.24.1 command bind,udp",
    "block from 127.0.0.3 to 127.0.25.1",
    "block from client3.srelay-e2e.test to 127.0.28.1   # a client by its verified name (-r)",
    "block to 127.0.26.1 user alice,bob           # verified (RFC 1929) names only",
    "",
  ].join("\n");
}

/** How many rules `rulesText()` has. */
const ruleCount = () => rulesText().split("\n").filter((line) => /^(pass|block)\b/.test(line)).length;

/** A rules file with errors: its valid lines would block 127.0.22.1 entirely and pass 127.0.20.0/24. */
const BROKEN_RULES_TEXT = [
  "# version 2, broken: none of it may take effect",
  "block to 127.0.22.1",
  "block to 300.1.2.3",
  "pass to 127.0.20.0/24",
  "allow from 127.0.0.2",
  "",
].join("\n");

/** The 1-based line of `text` that contains `marker` (which must be on exactly one line). */
function lineOf(text: string, marker: string): number {
  const lines = text.split("\n");
  const found = lines.flatMap((line, index) => (line.includes(marker) ? [index + 1] : []));
  if (found.length !== 1) throw new Error(`'${marker}' is on ${found.length} lines`);
  return found[0]!;
}

/** The files of one mode. */
interface ModeFiles {
  readonly sandbox: string;
  readonly conf: string;
  readonly allow: string;
  readonly deny: string;
  readonly patternFile: string;
  readonly rules: string;
  readonly brokenRules: string;
  readonly exposedRules: string;
  readonly openAllow: string;
  readonly openDeny: string;
  readonly allowText: string;
}

function writeModeFiles(mode: ServerMode): ModeFiles {
  const sandbox = join(dir, mode);
  mkdirSync(sandbox, { recursive: true });
  const path = (name: string) => join(sandbox, name);
  const files: ModeFiles = {
    sandbox,
    conf: path("srelay.conf"),
    allow: path("hosts.allow"),
    deny: path("hosts.deny"),
    patternFile: path("clients"),
    rules: path("rules"),
    brokenRules: path("broken.rules"),
    exposedRules: path("exposed.rules"),
    openAllow: path("open.hosts.allow"),
    openDeny: path("open.hosts.deny"),
    allowText: hostsAllowText(path("clients"), sandbox),
  };
  writeFileSync(files.conf, "");
  writeFileSync(files.allow, files.allowText);
  writeFileSync(files.deny, HOSTS_DENY_TEXT);
  writeFileSync(files.patternFile, PATTERN_FILE_TEXT);
  writeFileSync(files.rules, rulesText());
  writeFileSync(files.brokenRules, BROKEN_RULES_TEXT);
  writeFileSync(
    files.exposedRules,
    "pass to 127.0.30.1                  # an internal address passed by address\npass to internal.srelay-e2e.test    # by name: the default still refuses\n",
  );
  writeFileSync(
    files.openAllow,
    "srelay : KNOWN : deny     # without -r no client has a name\nsrelay : UNKNOWN          # so every client is UNKNOWN\n",
  );
  writeFileSync(files.openDeny, "ALL : ALL\n");
  return files;
}

// ---- admission cases --------------------------------------------------------------

/** What a client should get: admitted, or denied by the rule on the line holding `marker`. */
type Expected = "admitted" | { readonly file: "allow" | "deny"; readonly marker: string };

const ADMITTED = "admitted";
const DENY_ALL: Expected = { file: "deny", marker: "ALL : ALL" };
type Case = readonly [source: string, listener: Listener, expected: Expected, why: string];

const DAEMON_CASES: readonly Case[] = [
  ["127.0.4.1", "main", ADMITTED, "daemon ALL"],
  ["127.0.4.2", "main", DENY_ALL, "ALL EXCEPT srelay leaves srelay out"],
  ["127.0.4.3", "main", ADMITTED, "ALL EXCEPT sshd keeps srelay in"],
  ["127.0.4.5", "main", ADMITTED, "srelay@127.0.0.1 on the 127.0.0.1 listener"],
  ["127.0.4.5", "names", DENY_ALL, "srelay@127.0.0.1 on another listener"],
];

const ADDRESS_CASES: readonly Case[] = [
  ["127.0.0.2", "main", ADMITTED, "exact address"],
  ["::1", "v6", ADMITTED, "[v6]"],
  ["127.0.7.9", "main", ADMITTED, "[v6]/len in ::ffff: form"],
  ["127.0.8.7", "main", ADMITTED, "? wildcard on the address"],
  ["127.0.8.17", "main", DENY_ALL, "? is one character"],
  ["127.0.9.200", "main", ADMITTED, "* wildcard on the address"],
  ["127.0.16.9", "main", ADMITTED, "/path pattern file"],
  ["127.0.17.5", "main", DENY_ALL, "not in the pattern file"],
];

const EXCEPT_CASES: readonly Case[] = [
  ["127.0.5.100", "main", ADMITTED, "prefix 127.0.5."],
  ["127.0.5.2", "main", DENY_ALL, "EXCEPT 127.0.5.0/255.255.255.240"],
  ["127.0.5.1", "main", ADMITTED, "EXCEPT ... EXCEPT 127.0.5.1 (nested)"],
  ["127.0.6.7", "main", ADMITTED, "127.0.6.0/25"],
  ["127.0.6.70", "main", DENY_ALL, "EXCEPT 127.0.6.64/26"],
  ["127.0.6.200", "main", DENY_ALL, "outside 127.0.6.0/25"],
];

const SYNTAX_CASES: readonly Case[] = [
  ["127.0.10.1", "main", ADMITTED, "first line of a continued rule"],
  ["127.0.11.4", "main", ADMITTED, "continuation line"],
  ["127.0.12.1", "main", ADMITTED, "rule with a trailing comment"],
  ["127.0.12.2", "main", DENY_ALL, "an address only in a comment"],
  ["127.0.13.2", "main", { file: "allow", marker: "127.0.13.2 : deny" }, "': deny' in hosts.allow"],
  ["127.0.13.3", "main", ADMITTED, "the allow rule after it"],
  ["127.0.18.1", "main", ADMITTED, "': allow' in hosts.deny"],
  ["127.0.18.2", "main", DENY_ALL, "next to it, no option"],
  ["127.0.0.1", "main", { file: "deny", marker: "srelay : 127.0.0.1" }, "hosts.deny"],
];

const NAME_CASES: readonly Case[] = [
  ["127.0.3.3", "names", ADMITTED, "host name gw.srelay-e2e.test"],
  ["127.0.3.13", "names", DENY_ALL, "gw2.srelay-e2e.test is another name"],
  ["127.0.3.1", "names", ADMITTED, "trusted.lab.srelay-e2e.test under .lab.srelay-e2e.test"],
  ["127.0.3.11", "names", DENY_ALL, "notlab.srelay-e2e.test is not under .lab.srelay-e2e.test"],
  ["127.0.3.2", "names", ADMITTED, "build7.srelay-e2e.test matches build?.srelay-e2e.test"],
  ["127.0.3.12", "names", DENY_ALL, "build12.srelay-e2e.test does not"],
  ["127.0.3.8", "names", ADMITTED, "a.b.wild.srelay-e2e.test matches *.wild.srelay-e2e.test"],
  ["127.0.3.18", "names", DENY_ALL, "wild.srelay-e2e.test does not"],
  ["127.0.3.4", "known", { file: "allow", marker: "LOCAL : deny" }, "srelaylocal has no dot: LOCAL"],
  ["127.0.3.5", "known", ADMITTED, "known.elsewhere.test: KNOWN (and not LOCAL)"],
  ["127.0.3.9", "known", DENY_ALL, "KNOWN EXCEPT .denied.srelay-e2e.test"],
];

const EXTRA_CLIENTS = ["127.0.0.3", "127.0.14.1", "127.0.14.2", "127.0.15.1"];

/** Every client address of the guarded server (each gets a name in /etc/hosts, so -r never asks DNS). */
const CLIENT_ADDRESSES = [
  ...new Set(
    [...DAEMON_CASES, ...ADDRESS_CASES, ...EXCEPT_CASES, ...SYNTAX_CASES, ...NAME_CASES]
      .map(([source]) => source)
      .concat(EXTRA_CLIENTS),
  ),
];

// ---- clients --------------------------------------------------------------------

/** A scripted client bound to a chosen source address. */
interface Client {
  readonly localPort: number;
  /** Bytes received and not read yet. */
  readonly buffered: number;
  send(bytes: readonly number[] | Uint8Array | string): void;
  /** Exactly `length` bytes; rejects when the server closes first or after `timeoutMs`. */
  read(length: number, timeoutMs?: number): Promise<Uint8Array>;
  /** Resolves when `length` bytes are buffered (true) or the server closed first (false). */
  settle(length: number, timeoutMs?: number): Promise<boolean>;
  closedWithin(timeoutMs: number): Promise<boolean>;
  close(): void;
}

function openFrom(source: string, host: string, port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, localAddress: source, allowHalfOpen: true });
    let buffer = new Uint8Array(0);
    let ended = false;
    const waiters = new Set<() => void>();
    const wake = () => [...waiters].forEach((waiter) => waiter());
    socket.on("data", (chunk: Uint8Array) => {
      const joined = new Uint8Array(buffer.length + chunk.length);
      joined.set(buffer);
      joined.set(chunk, buffer.length);
      buffer = joined;
      wake();
    });
    for (const event of ["end", "close", "error"]) {
      socket.on(event, () => {
        ended = true;
        wake();
      });
    }
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
          fail(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve({
        localPort: socket.localPort ?? 0,
        get buffered() {
          return buffer.length;
        },
        send(bytes) {
          socket.write(typeof bytes === "string" ? bytes : Uint8Array.from(bytes));
        },
        async read(length, timeoutMs = 5000) {
          await wait(() => buffer.length >= length || ended, timeoutMs, `${length} bytes`);
          if (buffer.length < length) throw new Error(`Server closed after ${buffer.length} of ${length} bytes`);
          const out = buffer.slice(0, length);
          buffer = buffer.slice(length);
          return out;
        },
        async settle(length, timeoutMs = 5000) {
          await wait(() => buffer.length >= length || ended, timeoutMs, `${length} bytes or a close`);
          return buffer.length >= length;
        },
        async closedWithin(timeoutMs) {
          try {
            await wait(() => ended, timeoutMs, "close");
            return true;
          } catch {
            return false;
          }
        },
        close: () => socket.destroy(),
      });
    });
  });
}

const encode = (text: string) => [...new TextEncoder().encode(text)];
const portBytes = (port: number) => [port >> 8, port & 0xff];
const ipv4Bytes = (host: string) => host.split(".").map(Number);

/** A SOCKS5 no-auth greeting and a request (1 CONNECT, 2 BIND) for an IPv4 address or a name. */
function socks5Bytes(host: string, port: number, command = 1): number[] {
  const address = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? [1, ...ipv4Bytes(host)] : [3, host.length, ...encode(host)];
  return [5, 1, 0, 5, command, 0, ...address, ...portBytes(port)];
}

/** A SOCKS4 CONNECT with a USERID, or SOCKS4a when `host` is a name. */
function socks4Bytes(host: string, port: number, userId = ""): number[] {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return [4, 1, ...portBytes(port), ...ipv4Bytes(host), ...encode(userId), 0];
  return [4, 1, ...portBytes(port), 0, 0, 0, 1, ...encode(userId), 0, ...encode(host), 0];
}

/** Sends a SOCKS5 request; resolves with REP and the open client (closed by the caller). */
async function socks5(
  listener: { host: string; port: number },
  source: string,
  bytes: number[],
): Promise<{ rep: number; client: Client }> {
  const client = await openFrom(source, listener.host, listener.port);
  client.send(bytes);
  assert.deepEqual([...await client.read(2)], [5, 0], "method reply");
  const reply = await client.read(10, 10_000);
  return { rep: reply[1]!, client };
}

/** Sends a SOCKS4 request; resolves with CD and the open client. */
async function socks4(
  listener: { host: string; port: number },
  source: string,
  bytes: number[],
): Promise<{ cd: number; client: Client }> {
  const client = await openFrom(source, listener.host, listener.port);
  client.send(bytes);
  const reply = await client.read(8, 10_000);
  assert.equal(reply[0], 0, "VN 0");
  return { cd: reply[1]!, client };
}

/** Sends `text` through an open session and expects it echoed. */
async function echoes(client: Client, text = "ping"): Promise<void> {
  client.send(text);
  assert.equal(new TextDecoder().decode(await client.read(text.length)), text);
}

function curl(args: string[], source?: string) {
  const bind = source === undefined ? [] : ["--interface", source];
  return runCommand("curl", ["-sS", "--max-time", "10", ...bind, ...args], { timeoutMs: 15_000 });
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `host:port` of a `listening on` address. */
function endpoint(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(":");
  return { host: address.slice(0, colon).replace(/^\[|\]$/g, ""), port: Number(address.slice(colon + 1)) };
}

/** Runs the CLI to completion (it should fail to start); bounded in time. */
function runSrelay(mode: ServerMode, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [program, ...prefix] = serverCommand(mode);
  return new Promise((resolve, reject) => {
    const child = spawn(program!, [...prefix, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr!.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// ---- the tests --------------------------------------------------------------------

for (const { mode, skip } of serverModes()) {
  const skipGuarded = skip || HOSTS_SKIP;
  const skipExposed = skip || EXTERNAL_SKIP;

  describe(`srelay (${mode}) access control`, () => {
    let files: ModeFiles;
    let guarded: RunningServer | undefined;
    let exposed: RunningServer | undefined;
    let open: RunningServer | undefined;
    const listeners: Partial<Record<Listener, { host: string; port: number }>> = {};
    const main = () => listeners.main!;
    const proxy = () => `127.0.0.1:${main().port}`;

    before(async () => {
      if (skip) return;
      files = writeModeFiles(mode);
      const starts: Promise<unknown>[] = [];
      if (skipGuarded === false) {
        const args = Object.values(GUARDED_LISTENERS).flatMap((host) => ["-i", `${host}:0`]);
        starts.push(
          startServer(mode, [
            ...args,
            "-c",
            files.conf,
            "--hosts-allow",
            files.allow,
            "--hosts-deny",
            files.deny,
            "-r",
            "--rules",
            files.rules,
            "--handshake-timeout",
            "5",
          ], { listeners: 4 }).then((server) => {
            guarded = server;
            const roles = Object.keys(GUARDED_LISTENERS) as Listener[];
            roles.forEach((role, index) => (listeners[role] = endpoint(server.addresses[index]!)));
          }),
        );
      }
      if (skipExposed === false) {
        starts.push(
          startServer(mode, ["-i", `${EXTERNAL}:0`, "-c", files.conf, "--rules", files.exposedRules])
            .then((server) => (exposed = server)),
          startServer(mode, [
            "-i",
            `${EXTERNAL}:0`,
            "-c",
            files.conf,
            "--allow-internal",
            "--hosts-allow",
            files.openAllow,
            "--hosts-deny",
            files.openDeny,
          ]).then((server) => (open = server)),
        );
      }
      await Promise.all(starts);
    });

    after(async () => {
      await Promise.all([guarded?.stop(), exposed?.stop(), open?.stop()]);
    });

    /** Connects from `source` to a guarded listener and says what happened: admitted, or the deciding rule. */
    async function verdict(source: string, listener: Listener): Promise<string> {
      assert.ok([...CLIENT_ADDRESSES, "127.0.0.1", LIAR].includes(source), `${source} has a name in /etc/hosts`);
      const server = guarded!;
      const { host, port } = listeners[listener]!;
      const mark = server.output().length;
      const client = await openFrom(source, host, port);
      try {
        client.send([...socks5Bytes("127.0.0.1", echo.port), 0x61]);
        if (await client.settle(13)) {
          const reply = await client.read(13);
          assert.equal(reply[3], 0, `${source}: CONNECT succeeded`);
          assert.equal(reply[12], 0x61, `${source}: echoed`);
          return ADMITTED;
        }
        assert.equal(client.buffered, 0, `${source}: closed without a byte`);
        const line = await waitForNewOutput(
          server,
          mark,
          new RegExp(`${escape(source)}\\]?:${client.localPort} denied: \\S+`),
          5000,
        );
        return line.slice(line.lastIndexOf(" ") + 1);
      } finally {
        client.close();
      }
    }

    function expectedVerdict(expected: Expected): string {
      if (expected === ADMITTED) return ADMITTED;
      const file = expected.file === "allow" ? files.allow : files.deny;
      const text = expected.file === "allow" ? files.allowText : HOSTS_DENY_TEXT;
      return `${file}:${lineOf(text, expected.marker)}`;
    }

    async function checkCases(cases: readonly Case[]): Promise<void> {
      const results = await Promise.all(cases.map(([source, listener]) => verdict(source, listener)));
      const wrong = cases.flatMap(([source, listener, expected, why], index) => {
        const want = expectedVerdict(expected);
        return results[index] === want
          ? []
          : [`${source} on ${listener} (${why}): got ${results[index]}, want ${want}`];
      });
      assert.deepEqual(wrong, []);
    }

    /** Waits until `source` gets `want` (polled, at most `timeoutMs`); returns the last verdict. */
    async function eventually(source: string, want: string, timeoutMs = 6000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      let got = await verdict(source, "main");
      while (got !== want && Date.now() < deadline) {
        await sleep(200);
        got = await verdict(source, "main");
      }
      return got;
    }

    /** Waits for the log line refusing `target` by `file:line`. */
    function refusedBy(tag: string, target: string, rule: string, from = 0): Promise<string> {
      return waitForNewOutput(
        guarded!,
        from,
        new RegExp(`${tag}: ${escape(target)}: not allowed by ${escape(rule)}\\n`),
        5000,
      );
    }

    const ruleAt = (marker: string) => `${files.rules}:${lineOf(rulesText(), marker)}`;

    // ---- tcp_wrappers ----

    test("tcp_wrappers daemon lists: ALL, EXCEPT, other daemons, daemon@host", { skip: skipGuarded }, async () => {
      await checkCases(DAEMON_CASES);
    });

    test("tcp_wrappers addresses: n.n.n.n, [v6], [v6]/len, ? and * wildcards, /path files", {
      skip: skipGuarded,
    }, async () => {
      await checkCases(ADDRESS_CASES);
    });

    test("tcp_wrappers EXCEPT: 127.0.5. EXCEPT n.n.n.n/m.m.m.m EXCEPT n.n.n.n; n.n.n.n/len EXCEPT", {
      skip: skipGuarded,
    }, async () => {
      await checkCases(EXCEPT_CASES);
    });

    test("tcp_wrappers syntax: backslash continuation, comments, ': allow' and ': deny'", {
      skip: skipGuarded,
    }, async () => {
      await checkCases(SYNTAX_CASES);
    });

    test("tcp_wrappers with -r: host names, .domain, ? and * on names, LOCAL, KNOWN EXCEPT", {
      skip: skipGuarded,
    }, async () => {
      await checkCases(NAME_CASES);
    });

    test("tcp_wrappers PARANOID: a client whose name does not resolve back to it is denied", {
      skip: skipGuarded,
    }, async () => {
      // The server learns liar.srelay-e2e.test = 127.0.3.99 (its resolver keeps answers for 30 s)...
      const primed = await socks5(main(), "127.0.0.2", socks5Bytes("liar.srelay-e2e.test", refusedPort));
      primed.client.close();
      assert.equal(primed.rep, 5, "liar.srelay-e2e.test resolved (127.0.3.99 refuses the connection)");
      // ...then 127.0.3.7 claims that name in its reverse lookup: forward and reverse disagree.
      writeHosts([`${LIAR} liar.srelay-e2e.test`]);
      try {
        assert.equal(await verdict(LIAR, "known"), `${files.allow}:${lineOf(files.allowText, "PARANOID : deny")}`);
      } finally {
        writeHosts();
      }
    });

    test("127.0.0.2 is admitted while 127.0.0.1 is denied: closed before any SOCKS byte, one log line", {
      skip: skipGuarded || CURL,
    }, async () => {
      const allowed = await curl(["--socks5", proxy(), `http://127.0.0.1:${web.port}/two`], "127.0.0.2");
      assert.equal(allowed.stdout, "hello from 127.0.0.1 /two", allowed.stderr);
      const refused = await curl(["--socks5", proxy(), `http://127.0.0.1:${web.port}/one`], "127.0.0.1");
      assert.notEqual(refused.code, 0);
      assert.equal(refused.stdout, "");

      const server = guarded!;
      const mark = server.output().length;
      const denied = await openFrom("127.0.0.1", main().host, main().port);
      assert.equal(await denied.closedWithin(3000), true, "a denied client that sends nothing is closed");
      assert.equal(denied.buffered, 0, "not one byte sent to it");
      const rule = `${files.deny}:${lineOf(HOSTS_DENY_TEXT, "srelay : 127.0.0.1")}`;
      await waitForNewOutput(
        server,
        mark,
        new RegExp(`127\\.0\\.0\\.1\\]?:${denied.localPort} denied: ${escape(rule)}\\n`),
      );
      const admitted = await openFrom("127.0.0.2", main().host, main().port);
      assert.equal(
        await admitted.closedWithin(500),
        false,
        "an admitted client that sends nothing waits for its greeting",
      );
      admitted.close();
      await sleep(300);
      const mentions = server.output().slice(mark).split("\n")
        .filter((line) => new RegExp(`127\\.0\\.0\\.1\\]?:${denied.localPort}(?!\\d)`).test(line));
      assert.equal(mentions.length, 1, `one log line for the denied client:\n${mentions.join("\n")}`);
    });

    test("tcp_wrappers spawn and twist are never run: their rules are skipped with a warning", {
      skip: skipGuarded,
    }, async () => {
      const spawnLine = lineOf(files.allowText, ": spawn (");
      const twistLine = lineOf(files.allowText, ": twist (");
      const warnings = guarded!.output();
      assert.match(warnings, new RegExp(`${escape(files.allow)}:${spawnLine}: .*'spawn'.*rule skipped`));
      assert.match(warnings, new RegExp(`${escape(files.allow)}:${twistLine}: .*'twist'.*rule skipped`));
      // libwrap would run `touch` and (spawn ... : allow) admit the client; srelay skips both rules.
      assert.equal(await verdict("127.0.14.1", "main"), expectedVerdict(DENY_ALL));
      assert.equal(await verdict("127.0.14.2", "main"), expectedVerdict(DENY_ALL));
      await sleep(500);
      assert.deepEqual(readdirSync(files.sandbox).filter((name) => /spawned|twisted/.test(name)), []);
    });

    test("an edit to hosts.allow or a pattern file takes effect without a restart", { skip: skipGuarded }, async () => {
      const server = guarded!;
      const mark = server.output().length;
      assert.equal(await verdict("127.0.15.1", "main"), expectedVerdict(DENY_ALL));
      try {
        writeFileSync(files.allow, `${files.allowText}srelay : 127.0.15.1     # added while running\n`);
        assert.equal(await eventually("127.0.15.1", ADMITTED), ADMITTED);
        writeFileSync(files.patternFile, `${PATTERN_FILE_TEXT}127.0.17.5\n`);
        assert.equal(await eventually("127.0.17.5", ADMITTED), ADMITTED);
      } finally {
        writeFileSync(files.allow, files.allowText);
        writeFileSync(files.patternFile, PATTERN_FILE_TEXT);
      }
      assert.equal(await eventually("127.0.15.1", expectedVerdict(DENY_ALL)), expectedVerdict(DENY_ALL));
      assert.equal(await eventually("127.0.17.5", expectedVerdict(DENY_ALL)), expectedVerdict(DENY_ALL));
      const since = server.output().slice(mark);
      assert.match(since, /tcp_wrappers tables changed/);
      assert.doesNotMatch(since, /SIGHUP|listening on/, "no reload, no restart");
      assert.equal(server.process.exitCode, null);
    });

    // ---- destination rules ----

    test("loopback-only listeners reach 127.0.0.1 targets as before (no --allow-internal)", {
      skip: skipGuarded || CURL,
    }, async () => {
      const result = await curl(["--socks5-hostname", proxy(), `http://127.0.0.1:${web.port}/loop`], "127.0.0.2");
      assert.equal(result.stdout, "hello from 127.0.0.1 /loop", result.stderr);
      const v6 = await socks5(listeners.v6!, "::1", socks5Bytes("127.0.0.1", echo.port));
      assert.equal(v6.rep, 0);
      await echoes(v6.client);
      v6.client.close();
    });

    test("rules by subnet: REP 02, FILE:LINE in the log, the target never dialled", { skip: skipGuarded }, async () => {
      const mark = guarded!.output().length;
      const { rep, client } = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.20.1", subnetWeb.port));
      assert.equal(rep, 2);
      assert.equal(await client.closedWithin(3000), true);
      client.close();
      await refusedBy("5-CON", `127.0.20.1:${subnetWeb.port}`, ruleAt("127.0.20.0/24"), mark);
      assert.equal(subnetWeb.accepted, 0);
    });

    test("rules by client subnet: 127.0.0.3 is blocked from a target 127.0.0.2 reaches", {
      skip: skipGuarded,
    }, async () => {
      const mark = guarded!.output().length;
      const blocked = await socks5(main(), "127.0.0.3", socks5Bytes("127.0.25.1", fromBlocked.port));
      blocked.client.close();
      assert.equal(blocked.rep, 2);
      await refusedBy("5-CON", `127.0.25.1:${fromBlocked.port}`, ruleAt("from 127.0.0.3"), mark);
      const passed = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.25.1", fromBlocked.port));
      assert.equal(passed.rep, 0);
      await echoes(passed.client);
      passed.client.close();
    });

    test("rules by client name (-r): client3.srelay-e2e.test is blocked from a target 127.0.0.2 reaches", {
      skip: skipGuarded,
    }, async () => {
      const mark = guarded!.output().length;
      const blocked = await socks5(main(), "127.0.0.3", socks5Bytes("127.0.28.1", fromNameBlocked.port));
      blocked.client.close();
      assert.equal(blocked.rep, 2, "127.0.0.3 is client3.srelay-e2e.test (verified: it resolves back)");
      await refusedBy("5-CON", `127.0.28.1:${fromNameBlocked.port}`, ruleAt("from client3.srelay-e2e.test"), mark);
      const passed = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.28.1", fromNameBlocked.port));
      assert.equal(passed.rep, 0);
      await echoes(passed.client);
      passed.client.close();
    });

    test("rules by domain suffix: names under .blocked.srelay-e2e.test refused, notblocked.srelay-e2e.test not", {
      skip: skipGuarded || CURL,
    }, async () => {
      const mark = guarded!.output().length;
      const blocked = await curl(
        ["--socks5-hostname", proxy(), `http://www.blocked.srelay-e2e.test:${blockedWeb.port}/`],
        "127.0.0.2",
      );
      assert.notEqual(blocked.code, 0);
      assert.equal(blocked.stdout, "");
      await refusedBy("5-CON", `www.blocked.srelay-e2e.test:${blockedWeb.port}`, ruleAt(".blocked."), mark);
      assert.equal(blockedWeb.accepted, 0);
      const passed = await curl(
        ["--socks5-hostname", proxy(), `http://notblocked.srelay-e2e.test:${notBlockedWeb.port}/dot`],
        "127.0.0.2",
      );
      assert.equal(passed.stdout, "hello from 127.0.21.2 /dot", passed.stderr);
    });

    test("rules by port range: a port inside P-Q refused, one outside relayed", { skip: skipGuarded }, async () => {
      const mark = guarded!.output().length;
      const inside = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.22.1", portX.port));
      inside.client.close();
      assert.equal(inside.rep, 2);
      await refusedBy("5-CON", `127.0.22.1:${portX.port}`, ruleAt("block to 127.0.22.1 port"), mark);
      const outside = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.22.1", portY.port));
      assert.equal(outside.rep, 0);
      await echoes(outside.client);
      outside.client.close();
      assert.equal(portX.accepted, 0);
    });

    test("rules by command: CONNECT blocked on one target; BIND blocked (REP 02, not 07) on another", {
      skip: skipGuarded,
    }, async () => {
      const mark = guarded!.output().length;
      const connectRefused = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.23.1", connectBlocked.port));
      connectRefused.client.close();
      assert.equal(connectRefused.rep, 2);
      await refusedBy("5-CON", `127.0.23.1:${connectBlocked.port}`, ruleAt("command connect"), mark);
      const connectPassed = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.24.1", bindBlocked.port));
      assert.equal(connectPassed.rep, 0, "CONNECT is not in 'command bind,udp'");
      await echoes(connectPassed.client);
      connectPassed.client.close();
      const bindRefused = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.24.1", bindBlocked.port, 2));
      bindRefused.client.close();
      assert.equal(bindRefused.rep, 2, "BIND refused by the rule");
      await refusedBy("5-BND", `127.0.24.1:${bindBlocked.port}`, ruleAt("command bind,udp"), mark);
      const bindElsewhere = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.23.1", connectBlocked.port, 2));
      bindElsewhere.client.close();
      assert.equal(bindElsewhere.rep, 0, "a BIND no rule blocks is served (its first reply: listening)");
      assert.equal(connectBlocked.accepted, 0);
    });

    test("rules by user: a SOCKS4 USERID is unverified, so 'user alice' does not match it", {
      skip: skipGuarded,
    }, async () => {
      const mark = guarded!.output().length;
      const claimed = await socks4(main(), "127.0.0.2", socks4Bytes("127.0.26.1", userBlocked.port, "alice"));
      assert.equal(claimed.cd, 0x5a, "relayed although the USERID is alice");
      await echoes(claimed.client);
      claimed.client.close();
      await waitForNewOutput(guarded!, mark, new RegExp(`4-CON 127\\.0\\.26\\.1:${userBlocked.port}\\(ipv4\\) alice `));
      if (NCAT === false) {
        const input = "through ncat as bob\n";
        const result = await runCommand(
          "ncat",
          [
            "-s",
            "127.0.0.2",
            "--proxy",
            proxy(),
            "--proxy-type",
            "socks4",
            "--proxy-auth",
            "bob",
            "127.0.26.1",
            String(userBlocked.port),
          ],
          { input, timeoutMs: 10_000 },
        );
        assert.equal(result.stdout, input, result.stderr);
      }
      assert.doesNotMatch(guarded!.output().slice(mark), /not allowed by/);
    });

    test("a host name resolving into a blocked subnet is refused: rules see the resolved address", {
      skip: skipGuarded || CURL,
    }, async () => {
      const mark = guarded!.output().length;
      const result = await curl(
        ["--socks5-hostname", proxy(), `http://sneaky.srelay-e2e.test:${sneakyWeb.port}/`],
        "127.0.0.2",
      );
      assert.notEqual(result.code, 0);
      assert.equal(result.stdout, "");
      await refusedBy("5-CON", `sneaky.srelay-e2e.test:${sneakyWeb.port}`, ruleAt("127.0.20.0/24"), mark);
      assert.equal(sneakyWeb.accepted, 0);
    });

    test("a name with a blocked and an allowed address: only the allowed one is dialled", {
      skip: skipGuarded || CURL,
    }, async () => {
      for (const path of ["/m1", "/m2", "/m3"]) {
        const result = await curl(
          ["--socks5-hostname", proxy(), `http://mixed.srelay-e2e.test:${mixedGood.port}${path}`],
          "127.0.0.2",
        );
        assert.equal(result.stdout, `hello from 127.0.27.1 ${path}`, result.stderr);
      }
      assert.equal(mixedBad.accepted, 0, "127.0.20.6 (blocked) was never dialled");
    });

    test("a SOCKS4a request for a blocked name gets CD 5B", { skip: skipGuarded }, async () => {
      const mark = guarded!.output().length;
      const { cd, client } = await socks4(
        main(),
        "127.0.0.2",
        socks4Bytes("www.blocked.srelay-e2e.test", blockedWeb.port, "someone"),
      );
      assert.equal(cd, 0x5b);
      assert.equal(await client.closedWithin(3000), true);
      client.close();
      await refusedBy("4a-CON", `www.blocked.srelay-e2e.test:${blockedWeb.port}`, ruleAt(".blocked."), mark);
      if (CURL === false) {
        const result = await curl(
          ["--socks4a", proxy(), `http://sneaky.srelay-e2e.test:${sneakyWeb.port}/`],
          "127.0.0.2",
        );
        assert.notEqual(result.code, 0);
        await refusedBy("4a-CON", `sneaky.srelay-e2e.test:${sneakyWeb.port}`, ruleAt("127.0.20.0/24"), mark);
      }
      assert.equal(blockedWeb.accepted + sneakyWeb.accepted, 0);
    });

    test("a malformed rules file stops the start: exit 1, FILE:LINE on stderr", { skip }, async () => {
      const result = await runSrelay(mode, ["-f", "-i", "127.0.0.1:0", "-c", files.conf, "--rules", files.brokenRules]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`^${escape(files.brokenRules)}:3: .*'300\\.1\\.2\\.3'`, "m"));
      assert.match(result.stderr, new RegExp(`^${escape(files.brokenRules)}:5: .*'allow'`, "m"));
      assert.doesNotMatch(result.stdout + result.stderr, /listening on/);
    });

    test("SIGHUP with a malformed rules file is rejected and the old rules stay; a good file then applies", {
      skip: skipGuarded,
    }, async () => {
      const server = guarded!;
      const reload = async (outcome: RegExp) => {
        const mark = server.output().length;
        server.signal("SIGHUP");
        await waitForNewOutput(server, mark, outcome, 5000);
        return mark;
      };
      try {
        writeFileSync(files.rules, BROKEN_RULES_TEXT);
        const mark = await reload(/Reload rejected: .*/);
        const output = server.output().slice(mark);
        assert.match(output, new RegExp(`${escape(files.rules)}:3: .*'300\\.1\\.2\\.3'`));
        assert.match(output, new RegExp(`${escape(files.rules)}:5: .*'allow'`));
        const subnet = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.20.1", subnetWeb.port));
        subnet.client.close();
        assert.equal(subnet.rep, 2, "the old subnet rule still blocks");
        await refusedBy("5-CON", `127.0.20.1:${subnetWeb.port}`, ruleAt("127.0.20.0/24"), mark);
        const other = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.22.1", portY.port));
        assert.equal(other.rep, 0, "the broken file's 'block to 127.0.22.1' is not in force");
        other.client.close();

        writeFileSync(files.rules, `${rulesText()}block to 127.0.22.1\n`);
        await reload(new RegExp(`Destination rules ${escape(files.rules)}: ${ruleCount() + 1} rules`));
        const now = await socks5(main(), "127.0.0.2", socks5Bytes("127.0.22.1", portY.port));
        now.client.close();
        assert.equal(now.rep, 2, "the good file's new rule is in force");
      } finally {
        writeFileSync(files.rules, rulesText());
        await reload(new RegExp(`Destination rules ${escape(files.rules)}: ${ruleCount()} rules`));
      }
    });

    // ---- the exposed-listener default ----

    test("an exposed listener without auth refuses this host's own destinations (REP 02 / CD 5B)", {
      skip: skipExposed,
    }, async () => {
      const server = exposed!;
      const listener = endpoint(server.addresses[0]!);
      const source = EXTERNAL!;
      const mark = server.output().length;
      const accepted = echo.accepted + ownEcho!.accepted + namedInternal.accepted;
      const loopback = await socks5(listener, source, socks5Bytes("127.0.0.1", echo.port));
      loopback.client.close();
      assert.equal(loopback.rep, 2, "127.0.0.1");
      const v4 = await socks4(listener, source, socks4Bytes("127.0.0.1", echo.port));
      v4.client.close();
      assert.equal(v4.cd, 0x5b, "127.0.0.1 over SOCKS4");
      const mapped = await socks5(listener, source, [
        ...[5, 1, 0, 5, 1, 0, 4],
        ...[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1],
        ...portBytes(echo.port),
      ]);
      mapped.client.close();
      assert.equal(mapped.rep, 2, "[::ffff:127.0.0.1]");
      const byName = await socks5(listener, source, socks5Bytes("localhost", echo.port));
      byName.client.close();
      assert.equal(byName.rep, 2, "localhost");
      const own = await socks5(listener, source, socks5Bytes(EXTERNAL!, ownEcho!.port));
      own.client.close();
      assert.equal(own.rep, 2, "this host's own address");
      const named = await socks5(listener, source, socks5Bytes("internal.srelay-e2e.test", namedInternal.port));
      named.client.close();
      assert.equal(named.rep, 2, "a rule passing a name does not lift the default");
      assert.equal(echo.accepted + ownEcho!.accepted + namedInternal.accepted, accepted, "nothing was dialled");
      await waitForNewOutput(
        server,
        mark,
        new RegExp(`5-CON: 127\\.0\\.0\\.1:${echo.port}: not allowed by the default for an exposed listener`),
      );
      if (CURL === false) {
        const result = await curl(["--socks5", server.addresses[0]!, `http://127.0.0.1:${web.port}/`]);
        assert.notEqual(result.code, 0);
      }
    });

    test("an exposed listener: a rule passing an internal address by address lifts the default for it", {
      skip: skipExposed,
    }, async () => {
      const listener = endpoint(exposed!.addresses[0]!);
      const passed = await socks5(listener, EXTERNAL!, socks5Bytes("127.0.30.1", passedEcho.port));
      assert.equal(passed.rep, 0);
      await echoes(passed.client);
      passed.client.close();
    });

    test("--allow-internal: an exposed listener reaches 127.0.0.1 and this host's own address", {
      skip: skipExposed,
    }, async () => {
      const server = open!;
      const listener = endpoint(server.addresses[0]!);
      if (CURL === false) {
        const result = await curl(["--socks5", server.addresses[0]!, `http://127.0.0.1:${web.port}/internal`]);
        assert.equal(result.stdout, "hello from 127.0.0.1 /internal", result.stderr);
      }
      const v4 = await socks4(listener, EXTERNAL!, socks4Bytes("127.0.0.1", echo.port));
      assert.equal(v4.cd, 0x5a);
      await echoes(v4.client);
      v4.client.close();
      const own = await socks5(listener, EXTERNAL!, socks5Bytes(EXTERNAL!, ownEcho!.port));
      assert.equal(own.rep, 0);
      await echoes(own.client);
      own.client.close();
      assert.match(server.output(), /--allow-internal: destinations on this host/);
    });

    test("tcp_wrappers without -r: KNOWN never matches, UNKNOWN matches every client", {
      skip: skipExposed,
    }, async () => {
      const server = open!;
      assert.match(server.output(), /without -r client names are unknown/);
      // Admitted only by 'srelay : UNKNOWN' (hosts.deny is ALL : ALL), past 'srelay : KNOWN : deny'.
      const listener = endpoint(server.addresses[0]!);
      const client = await openFrom(EXTERNAL!, listener.host, listener.port);
      client.send([...socks5Bytes("127.0.0.1", echo.port), 0x62]);
      const reply = await client.read(13);
      assert.equal(reply[3], 0);
      assert.equal(reply[12], 0x62);
      client.close();
      assert.doesNotMatch(server.output(), / denied: /);
    });
  });
}
