import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatDestination, formatRoute, formatRouteTable } from "./format_routes.ts";
import { type DestinationPattern, type Hop, parseSrelayConf, type RouteRule } from "./srelay_conf.ts";

function rulesOf(text: string): RouteRule[] {
  const { rules, issues } = parseSrelayConf(text, "srelay.conf");
  assert.deepEqual(issues, []);
  return rules;
}

describe("formatRouteTable", () => {
  test("the worked example: hops in travel order, nearest first", () => {
    const text = `${"#\n".repeat(11)}10.1.1.0/25 any 100.100.100.100 1111 firewall 8080/H fw2 1080\n`;
    assert.equal(
      formatRouteTable(rulesOf(text)),
      "12  10.1.1.0/25  any  tcp+udp  via fw2:1080(socks) -> firewall:8080(http) -> 100.100.100.100:1111(socks)\n" +
        "(no match) direct",
    );
  });

  test("columns are aligned, and every field form is shown", () => {
    const text = [
      "* any",
      "example.com 443/T proxy 1080/5",
      "[2001:db8::]/32 1024-/U [::1] 1080/4",
      "192.0.2.0/24 -511",
      "10.0.0.1 53 [fe80::1] 1081",
    ].join("\n");
    assert.equal(
      formatRouteTable(rulesOf(text)),
      [
        "1  *              any         tcp+udp  direct",
        "2  example.com    443         tcp      via proxy:1080(socks5)",
        "3  2001:db8::/32  1024-65535  udp      via [::1]:1080(socks4)",
        "4  192.0.2.0/24   0-511       tcp+udp  direct",
        "5  10.0.0.1/32    53          tcp+udp  via [fe80::1]:1081(socks)",
        "(no match) direct",
      ].join("\n"),
    );
  });

  test("an empty table is only the fallback line", () => {
    assert.equal(formatRouteTable([]), "(no match) direct");
  });
});

describe("formatRoute", () => {
  const cases: Array<[Hop[], string]> = [
    [[], "direct"],
    [[{ host: "10.1.1.1", port: 1080, protocol: "socks" }], "relay=10.1.1.1:1080"],
    [
      [
        { host: "100.100.100.100", port: 1111, protocol: "socks" },
        { host: "firewall", port: 8080, protocol: "http" },
        { host: "fw2", port: 1080, protocol: "socks" },
      ],
      "relay=fw2:1080,firewall:8080,100.100.100.100:1111",
    ],
    [[{ host: "2001:db8::1", port: 1080, protocol: "socks5" }], "relay=[2001:db8::1]:1080"],
  ];
  for (const [hops, expected] of cases) {
    test(expected, () => {
      assert.equal(formatRoute(hops), expected);
    });
  }
});

describe("formatDestination", () => {
  const cases: Array<[DestinationPattern, string]> = [
    [{ kind: "any" }, "*"],
    [{ kind: "ipv4", network: "0.0.0.0", prefix: 0 }, "0.0.0.0/0"],
    [{ kind: "ipv6", network: "::", prefix: 0 }, "::/0"],
    [{ kind: "suffix", suffix: ".corp.com" }, ".corp.com"],
  ];
  for (const [destination, expected] of cases) {
    test(expected, () => {
      assert.equal(formatDestination(destination), expected);
    });
  }
});
