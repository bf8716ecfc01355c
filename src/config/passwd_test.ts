import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ConfigIssue, formatIssue } from "./config_issue.ts";
import {
  findCredentials,
  parseSrelayPasswd,
  PASSWD_CHECK_INTERVAL_MS,
  type PasswdEntry,
  PasswdFile,
} from "./passwd.ts";

const FILE = "srelay.passwd";

function entriesOf(text: string): PasswdEntry[] {
  const { entries, issues } = parseSrelayPasswd(text, FILE);
  assert.deepEqual(issues, []);
  return entries;
}

describe("parseSrelayPasswd", () => {
  test("the shipped sample, with an IPv6 line", () => {
    const path = fileURLToPath(new URL("../../tests/fixtures/config/srelay.passwd", import.meta.url));
    assert.deepEqual(entriesOf(readFileSync(path, "utf8")), [
      { line: 5, host: "192.168.1.1", port: 0, username: "hogahoge", password: '%"aXhe' },
      { line: 6, host: "2.2.2.100", port: 10080, username: "hogehoge", password: '%"aXhe' },
      { line: 7, host: "2001:db8::1", port: 1080, username: "u", password: "p" },
    ]);
  });

  const hosts: Array<[string, string, number]> = [
    ["proxy.example.com", "proxy.example.com", 0],
    ["Proxy.Example.COM./1080", "proxy.example.com", 1080],
    [".example.com", ".example.com", 0],
    ["*", "*", 0],
    ["*/8080", "*", 8080],
    ["10.0.0.1/", "10.0.0.1", 0],
    ["[::1]", "::1", 0],
  ];
  for (const [field, host, port] of hosts) {
    test(`host field ${field}`, () => {
      assert.deepEqual(entriesOf(`${field} user pass`), [{ line: 1, host, port, username: "user", password: "pass" }]);
    });
  }

  test("comments, blank lines and separators", () => {
    const text = "# c\n;c\n\n  # indented\nhost1\tuser1,pass1\r\nhost2 , user2 ,, pass2\n";
    assert.deepEqual(entriesOf(text).map((e) => [e.line, e.host, e.username, e.password]), [
      [5, "host1", "user1", "pass1"],
      [6, "host2", "user2", "pass2"],
    ]);
  });

  test("#15: '#' after the host field separates, so 'xyz$12#' is the password 'xyz$12'", () => {
    const { entries, issues } = parseSrelayPasswd("proxy  hogehoga  xyz$12#\n", FILE);
    assert.equal(entries[0]?.password, "xyz$12");
    assert.deepEqual(issues.map(formatIssue), [
      "srelay.passwd:1: warning: '#' separates fields here: a user name or password cannot contain '#', ';', ',', space or TAB",
    ]);
  });

  test("a trailing comment is extra fields, with warnings and no secret in them", () => {
    const { entries, issues } = parseSrelayPasswd("proxy alice s3cret ; old: hunter2\n", FILE);
    assert.equal(entries[0]?.password, "s3cret");
    assert.deepEqual(issues.map(formatIssue), [
      "srelay.passwd:1: warning: ';' separates fields here: a user name or password cannot contain '#', ';', ',', space or TAB",
      "srelay.passwd:1: warning: 2 extra field(s) after the password for 'proxy' are ignored",
    ]);
    for (const issue of issues) assert.ok(!/s3cret|hunter2|alice/.test(issue.message));
  });

  const errors: Array<[string, string]> = [
    ["proxy", "user name and password missing for 'proxy'"],
    ["proxy alice", "password missing for 'proxy'"],
    ["proxy/http alice secret", "invalid port 'http' in 'proxy/http'"],
    ["proxy/70000 alice secret", "invalid port '70000' in 'proxy/70000'"],
    ["1.2.3 alice secret", "invalid IPv4 address '1.2.3'"],
    ["[::1 alice secret", "invalid IPv6 address '[::1'"],
    ["proxy:1080 alice secret", "invalid proxy host 'proxy:1080'"],
    ["/1080 alice secret", "proxy host missing in '/1080'"],
    [`proxy ${"u".repeat(256)} secret`, "user name for 'proxy' is longer than 255 bytes"],
    [`proxy alice ${"p".repeat(256)}`, "password for 'proxy' is longer than 255 bytes"],
  ];
  for (const [line, message] of errors) {
    test(`error: ${line.slice(0, 40)}`, () => {
      const { entries, issues } = parseSrelayPasswd(`# header\n${line}\n`, FILE);
      assert.deepEqual(entries, []);
      assert.deepEqual(issues.map(formatIssue), [`srelay.passwd:2: ${message}`]);
      for (const issue of issues) assert.ok(!issue.message.includes("secret"));
    });
  }

  const warnings: Array<[string, string, string]> = [
    ["2001:db8::1 u p", "2001:db8::1", "unbracketed IPv6 address '2001:db8::1' is read as IPv6; write [2001:db8::1]"],
    [
      "*.corp.com u p",
      ".corp.com",
      "'*.corp.com' is read as the suffix '.corp.com' (srelay read any host starting with '*' as match-all); write * to match every hop",
    ],
  ];
  for (const [line, host, message] of warnings) {
    test(`warning: ${line}`, () => {
      const { entries, issues } = parseSrelayPasswd(line, FILE);
      assert.equal(entries[0]?.host, host);
      assert.deepEqual(issues.map(formatIssue), [`srelay.passwd:1: warning: ${message}`]);
    });
  }
});

describe("findCredentials", () => {
  const entries = entriesOf([
    "192.168.1.1 ip-any-port p1",
    "2.2.2.100/10080 ip-port p2",
    "[2001:db8::1]/1080 v6 p3",
    "example.com/1080 name-port p4",
    "example.com name-any-port p5",
    ".sub.test sub-only p6",
    "192.168.1.1 shadowed p7",
  ].join("\n"));

  const cases: Array<[string, number, string | null]> = [
    ["192.168.1.1", 1080, "ip-any-port"],
    ["192.168.1.1", 9999, "ip-any-port"],
    ["192.168.1.2", 1080, null],
    ["2.2.2.100", 10080, "ip-port"],
    ["2.2.2.100", 1080, null],
    ["2001:db8::1", 1080, "v6"],
    ["2001:DB8:0:0::1", 1080, "v6"],
    ["[2001:db8::1]", 1080, "v6"],
    ["2001:db8::1", 1081, null],
    ["example.com", 1080, "name-port"],
    ["EXAMPLE.com", 8080, "name-any-port"],
    ["proxy.example.com", 1080, "name-port"],
    ["proxy.example.com.", 1080, "name-port"],
    ["badexample.com", 1080, null],
    ["a.sub.test", 1080, "sub-only"],
    ["sub.test", 1080, null],
    ["1.1.1.1", 1080, null],
  ];
  for (const [host, port, username] of cases) {
    test(`${host}:${port} -> ${username ?? "none"}`, () => {
      const found = findCredentials(entries, { host, port });
      assert.equal(found?.username ?? null, username);
    });
  }

  test("returns only the user name and password", () => {
    assert.deepEqual(findCredentials(entries, { host: "2.2.2.100", port: 10080 }), {
      username: "ip-port",
      password: "p2",
    });
  });

  test("* matches every hop, after earlier lines", () => {
    const withDefault = entriesOf("10.0.0.1 specific a\n* fallback b\n");
    assert.equal(findCredentials(withDefault, { host: "10.0.0.1", port: 1 })?.username, "specific");
    assert.equal(findCredentials(withDefault, { host: "anything.test", port: 1 })?.username, "fallback");
    assert.equal(findCredentials(withDefault, { host: "::1", port: 1 })?.username, "fallback");
  });

  test("a name entry never matches an IP hop, nor an IP entry a name hop", () => {
    assert.equal(findCredentials(entriesOf("localhost name b"), { host: "127.0.0.1", port: 1080 }), null);
    assert.equal(findCredentials(entriesOf("127.0.0.1 ip c"), { host: "localhost", port: 1080 }), null);
    assert.equal(findCredentials(entriesOf("[::1] ip c"), { host: "::1", port: 1080 })?.username, "ip");
  });
});

/** A passwd file in a fresh temp directory, a clock the test moves, and the issues reported. */
function withPasswdFile(
  text: string,
  body: (context: {
    path: string;
    file: PasswdFile;
    clock: { now: number };
    reported: ConfigIssue[];
    /** Rewrites the file with a distinct mtime, so the change is seen even within one clock tick of the file system. */
    rewrite(text: string): void;
  }) => void,
): void {
  const dir = mkdtempSync(join(tmpdir(), "srelay-passwd-"));
  try {
    const path = join(dir, "srelay.passwd");
    let mtime = 1_000_000;
    const rewrite = (next: string) => {
      writeFileSync(path, next);
      utimesSync(path, mtime, mtime);
      mtime += 1000;
    };
    rewrite(text);
    const clock = { now: 5_000_000 };
    const reported: ConfigIssue[] = [];
    const file = new PasswdFile(path, { now: () => clock.now, onIssue: (issue) => reported.push(issue) });
    body({ path, file, clock, reported, rewrite });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const HOP = { host: "proxy", port: 1080 };

describe("PasswdFile", () => {
  test("an edit takes effect at the next check, at most a second later, without a reload", () => {
    withPasswdFile("proxy alice secret1\n", ({ path, file, clock, rewrite }) => {
      assert.equal(file.path, path);
      assert.deepEqual(file.refresh(), []);
      assert.deepEqual(file.lookup(HOP), { username: "alice", password: "secret1" });
      rewrite("proxy alice secret2\n");
      clock.now += PASSWD_CHECK_INTERVAL_MS - 1;
      assert.equal(file.lookup(HOP)?.password, "secret1", "not checked again within the interval");
      clock.now += 1;
      assert.equal(file.lookup(HOP)?.password, "secret2");
    });
  });

  test("at start-up an unreadable file is one error on line 0", () => {
    withPasswdFile("", ({ path, file, reported }) => {
      unlinkSync(path);
      const issues = file.refresh();
      assert.equal(issues.length, 1);
      assert.equal(issues[0]?.line, 0);
      assert.equal(issues[0]?.severity, "error");
      assert.match(issues[0]?.message ?? "", /^Cannot read password file: ENOENT/);
      assert.deepEqual(reported, [], "refresh() returns its issues instead of reporting them");
    });
  });

  test("a file that becomes unreadable keeps the last good credentials and is reported once", () => {
    withPasswdFile("proxy alice secret1\n", ({ path, file, clock, reported, rewrite }) => {
      file.refresh();
      unlinkSync(path);
      for (let i = 0; i < 5; i++) {
        clock.now += PASSWD_CHECK_INTERVAL_MS;
        assert.deepEqual(file.lookup(HOP), { username: "alice", password: "secret1" });
      }
      assert.equal(reported.length, 1, "reported once, not at every check");
      assert.equal(reported[0]?.line, 0);
      assert.equal(reported[0]?.severity, "warning");
      assert.match(
        reported[0]?.message ?? "",
        /^Cannot read password file: ENOENT.*; the credentials read before stay in force$/,
      );
      assert.deepEqual(file.lastIssues, reported);

      // Readable again: the new contents count, and their problems are reported.
      rewrite("proxy bob secret3\nbad\n");
      clock.now += PASSWD_CHECK_INTERVAL_MS;
      assert.deepEqual(file.lookup(HOP), { username: "bob", password: "secret3" });
      assert.deepEqual(reported.slice(1).map(formatIssue), [`${path}:2: user name and password missing for 'bad'`]);

      // Unreadable again: a new change of state, reported again.
      unlinkSync(path);
      clock.now += PASSWD_CHECK_INTERVAL_MS;
      assert.equal(file.lookup(HOP)?.username, "bob");
      assert.equal(reported.length, 3);
      for (const issue of reported) assert.doesNotMatch(issue.message, /secret|alice|bob/, "no secrets in issues");
    });
  });

  test("an unchanged file is not parsed again", () => {
    withPasswdFile("proxy alice secret\n", ({ file, clock }) => {
      const firstIssues = file.refresh();
      assert.equal(firstIssues, file.lastIssues);
      assert.equal(file.lookup(HOP)?.username, "alice");
      clock.now += PASSWD_CHECK_INTERVAL_MS;
      assert.equal(file.lookup(HOP)?.username, "alice");
      assert.equal(file.lastIssues, firstIssues);
    });
  });
});
