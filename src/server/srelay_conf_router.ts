/**
 * Routing by srelay.conf: the first matching rule picks the chain of next
 * hops, no match (or a rule without hops) means a direct connection.
 *
 * @module
 */
import type { PasswdFile } from "../config/passwd.ts";
import { formatRoute } from "../config/format_routes.ts";
import { RouteTable } from "../config/route_table.ts";
import type { RouteRule } from "../config/srelay_conf.ts";
import type { Resolver } from "../runtime/resolver.ts";
import { createChainDialer } from "../upstream/chain_dialer.ts";
import type { Dialer } from "../upstream/dialer.ts";
import type { RouteChoice, Router, RouteRequest } from "./router.ts";

/** What a srelay.conf router is built from. */
export interface SrelayConfRouterOptions {
  readonly rules: readonly RouteRule[];
  /** Dials targets and the nearest hop directly. */
  readonly direct: Dialer;
  /** srelay.passwd (`-u`), or null. */
  readonly passwd: PasswdFile | null;
  /** Resolves names for the second matching stage; null disables it (`--no-route-dns`). */
  readonly resolver: Resolver | null;
  /** Longest wait for one hop's handshake, in milliseconds. */
  readonly handshakeTimeoutMs: number;
}

/** Builds a router over one parsed srelay.conf. Chains are built once per rule. */
export function createSrelayConfRouter(options: SrelayConfRouterOptions): Router {
  const table = new RouteTable(options.rules);
  const direct: RouteChoice = { dialer: options.direct, description: "direct" };
  const chains = new Map<RouteRule, RouteChoice>();
  const { passwd, resolver } = options;
  const resolve = resolver === null ? undefined : (name: string) => resolver.resolve(name);
  const credentials = passwd === null ? undefined : { credentials: passwd.lookup.bind(passwd) };

  function choiceFor(rule: RouteRule): RouteChoice {
    let choice = chains.get(rule);
    if (choice === undefined) {
      choice = {
        dialer: createChainDialer({
          direct: options.direct,
          hops: rule.hops,
          handshakeTimeoutMs: options.handshakeTimeoutMs,
          ...credentials,
        }),
        description: formatRoute(rule.hops),
      };
      chains.set(rule, choice);
    }
    return choice;
  }

  // The first rule UDP sees decides for every UDP destination when it matches them all.
  const firstUdp = options.rules.find((rule) => rule.transport !== "tcp");
  const udpForAll = firstUdp === undefined
    ? direct
    : firstUdp.destination.kind === "any" && firstUdp.ports.low <= 1 && firstUdp.ports.high === 65535
    ? (firstUdp.hops.length === 0 ? direct : choiceFor(firstUdp))
    : null;

  const choose = async (request: RouteRequest): Promise<RouteChoice> => {
    const match = await table.match({ target: request.target, command: request.command }, resolve);
    return match === null || match.rule.hops.length === 0 ? direct : choiceFor(match.rule);
  };
  return {
    // Without rules every request goes direct: no promise to make.
    choose: options.rules.length === 0 ? () => direct : choose,
    udpRouteForAll: () => udpForAll,
  };
}
