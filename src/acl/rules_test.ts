import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type DestinationRule, parseRules, type RuleAddress } from "../config/rules.ts";
import { parseHost, prefixMatch } from "../net/address.ts";
import type { Command } from "../server/request.ts";
import { compileRules, type RuleMatcher, type RuleQuestion } from "./rules.ts";

function matcher(text: string): RuleMatcher {
  const parsed = parseRules(text, "rules");
  assert.ok(parsed.ok, JSON.stringify(parsed.issues));
  return compileRules(parsed.rules);
}

interface Ask {
  readonly client?: string;
  readonly clientName?: string;
  readonly name?: string;
  readonly address?: string;
  readonly port?: number;
  readonly command?: Command;
  readonly user?: string;
}

function question(ask: Ask): RuleQuestion {
  const client = ask.client ?? "192.0.2.9";
  return {
    client: { host: client, port: 40000, family: client.includes(":") ? 6 : 4 },
    clientName: ask.clientName,
    target: { name: ask.name, address: ask.address ?? "198.51.100.1", port: ask.port ?? 443 },
    command: ask.command ?? "connect",
    user: ask.user ?? "",
  };
}

/** `ACTION LINE` of the matching rule, or `-`. */
function line(rules: RuleMatcher, ask: Ask): string {
  const decision = rules.check(question(ask));
  return decision === null ? "-" : `${decision.action} ${decision.rule.line}`;
}

describe("compileRules: clauses", () => {
  test("first match wins in file order, whatever index each rule is filed under", () => {
    const rules = matcher(
      "pass from 10.0.0.0/8\nblock to 198.51.100.0/24\npass to .example.com\nblock port 443\nblock user bob\n",
    );
    assert.equal(line(rules, { client: "10.1.1.1" }), "pass 1");
    assert.equal(line(rules, {}), "block 2");
    assert.equal(line(rules, { address: "203.0.113.5", name: "www.example.com" }), "pass 3");
    assert.equal(line(rules, { address: "203.0.113.5" }), "block 4");
    assert.equal(line(rules, { address: "203.0.113.5", port: 80, user: "bob" }), "block 5");
    assert.equal(line(rules, { address: "203.0.113.5", port: 80 }), "-");
  });

  test("destination subnets match the dialled address, even when a name was asked for", () => {
    const rules = matcher("block to 127.0.0.0/8\nblock to [fd00::]/8\nblock to 0.0.0.0/0 port 25\n");
    assert.equal(line(rules, { name: "localhost", address: "127.0.0.1" }), "block 1");
    assert.equal(line(rules, { address: "::ffff:127.0.0.2" }), "block 1");
    assert.equal(line(rules, { address: "fd12::1" }), "block 2");
    assert.equal(line(rules, { address: "fe80::1" }), "-");
    assert.equal(line(rules, { address: "8.8.8.8", port: 25 }), "block 3");
    assert.equal(line(rules, { address: "2001:db8::1", port: 25 }), "-");
  });

  test("names match exactly; domains match themselves and names under them, on a dot boundary", () => {
    const rules = matcher("block to example.com\nblock to .corp.example\n");
    assert.equal(line(rules, { name: "Example.COM." }), "block 1");
    assert.equal(line(rules, { name: "www.example.com" }), "-");
    assert.equal(line(rules, { name: "corp.example" }), "block 2");
    assert.equal(line(rules, { name: "a.b.corp.example" }), "block 2");
    assert.equal(line(rules, { name: "badcorp.example" }), "-");
    assert.equal(line(rules, { address: "192.0.2.1" }), "-");
  });

  test("client subnets and client names (names only when the client's name is known)", () => {
    const rules = matcher("pass from [2001:db8::]/32\npass from .lan\nblock from 10.0.0.1\n");
    assert.equal(line(rules, { client: "2001:db8::7" }), "pass 1");
    assert.equal(line(rules, { client: "192.0.2.1", clientName: "pc.lan" }), "pass 2");
    assert.equal(line(rules, { client: "192.0.2.1" }), "-");
    assert.equal(line(rules, { client: "::ffff:10.0.0.1" }), "block 3");
  });

  test("ports, commands and users", () => {
    const rules = matcher("block port 6000-6010 command connect\nblock command bind,udp user eve\npass user alice\n");
    assert.equal(line(rules, { port: 6005 }), "block 1");
    assert.equal(line(rules, { port: 6005, command: "udp" }), "-");
    assert.equal(line(rules, { port: 6011 }), "-");
    assert.equal(line(rules, { command: "bind", user: "eve" }), "block 2");
    assert.equal(line(rules, { command: "connect", user: "eve" }), "-");
    assert.equal(line(rules, { user: "alice" }), "pass 3");
    assert.equal(line(rules, { user: "Alice" }), "-");
  });

  test("a target that is not an address matches no subnet", () => {
    assert.equal(line(matcher("block to 0.0.0.0/0\nblock to ::/0\n"), { address: "example.com" }), "-");
  });

  test("decisions say whether the rule named the target by address", () => {
    const rules = matcher("pass to 10.0.0.1\npass to host.lan\npass port 80\n");
    assert.deepEqual(rules.check(question({ address: "10.0.0.1" })), {
      action: "pass",
      rule: { file: "rules", line: 1 },
      targetByAddress: true,
    });
    assert.equal(rules.check(question({ name: "host.lan" }))?.targetByAddress, false);
    assert.equal(rules.check(question({ port: 80 }))?.targetByAddress, false);
  });

  test("1,000 rules: the last one is still found, and in file order", () => {
    const lines: string[] = [];
    for (let i = 0; i < 250; i++) {
      lines.push(
        `block to 10.${i}.0.0/16 port 1-1000`,
        `block to .site${i}.example`,
        `pass from 172.16.${i}.0/24 port 2000`,
        `block to [2001:db8:${i.toString(16)}::]/48 command udp`,
      );
    }
    const rules = matcher(`${lines.join("\n")}\nblock\n`);
    assert.equal(line(rules, { address: "10.249.1.1", port: 80 }), "block 997");
    assert.equal(line(rules, { name: "a.site249.example" }), "block 998");
    assert.equal(line(rules, { client: "172.16.249.7", port: 2000 }), "pass 999");
    assert.equal(line(rules, { address: "2001:db8:f9::1", command: "udp" }), "block 1000");
    assert.equal(line(rules, { address: "10.249.1.1", port: 2000 }), "block 1001");
  });
});

// ---- the index against a linear scan --------------------------------------------------

function addressMatches(pattern: RuleAddress | null, address: string, name: string | undefined): boolean {
  if (pattern === null) return true;
  const parsed = parseHost(address);
  const lower = name?.toLowerCase().replace(/\.$/, "");
  switch (pattern.kind) {
    case "subnet":
      return parsed !== null && prefixMatch(pattern.cidr, parsed);
    case "name":
      return lower === pattern.name;
    case "domain":
      return lower !== undefined && (lower === pattern.domain || lower.endsWith(`.${pattern.domain}`));
  }
}

function linear(rules: readonly DestinationRule[], q: RuleQuestion): number | null {
  const rule = rules.find((rule) =>
    addressMatches(rule.from, q.client.host, q.clientName) &&
    addressMatches(rule.to, q.target.address, q.target.name) &&
    (rule.ports === null || (q.target.port >= rule.ports.low && q.target.port <= rule.ports.high)) &&
    (rule.commands === null || rule.commands.includes(q.command)) &&
    (rule.users === null || rule.users.includes(q.user))
  );
  return rule?.line ?? null;
}

const small = fc.integer({ min: 0, max: 3 });
const v4 = fc.tuple(small, small, small, small).map((parts) => parts.join("."));
const v6 = fc.tuple(small, small).map(([a, b]) => `2001:db8::${a}:${b}`);
const name = fc.tuple(fc.constantFrom("a", "b", "c"), fc.constantFrom("x", "y")).map(([a, b]) => `${a}.${b}.test`);
const pattern = fc.oneof(
  fc.tuple(v4, fc.integer({ min: 0, max: 32 })).map(([address, length]) => `${address}/${length}`),
  fc.tuple(v6, fc.constantFrom(0, 64, 112, 120, 128)).map(([address, length]) => `[${address}]/${length}`),
  name,
  fc.constantFrom(".test", ".x.test", ".y.test", "c.x.test"),
);
const ruleLine = fc.tuple(
  fc.constantFrom("pass", "block"),
  fc.option(pattern, { freq: 3 }),
  fc.option(pattern),
  fc.option(fc.constantFrom("80", "443", "1-1000")),
  fc.option(fc.constantFrom("connect", "bind,udp")),
  fc.option(fc.constantFrom("alice", "alice,bob")),
).map(([action, from, to, port, command, user]) =>
  [
    action,
    from ? `from ${from}` : "",
    to ? `to ${to}` : "",
    port ? `port ${port}` : "",
    command ? `command ${command}` : "",
    user ? `user ${user}` : "",
  ].join(" ")
);
const ask = fc.record({
  client: fc.oneof(v4, v6),
  clientName: fc.option(name, { nil: undefined }),
  name: fc.option(name, { nil: undefined }),
  address: fc.oneof(v4, v6, v4.map((address) => `::ffff:${address}`)),
  port: fc.constantFrom(80, 443, 8080),
  command: fc.constantFrom<Command>("connect", "bind", "udp"),
  user: fc.constantFrom("", "alice", "bob"),
});

describe("property: the index finds what a linear scan finds", () => {
  test("random rules and requests", () => {
    fc.assert(
      fc.property(
        fc.array(ruleLine, { maxLength: 25 }),
        fc.array(ask, { minLength: 1, maxLength: 10 }),
        (lines, asks) => {
          const parsed = parseRules(lines.join("\n"), "rules");
          assert.ok(parsed.ok);
          const rules = compileRules(parsed.rules);
          for (const a of asks) {
            const q = question(a);
            assert.equal(rules.check(q)?.rule.line ?? null, linear(parsed.rules, q), JSON.stringify(a));
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
