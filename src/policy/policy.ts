/**
 * The policy snapshot: everything a session decides by that comes from
 * files (the route table, next-hop credentials and, as they land, users,
 * hosts rules and destination rules), in one immutable object. A session
 * reads it once at its start; a reload builds a whole new one and swaps it
 * in, so no session ever sees half of an old file and half of a new one.
 *
 * @module
 */
import type { Admitter } from "../server/admit.ts";
import type { Authorizer } from "../server/authorize.ts";
import type { NegotiationPolicy } from "../server/negotiate.ts";
import type { Router } from "../server/router.ts";

/** One policy snapshot. */
export interface Policy {
  /** Chooses the route (direct, or a chain of next hops) for each request. */
  readonly router: Router;
  /** Which SOCKS5 methods the server accepts, in order, and whether SOCKS4 is allowed. */
  readonly negotiation: NegotiationPolicy;
  /** Checks of the admit stage that come from files (tcp_wrappers). */
  readonly admitters: readonly Admitter[];
  /** Destination rules. */
  readonly authorizer: Authorizer;
}
