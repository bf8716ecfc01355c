import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { formatIssue } from "./config_issue.ts";
import {
  type ClientPattern,
  type DaemonPattern,
  type HostPattern,
  type HostsRule,
  parseHostPatternFile,
  parseHostsTable,
  type PatternList,
} from "./hosts_access.ts";

const FILE = "hosts.allow";

function parse(text: string): { rules: readonly HostsRule[]; issues: string[] } {
  const table = parseHostsTable(text, FILE);
  return { rules: table.rules, issues: table.issues.map(formatIssue) };
}

/** The only rule of a one-line table, which must parse without issues. */
function ruleOf(line: string): HostsRule {
  const { rules, issues } = parse(`${line}\n`);
  assert.deepEqual(issues, []);
  assert.equal(rules.length, 1, `no rule for ${JSON.stringify(line)}`);
  return rules[0] as HostsRule;
}

/** The single client pattern of `srelay: TOKEN`. */
function clientOf(token: string): ClientPattern {
  const rule = ruleOf(`srelay: ${token}`);
  assert.equal(rule.clients.patterns.length, 1);
  return rule.clients.patterns[0] as ClientPattern;
}

/** The warnings of a one-line table whose only rule is skipped. */
function skipped(line: string): string[] {
  const { rules, issues } = parse(`${line}\n`);
  assert.deepEqual(rules, [], `rule kept for ${JSON.stringify(line)}`);
  return issues;
}

function v4(network: number, mask: number): HostPattern {
  return { kind: "network", family: 4, network: BigInt(network), mask: BigInt(mask) };
}

function list<P>(patterns: P[], except: PatternList<P> | null = null): PatternList<P> {
  return { patterns, except };
}

describe("parseHostsTable: lines", () => {
  test("comments, blank lines and the line a rule starts on", () => {
    const text = "# comment\n\n   # indented comment\nsrelay: ALL\r\n  \t\nALL: ALL  # trailing comment\n";
    const { rules, issues } = parse(text);
    assert.deepEqual(issues, []);
    assert.deepEqual(rules.map((rule) => rule.line), [4, 6]);
    assert.deepEqual(rules[1]?.clients, list([{ kind: "all" }]));
  });

  test("a backslash at the end of a line joins the next one, without a blank", () => {
    const { rules, issues } = parse("srelay: 10.0.0.1, \\\n  10.0.0.2 \\\n EXCEPT 10.0.0.2\nALL: 10.\\\n1.2.3\n");
    assert.deepEqual(issues, []);
    assert.deepEqual(rules.map((rule) => rule.line), [1, 4]);
    assert.deepEqual(
      rules[0]?.clients,
      list([v4(0x0a000001, -1 >>> 0), v4(0x0a000002, -1 >>> 0)], list([v4(0x0a000002, -1 >>> 0)])),
    );
    assert.deepEqual(rules[1]?.clients, list([v4(0x0a010203, -1 >>> 0)]));
  });

  test("a last line without a newline, a BOM and CRLF line ends are read", () => {
    const { rules, issues } = parse("\uFEFFsshd: ALL\r\nsrelay: LOCAL");
    assert.deepEqual(issues, []);
    assert.deepEqual(rules.map((rule) => [rule.line, rule.clients.patterns]), [[1, [{ kind: "all" }]], [2, [{
      kind: "local",
    }]]]);
  });

  test("a line without ':' is skipped with a warning naming file:line", () => {
    const { rules, issues } = parse("ALL: ALL\nsrelay 10.0.0.1\n");
    assert.equal(rules.length, 1);
    assert.deepEqual(issues, [
      "hosts.allow:2: warning: missing ':' between the daemon list and the client list; rule skipped",
    ]);
  });

  test("':' inside brackets does not separate fields", () => {
    const rule = ruleOf("srelay: [2001:db8::1], [fe80::]/10 : deny");
    assert.equal(rule.option, "deny");
    assert.deepEqual(rule.clients.patterns.map((p) => p.kind), ["network", "network"]);
  });
});

describe("parseHostsTable: lists", () => {
  test("blanks and commas separate; EXCEPT nests to the right", () => {
    const rule = ruleOf("sshd,srelay ALL: ALL EXCEPT 10. except 10.1. EXCEPT 10.1.2.3");
    assert.deepEqual(rule.daemons.patterns, [
      { daemon: { kind: "exact", text: "sshd" }, host: null },
      { daemon: { kind: "exact", text: "srelay" }, host: null },
      { daemon: { kind: "all" }, host: null },
    ]);
    assert.deepEqual(
      rule.clients,
      list(
        [{ kind: "all" }],
        list([v4(0x0a000000, 0xff000000)], list([v4(0x0a010000, 0xffff0000)], list([v4(0x0a010203, -1 >>> 0)]))),
      ),
    );
  });

  test("EXCEPT in the daemon list", () => {
    const rule = ruleOf("ALL EXCEPT in.telnetd : ALL");
    assert.deepEqual(
      rule.daemons,
      list<DaemonPattern>(
        [{ daemon: { kind: "all" }, host: null }],
        list([{ daemon: { kind: "exact", text: "in.telnetd" }, host: null }]),
      ),
    );
  });

  test("a list that can never match skips the rule", () => {
    assert.deepEqual(skipped(": ALL"), ["hosts.allow:1: warning: empty daemon list; rule skipped"]);
    assert.deepEqual(skipped("srelay:"), ["hosts.allow:1: warning: empty client list; rule skipped"]);
    assert.deepEqual(skipped("srelay: EXCEPT 10.0.0.1"), [
      "hosts.allow:1: warning: the client list starts with EXCEPT and matches nothing; rule skipped",
    ]);
  });

  test("an EXCEPT with nothing after it excludes nothing, with a warning", () => {
    const { rules, issues } = parse("srelay: ALL EXCEPT\n");
    assert.deepEqual(rules[0]?.clients, list([{ kind: "all" }], list([])));
    assert.deepEqual(issues, [
      "hosts.allow:1: warning: EXCEPT without patterns after it in the client list excludes nothing",
    ]);
  });

  test("daemon@host and user@host", () => {
    const rule = ruleOf("srelay@192.0.2.1 : alice@.example.com ALL@10.");
    assert.deepEqual(rule.daemons.patterns, [{
      daemon: { kind: "exact", text: "srelay" },
      host: v4(0xc0000201, -1 >>> 0),
    }]);
    assert.deepEqual(rule.clients.patterns, [
      {
        kind: "user",
        user: { kind: "exact", text: "alice" },
        host: { kind: "name", match: "suffix", text: ".example.com" },
      },
      { kind: "user", user: { kind: "all" }, host: v4(0x0a000000, 0xff000000) },
    ]);
  });

  test("daemon patterns are libwrap string patterns", () => {
    const daemons = ruleOf("SRELAY, .relay, sr*, s?elay, KNOWN, in. : ALL").daemons.patterns.map((p) => p.daemon);
    assert.deepEqual(daemons, [
      { kind: "exact", text: "srelay" },
      { kind: "suffix", text: ".relay" },
      { kind: "glob", text: "sr*" },
      { kind: "glob", text: "s?elay" },
      { kind: "known" },
      { kind: "prefix", text: "in." },
    ]);
  });
});

describe("parseHostsTable: host patterns", () => {
  const cases: Array<[string, HostPattern]> = [
    ["ALL", { kind: "all" }],
    ["all", { kind: "all" }],
    ["KNOWN", { kind: "known" }],
    ["Unknown", { kind: "unknown" }],
    ["LOCAL", { kind: "local" }],
    ["PARANOID", { kind: "paranoid" }],
    ["192.168.", v4(0xc0a80000, 0xffff0000)],
    ["10.", v4(0x0a000000, 0xff000000)],
    ["172.16.5.", v4(0xac100500, 0xffffff00)],
    ["192.0.2.7", v4(0xc0000207, 0xffffffff)],
    ["131.155.72.0/255.255.254.0", v4(0x839b4800, 0xfffffe00)],
    ["10.0.0.0/255.0.255.0", v4(0x0a000000, 0xff00ff00)],
    ["10.0.0.0/8", v4(0x0a000000, 0xff000000)],
    ["0.0.0.0/0", v4(0, 0)],
    [".5", { kind: "address_suffix", suffix: ".5" }],
    ["[::1]", { kind: "network", family: 6, network: 1n, mask: (1n << 128n) - 1n }],
    ["[2001:DB8::]/32", { kind: "network", family: 6, network: 0x20010db8n << 96n, mask: ((1n << 32n) - 1n) << 96n }],
    ["[fe80::/10]", { kind: "network", family: 6, network: 0xfe80n << 112n, mask: 0xffc0n << 112n }],
    ["[::]/0", { kind: "network", family: 6, network: 0n, mask: 0n }],
    [".Example.COM", { kind: "name", match: "suffix", text: ".example.com" }],
    ["Host.Example.com", { kind: "name", match: "exact", text: "host.example.com" }],
    ["localhost", { kind: "name", match: "exact", text: "localhost" }],
    ["host.", { kind: "name", match: "prefix", text: "host." }],
    ["*.Example.com", { kind: "glob", glob: "*.example.com" }],
    ["192.168.?.*", { kind: "glob", glob: "192.168.?.*" }],
    ["/etc/srelay.clients", { kind: "file", path: "/etc/srelay.clients" }],
  ];
  for (const [token, expected] of cases) {
    test(token, () => assert.deepEqual(clientOf(token), expected));
  }

  test("address bits outside the mask are cleared, with a warning", () => {
    const { rules, issues } = parse("srelay: 10.1.2.3/255.0.0.0 10.1.2.3/8\n");
    assert.deepEqual(rules[0]?.clients.patterns, [v4(0x0a000000, 0xff000000), v4(0x0a000000, 0xff000000)]);
    assert.deepEqual(issues, [
      "hosts.allow:1: warning: '10.1.2.3/255.0.0.0' has address bits set outside its mask; they are ignored",
      "hosts.allow:1: warning: '10.1.2.3/8' has address bits set outside its mask; they are ignored",
    ]);
  });

  const malformed: Array<[string, string]> = [
    ["10.0.0.0/33", "'10.0.0.0/33' is not n.n.n.n/m.m.m.m or n.n.n.n/length"],
    ["10.0.0.0/", "'10.0.0.0/' is not n.n.n.n/m.m.m.m or n.n.n.n/length"],
    ["10.0.0/8", "'10.0.0/8' is not n.n.n.n/m.m.m.m or n.n.n.n/length"],
    ["1.2.3", "'1.2.3' is not an IPv4 address"],
    ["010.0.0.1", "'010.0.0.1' is not an IPv4 address"],
    ["1.2.3.4.", "'1.2.3.4.' is not an address prefix like 192.168."],
    ["300.", "'300.' is not an address prefix like 192.168."],
    ["host/24", "'host/24' is not n.n.n.n/mask"],
    ["[::1", "'[::1' is not [IPv6] or [IPv6]/length"],
    ["[10.0.0.1]", "'[10.0.0.1]' is not [IPv6] or [IPv6]/length"],
    ["[fe80::1%eth0]", "'[fe80::1%eth0]' is not [IPv6] or [IPv6]/length"],
    ["[::]/", "'[::]/' is not [IPv6] or [IPv6]/length"],
    ["[::]/129", "'[::]/129': the prefix length must be 0..128"],
    ["@staff", "'@staff': NIS netgroups are not supported"],
    ["alice@@staff", "'@staff': NIS netgroups are not supported"],
    ["alice@", "empty host pattern after '@'"],
  ];
  for (const [token, message] of malformed) {
    test(`'${token}' skips the rule`, () => {
      assert.deepEqual(skipped(`srelay: 10.0.0.1 ${token}`), [`hosts.allow:1: warning: ${message}; rule skipped`]);
    });
  }
});

describe("parseHostsTable: options", () => {
  test("allow and deny, in any case, with blanks", () => {
    assert.equal(ruleOf("srelay: ALL : allow").option, "allow");
    assert.equal(ruleOf("srelay: ALL :DENY ").option, "deny");
    assert.equal(ruleOf("srelay: ALL").option, null);
  });

  test("options that tune the server process are ignored with a warning", () => {
    const { rules, issues } = parse("srelay: ALL : severity auth.info : setenv = A\\:B : deny\n");
    assert.equal(rules[0]?.option, "deny");
    assert.deepEqual(issues, [
      "hosts.allow:1: warning: option 'severity' is not supported and is ignored",
      "hosts.allow:1: warning: option 'setenv' is not supported and is ignored",
    ]);
  });

  test("an empty option field is ignored with a warning", () => {
    const { rules, issues } = parse("srelay: ALL :\n");
    assert.equal(rules.length, 1);
    assert.deepEqual(issues, ["hosts.allow:1: warning: empty option ignored"]);
  });

  const bad: Array<[string, string]> = [
    ["spawn (/bin/echo %a) &", "option 'spawn' runs a shell command, which srelay never does"],
    ["TWIST /bin/echo no", "option 'twist' runs a shell command, which srelay never does"],
    ["deny : spawn /bin/true", "option 'spawn' runs a shell command, which srelay never does"],
    ["allow : severity auth", "option 'allow' must be the last option"],
    ["allow yes", "option 'allow' takes no value"],
    ["deny=1", "option 'deny' takes no value"],
    ["/usr/sbin/safe_finger -l @%h", "unknown option '/usr/sbin/safe_finger'"],
    ["= x", "option '= x' has no name"],
  ];
  for (const [options, message] of bad) {
    test(`'${options}' skips the rule`, () => {
      assert.deepEqual(skipped(`srelay: ALL : ${options}`), [`hosts.allow:1: warning: ${message}; rule skipped`]);
    });
  }
});

describe("parseHostPatternFile", () => {
  test("patterns separated by blanks and lines, with comments; bad entries are skipped", () => {
    const file = parseHostPatternFile(
      "10.0.0.0/8 .example.com # office\n\n@staff EXCEPT\nalice@host 1.2.3\n",
      "/etc/c",
    );
    assert.deepEqual(file.patterns, [v4(0x0a000000, 0xff000000), {
      kind: "name",
      match: "suffix",
      text: ".example.com",
    }]);
    assert.deepEqual(file.issues.map(formatIssue), [
      "/etc/c:3: warning: '@staff': NIS netgroups are not supported; entry skipped",
      "/etc/c:3: warning: EXCEPT has no meaning in a pattern file; entry skipped",
      "/etc/c:4: warning: 'alice@host': user@host has no meaning in a pattern file; entry skipped",
      "/etc/c:4: warning: '1.2.3' is not an IPv4 address; entry skipped",
    ]);
  });
});

/** Text made of the characters and words hosts files are made of. */
const hostsText = fc.array(
  fc.oneof(
    fc.constantFrom(
      ":",
      ",",
      " ",
      "\t",
      "\n",
      "\r\n",
      "\\\n",
      "#",
      "[",
      "]",
      "/",
      "@",
      ".",
      "*",
      "?",
      "=",
      "\\:",
      "ALL",
      "EXCEPT",
      "LOCAL",
      "KNOWN",
      "UNKNOWN",
      "PARANOID",
      "srelay",
      "allow",
      "deny",
      "spawn",
      "severity",
      "10.0.0.0",
      "255.255.0.0",
      "::1",
      "fe80::",
      "24",
      "example.com",
      "/etc/x",
    ),
    fc.string({ maxLength: 6 }),
  ),
  { maxLength: 40 },
).map((parts) => parts.join(""));

function assertWellFormed(
  issues: readonly { file: string; line: number; severity: string; message: string }[],
  text: string,
  file: string,
): void {
  const lineCount = text.split("\n").length;
  for (const issue of issues) {
    assert.equal(issue.file, file);
    assert.equal(issue.severity, "warning");
    assert.ok(issue.line >= 1 && issue.line <= lineCount, `line ${issue.line} of ${lineCount}`);
    assert.ok(issue.message.length > 0);
  }
}

describe("property: the parsers never throw", () => {
  test("random tables yield rules and file:line warnings only", () => {
    fc.assert(
      fc.property(hostsText, (text) => {
        const table = parseHostsTable(text, FILE);
        assertWellFormed(table.issues, text, FILE);
        for (const rule of table.rules) assert.ok(rule.clients.patterns.length > 0 && rule.daemons.patterns.length > 0);
      }),
      { numRuns: 500 },
    );
  });

  test("mutated valid tables yield rules and file:line warnings only", () => {
    const valid =
      "srelay: 192.168. [fe80::]/10 .example.com EXCEPT 192.168.1.9 : deny\nALL EXCEPT sshd: 10.0.0.0/255.0.0.0\n";
    const mutation = fc.tuple(fc.nat(valid.length), fc.nat(8), fc.string({ maxLength: 4 }));
    fc.assert(
      fc.property(fc.array(mutation, { maxLength: 5 }), (mutations) => {
        let text = valid;
        for (const [at, remove, insert] of mutations) text = text.slice(0, at) + insert + text.slice(at + remove);
        assertWellFormed(parseHostsTable(text, FILE).issues, text, FILE);
      }),
      { numRuns: 500 },
    );
  });

  test("random pattern files yield patterns and file:line warnings only", () => {
    fc.assert(
      fc.property(hostsText, (text) => assertWellFormed(parseHostPatternFile(text, "/etc/x").issues, text, "/etc/x")),
      { numRuns: 300 },
    );
  });
});
