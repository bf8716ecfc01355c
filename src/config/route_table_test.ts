import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Target } from "../protocol/target.ts";
import { type RouteRequest, type RouteResolver, RouteTable } from "./route_table.ts";
import { parseSrelayConf } from "./srelay_conf.ts";

function tableOf(lines: string[]): RouteTable {
  const { rules, issues } = parseSrelayConf(lines.join("\n"), "srelay.conf");
  assert.deepEqual(issues.filter((i) => i.severity === "error"), []);
  return new RouteTable(rules);
}

function target(host: string, port = 80): Target {
  if (host.includes(":")) return { kind: "ipv6", host, port };
  if (/^[0-9.]+$/.test(host)) return { kind: "ipv4", host, port };
  return { kind: "domain", host, port };
}

async function matchedLine(
  table: RouteTable,
  host: string,
  port = 80,
  command: RouteRequest["command"] = "connect",
  resolve?: RouteResolver,
): Promise<number | null> {
  const match = await table.match({ target: target(host, port), command }, resolve);
  return match === null ? null : match.rule.line;
}

type Case = [host: string, port: number, command: RouteRequest["command"], line: number | null];

function runCases(name: string, lines: string[], cases: Case[]): void {
  describe(name, () => {
    const table = tableOf(lines);
    for (const [host, port, command, line] of cases) {
      test(`${command} ${host}:${port} -> ${line === null ? "direct" : `line ${line}`}`, async () => {
        assert.equal(await matchedLine(table, host, port, command), line);
      });
    }
  });
}

runCases("first match wins, in file order", [
  "10.1.1.0/24 any a",
  "10.0.0.0/8 any b",
  "10.1.1.0/24 any c",
], [
  ["10.1.1.9", 80, "connect", 1],
  ["10.2.0.1", 80, "connect", 2],
  ["11.0.0.1", 80, "connect", null],
]);

runCases("port ranges are inclusive", [
  "10.0.0.1 80",
  "10.0.0.1 1024-2048",
  "10.0.0.1 -511",
  "10.0.0.1 60000-",
], [
  ["10.0.0.1", 80, "connect", 1],
  ["10.0.0.1", 800, "connect", null],
  ["10.0.0.1", 1024, "connect", 2],
  ["10.0.0.1", 2048, "connect", 2],
  ["10.0.0.1", 2049, "connect", null],
  ["10.0.0.1", 0, "connect", 3],
  ["10.0.0.1", 511, "connect", 3],
  ["10.0.0.1", 512, "connect", null],
  ["10.0.0.1", 60000, "connect", 4],
  ["10.0.0.1", 65535, "connect", 4],
]);

runCases("/T lines are skipped by UDP, /U lines by everything else", [
  "10.0.0.1 any/T tcp-proxy",
  "10.0.0.1 any/U udp-proxy",
  "10.0.0.2 any both",
], [
  ["10.0.0.1", 53, "connect", 1],
  ["10.0.0.1", 53, "bind", 1],
  ["10.0.0.1", 53, "udp", 2],
  ["10.0.0.2", 53, "connect", 3],
  ["10.0.0.2", 53, "bind", 3],
  ["10.0.0.2", 53, "udp", 3],
]);

runCases("IPv4 subnets, dotted masks, exact addresses and the 0.0.0.0 wildcard", [
  "172.16.1.0/24 -",
  "123.123.123.0/255.255.255.248 any",
  "192.0.2.7 any",
  "10.0.0.0/0 any",
  "0.0.0.0 any/U",
  "0.0.0.0/8 8080",
], [
  ["172.16.1.0", 80, "connect", 1],
  ["172.16.1.255", 80, "connect", 1],
  ["172.16.2.0", 80, "connect", null],
  ["123.123.123.7", 80, "connect", 2],
  ["123.123.123.8", 80, "connect", null],
  ["192.0.2.7", 80, "connect", 3],
  ["192.0.2.8", 80, "connect", null],
  ["10.0.0.0", 80, "connect", 4],
  ["10.0.0.1", 80, "connect", null],
  ["203.0.113.1", 53, "udp", 5],
  ["203.0.113.1", 8080, "connect", 6],
  ["::1", 8080, "connect", null],
  ["example.com", 8080, "connect", null],
]);

runCases("IPv6 prefixes (including /60), exact addresses and the :: wildcard", [
  "[2001:db8:0:10::]/60 any",
  "[2001:db8:1::]/48 any",
  "[2001:db8:2::5] any",
  "[::] 21-23",
], [
  ["2001:db8:0:10::1", 80, "connect", 1],
  ["2001:db8:0:1f:ffff::1", 80, "connect", 1],
  ["2001:db8:0:20::1", 80, "connect", null],
  ["2001:db8:0:f::1", 80, "connect", null],
  ["2001:db8:1:ffff::1", 80, "connect", 2],
  ["2001:db8:2::5", 80, "connect", 3],
  ["2001:db8:2:0:0:0:0:5", 80, "connect", 3],
  ["2001:db8:2::6", 80, "connect", null],
  ["fe80::1", 21, "connect", 4],
  ["fe80::1", 24, "connect", null],
  ["10.0.0.1", 21, "connect", null],
]);

runCases("address families never cross, except IPv4-mapped IPv6 targets", [
  "10.1.1.0/24 any v4",
  "[::ffff:0:0]/96 any v6-mapped",
  "[2001:db8::]/32 any v6",
], [
  ["::ffff:10.1.1.7", 80, "connect", 1],
  ["::ffff:a01:107", 80, "connect", 1],
  ["::ffff:10.2.0.1", 80, "connect", null],
  ["2001:db8::1", 80, "connect", 3],
  // IPv4-compatible (::a.b.c.d, deprecated) is an IPv6 address, not a mapped one.
  ["::10.1.1.7", 80, "connect", null],
  // Leading zeros make a name, not an address.
  ["010.1.1.7", 80, "connect", null],
]);

runCases("name suffixes match on a dot boundary, case-insensitively", [
  "example.com any apex-and-subdomains",
  ".example.net any subdomains-only",
  "c-wind.com any",
], [
  ["example.com", 80, "connect", 1],
  ["www.example.com", 80, "connect", 1],
  ["A.B.EXAMPLE.COM", 80, "connect", 1],
  ["www.example.com.", 80, "connect", 1],
  ["badexample.com", 80, "connect", null],
  ["example.com.evil", 80, "connect", null],
  ["www.example.net", 80, "connect", 2],
  ["example.net", 80, "connect", null],
  ["c-wind.com", 80, "connect", 3],
  ["evilc-wind.com", 80, "connect", null],
  ["10.0.0.1", 80, "connect", null],
]);

runCases("* matches every destination of every family", [
  "example.com 443",
  "* any",
], [
  ["example.com", 443, "connect", 1],
  ["example.com", 80, "connect", 2],
  ["10.0.0.1", 80, "connect", 2],
  ["2001:db8::1", 80, "udp", 2],
]);

runCases("*.corp.com is a suffix, not match-all", [
  "*.corp.com any",
], [
  ["www.corp.com", 80, "connect", 1],
  ["corp.com", 80, "connect", null],
  ["example.com", 80, "connect", null],
]);

describe("RouteTable match results", () => {
  test("a name match says by: name, with no address", async () => {
    const table = tableOf(["example.com any proxy 1080"]);
    const match = await table.match({ target: target("www.example.com"), command: "connect" });
    assert.deepEqual(match, { rule: table.rules[0], by: "name" });
  });

  test("an address target says by: address, with its address", async () => {
    const table = tableOf(["10.0.0.0/8 any proxy"]);
    const match = await table.match({ target: target("10.1.2.3"), command: "connect" });
    assert.deepEqual(match, { rule: table.rules[0], by: "address", address: "10.1.2.3" });
  });

  test("rules keeps the file order", () => {
    const table = tableOf(["a any", "# c", "b any"]);
    assert.deepEqual(table.rules.map((r) => r.line), [1, 3]);
  });

  test("an empty table routes everything direct", async () => {
    assert.equal(await matchedLine(new RouteTable([]), "example.com"), null);
  });
});

describe("RouteTable second stage: names resolved and retried against IP rules", () => {
  const lines = ["example.org any name-rule", "10.1.1.0/24 any v4-rule", "[2001:db8::]/32 any/U v6-udp-rule"];

  function recordingResolver(answers: Record<string, string[]>): { resolve: RouteResolver; calls: string[] } {
    const calls: string[] = [];
    return {
      calls,
      resolve: (name) => {
        calls.push(name);
        return Promise.resolve(answers[name] ?? []);
      },
    };
  }

  test("a name that matches no name rule is resolved and matched by address", async () => {
    const table = tableOf(lines);
    const { resolve, calls } = recordingResolver({ "intranet.local": ["192.0.2.1", "10.1.1.20"] });
    const match = await table.match({ target: target("intranet.local"), command: "connect" }, resolve);
    assert.deepEqual(calls, ["intranet.local"]);
    assert.deepEqual(match, { rule: table.rules[1], by: "address", address: "10.1.1.20" });
  });

  test("addresses are tried in the resolver's order", async () => {
    const table = tableOf(["[2001:db8::]/32 any v6", "10.0.0.0/8 any v4"]);
    const { resolve } = recordingResolver({ "h.test": ["10.0.0.1", "2001:db8::1"] });
    const match = await table.match({ target: target("h.test"), command: "connect" }, resolve);
    assert.equal(match?.rule.line, 2);
    assert.equal(match?.address, "10.0.0.1");
  });

  test("the second stage honours the port and transport filters", async () => {
    const table = tableOf(lines);
    const { resolve } = recordingResolver({ "v6.test": ["2001:db8::9"] });
    assert.equal(await matchedLine(table, "v6.test", 53, "connect", resolve), null);
    assert.equal(await matchedLine(table, "v6.test", 53, "udp", resolve), 3);
  });

  test("a name rule match does not resolve", async () => {
    const table = tableOf(lines);
    const { resolve, calls } = recordingResolver({});
    assert.equal(await matchedLine(table, "www.example.org", 80, "connect", resolve), 1);
    assert.deepEqual(calls, []);
  });

  test("no resolver, or no IP rule that could match, means no lookup and direct", async () => {
    const table = tableOf(lines);
    assert.equal(await matchedLine(table, "intranet.local"), null);
    const names = tableOf(["example.org any proxy"]);
    const { resolve, calls } = recordingResolver({ "intranet.local": ["10.1.1.20"] });
    assert.equal(await matchedLine(names, "intranet.local", 80, "connect", resolve), null);
    assert.deepEqual(calls, []);
  });

  test("a failing resolver means direct", async () => {
    const table = tableOf(lines);
    const resolve: RouteResolver = () => Promise.reject(new Error("ENOTFOUND"));
    assert.equal(await matchedLine(table, "nxdomain.test", 80, "connect", resolve), null);
  });

  test("unparsable resolver answers are skipped", async () => {
    const table = tableOf(lines);
    const { resolve } = recordingResolver({ "odd.test": ["not-an-address", "10.1.1.1"] });
    assert.equal(await matchedLine(table, "odd.test", 80, "connect", resolve), 2);
  });

  test("a domain target that is an IP literal is matched by address without resolving", async () => {
    const table = tableOf(lines);
    const { resolve, calls } = recordingResolver({});
    const match = await table.match(
      { target: { kind: "domain", host: "10.1.1.5", port: 80 }, command: "connect" },
      resolve,
    );
    assert.deepEqual(match, { rule: table.rules[1], by: "address", address: "10.1.1.5" });
    assert.deepEqual(calls, []);
  });
});
