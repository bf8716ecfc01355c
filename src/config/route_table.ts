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
import { type Cidr, type IpAddress, parseHost, parseIp, prefixMatch, toCidr } from "../net/address.ts";
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
  | { readonly kind: "ip"; readonly cidr: Cidr }
  | { readonly kind: "suffix"; readonly name: string; readonly subdomainsOnly: boolean };

interface CompiledRule {
  readonly rule: RouteRule;
  readonly matcher: Matcher;
}

/**
 * The routing table of one srelay.conf, compiled once so that matching is
 * prefix comparisons and string suffix tests.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSrelayConf } from "./srelay_conf.ts";
 * const { rules } = parseSrelayConf("example.com any proxy 1080\n10.0.0.0/8 any\n", "srelay.conf");
 * const table = new RouteTable(rules);
 * const www = { kind: "domain", host: "www.example.com", port: 443 } as const;
 * const byName = await table.match({ target: www, command: "connect" });
 * assert.equal(byName?.by, "name");
 * assert.deepEqual(byName?.rule.hops, [{ host: "proxy", port: 1080, protocol: "socks" }]);
 * const mapped = { kind: "ipv6", host: "::ffff:10.1.2.3", port: 80 } as const;
 * const byAddress = await table.match({ target: mapped, command: "connect" });
 * assert.deepEqual([byAddress?.rule.line, byAddress?.by], [2, "address"]);
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
      const address = parseHost(target.host);
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
    const ipCandidates = candidates.filter((entry) => entry.matcher.kind === "ip");
    if (ipCandidates.length === 0) return null;
    for (const text of await addressesOf(target.host, resolve)) {
      const address = parseHost(text);
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

function firstAddressMatch(
  candidates: readonly CompiledRule[],
  address: IpAddress,
  anyMatches: boolean,
): RouteRule | null {
  for (const { rule, matcher } of candidates) {
    switch (matcher.kind) {
      case "any":
        if (anyMatches) return rule;
        break;
      case "ip":
        if (prefixMatch(matcher.cidr, address)) return rule;
        break;
      case "suffix":
        break;
    }
  }
  return null;
}

async function addressesOf(host: string, resolve: RouteResolver | undefined): Promise<readonly string[]> {
  if (parseHost(host) !== null) return [host];
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
    case "ipv4":
    case "ipv6": {
      const network = parseIp(destination.network);
      if (network === null) throw new RangeError(`Cannot compile rule: '${destination.network}' is not an address`);
      return { kind: "ip", cidr: toCidr(network, destination.prefix) };
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
