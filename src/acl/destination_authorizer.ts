/**
 * The authorize stage's implementation for destinations: `--rules` and the
 * safe default that keeps clients of an exposed, unauthenticated listener
 * away from the proxy host itself.
 *
 * Rules are checked after name resolution, against the exact addresses
 * that will be dialled: a domain target is resolved here, every address is
 * checked, and only the addresses that pass are handed on to the dialer
 * (`Authorization.addresses`), so a name cannot dodge an address rule and
 * DNS cannot change between the check and the dial. A request is refused
 * when no address passes. Through a next hop, which resolves the name
 * itself, the local answer is what is checked.
 *
 * A `from` clause naming a host or a domain matches the client's verified
 * name (`-r`), looked up only when some rule names a client; a client
 * without one (no `-r`, no reverse name, or a name that does not resolve
 * back to the client) matches no name.
 *
 * @module
 */
import type { ClientNameLookup } from "./hosts_access.ts";
import type { RuleMatcher } from "./rules.ts";
import { ipFamily } from "../net/address.ts";
import type { Authorization, AuthorizeQuestion, Authorizer } from "../server/authorize.ts";

/** What a destination authorizer is built from. */
export interface DestinationAuthorizerOptions {
  /** Compiled `--rules`, or null. */
  readonly rules: RuleMatcher | null;
  /** True when internal targets are blocked unless a rule passes them by address. */
  readonly blockInternal: boolean;
  /** Whether an address is the proxy host's own, loopback, unspecified or link-local. */
  readonly isInternal: (address: string) => boolean;
  /** Resolves a domain target to the addresses that would be dialled. */
  readonly resolve: (name: string) => Promise<readonly string[]>;
  /** The client's verified name (`-r`), for rules naming clients; without it no client has a name. */
  readonly clientName?: ClientNameLookup;
}

/** The reason logged when the safe default refuses a target. */
export const INTERNAL_TARGET_REASON =
  "the default for an exposed listener without authentication: the proxy host's own, loopback and link-local addresses are blocked (pass them with a rule, or --allow-internal)";

const ALLOWED: Authorization = { allowed: true };

/**
 * Builds the authorizer; with neither rules nor the safe default it allows
 * everything without resolving anything.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const authorizer = destinationAuthorizer({
 *   rules: null,
 *   blockInternal: true,
 *   isInternal: (address) => address.startsWith("127."),
 *   resolve: async () => ["127.0.0.1", "192.0.2.80"],
 * });
 * const ask = (target: { kind: "ipv4" | "domain"; host: string; port: number }) =>
 *   authorizer.authorize({
 *     client: { address: { host: "198.51.100.4", port: 5000, family: 4 }, local: { host: "192.0.2.1", port: 1080, family: 4 } },
 *     identity: { user: "", method: "none" },
 *     request: { version: "5", command: "connect", target, userId: "", responder: null as never },
 *   });
 * assert.equal((await ask({ kind: "ipv4", host: "127.0.0.1", port: 22 })).allowed, false);
 * assert.deepEqual(await ask({ kind: "domain", host: "www.example", port: 80 }), { allowed: true, addresses: ["192.0.2.80"] });
 * ```
 */
export function destinationAuthorizer(options: DestinationAuthorizerOptions): Authorizer {
  const { rules, blockInternal, isInternal } = options;
  if (rules === null && !blockInternal) return { authorize: () => ALLOWED };
  const lookup = rules?.namesClients ? options.clientName : undefined;

  function decide(
    question: AuthorizeQuestion,
    address: string,
    name: string | undefined,
    clientName: string | undefined,
  ): Authorization {
    const { request, identity, client } = question;
    const decision = rules?.check({
      client: client.address,
      ...(clientName === undefined ? {} : { clientName }),
      target: { ...(name === undefined ? {} : { name }), address, port: request.target.port },
      command: request.command,
      // A SOCKS4 USERID is only claimed: user clauses match verified names alone.
      user: identity.method === "password" ? identity.user : "",
    }) ?? null;
    if (decision?.action === "block") return { allowed: false, reason: `${decision.rule.file}:${decision.rule.line}` };
    if (blockInternal && isInternal(address) && !(decision?.action === "pass" && decision.targetByAddress)) {
      return { allowed: false, reason: INTERNAL_TARGET_REASON };
    }
    return ALLOWED;
  }

  function authorizeAs(
    question: AuthorizeQuestion,
    clientName: string | undefined,
  ): Authorization | Promise<Authorization> {
    const { target } = question.request;
    if (target.kind !== "domain") return decide(question, target.host, undefined, clientName);
    return options.resolve(target.host).then((addresses): Authorization => {
      const passed: string[] = [];
      let refusal: Authorization | undefined;
      for (const address of addresses) {
        if (ipFamily(address) === 0) continue;
        const verdict = decide(question, address, target.host, clientName);
        if (verdict.allowed) passed.push(address);
        else refusal ??= verdict;
      }
      if (passed.length > 0) return { allowed: true, addresses: passed };
      return refusal ?? { allowed: false, reason: `${target.host} resolved to no address` };
    });
  }

  return {
    authorize(question) {
      if (lookup === undefined) return authorizeAs(question, undefined);
      return lookup(question.client.address.host).then((name) =>
        authorizeAs(question, typeof name === "object" ? name.name : undefined)
      );
    },
  };
}
