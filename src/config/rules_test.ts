import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { parseCidr } from "../net/address.ts";
import { formatIssue } from "./config_issue.ts";
import {
  type DestinationRule,
  formatAddress,
  formatRule,
  formatRules,
  loadRules,
  parseRules,
  type RuleAddress,
} from "./rules.ts";

const FILE = "rules";

/** The rules of a text that must parse without issues. */
function rulesOf(text: string): readonly DestinationRule[] {
  const parsed = parseRules(text, FILE);
  assert.deepEqual(parsed.issues.map(formatIssue), []);
  assert.ok(parsed.ok);
  return parsed.rules;
}

function ruleOf(line: string): DestinationRule {
  const rules = rulesOf(`${line}\n`);
  assert.equal(rules.length, 1);
  return rules[0] as DestinationRule;
}

/** The issues of a text that must be rejected. */
function rejected(text: string): string[] {
  const parsed = parseRules(text, FILE);
  assert.equal(parsed.ok, false, `accepted: ${JSON.stringify(text)}`);
  return parsed.issues.map(formatIssue);
}

function subnet(text: string): RuleAddress {
  const cidr = parseCidr(text);
  assert.ok(cidr !== null);
  return { kind: "subnet", cidr };
}

describe("parseRules: grammar", () => {
  test("every clause, in any order, keywords in any case", () => {
    const rule = ruleOf("BLOCK user alice , bob Command UDP,connect port 1000-2000 to .Example.COM. from 10.0.0.0/8");
    assert.deepEqual(rule, {
      file: FILE,
      line: 1,
      action: "block",
      from: subnet("10.0.0.0/8"),
      to: { kind: "domain", domain: "example.com" },
      ports: { low: 1000, high: 2000 },
      commands: ["connect", "udp"],
      users: ["alice", "bob"],
    });
  });

  test("a bare action matches everything; comments, blank lines, CRLF and a BOM are skipped", () => {
    const rules = rulesOf("\uFEFF# policy\r\n\r\npass to 192.0.2.1   # the web server\r\n  block\r\n");
    assert.deepEqual(rules.map((rule) => [rule.line, rule.action, rule.to]), [
      [3, "pass", subnet("192.0.2.1/32")],
      [4, "block", null],
    ]);
    assert.equal(rules[1]?.from, null);
  });

  const addresses: Array<[string, RuleAddress]> = [
    ["192.0.2.1", subnet("192.0.2.1/32")],
    ["10.0.0.0/255.255.0.0", subnet("10.0.0.0/16")],
    ["0.0.0.0/0", subnet("0.0.0.0/0")],
    ["[2001:DB8::1]", subnet("2001:db8::1/128")],
    ["2001:db8::/32", subnet("2001:db8::/32")],
    ["[fd00::]/8", subnet("fd00::/8")],
    ["::ffff:10.0.0.0/104", subnet("10.0.0.0/8")],
    ["[::ffff:192.0.2.1]", subnet("192.0.2.1/32")],
    ["::/0", subnet("::/0")],
    ["Example.com", { kind: "name", name: "example.com" }],
    ["localhost.", { kind: "name", name: "localhost" }],
    ["_srv.x-y.example", { kind: "name", name: "_srv.x-y.example" }],
    [".corp", { kind: "domain", domain: "corp" }],
  ];
  for (const [text, expected] of addresses) {
    test(`address '${text}'`, () => {
      assert.deepEqual(ruleOf(`pass to ${text}`).to, expected);
      assert.deepEqual(ruleOf(`pass from ${text}`).from, expected);
    });
  }

  test("ports: one or a range, 0..65535", () => {
    assert.deepEqual(ruleOf("pass port 0").ports, { low: 0, high: 0 });
    assert.deepEqual(ruleOf("pass port 443").ports, { low: 443, high: 443 });
    assert.deepEqual(ruleOf("pass port 1-65535").ports, { low: 1, high: 65535 });
  });

  test("command and user lists drop duplicates", () => {
    const rule = ruleOf("pass command bind,bind,connect user a,b,a");
    assert.deepEqual(rule.commands, ["connect", "bind"]);
    assert.deepEqual(rule.users, ["a", "b"]);
  });
});

describe("parseRules: problems", () => {
  const errors: Array<[string, string]> = [
    ["allow to x", "unknown action 'allow' (expected pass or block)"],
    ["pass towards x", "unexpected 'towards' (expected from, to, port, command, user)"],
    ["pass to a to b", "'to' is given twice"],
    ["pass to", "'to' needs a value"],
    ["pass to port 80", "'to' needs a value"],
    ["pass port 70000", "invalid port '70000' (expected P or P-Q, 0..65535)"],
    ["pass port 90-80", "invalid port '90-80' (expected P or P-Q, 0..65535)"],
    ["pass port -1", "invalid port '-1' (expected P or P-Q, 0..65535)"],
    ["pass port http", "invalid port 'http' (expected P or P-Q, 0..65535)"],
    ["pass command connect,associate", "unknown command 'associate' (expected connect, bind or udp)"],
    ["pass user a,,b", "empty user name in 'a,,b'"],
    ["pass to 10.0.0.300", "invalid address or subnet '10.0.0.300'"],
    ["pass to 1.2.3", "invalid address or subnet '1.2.3'"],
    ["pass to 10.0.0.0/33", "invalid address or subnet '10.0.0.0/33'"],
    ["pass to 10.0.0.0/255.0.255.0", "invalid address or subnet '10.0.0.0/255.0.255.0'"],
    ["pass to fd00::/255.0.0.0", "invalid address or subnet 'fd00::/255.0.0.0'"],
    ["pass to [::1", "invalid address or subnet '[::1'"],
    ["pass to [10.0.0.1]", "invalid address or subnet '[10.0.0.1]'"],
    ["pass to fe80::1%eth0", "invalid address or subnet 'fe80::1%eth0'"],
    ["pass to *.example.com", "invalid pattern '*.example.com': write a domain as .example.com"],
    ["pass to a..b", "invalid host name 'a..b'"],
    ["pass to -a.example", "invalid host name '-a.example'"],
    ["pass from .", "invalid domain '.'"],
  ];
  for (const [line, message] of errors) {
    test(line, () => assert.deepEqual(rejected(`pass\n${line}\n`), [`rules:2: ${message}`]));
  }

  test("one bad line rejects the whole file, and every error is reported", () => {
    assert.deepEqual(rejected("block to 10.0.0.0/8\npass port x\n\nblock to\n"), [
      "rules:2: invalid port 'x' (expected P or P-Q, 0..65535)",
      "rules:4: 'to' needs a value",
    ]);
  });

  test("host bits set in a subnet are cleared, with a warning", () => {
    const parsed = parseRules("block to 10.1.2.3/8\nblock to [2001:db8::1]/32\n", FILE);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.rules.map((rule) => rule.to), [subnet("10.0.0.0/8"), subnet("2001:db8::/32")]);
    assert.deepEqual(parsed.issues.map(formatIssue), [
      "rules:1: warning: '10.1.2.3/8' has host bits set; it is read as 10.0.0.0/8",
      "rules:2: warning: '[2001:db8::1]/32' has host bits set; it is read as 2001:db8::/32",
    ]);
  });

  test("rules after a rule that matches everything draw one warning", () => {
    const parsed = parseRules("pass to 10.0.0.1\nblock\n# end\npass to 10.0.0.2\npass\n", FILE);
    assert.ok(parsed.ok);
    assert.equal(parsed.rules.length, 4);
    assert.deepEqual(parsed.issues.map(formatIssue), [
      "rules:4: warning: this rule and the ones after it are never reached: line 2 matches every request",
    ]);
  });
});

describe("loadRules", () => {
  test("reads a file; a missing file is rejected on line 0", () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-rules-"));
    try {
      const path = join(dir, "rules");
      writeFileSync(path, "block to 127.0.0.0/8\n");
      const loaded = loadRules(path);
      assert.ok(loaded.ok);
      assert.deepEqual(loaded.rules.map((rule) => [rule.file, rule.line]), [[path, 1]]);
      const missing = loadRules(join(dir, "none"));
      assert.equal(missing.ok, false);
      assert.equal(missing.issues[0]?.line, 0);
      assert.match(missing.issues[0]?.message ?? "", /^Cannot read rules file: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("formatting", () => {
  test("formatAddress writes what parseRules reads", () => {
    assert.deepEqual(
      ["10.0.0.0/8", "192.0.2.1", "[::1]", "[fd00::]/8", "example.com", ".example.com"].map((text) =>
        formatAddress(ruleOf(`pass to ${text}`).to as RuleAddress)
      ),
      ["10.0.0.0/8", "192.0.2.1", "[::1]", "[fd00::]/8", "example.com", ".example.com"],
    );
  });

  test("formatRules lists file:line and the rule, then the default", () => {
    const rules = rulesOf("block to 127.0.0.0/8 command connect\npass from [fd00::]/8 user alice\n");
    assert.equal(
      formatRules(rules),
      [
        "rules:1     block  to 127.0.0.0/8 command connect",
        "rules:2     pass   from [fd00::]/8 user alice",
        "(no match)  pass",
      ].join("\n"),
    );
    assert.equal(formatRules([]), "(no match)  pass");
  });
});

// ---- properties ---------------------------------------------------------------------

const octet = fc.integer({ min: 0, max: 255 });
const v4 = fc.tuple(octet, octet, octet, octet).map((parts) => parts.join("."));
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join(".")).filter((text) =>
  !/^[0-9.]+$/.test(text)
);
const v6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((groups) =>
  groups.map((group) => group.toString(16)).join(":")
);
const addressText = fc.oneof(
  v4,
  fc.tuple(v4, fc.integer({ min: 0, max: 32 })).map(([address, length]) => `${address}/${length}`),
  v6.map((address) => `[${address}]`),
  fc.tuple(v6, fc.integer({ min: 0, max: 128 })).map(([address, length]) => `[${address}]/${length}`),
  name,
  name.map((text) => `.${text}`),
);
const ruleText = fc.record({
  action: fc.constantFrom("pass", "block"),
  from: fc.option(addressText),
  to: fc.option(addressText),
  port: fc.option(
    fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 })).map(([a, b]) =>
      a === b ? `${a}` : `${Math.min(a, b)}-${Math.max(a, b)}`
    ),
  ),
  command: fc.option(fc.subarray(["connect", "bind", "udp"], { minLength: 1 }).map((list) => list.join(","))),
  user: fc.option(fc.array(fc.stringMatching(/^[A-Za-z0-9._-]{1,8}$/), { minLength: 1, maxLength: 3 })),
}, { requiredKeys: ["action"] }).map((rule) =>
  [
    rule.action,
    ...(rule.from ? ["from", rule.from] : []),
    ...(rule.to ? ["to", rule.to] : []),
    ...(rule.port ? ["port", rule.port] : []),
    ...(rule.command ? ["command", rule.command] : []),
    ...(rule.user ? ["user", rule.user.join(",")] : []),
  ].join(" ")
);

function withoutPlace(rule: DestinationRule): Omit<DestinationRule, "file" | "line"> {
  const { file: _file, line: _line, ...rest } = rule;
  return rest;
}

describe("properties", () => {
  test("formatRule gives back a rule parseRules reads as the same rule", () => {
    fc.assert(
      fc.property(ruleText, (text) => {
        const parsed = parseRules(text, FILE);
        assert.ok(parsed.ok, JSON.stringify(parsed.issues));
        const rule = parsed.rules[0] as DestinationRule;
        const again = parseRules(formatRule(rule), FILE);
        assert.ok(again.ok);
        assert.deepEqual(again.issues, []);
        assert.deepEqual(withoutPlace(again.rules[0] as DestinationRule), withoutPlace(rule));
      }),
      { numRuns: 500 },
    );
  });

  const checkIssues = (text: string) => {
    const parsed = parseRules(text, FILE);
    const lineCount = text.split("\n").length;
    for (const issue of parsed.issues) {
      assert.equal(issue.file, FILE);
      assert.ok(issue.line >= 1 && issue.line <= lineCount);
      assert.ok(issue.severity === "error" || issue.severity === "warning");
    }
    assert.equal(parsed.ok, !parsed.issues.some((issue) => issue.severity === "error"));
  };

  test("random text yields rules or file:line issues, never an exception", () => {
    const word = fc.oneof(
      fc.constantFrom(
        "pass",
        "block",
        "from",
        "to",
        "port",
        "command",
        "user",
        ",",
        "#",
        "\n",
        " ",
        "/",
        "[",
        "]",
        ":",
      ),
      addressText,
      fc.string({ maxLength: 6 }),
    );
    fc.assert(fc.property(fc.array(word, { maxLength: 30 }), (words) => checkIssues(words.join(" "))), {
      numRuns: 500,
    });
  });

  test("mutated valid rules yield rules or file:line issues, never an exception", () => {
    const mutation = fc.tuple(fc.nat(200), fc.nat(6), fc.string({ maxLength: 4 }));
    fc.assert(
      fc.property(
        fc.array(ruleText, { minLength: 1, maxLength: 4 }),
        fc.array(mutation, { maxLength: 4 }),
        (rules, mutations) => {
          let text = rules.join("\n");
          for (const [at, remove, insert] of mutations) {
            const position = at % (text.length + 1);
            text = text.slice(0, position) + insert + text.slice(position + remove);
          }
          checkIssues(text);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("parseRules on hostile input", () => {
  test("a line with a very long run of blanks is read in linear time (same result as a short one)", () => {
    const long = parseRules(
      `block${" ".repeat(200_000)}to 10.0.0.0/8 command connect ,${" ".repeat(9999)} bind\n`,
      "rules",
    );
    const short = parseRules("block to 10.0.0.0/8 command connect,bind\n", "rules");
    assert.ok(short.ok && short.rules[0]?.commands?.length === 2, "the short line is a valid rule with two commands");
    assert.deepEqual(long, short);
  });
});
