/**
 * Text forms of routes: the effective routing table printed by
 * `--check-config`, and the route field of session log lines.
 *
 * @module
 */
import { formatHostPort } from "../net/address.ts";
import type { DestinationPattern, Hop, RouteRule, RuleTransport } from "./srelay_conf.ts";

const MAX_PORT = 65535;
const COLUMN_GAP = "  ";

/**
 * Formats the effective routing table, one line per rule in match order:
 * line number, destination, port range, transport, and the route in travel
 * order (nearest hop first), with columns aligned; then `(no match) direct`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSrelayConf } from "./srelay_conf.ts";
 * const { rules } = parseSrelayConf("10.1.1.0/25 any 100.100.100.100 1111 firewall 8080/H fw2 1080\n", "f");
 * assert.equal(
 *   formatRouteTable(rules),
 *   "1  10.1.1.0/25  any  tcp+udp  via fw2:1080(socks) -> firewall:8080(http) -> 100.100.100.100:1111(socks)\n" +
 *     "(no match) direct",
 * );
 * ```
 */
export function formatRouteTable(rules: readonly RouteRule[]): string {
  const rows = rules.map((rule) => [
    String(rule.line),
    formatDestination(rule.destination),
    formatPorts(rule.ports),
    formatTransport(rule.transport),
    rule.hops.length === 0 ? "direct" : `via ${travelOrder(rule.hops).map(formatHop).join(" -> ")}`,
  ]);
  const widths = [0, 1, 2, 3].map((column) => Math.max(0, ...rows.map((row) => (row[column] ?? "").length)));
  const lines = rows.map((row) =>
    row.map((cell, column) => (column < 4 ? cell.padEnd(widths[column] ?? 0) : cell)).join(COLUMN_GAP)
  );
  lines.push("(no match) direct");
  return lines.join("\n");
}

/**
 * Formats a route for session log lines: `direct`, or `relay=` and the hops
 * as `host:port` in travel order (nearest first), comma-separated, with
 * IPv6 hosts bracketed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const far = { host: "far", port: 1111, protocol: "socks" } as const;
 * const near = { host: "2001:db8::1", port: 1080, protocol: "socks" } as const;
 * assert.equal(formatRoute([far, near]), "relay=[2001:db8::1]:1080,far:1111");
 * ```
 */
export function formatRoute(hops: readonly Hop[]): string {
  if (hops.length === 0) return "direct";
  return `relay=${travelOrder(hops).map((hop) => formatHostPort(hop.host, hop.port)).join(",")}`;
}

/** Formats a destination pattern: `*`, `a.b.c.d/n`, `x::/n` or the name suffix. */
export function formatDestination(destination: DestinationPattern): string {
  switch (destination.kind) {
    case "any":
      return "*";
    case "ipv4":
    case "ipv6":
      return `${destination.network}/${destination.prefix}`;
    case "suffix":
      return destination.suffix;
  }
}

function formatPorts(ports: { readonly low: number; readonly high: number }): string {
  if (ports.low === 0 && ports.high === MAX_PORT) return "any";
  if (ports.low === ports.high) return String(ports.low);
  return `${ports.low}-${ports.high}`;
}

function formatTransport(transport: RuleTransport): string {
  return transport === "any" ? "tcp+udp" : transport;
}

function travelOrder(hops: readonly Hop[]): Hop[] {
  return [...hops].reverse();
}

function formatHop(hop: Hop): string {
  return `${formatHostPort(hop.host, hop.port)}(${hop.protocol})`;
}
