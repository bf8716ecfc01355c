/**
 * UDP ASSOCIATE (RFC 1928 §7): bind the relay socket, answer the client,
 * pump datagrams (`../io/datagram_relay.ts`) until the control connection
 * ends, and account for the association.
 *
 * - **Relay socket.** One per association, bound on the local address (and
 *   so the family) the client reached us on, port 0. The reply names that
 *   address, never `0.0.0.0` or `::`.
 * - **Pinning.** Datagrams are accepted only from the control connection's
 *   client address, and from the port declared in DST.PORT (or, when it is 0,
 *   the port of the client's first datagram). DST.ADDR is not used: the
 *   control connection already says who the client is.
 * - **Per datagram**, in this order: the destination rules (`--rules`, command
 *   `udp`) for its destination, names resolved by the authorizer; then its
 *   route (srelay.conf, `/U` and `/T` honoured); then, for a direct route, a
 *   name is resolved here (the addresses the rules vetted first) and the
 *   payload goes to the first address. Route lookups are cached per
 *   association (`MAX_CACHED_ROUTES`). When srelay.conf sends every UDP
 *   destination the same way (`Router.udpRouteForAll`), that route is
 *   decided once, at the request.
 * - **Next hops.** A route whose farthest hop is a SOCKS5 server (`/5`, or
 *   `/S` that answers SOCKS5) gets that hop's own association, asked for
 *   over the chain (`../upstream/socks5_associate.ts`), and datagrams go
 *   through it with their header. A route whose farthest hop is SOCKS4 or
 *   HTTP cannot carry UDP. When the route is decided at the request, a
 *   failure is the reply (REP 07 for SOCKS4/HTTP, the hop's reason
 *   otherwise), and the hop ending its association ends ours. When it is
 *   decided per datagram, a failed route drops its datagrams (`no_route`,
 *   one log line) and is tried again after `HOP_RETRY_MS`.
 * - **Limits.** Per association: the relay socket, at most one outbound
 *   socket per family, at most `MAX_HOP_ASSOCIATIONS` next-hop associations
 *   (a TCP connection and a UDP socket each), `MAX_QUEUED` waiting
 *   datagrams. Per client address and in total: `--max-udp-per-client` and
 *   `--max-udp` (`command_limits.ts`); every association is a session too,
 *   so `-m` bounds them as well.
 *
 * @module
 */
import { type DatagramDecision, DatagramRelay, type DropReason } from "../io/datagram_relay.ts";
import { sendAndClose } from "../io/send_and_close.ts";
import { ipFamily, normalizeHost } from "../net/address.ts";
import { formatTarget, type Target } from "../protocol/target.ts";
import type { DatagramSocket } from "../runtime/types.ts";
import { type DialContext, targetFromAddress } from "../upstream/dialer.ts";
import { associateThroughHop, type HopAssociation } from "../upstream/socks5_associate.ts";
import type { Authorization } from "./authorize.ts";
import type { CommandSession } from "./commands.ts";
import { failureReasonFor } from "./reply_codes.ts";
import type { RouteChoice } from "./router.ts";

/** Most next-hop associations one client association opens at once. */
export const MAX_HOP_ASSOCIATIONS = 4;
/** Most route lookups one association keeps; the cache starts over when full. */
export const MAX_CACHED_ROUTES = 256;
/** How long a next hop whose association failed or ended is left alone before it is tried again. */
export const HOP_RETRY_MS = 10_000;
/** What the log says for the route of an association routed per datagram. */
export const PER_DATAGRAM_ROUTE = "per-datagram";

/** True when a route is a direct one (it has no farthest hop to speak to). */
function isDirect(route: RouteChoice): boolean {
  return route.dialer.reachFarthest === undefined;
}

function drop(reason: DropReason, detail: string): DatagramDecision {
  return { kind: "drop", reason, detail };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

type HopState =
  | { readonly kind: "opening"; readonly promise: Promise<HopAssociation> }
  | { readonly kind: "open"; readonly association: HopAssociation }
  | { readonly kind: "failed"; readonly until: number; readonly detail: string };

/** The next-hop associations of one client association, one per route. */
class HopAssociations {
  readonly #states = new Map<RouteChoice, HopState>();
  readonly #session: CommandSession;
  readonly #dialContext: DialContext & { readonly signal: AbortSignal };
  /** Called when an open hop association ends (the hop closed its control connection). */
  onEnd: ((route: RouteChoice, association: HopAssociation, detail: string) => void) | null = null;

  constructor(session: CommandSession, dialContext: DialContext & { readonly signal: AbortSignal }) {
    this.#session = session;
    this.#dialContext = dialContext;
  }

  /** Opens the association for `route` (throws `HopError`); the caller handles the failure. */
  open(route: RouteChoice): Promise<HopAssociation> {
    const promise = this.#open(route);
    this.#states.set(route, { kind: "opening", promise });
    return promise.then(
      (association) => {
        this.#states.set(route, { kind: "open", association });
        return association;
      },
      (error: unknown) => {
        this.#states.set(route, { kind: "failed", until: Date.now() + HOP_RETRY_MS, detail: errorText(error) });
        throw error;
      },
    );
  }

  /** Where a datagram on `route` goes: the hop association, once it is open. */
  decide(route: RouteChoice): DatagramDecision | Promise<DatagramDecision> {
    const state = this.#states.get(route);
    if (state?.kind === "open") return { kind: "upstream", upstream: state.association };
    if (state?.kind === "opening") return state.promise.then(upstreamOf, failedOn);
    if (state?.kind === "failed" && Date.now() < state.until) return drop("no_route", state.detail);
    let active = 0;
    for (const other of this.#states.values()) if (other.kind !== "failed") active++;
    if (active >= MAX_HOP_ASSOCIATIONS) {
      return drop("no_route", `${route.description}: already ${MAX_HOP_ASSOCIATIONS} next-hop associations`);
    }
    return this.open(route).then(upstreamOf, failedOn);
  }

  /** Closes every hop association. */
  closeAll(): void {
    for (const state of this.#states.values()) {
      if (state.kind === "open") state.association.close();
      else if (state.kind === "opening") state.promise.then((association) => association.close(), () => {});
    }
    this.#states.clear();
  }

  async #open(route: RouteChoice): Promise<HopAssociation> {
    const { context } = this.#session;
    const reach = route.dialer.reachFarthest;
    if (reach === undefined) throw new Error(`${route.description} has no next hop`);
    const farthest = await reach.call(route.dialer, this.#dialContext);
    const association = await associateThroughHop(farthest, {
      runtime: context.scope.runtime,
      signal: this.#dialContext.signal,
      timeoutMs: context.scope.settings.handshakeTimeoutMs,
      resolve: (name) => context.scope.resolver.resolve(name, this.#dialContext.signal),
      ...(this.#dialContext.localHost === undefined ? {} : { localHost: this.#dialContext.localHost }),
    });
    if (this.#dialContext.signal.aborted) {
      association.close();
      throw this.#dialContext.signal.reason;
    }
    association.onEnd = (error) => {
      const detail = `next hop ${association.name} ended its UDP association${
        error === undefined ? "" : ` (${error.message})`
      }`;
      this.#states.set(route, { kind: "failed", until: Date.now() + HOP_RETRY_MS, detail });
      this.onEnd?.(route, association, detail);
    };
    return association;
  }
}

function upstreamOf(association: HopAssociation): DatagramDecision {
  return { kind: "upstream", upstream: association };
}

function failedOn(error: unknown): DatagramDecision {
  return drop("no_route", errorText(error));
}

/**
 * Serves one UDP ASSOCIATE request until the control connection ends,
 * unless the client or the server is at its limit of associations
 * (`command_limits.ts`). Throws only that `Refusal`.
 */
export async function serveUdpAssociate(session: CommandSession): Promise<void> {
  const release = session.context.scope.commandSlots.take("udp", session.client.address.host, session.request);
  try {
    await serveAssociation(session);
  } finally {
    release();
  }
}

/** Serves one association until the control connection ends. Never throws. */
async function serveAssociation(session: CommandSession): Promise<void> {
  const { connection: control, handshake, request, context, account, identity } = session;
  const { scope, policy } = context;
  const { settings, runtime, resolver } = scope;
  const { responder } = request;
  const local = control.local;
  const localHost = settings.sameInterface ? local.host : settings.sourceAddress ?? undefined;
  const stop = new AbortController();
  const signal = AbortSignal.any([context.shutdown.signal, stop.signal]);
  const hops = new HopAssociations(session, {
    signal,
    userId: identity.user,
    ...(localHost === undefined ? {} : { localHost }),
  });
  const uniform = policy.router.udpRouteForAll?.() ?? null;
  account.requested(uniform?.description ?? PER_DATAGRAM_ROUTE);
  let relaySocket: DatagramSocket | null = null;
  const fail = async (error: unknown) => {
    stop.abort();
    hops.closeAll();
    relaySocket?.close();
    handshake.finish();
    const reason = failureReasonFor(error);
    account.failed(reason, error);
    await sendAndClose(control, responder.fail(reason), context.shutdown);
  };
  try {
    relaySocket = await runtime.bindDatagram({ host: local.host, port: 0 });
    if (uniform !== null && !isDirect(uniform)) await hops.open(uniform);
  } catch (error) {
    return fail(error);
  }
  handshake.finish();
  if (control.closed) {
    stop.abort();
    hops.closeAll();
    relaySocket.close();
    account.clientGone();
    return;
  }
  const bound = targetFromAddress(relaySocket.local);
  let reply: Uint8Array;
  try {
    reply = responder.succeed(bound);
  } catch (error) {
    return fail(error);
  }
  control.write(reply);

  // Routes, per association: the uniform one, or a cache of lookups.
  const routes = new Map<string, RouteChoice | Promise<RouteChoice>>();
  const routeFor = (target: Target): RouteChoice | Promise<RouteChoice> => {
    if (uniform !== null) return uniform;
    const key = `${target.kind}|${target.host}|${target.port}`;
    const cached = routes.get(key);
    if (cached !== undefined) return cached;
    if (routes.size >= MAX_CACHED_ROUTES) routes.clear();
    const chosen = policy.router.choose({ target, command: "udp", client: session.client.address });
    if (!(chosen instanceof Promise)) {
      routes.set(key, chosen);
      return chosen;
    }
    const pending = chosen;
    routes.set(key, pending);
    pending.then((route) => {
      if (routes.get(key) === pending) routes.set(key, route);
    }, () => routes.delete(key));
    return pending;
  };

  const direct = (
    target: Target,
    vetted: readonly string[] | undefined,
  ): DatagramDecision | Promise<DatagramDecision> => {
    if (target.kind !== "domain") return { kind: "direct", host: normalizeHost(target.host), port: target.port };
    const first = vetted?.[0];
    if (first !== undefined) return { kind: "direct", host: normalizeHost(first), port: target.port };
    return resolver.resolve(target.host, signal).then(
      (addresses): DatagramDecision => {
        const address = addresses[0];
        return address === undefined
          ? drop("unresolved", `${target.host}: no addresses`)
          : { kind: "direct", host: normalizeHost(address), port: target.port };
      },
      (error: unknown) => drop("unresolved", `${formatTarget(target)}: ${errorText(error)}`),
    );
  };

  const viaRoute = (
    target: Target,
    route: RouteChoice,
    vetted: readonly string[] | undefined,
  ): DatagramDecision | Promise<DatagramDecision> => isDirect(route) ? direct(target, vetted) : hops.decide(route);

  const afterRules = (target: Target, authorization: Authorization): DatagramDecision | Promise<DatagramDecision> => {
    if (!authorization.allowed) {
      return drop("not_allowed", `${formatTarget(target)}: not allowed by ${authorization.reason}`);
    }
    const route = routeFor(target);
    if (route instanceof Promise) {
      return route.then(
        (chosen) => viaRoute(target, chosen, authorization.addresses),
        (error: unknown) => drop("no_route", `${formatTarget(target)}: ${errorText(error)}`),
      );
    }
    return viaRoute(target, route, authorization.addresses);
  };

  const decide = (target: Target): DatagramDecision | Promise<DatagramDecision> => {
    if (target.port === 0) return drop("malformed", `${formatTarget(target)}: destination port 0`);
    const authorization = policy.authorizer.authorize({
      client: session.client,
      identity,
      request: { ...request, target },
    });
    if (authorization instanceof Promise) {
      return authorization.then(
        (answer) => afterRules(target, answer),
        (error: unknown) => drop("not_allowed", `${formatTarget(target)}: cannot check the rules: ${errorText(error)}`),
      );
    }
    return afterRules(target, authorization);
  };

  const pump = new DatagramRelay({
    control,
    ...(handshake.inbox.ended ? { controlEnded: true } : {}),
    relay: relaySocket,
    client: { host: session.client.address.host, port: request.target.port },
    decide,
    openSocket: (family) =>
      runtime.bindDatagram({
        host: localHost !== undefined && ipFamily(localHost) === family ? localHost : family === 6 ? "::" : "0.0.0.0",
        port: 0,
      }),
    idleTimeoutMs: settings.idleTimeoutMs,
    signal: context.shutdown.signal,
    onDrop: (reason, detail) => account.datagramDropped(reason, detail),
  });
  hops.onEnd = (route, _association, detail) => {
    if (route === uniform) pump.end("upstream_closed", new Error(detail));
    else account.associationNote(`${route.description}: ${detail}; its destinations are dropped for a while`);
  };
  handshake.inbox.takeRest();
  const result = await pump.done;
  stop.abort();
  hops.closeAll();
  account.associationFinished(bound, result);
}
