/**
 * Chooses the srelay.conf rule for a request: first match in file order, as
 * srelay(8) does, with names matched on a dot boundary.
 *
 * Matching has two stages. The first compares the request's own target
 * (name or address) with every rule. If nothing matches and the target is a
 * name, the second resolves it locally and retries each address, in order,
 * against the IP rules only; the request itself still goes out with the
 * name. No match means a direct connection.
 *
 * Kept from srelay: `0.0.0.0` and `::` rules match every address of their
 * family whatever the mask; a rule never matches an address of the other
 * family (but an IPv4-mapped IPv6 target, `::ffff:a.b.c.d`, is matched as
 * IPv4).
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import type { Target } from "../protocol/target.ts";
import type { RouteRule, RuleTransport } from "./srelay_conf.ts";

/** What a route is chosen for: the destination and the SOCKS command. */
export interface RouteRequest {
  readonly target: Target;
  readonly command: "connect" | "bind" | "udp";
}

/**
 * The rule that matched. `by` says whether the request's name or an address
 * matched; `address` is that address: the target's own, or one resolved
 * from its name in the second stage.
 */
export interface RouteMatch {
  readonly rule: RouteRule;
  readonly by: "name" | "address";
  readonly address?: string;
}

/** Resolves a name to IPv4 and IPv6 address strings (for the second stage). */
export type RouteResolver = (name: string) => Promise<string[]>;

type Matcher =
  | { readonly kind: "any" }
  | { readonly kind: "ipv4"; readonly network: number; readonly mask: number }
  | { readonly kind: "ipv6"; readonly network: bigint; readonly mask: bigint }
  | { readonly kind: "suffix"; readonly name: string; readonly subdomainsOnly: boolean };

interface CompiledRule {
  readonly rule: RouteRule;
  readonly matcher: Matcher;
}

type Address =
  | { readonly family: 4; readonly value: number }
  | { readonly family: 6; readonly value: bigint };

const ALL_IPV6 = (1n << 128n) - 1n;

/**
 * The routing table of one srelay.conf, compiled once so that matching is
 * integer comparisons and string suffix tests.
 *
 * @example
 * ```ts
 * const table = new RouteTable(parseSrelayConf("example.com any proxy 1080\n", "srelay.conf").rules);
 * const match = await table.match({ target: { kind: "domain", host: "www.example.com", port: 443 }, command: "connect" });
 * // match?.rule.hops: [{ host: "proxy", port: 1080, protocol: "socks" }], match?.by: "name"
 * ```
 */
export class RouteTable {
  readonly #rules: readonly RouteRule[];
  readonly #compiled: readonly CompiledRule[];

  constructor(rules: readonly RouteRule[]) {
    this.#rules = [...rules];
    this.#compiled = this.#rules.map((rule) => ({ rule, matcher: compileMatcher(rule) }));
  }

  /** The rules, in file order. */
  get rules(): readonly RouteRule[] {
    return this.#rules;
  }

  /**
   * Finds the first rule for the request, or `null` for a direct
   * connection. `resolve` enables the second stage for names; its failure
   * counts as "no addresses".
   */
  async match(request: RouteRequest, resolve?: RouteResolver): Promise<RouteMatch | null> {
    const { target } = request;
    const candidates = this.#compiled.filter((entry) =>
      appliesTo(entry.rule.transport, request.command) &&
      entry.rule.ports.low <= target.port && target.port <= entry.rule.ports.high
    );
    if (target.kind !== "domain") {
      const address = parseAddress(target.host);
      if (address === null) return null;
      const rule = firstAddressMatch(candidates, address, true);
      return rule === null ? null : { rule, by: "address", address: target.host };
    }
    const name = normaliseName(target.host);
    for (const { rule, matcher } of candidates) {
      if (matcher.kind === "any" || (matcher.kind === "suffix" && suffixMatches(matcher, name))) {
        return { rule, by: "name" };
      }
    }
    const ipCandidates = candidates.filter((entry) => entry.matcher.kind === "ipv4" || entry.matcher.kind === "ipv6");
    if (ipCandidates.length === 0) return null;
    for (const text of await addressesOf(target.host, resolve)) {
      const address = parseAddress(text);
      if (address === null) continue;
      const rule = firstAddressMatch(ipCandidates, address, false);
      if (rule !== null) return { rule, by: "address", address: text };
    }
    return null;
  }
}

function appliesTo(transport: RuleTransport, command: RouteRequest["command"]): boolean {
  return command === "udp" ? transport !== "tcp" : transport !== "udp";
}

function firstAddressMatch(candidates: readonly CompiledRule[], address: Address, anyMatches: boolean): RouteRule | null {
  for (const { rule, matcher } of candidates) {
    switch (matcher.kind) {
      case "any":
        if (anyMatches) return rule;
        break;
      case "ipv4":
        if (address.family === 4 && ((address.value & matcher.mask) >>> 0) === matcher.network) return rule;
        break;
      case "ipv6":
        if (address.family === 6 && (address.value & matcher.mask) === matcher.network) return rule;
        break;
      case "suffix":
        break;
    }
  }
  return null;
}

async function addressesOf(host: string, resolve: RouteResolver | undefined): Promise<readonly string[]> {
  if (parseAddress(host) !== null) return [host];
  if (resolve === undefined) return [];
  try {
    return await resolve(host);
  } catch {
    return [];
  }
}

function compileMatcher(rule: RouteRule): Matcher {
  const destination = rule.destination;
  switch (destination.kind) {
    case "any":
      return { kind: "any" };
    case "ipv4": {
      const mask = destination.prefix === 0 ? 0 : (0xffffffff << (32 - destination.prefix)) >>> 0;
      return { kind: "ipv4", network: (ipv4Value(destination.network) & mask) >>> 0, mask };
    }
    case "ipv6": {
      const mask = (ALL_IPV6 << BigInt(128 - destination.prefix)) & ALL_IPV6;
      return { kind: "ipv6", network: ipv6Value(destination.network) & mask, mask };
    }
    case "suffix": {
      const subdomainsOnly = destination.suffix.startsWith(".");
      const name = normaliseName(subdomainsOnly ? destination.suffix.slice(1) : destination.suffix);
      return { kind: "suffix", name, subdomainsOnly };
    }
  }
}

function suffixMatches(matcher: { readonly name: string; readonly subdomainsOnly: boolean }, name: string): boolean {
  if (name === matcher.name) return !matcher.subdomainsOnly;
  return name.endsWith(`.${matcher.name}`);
}

function normaliseName(name: string): string {
  const lower = name.toLowerCase();
  return lower.length > 1 && lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

function parseAddress(text: string): Address | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return { family: 4, value: ipv4Value(text) };
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (!ipaddr.IPv6.isValid(bare)) return null;
  const v6 = ipaddr.IPv6.parse(bare);
  if (v6.isIPv4MappedAddress()) return { family: 4, value: octetsValue(v6.toIPv4Address().octets) };
  let value = 0n;
  for (const part of v6.parts) value = (value << 16n) | BigInt(part);
  return { family: 6, value };
}

function ipv4Value(text: string): number {
  return octetsValue(ipaddr.IPv4.parse(text).octets);
}

function octetsValue(octets: readonly number[]): number {
  return (((octets[0] ?? 0) << 24) | ((octets[1] ?? 0) << 16) | ((octets[2] ?? 0) << 8) | (octets[3] ?? 0)) >>> 0;
}

function ipv6Value(text: string): bigint {
  let value = 0n;
  for (const part of ipaddr.IPv6.parse(text).parts) value = (value << 16n) | BigInt(part);
  return value;
}
