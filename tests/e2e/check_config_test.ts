/**
 * End to end: `--check-config` and how the real CLI treats srelay.conf at
 * start-up, in every mode of `serverModes()`: the effective table is printed
 * with hops in travel order, every error is listed as `FILE:LINE: reason`,
 * a broken or missing explicit `-c FILE` stops the server from starting, and
 * a missing default file means "everything direct".
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../helpers/run_command.ts";
import { serverCommand, type ServerMode, serverModes, startServer } from "../helpers/srelay_process.ts";

/** The compiled-in default route table (src/cli/options.ts). */
const DEFAULT_CONFIG = "/usr/local/etc/srelay.conf";
const DEFAULT_EXISTS = existsSync(DEFAULT_CONFIG)
  ? `${DEFAULT_CONFIG} exists on this machine, so the missing-default case cannot be run`
  : false;

const GOOD = [
  "# srelay.conf with one line of each kind",
  "10.1.1.0/25 any 100.100.100.100 1111 firewall 8080/H fw2 1080",
  "; a comment",
  "[2001:db8::/64] 1024- [2001:db8::1] 1080/5",
  "example.com 80-443/T proxy 3128/H",
  "*  any  192.168.1.5",
  "1.2.3.4 -",
  "*.corp.com any 10.0.0.1 1080",
  "",
].join("\n");

/** `--check-config` output for GOOD, with runs of spaces collapsed. */
const GOOD_TABLE = [
  "2 10.1.1.0/25 any tcp+udp via fw2:1080(socks) -> firewall:8080(http) -> 100.100.100.100:1111(socks)",
  "4 2001:db8::/64 1024-65535 tcp+udp via [2001:db8::1]:1080(socks5)",
  "5 example.com 80-443 tcp via proxy:3128(http)",
  "6 * any tcp+udp via 192.168.1.5:1080(socks)",
  "7 1.2.3.4/32 any tcp+udp direct",
  "8 .corp.com any tcp+udp via 10.0.0.1:1080(socks)",
  "(no match) direct",
];

const BROKEN = [
  "# three broken lines among valid ones",
  "127.0.1.1 any 127.0.0.1 1080/5",
  "127.0.1.2 bogus 127.0.0.1 1080/5",
  "",
  "300.1.2.3 any",
  "127.0.1.3 any hopname 127.0.0.1 1080",
  "",
].join("\n");

/** The errors BROKEN must produce, by line. */
const BROKEN_ERRORS: Array<[number, RegExp]> = [
  [3, /invalid port 'bogus'/],
  [5, /invalid IPv4 address '300\.1\.2\.3'/],
  [6, /hop 'hopname' needs a port/],
];

let dir: string;
let goodPath: string;
let brokenPath: string;
let missingPath: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "srelay-check-"));
  goodPath = join(dir, "good.conf");
  brokenPath = join(dir, "broken.conf");
  missingPath = join(dir, "missing.conf");
  writeFileSync(goodPath, GOOD);
  writeFileSync(brokenPath, BROKEN);
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function srelay(mode: ServerMode, args: string[]) {
  const [program, ...prefix] = serverCommand(mode);
  return runCommand(program!, [...prefix, ...args], { timeoutMs: 30_000 });
}

const collapse = (line: string) => line.trim().split(/\s+/).join(" ");
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Asserts that `text` lists every error of BROKEN as `FILE:LINE: reason`, one per line. */
function assertBrokenErrors(text: string): void {
  const lines = text.split("\n");
  for (const [line, reason] of BROKEN_ERRORS) {
    const prefix = `${brokenPath}:${line}: `;
    const found = lines.find((candidate) => candidate.startsWith(prefix));
    assert.ok(found !== undefined, `no error for line ${line} in:\n${text}`);
    assert.match(found, reason);
  }
  for (const line of [1, 2, 4]) {
    assert.ok(
      !text.includes(`${brokenPath}:${line}:`),
      `line ${line} is valid but was reported:\n${text}`,
    );
  }
}

/** What --check-config says about the safe default of an exposed listener without authentication. */
const INTERNAL_DEFAULT_LINE =
  "# default for an exposed listener without authentication: destinations on this host (loopback, its own and link-local addresses) are blocked unless a rule passes them by address; --allow-internal lifts it";

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) --check-config and srelay.conf at start-up`, () => {
    test(
      "--check-config prints the effective table, hops in travel order, and exits 0",
      { skip },
      async () => {
        const result = await srelay(mode, ["--check-config", "-c", goodPath]);
        assert.equal(result.code, 0, result.stderr);
        const lines = result.stdout.trimEnd().split("\n");
        assert.equal(lines[0], `# ${goodPath}: 6 rules, first match wins; hops in travel order`);
        assert.deepEqual(lines.slice(1, -1).map(collapse), GOOD_TABLE);
        assert.equal(lines.at(-1), INTERNAL_DEFAULT_LINE, "the default -i :1080 is exposed and needs no auth");
        assert.match(
          result.stderr,
          new RegExp(
            `^${escape(goodPath)}:8: warning: '\\*\\.corp\\.com' is read as the suffix`,
            "m",
          ),
        );
      },
    );

    test(
      "--check-config on a broken file lists every error as FILE:LINE: and exits 1",
      { skip },
      async () => {
        const result = await srelay(mode, ["--check-config", "-c", brokenPath]);
        assert.equal(result.code, 1);
        assert.equal(result.stdout, "", "no table is printed for a broken file");
        assertBrokenErrors(result.stderr);
        assert.match(result.stderr, new RegExp(`^${escape(brokenPath)}: 3 errors?$`, "m"));
      },
    );

    test(
      "the server refuses to start with a broken -c FILE and lists the errors",
      { skip },
      async () => {
        const result = await srelay(mode, ["-f", "-i", "127.0.0.1:0", "-c", brokenPath]);
        assert.equal(result.code, 1);
        assert.doesNotMatch(result.stdout + result.stderr, /listening on/);
        assertBrokenErrors(result.stderr);
        assert.match(
          result.stderr,
          new RegExp(`${escape(brokenPath)} has errors; nothing started`),
        );
      },
    );

    test(
      "a missing explicit -c FILE is an error at start-up that names the file",
      { skip },
      async () => {
        const result = await srelay(mode, ["-f", "-i", "127.0.0.1:0", "-c", missingPath]);
        assert.equal(result.code, 1);
        assert.doesNotMatch(result.stdout + result.stderr, /listening on/);
        assert.match(
          result.stderr,
          new RegExp(`^${escape(missingPath)}:0: Cannot read config file`, "m"),
        );
        const check = await srelay(mode, ["--check-config", "-c", missingPath]);
        assert.equal(check.code, 1);
        assert.match(
          check.stderr,
          new RegExp(`^${escape(missingPath)}:0: Cannot read config file`, "m"),
        );
      },
    );

    test("a missing default file is fine: every destination is direct", {
      skip: skip || DEFAULT_EXISTS,
      timeout: 30_000,
    }, async () => {
      const check = await srelay(mode, ["--check-config"]);
      assert.equal(check.code, 0, check.stderr);
      assert.equal(
        check.stdout,
        `# ${DEFAULT_CONFIG} does not exist: every destination is direct\n(no match) direct\n${INTERNAL_DEFAULT_LINE}\n`,
      );
      const server = await startServer(mode, ["-i", "127.0.0.1:0", "--grace", "1"]);
      try {
        await server.waitForOutput(
          new RegExp(
            `No route table at ${escape(DEFAULT_CONFIG)}: every destination is reached directly`,
          ),
        );
      } finally {
        await server.stop();
      }
    });
  });
}
