/**
 * The routing seam: for each request the server asks a `Router` which
 * `Dialer` reaches the target (direct, or a chain of next hops).
 *
 * @module
 */
import type { Target } from "../protocol/target.ts";
import type { NetAddress } from "../runtime/types.ts";
import type { Dialer } from "../upstream/dialer.ts";

/** What the router sees of a request. */
export interface RouteRequest {
  readonly target: Target;
  readonly command: "connect" | "bind" | "udp";
  readonly client: NetAddress;
}

/** The way to a target, and how to name it in logs (`direct`, `relay=h1:p1,h2:p2`). */
export interface RouteChoice {
  readonly dialer: Dialer;
  readonly description: string;
}

/** Chooses the route for each request. */
export interface Router {
  /** The route; a plain value when no lookup is needed (no rules, or an address target). */
  choose(request: RouteRequest): RouteChoice | Promise<RouteChoice>;
  /**
   * UDP ASSOCIATE learns its destinations only per datagram: when every UDP
   * destination takes the same route, that route (decided once, at the
   * request); null when it depends on the destination. Absent: per datagram.
   */
  udpRouteForAll?(): RouteChoice | null;
}
