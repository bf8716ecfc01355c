import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { formatIssue } from "./config_issue.ts";
import {
  type DestinationPattern,
  type Hop,
  loadSrelayConf,
  parseSrelayConf,
  type RouteRule,
  splitConfigLine,
} from "./srelay_conf.ts";

const FILE = "srelay.conf";

function parseLine(line: string): { rule: RouteRule | undefined; issues: string[] } {
  const { rules, issues } = parseSrelayConf(`${line}\n`, FILE);
  return { rule: rules[0], issues: issues.map(formatIssue) };
}

function ruleOf(line: string): RouteRule {
  const { rule, issues } = parseLine(line);
  assert.deepEqual(issues, []);
  assert.ok(rule, `no rule for ${JSON.stringify(line)}`);
  return rule;
}

function socks(host: string, port = 1080): Hop {
  return { host, port, protocol: "socks" };
}

describe("splitConfigLine", () => {
  const cases: Array<[string, ReturnType<typeof splitConfigLine>]> = [
    ["", null],
    ["   \t  \r", null],
    ["# comment", null],
    ["; comment", null],
    ["  \t# indented comment", null],
    [",#comma first", null],
    ["a b", { first: "a", rest: [{ text: "b", after: null }] }],
    ["a;b c", { first: "a;b", rest: [{ text: "c", after: null }] }],
    ["a,b;c#d", {
      first: "a",
      rest: [{ text: "b", after: null }, { text: "c", after: ";" }, { text: "d", after: "#" }],
    }],
    ["a b # c\r", { first: "a", rest: [{ text: "b", after: null }, { text: "c", after: "#" }] }],
    ["a b #", { first: "a", rest: [{ text: "b", after: null }] }],
  ];
  for (const [line, expected] of cases) {
    test(JSON.stringify(line), () => {
      assert.deepEqual(splitConfigLine(line), expected);
    });
  }
});

describe("parseSrelayConf destinations", () => {
  const cases: Array<[string, DestinationPattern]> = [
    ["172.16.1.0/24 -", { kind: "ipv4", network: "172.16.1.0", prefix: 24 }],
    ["1.2.3.4/24 -", { kind: "ipv4", network: "1.2.3.0", prefix: 24 }],
    ["1.2.3.4 -", { kind: "ipv4", network: "1.2.3.4", prefix: 32 }],
    ["1.2.3.4/32 -", { kind: "ipv4", network: "1.2.3.4", prefix: 32 }],
    ["123.123.123.0/255.255.255.248 any", { kind: "ipv4", network: "123.123.123.0", prefix: 29 }],
    ["10.0.0.0/255.0.0.0 any", { kind: "ipv4", network: "10.0.0.0", prefix: 8 }],
    ["10.0.0.1/255.255.255.255 any", { kind: "ipv4", network: "10.0.0.1", prefix: 32 }],
    ["0.0.0.0 any", { kind: "ipv4", network: "0.0.0.0", prefix: 0 }],
    ["0.0.0.0/0 any", { kind: "ipv4", network: "0.0.0.0", prefix: 0 }],
    ["0.0.0.0/0.0.0.0 any", { kind: "ipv4", network: "0.0.0.0", prefix: 0 }],
    ["[2001:111:1:21::/64] 1024-", { kind: "ipv6", network: "2001:111:1:21::", prefix: 64 }],
    ["[2001:111:1:21::]/64 1024-", { kind: "ipv6", network: "2001:111:1:21::", prefix: 64 }],
    ["[2001:DB8::1] any", { kind: "ipv6", network: "2001:db8::1", prefix: 128 }],
    ["[2001:db8:0:1f::1]/60 any", { kind: "ipv6", network: "2001:db8:0:10::", prefix: 60 }],
    ["[::] 21-23", { kind: "ipv6", network: "::", prefix: 0 }],
    ["[::]/0 21-23", { kind: "ipv6", network: "::", prefix: 0 }],
    ["[::ffff:10.0.0.1] any", { kind: "ipv6", network: "::ffff:a00:1", prefix: 128 }],
    ["c-wind.com -", { kind: "suffix", suffix: "c-wind.com" }],
    ["Example.COM. -", { kind: "suffix", suffix: "example.com" }],
    [".example.com -", { kind: "suffix", suffix: ".example.com" }],
    ["localhost -", { kind: "suffix", suffix: "localhost" }],
    ["* any", { kind: "any" }],
    ["** any", { kind: "any" }],
  ];
  for (const [line, destination] of cases) {
    test(line, () => {
      assert.deepEqual(ruleOf(line).destination, destination);
    });
  }
});

describe("parseSrelayConf destination warnings (line kept)", () => {
  const cases: Array<[string, DestinationPattern, string]> = [
    [
      "1.2.3.4/ -",
      { kind: "ipv4", network: "1.2.3.4", prefix: 32 },
      "srelay.conf:1: warning: mask '/' in '1.2.3.4/' matches only 1.2.3.4, as in srelay; write 0.0.0.0 to match every IPv4 address",
    ],
    [
      "10.0.0.0/0 -",
      { kind: "ipv4", network: "10.0.0.0", prefix: 32 },
      "srelay.conf:1: warning: mask '/0' in '10.0.0.0/0' matches only 10.0.0.0, as in srelay; write 0.0.0.0 to match every IPv4 address",
    ],
    [
      "10.0.0.0/0.0.0.0 -",
      { kind: "ipv4", network: "10.0.0.0", prefix: 32 },
      "srelay.conf:1: warning: mask '/0.0.0.0' in '10.0.0.0/0.0.0.0' matches only 10.0.0.0, as in srelay; write 0.0.0.0 to match every IPv4 address",
    ],
    [
      "0.0.0.0/8 -",
      { kind: "ipv4", network: "0.0.0.0", prefix: 0 },
      "srelay.conf:1: warning: '0.0.0.0/8' matches every IPv4 address: 0.0.0.0 is a wildcard whatever the mask, as in srelay",
    ],
    [
      "[::]/16 -",
      { kind: "ipv6", network: "::", prefix: 0 },
      "srelay.conf:1: warning: '[::]/16' matches every IPv6 address: :: is a wildcard whatever the mask, as in srelay",
    ],
    [
      "[2001:db8::1]/0 -",
      { kind: "ipv6", network: "2001:db8::1", prefix: 128 },
      "srelay.conf:1: warning: mask '/0' in '[2001:db8::1]/0' matches only 2001:db8::1, as in srelay; write [::] to match every IPv6 address",
    ],
    [
      "2001:111:1:21::/64 1080",
      { kind: "ipv6", network: "2001:111:1:21::", prefix: 64 },
      "srelay.conf:1: warning: unbracketed IPv6 destination '2001:111:1:21::' is read as IPv6 (srelay read it as a name suffix that never matches); write [2001:111:1:21::]",
    ],
    [
      ":: 21-23",
      { kind: "ipv6", network: "::", prefix: 0 },
      "srelay.conf:1: warning: unbracketed IPv6 destination '::' is read as IPv6 (srelay read it as a name suffix that never matches); write [::]",
    ],
    [
      "*.corp.com any",
      { kind: "suffix", suffix: ".corp.com" },
      "srelay.conf:1: warning: '*.corp.com' is read as the suffix '.corp.com' (srelay read any pattern starting with '*' as match-all); write * to match every destination",
    ],
    [
      "*corp.com any",
      { kind: "suffix", suffix: "corp.com" },
      "srelay.conf:1: warning: '*corp.com' is read as the suffix 'corp.com' (srelay read any pattern starting with '*' as match-all); write * to match every destination",
    ],
    [
      "a*.com any",
      { kind: "suffix", suffix: "a*.com" },
      "srelay.conf:1: warning: '*' is a wildcard only at the start of a pattern; 'a*.com' is matched literally",
    ],
    [
      "example.com/24 any",
      { kind: "suffix", suffix: "example.com" },
      "srelay.conf:1: warning: mask '/24' is ignored on the name pattern 'example.com'",
    ],
  ];
  for (const [line, destination, issue] of cases) {
    test(line, () => {
      const parsed = parseLine(line);
      assert.deepEqual(parsed.issues, [issue]);
      assert.deepEqual(parsed.rule?.destination, destination);
    });
  }
});

describe("parseSrelayConf destination errors (line dropped)", () => {
  const cases: Array<[string, string]> = [
    ["1.2.3.4/33 -", "mask /33 in '1.2.3.4/33' is out of range for IPv4 (0-32)"],
    ["[2001:db8::]/129 -", "mask /129 in '[2001:db8::]/129' is out of range for IPv6 (0-128)"],
    ["1.2.3.4/255.0.255.0 -", "non-contiguous mask '255.0.255.0' in '1.2.3.4/255.0.255.0'"],
    ["1.2.3.4/255.255.0 -", "invalid mask '255.255.0' in '1.2.3.4/255.255.0'"],
    ["1.2.3.4/24x -", "invalid mask '24x' in '1.2.3.4/24x'"],
    ["[2001:db8::]/255.255.0.0 -", "dotted mask '255.255.0.0' in '[2001:db8::]/255.255.0.0' is only valid for IPv4"],
    ["1.2.3 -", "invalid IPv4 address '1.2.3' in destination '1.2.3'"],
    ["256.1.1.1/8 -", "invalid IPv4 address '256.1.1.1' in destination '256.1.1.1/8'"],
    ["010.1.1.1 -", "invalid IPv4 address '010.1.1.1' in destination '010.1.1.1'"],
    ["1234 -", "invalid IPv4 address '1234' in destination '1234'"],
    ["[::g] -", "invalid IPv6 address '::g' in destination '[::g]'"],
    ["[::1]x -", "invalid IPv6 address '::1]x' in destination '[::1]x'"],
    ["[fe80::1%eth0] -", "zone index in destination '[fe80::1%eth0]' is not supported"],
    ["foo:bar -", "invalid destination 'foo:bar': not an IPv6 address, and a name cannot contain ':'"],
    ["/24 -", "destination address missing in '/24'"],
    ["1.2.3.4", "destination port missing after '1.2.3.4'"],
    ["1.2.3.4 # direct", "invalid port 'direct'"],
  ];
  for (const [line, message] of cases) {
    test(line, () => {
      const parsed = parseLine(line);
      assert.equal(parsed.rule, undefined);
      assert.ok(parsed.issues.includes(`srelay.conf:1: ${message}`), parsed.issues.join("\n"));
    });
  }
});

describe("parseSrelayConf port ranges", () => {
  const cases: Array<[string, number, number, RouteRule["transport"]]> = [
    ["80", 80, 80, "any"],
    ["0", 0, 0, "any"],
    ["65535", 65535, 65535, "any"],
    ["20-21", 20, 21, "any"],
    ["1024-", 1024, 65535, "any"],
    ["-1023", 0, 1023, "any"],
    ["-", 0, 65535, "any"],
    ["any", 0, 65535, "any"],
    ["ANY", 0, 65535, "any"],
    ["80/T", 80, 80, "tcp"],
    ["80/t", 80, 80, "tcp"],
    ["any/TCP", 0, 65535, "tcp"],
    ["53/U", 53, 53, "udp"],
    ["53/u", 53, 53, "udp"],
    ["53/udp", 53, 53, "udp"],
    ["-/U", 0, 65535, "udp"],
    ["1024-/T", 1024, 65535, "tcp"],
    ["80/", 80, 80, "any"],
  ];
  for (const [port, low, high, transport] of cases) {
    test(port, () => {
      const rule = ruleOf(`1.2.3.4 ${port}`);
      assert.deepEqual(rule.ports, { low, high });
      assert.equal(rule.transport, transport);
    });
  }

  const warnings: Array<[string, number, number, RouteRule["transport"], string]> = [
    ["anything", 0, 65535, "any", "port 'anything' is read as 'any'"],
    ["80/X", 80, 80, "any", "unknown transport suffix '/X': the rule applies to TCP and UDP"],
    ["80/Tx", 80, 80, "tcp", "transport suffix '/Tx' is read as '/T' (TCP only)"],
    ["53/unix", 53, 53, "udp", "transport suffix '/unix' is read as '/U' (UDP only)"],
  ];
  for (const [port, low, high, transport, message] of warnings) {
    test(`${port} (warning)`, () => {
      const parsed = parseLine(`1.2.3.4 ${port}`);
      assert.deepEqual(parsed.issues, [`srelay.conf:1: warning: ${message}`]);
      assert.deepEqual(parsed.rule?.ports, { low, high });
      assert.equal(parsed.rule?.transport, transport);
    });
  }

  const errors: Array<[string, string]> = [
    ["70000", "port 70000 is out of range (0-65535)"],
    ["1-70000", "port 70000 in '1-70000' is out of range (0-65535)"],
    ["100-20", "invalid port range '100-20': 100 is greater than 20"],
    ["http", "invalid port 'http'"],
    ["80x", "invalid port '80x'"],
    ["1-2-3", "invalid port '2-3' in '1-2-3'"],
    ["x-80", "invalid port 'x' in 'x-80'"],
    ["/T", "port missing in '/T'"],
  ];
  for (const [port, message] of errors) {
    test(`${port} (error)`, () => {
      const parsed = parseLine(`1.2.3.4 ${port} proxy`);
      assert.equal(parsed.rule, undefined);
      assert.deepEqual(parsed.issues, [`srelay.conf:1: ${message}`]);
    });
  }
});

describe("parseSrelayConf next hops", () => {
  const cases: Array<[string, Hop[]]> = [
    ["", []],
    ["proxy", [socks("proxy")]],
    ["proxy 1081", [socks("proxy", 1081)]],
    ["proxy 8080/H", [{ host: "proxy", port: 8080, protocol: "http" }]],
    ["proxy 8080/h", [{ host: "proxy", port: 8080, protocol: "http" }]],
    ["proxy 8080/HTTP", [{ host: "proxy", port: 8080, protocol: "http" }]],
    ["proxy 1080/S", [socks("proxy")]],
    ["proxy 1080/s", [socks("proxy")]],
    ["proxy 1080/4", [{ host: "proxy", port: 1080, protocol: "socks4" }]],
    ["proxy 1080/5", [{ host: "proxy", port: 1080, protocol: "socks5" }]],
    ["proxy 1080/", [socks("proxy")]],
    ["192.168.1.5 1080", [socks("192.168.1.5")]],
    ["[::1] 1080", [socks("::1")]],
    ["[::1]", [socks("::1")]],
    ["[2001::240:2ff:fe3e:b2]", [socks("2001::240:2ff:fe3e:b2")]],
    ["2001::240:2ff:fe3e:b2", [socks("2001::240:2ff:fe3e:b2")]],
    ["[fe80::1%eth0] 1080", [socks("fe80::1%eth0")]],
    [
      "100.100.100.100 1111 firewall 8080/H fw2 1080",
      [socks("100.100.100.100", 1111), { host: "firewall", port: 8080, protocol: "http" }, socks("fw2")],
    ],
    ["far 1111 near", [socks("far", 1111), socks("near")]],
    ["far,1111,near,2222/5", [socks("far", 1111), { host: "near", port: 2222, protocol: "socks5" }]],
  ];
  for (const [hops, expected] of cases) {
    test(hops === "" ? "(direct)" : hops, () => {
      assert.deepEqual(ruleOf(`1.2.3.4 any ${hops}`).hops, expected);
    });
  }

  const warnings: Array<[string, Hop[], string]> = [
    [
      "proxy 1080/socks5",
      [socks("proxy")],
      "hop protocol suffix '/socks5' is read as '/S' (SOCKS v5, then v4)",
    ],
    [
      "proxy 1080/Hx",
      [{ host: "proxy", port: 1080, protocol: "http" }],
      "hop protocol suffix '/Hx' is read as '/H' (HTTP CONNECT)",
    ],
    [
      "proxy 1080/4a",
      [{ host: "proxy", port: 1080, protocol: "socks4" }],
      "hop protocol suffix '/4a' is read as '/4' (SOCKS v4 only)",
    ],
    ["proxy 1080/X", [socks("proxy")], "unknown hop protocol suffix '/X' is read as '/S' (SOCKS v5, then v4)"],
  ];
  for (const [hops, expected, message] of warnings) {
    test(`${hops} (warning)`, () => {
      const parsed = parseLine(`1.2.3.4 any ${hops}`);
      assert.deepEqual(parsed.issues, [`srelay.conf:1: warning: ${message}`]);
      assert.deepEqual(parsed.rule?.hops, expected);
    });
  }

  const errors: Array<[string, string[]]> = [
    ["A B", ["hop 'A' needs a port: only the last hop may omit it"]],
    ["A 10.0.0.1 1080", ["hop 'A' needs a port: only the last hop may omit it"]],
    ["A B C 1080", [
      "hop 'A' needs a port: only the last hop may omit it",
      "hop 'B' needs a port: only the last hop may omit it",
    ]],
    ["A 0", ["invalid port '0' for hop 'A': must be 1-65535"]],
    ["A 65536", ["invalid port '65536' for hop 'A': must be 1-65535"]],
    ["A 80x", ["invalid port '80x' for hop 'A': must be 1-65535"]],
    ["A -1/H", ["invalid port '-1' for hop 'A': must be 1-65535"]],
    ["1.2.3 1080", ["invalid IPv4 address '1.2.3' for next hop"]],
    ["[::1 1080", ["invalid IPv6 address '[::1' for next hop"]],
    ["[nope] 1080", ["invalid IPv6 address '[nope]' for next hop"]],
    ["proxy:1080", ["invalid next-hop host 'proxy:1080': write the port as a separate field, and IPv6 as [address]"]],
    [
      "A B 1.2.3",
      [
        "hop 'A' needs a port: only the last hop may omit it",
        "hop 'B' needs a port: only the last hop may omit it",
        "invalid IPv4 address '1.2.3' for next hop",
      ],
    ],
  ];
  for (const [hops, messages] of errors) {
    test(`${hops} (error)`, () => {
      const parsed = parseLine(`1.2.3.4 any ${hops}`);
      assert.equal(parsed.rule, undefined);
      assert.deepEqual(parsed.issues, messages.map((m) => `srelay.conf:1: ${m}`));
    });
  }
});

describe("parseSrelayConf lexing quirks (reference section 0.2)", () => {
  test("#1: '#' after the first field separates, so a trailing comment word becomes a hop", () => {
    const parsed = parseLine("1.2.3.4 - # direct");
    assert.deepEqual(parsed.issues, [
      "srelay.conf:1: warning: '#' separates fields here; 'direct' is read as a next-hop host",
    ]);
    assert.deepEqual(parsed.rule?.hops, [socks("direct")]);
  });

  test("#1: ';' behaves like '#'", () => {
    const parsed = parseLine("1.2.3.4 -;direct");
    assert.deepEqual(parsed.issues, [
      "srelay.conf:1: warning: ';' separates fields here; 'direct' is read as a next-hop host",
    ]);
    assert.deepEqual(parsed.rule?.hops, [socks("direct")]);
  });

  test("#1: '#' before a hop port and before the destination port", () => {
    const parsed = parseLine("1.2.3.4 #80 proxy ;1081");
    assert.deepEqual(parsed.issues, [
      "srelay.conf:1: warning: '#' separates fields here; '80' is read as the destination port",
      "srelay.conf:1: warning: ';' separates fields here; '1081' is read as a next-hop port",
    ]);
    assert.deepEqual(parsed.rule?.ports, { low: 80, high: 80 });
    assert.deepEqual(parsed.rule?.hops, [socks("proxy", 1081)]);
  });

  test("#1: a trailing '#' with nothing after it is harmless", () => {
    assert.deepEqual(ruleOf("1.2.3.4 - #").hops, []);
  });

  test("#1: a comment made of several words still drops the line", () => {
    const parsed = parseLine("1.2.3.4 - # go direct");
    assert.equal(parsed.rule, undefined);
    assert.deepEqual(parsed.issues, [
      "srelay.conf:1: warning: '#' separates fields here; 'go' is read as a next-hop host",
      "srelay.conf:1: hop 'go' needs a port: only the last hop may omit it",
    ]);
  });

  test("#1: only a first field starting with '#' or ';' makes a comment", () => {
    const { rules, issues } = parseSrelayConf("# 1.2.3.4 - proxy\n;1.2.3.4 - proxy\n  #x\n\n", FILE);
    assert.deepEqual(rules, []);
    assert.deepEqual(issues, []);
  });

  test("#5: issues carry physical line numbers, counting comments and blank lines", () => {
    const text = "# header\n\n; note\n1.2.3.4 - proxy\n\n# more\n1.2.3.4 70000\n  \n*.corp.com any\r\n";
    const { rules, issues } = parseSrelayConf(text, "/etc/srelay.conf");
    assert.deepEqual(rules.map((r) => r.line), [4, 9]);
    assert.deepEqual(issues.map(formatIssue), [
      "/etc/srelay.conf:7: port 70000 is out of range (0-65535)",
      "/etc/srelay.conf:9: warning: '*.corp.com' is read as the suffix '.corp.com' (srelay read any pattern starting with '*' as match-all); write * to match every destination",
    ]);
  });

  test("every bad line is reported, and the good lines are kept in order", () => {
    const text = ["1.2.3 -", "10.0.0.0/8 any a", "x 99999", "y any A B", "z any b 1080/5", ""].join("\n");
    const { rules, issues } = parseSrelayConf(text, FILE);
    assert.deepEqual(rules.map((r) => r.line), [2, 5]);
    assert.deepEqual(issues.map((i) => [i.line, i.severity]), [[1, "error"], [3, "error"], [4, "error"]]);
  });

  test("more than 256 rules are all kept", () => {
    const text = Array.from({ length: 300 }, (_, i) => `host${i}.example any`).join("\n");
    const { rules, issues } = parseSrelayConf(text, FILE);
    assert.equal(rules.length, 300);
    assert.deepEqual(issues, []);
  });

  test("a leading byte order mark does not hide a comment", () => {
    assert.deepEqual(parseSrelayConf("\uFEFF# comment\n1.2.3.4 -\n", FILE).issues, []);
  });

  test("rule text is the trimmed physical line", () => {
    assert.equal(ruleOf("  example.com\tany  proxy 1080 \r").text, "example.com\tany  proxy 1080");
  });
});

describe("loadSrelayConf", () => {
  test("the shipped sample lines are all valid", () => {
    const path = fileURLToPath(new URL("../../tests/fixtures/config/srelay.conf", import.meta.url));
    const { rules, issues } = loadSrelayConf(path);
    assert.deepEqual(issues, []);
    assert.deepEqual(rules.map((r) => r.line), [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    const example = rules.find((r) => r.line === 11);
    assert.deepEqual(example?.destination, { kind: "ipv4", network: "10.1.1.0", prefix: 25 });
    assert.deepEqual(example?.hops, [
      socks("100.100.100.100", 1111),
      { host: "firewall", port: 8080, protocol: "http" },
      socks("fw2"),
    ]);
    assert.deepEqual(rules.find((r) => r.line === 15)?.hops, [
      socks("Socks-Island"),
      { host: "FireWall", port: 8080, protocol: "http" },
    ]);
  });

  test("a missing file is one error on line 0", () => {
    const path = "/nonexistent/srelay.conf";
    const { rules, issues } = loadSrelayConf(path);
    assert.deepEqual(rules, []);
    assert.equal(issues.length, 1);
    assert.equal(issues[0]?.line, 0);
    assert.equal(issues[0]?.severity, "error");
    assert.equal(issues[0]?.file, path);
    assert.match(issues[0]?.message ?? "", /^Cannot read config file: ENOENT/);
  });
});
