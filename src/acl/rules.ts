/**
 * The destination rules matcher: first match wins in file order, without
 * scanning every rule for every request.
 *
 * Each rule is filed under one key, the most selective clause it has: its
 * destination subnet, else its destination name or domain, else its client
 * subnet, else its client name or domain; rules with none of these go to a
 * short list of their own. Subnets sit in one hash table per family and
 * prefix length (mapping the masked address to the rules, in file order),
 * names in a map, domains in a map looked up with each dot-suffix of the
 * name. A check gathers the few candidate lists for its addresses and
 * names, and in each takes the first rule that matches every clause,
 * keeping the lowest rule index: the cost grows with the number of distinct
 * prefix lengths and name labels, not with the number of rules.
 *
 * Addresses are compared in their IPv4 form when IPv4-mapped; a subnet
 * never matches a name, and a name or domain never matches an address (a
 * request for an address is not checked against name patterns, so block
 * sites by address to stop requests that bypass DNS).
 *
 * @module
 */
import type { DestinationRule, RuleAction, RuleAddress } from "../config/rules.ts";
import { type IpAddress, parseHost, prefixMatch } from "../net/address.ts";
import type { NetAddress } from "../runtime/types.ts";
import type { Command } from "../server/request.ts";

/** A request as the rules see it, after name resolution. */
export interface RuleQuestion {
  readonly client: NetAddress;
  /** The client's verified host name (`-r`), if known; client name patterns match only this. */
  readonly clientName?: string;
  /**
   * The destination: the name the client asked for, if any, and the exact
   * address that will be dialled (or, for BIND, the expected peer).
   */
  readonly target: { readonly name?: string; readonly address: string; readonly port: number };
  readonly command: Command;
  /** The user name, empty for none; `user` clauses match only a non-empty name. */
  readonly user: string;
}

/** The rule that matched. */
export interface RuleDecision {
  readonly action: RuleAction;
  readonly rule: { readonly file: string; readonly line: number };
  /** True when the rule names the destination by address or subnet (not by name, nor by omitting it). */
  readonly targetByAddress: boolean;
}

/** Compiled rules. */
export interface RuleMatcher {
  /** The rules in file order. */
  readonly rules: readonly DestinationRule[];
  /** True when some rule names the client by host name or domain, so `clientName` matters. */
  readonly namesClients: boolean;
  /** The first rule matching the request, or `null` (which means pass). */
  check(question: RuleQuestion): RuleDecision | null;
}

/** A question with its addresses parsed and names normalised once. */
interface Prepared {
  readonly client: IpAddress | null;
  readonly clientName: string | null;
  readonly target: IpAddress | null;
  readonly targetName: string | null;
  readonly port: number;
  readonly command: Command;
  readonly user: string;
}

/**
 * Compiles rules (from `parseRules`) into an indexed matcher.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRules } from "../config/rules.ts";
 * const parsed = parseRules("pass to 10.1.0.0/16\nblock to 10.0.0.0/8\nblock to .example.com port 25\n", "rules");
 * assert.ok(parsed.ok);
 * const rules = compileRules(parsed.rules);
 * const ask = (address: string, port: number, name?: string) =>
 *   rules.check({
 *     client: { host: "192.0.2.9", port: 40000, family: 4 },
 *     target: { name, address, port },
 *     command: "connect",
 *     user: "",
 *   });
 * assert.deepEqual(ask("10.2.3.4", 80), { action: "block", rule: { file: "rules", line: 2 }, targetByAddress: true });
 * assert.equal(ask("10.1.3.4", 80)?.action, "pass");
 * assert.equal(ask("192.0.2.25", 25, "mail.Example.com")?.rule.line, 3);
 * assert.equal(ask("192.0.2.25", 25), null);
 * ```
 */
export function compileRules(rules: readonly DestinationRule[]): RuleMatcher {
  const tests = rules.map(ruleTest);
  const decisions: RuleDecision[] = rules.map((rule) => ({
    action: rule.action,
    rule: { file: rule.file, line: rule.line },
    targetByAddress: rule.to?.kind === "subnet",
  }));
  const targets = new AddressIndex();
  const clients = new AddressIndex();
  const rest: number[] = [];
  rules.forEach((rule, index) => {
    if (rule.to !== null) targets.add(rule.to, index);
    else if (rule.from !== null) clients.add(rule.from, index);
    else rest.push(index);
  });
  return {
    rules,
    namesClients: rules.some((rule) => rule.from !== null && rule.from.kind !== "subnet"),
    check(question) {
      const prepared: Prepared = {
        client: parseHost(question.client.host),
        clientName: normalizeName(question.clientName),
        target: parseHost(question.target.address),
        targetName: normalizeName(question.target.name),
        port: question.target.port,
        command: question.command,
        user: question.user,
      };
      let best = Infinity;
      const consider = (candidates: readonly number[] | undefined): void => {
        if (candidates === undefined) return;
        for (const index of candidates) {
          if (index >= best) return;
          if (tests[index]?.(prepared)) {
            best = index;
            return;
          }
        }
      };
      targets.candidates(prepared.target, prepared.targetName, consider);
      clients.candidates(prepared.client, prepared.clientName, consider);
      consider(rest);
      return decisions[best] ?? null;
    },
  };
}

function normalizeName(name: string | undefined): string | null {
  if (name === undefined || name === "") return null;
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

/** Whether a rule matches a request, every clause checked. */
function ruleTest(rule: DestinationRule): (question: Prepared) => boolean {
  const from = rule.from;
  const to = rule.to;
  const ports = rule.ports;
  const commands = rule.commands;
  const users = rule.users === null ? null : new Set(rule.users);
  return (question) =>
    (ports === null || (question.port >= ports.low && question.port <= ports.high)) &&
    (commands === null || commands.includes(question.command)) &&
    (users === null || users.has(question.user)) &&
    (from === null || addressMatches(from, question.client, question.clientName)) &&
    (to === null || addressMatches(to, question.target, question.targetName));
}

function addressMatches(pattern: RuleAddress, address: IpAddress | null, name: string | null): boolean {
  switch (pattern.kind) {
    case "subnet":
      return address !== null && prefixMatch(pattern.cidr, address);
    case "name":
      return name === pattern.name;
    case "domain":
      return name !== null && (name === pattern.domain || name.endsWith(`.${pattern.domain}`));
  }
}

/** Rules filed by one address-or-name clause: subnets by family and prefix length, names, domains. */
class AddressIndex {
  readonly #v4 = new Map<number, Map<number, number[]>>();
  readonly #v6 = new Map<number, Map<bigint, number[]>>();
  readonly #names = new Map<string, number[]>();
  readonly #domains = new Map<string, number[]>();
  #v4Tables: Array<{ mask: number; rules: Map<number, number[]> }> = [];
  #v6Tables: Array<{ shift: bigint; rules: Map<bigint, number[]> }> = [];

  add(pattern: RuleAddress, index: number): void {
    switch (pattern.kind) {
      case "name":
        append(this.#names, pattern.name, index);
        return;
      case "domain":
        append(this.#domains, pattern.domain, index);
        return;
      case "subnet": {
        const { network, prefix } = pattern.cidr;
        if (network.family === 4) {
          append(entry(this.#v4, prefix, () => new Map()), Number(network.value), index);
          this.#v4Tables = [...this.#v4].map(([length, rules]) => ({ mask: v4Mask(length), rules }));
        } else {
          append(entry(this.#v6, prefix, () => new Map()), network.value >> BigInt(128 - prefix), index);
          this.#v6Tables = [...this.#v6].map(([length, rules]) => ({ shift: BigInt(128 - length), rules }));
        }
      }
    }
  }

  /** Hands every list of rules that may match this address or name to `consider`. */
  candidates(address: IpAddress | null, name: string | null, consider: (rules: number[] | undefined) => void): void {
    if (address?.family === 4) {
      const value = Number(address.value);
      for (const table of this.#v4Tables) consider(table.rules.get((value & table.mask) >>> 0));
    } else if (address?.family === 6) {
      for (const table of this.#v6Tables) consider(table.rules.get(address.value >> table.shift));
    }
    if (name === null) return;
    consider(this.#names.get(name));
    if (this.#domains.size === 0) return;
    for (let suffix: string | null = name; suffix !== null; suffix = parentDomain(suffix)) {
      consider(this.#domains.get(suffix));
    }
  }
}

function parentDomain(name: string): string | null {
  const dot = name.indexOf(".");
  return dot < 0 ? null : name.slice(dot + 1);
}

function v4Mask(prefix: number): number {
  return prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
}

function entry<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

function append<K>(map: Map<K, number[]>, key: K, index: number): void {
  entry(map, key, () => []).push(index);
}
