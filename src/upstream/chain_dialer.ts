/**
 * Dials through a chain of next hops (srelay.conf's proxy list).
 *
 * The chain is a fold (gost's `chainRoute.connect`): the nearest hop is
 * dialled directly, its name resolved locally; then each hop is asked, in
 * its own protocol, to connect to the next one, and the farthest hop to the
 * client's target. Hop names and the target are sent unresolved. One
 * `Inbox` reads every reply over the single connection, so bytes that
 * follow the last reply are returned as `rest`.
 *
 * A failure closes the connection and throws `HopError` naming the first
 * hop that failed (srelay only saw what the farthest hop told it).
 *
 * `/S` hops ("socks"): SOCKS5 is tried first. If the hop does not answer
 * the SOCKS5 greeting as a SOCKS5 server (another version byte, or it
 * closes), srelay carried on with SOCKS4 on the same socket, where the hop
 * has already consumed or rejected the greeting. Here the whole chain is
 * dialled again on a new connection with that hop pinned to SOCKS4; each
 * `/S` hop is retried at most once per dial, and nothing is remembered
 * between dials.
 *
 * @module
 */
import type { Hop } from "../config/srelay_conf.ts";
import { Inbox } from "../io/inbox.ts";
import { ipFamily } from "../net/address.ts";
import { formatTarget, type Target } from "../protocol/target.ts";
import { abortSignalOf, type Connection, NetError } from "../runtime/types.ts";
import type { Connector, Credentials, DialContext, Dialer, DialResult, FarthestHop } from "./dialer.ts";
import { hopDialError, hopHandshakeError } from "./hop_error.ts";
import { httpConnector } from "./http_connector.ts";
import { DEFAULT_SOCKS4_USER_ID, socks4Connector } from "./socks4_connector.ts";
import { NotSocks5Error, socks5Connector } from "./socks5_connector.ts";

/** Options for `createChainDialer`. */
export interface ChainDialerOptions {
  /** Opens the TCP connection to the nearest hop (a direct dialer). */
  readonly direct: Dialer;
  /** The hops, farthest first as listed in srelay.conf. No hops means a direct dial. */
  readonly hops: readonly Hop[];
  /** Credentials for a hop (srelay.passwd), looked up at each dial; `null` when there are none. */
  readonly credentials?: (hop: Hop) => Credentials | null;
  /** USERID for SOCKS4 hops; default the client's user name, else "srelay". */
  readonly socks4UserId?: string;
  /** Longest wait for one hop's handshake, in milliseconds (default 30000, as srelay's TIMEOUTSEC). */
  readonly handshakeTimeoutMs?: number;
}

type WireProtocol = "socks5" | "socks4" | "http";

/** An attempt either succeeds or names the `/S` hop to retry with SOCKS4. */
type Attempt = { readonly ok: true; readonly result: DialResult } | {
  readonly ok: false;
  readonly retryAsSocks4: number;
};

/** Creates a dialer that reaches targets through `hops`. */
export function createChainDialer(options: ChainDialerOptions): Dialer {
  const fullPath = [...options.hops].reverse();
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 30_000;

  function connectorFor(hop: Hop, protocol: WireProtocol, context: DialContext): Connector {
    const name = formatTarget(hopTarget(hop));
    const credentials = () => options.credentials?.(hop) ?? null;
    switch (protocol) {
      case "socks5":
        return socks5Connector({ hop: name, credentials });
      case "socks4":
        return socks4Connector({
          hop: name,
          userId: options.socks4UserId ??
            (context.userId !== undefined && context.userId !== "" ? context.userId : DEFAULT_SOCKS4_USER_ID),
        });
      case "http":
        return httpConnector({ hop: name, credentials });
    }
  }

  async function step(
    connector: Connector,
    connection: Connection,
    inbox: Inbox,
    next: Target,
    signal: AbortSignal,
  ): Promise<Target> {
    const timeout = new AbortController();
    const timer = setTimeout(() => {
      timeout.abort(new NetError("timeout", `No answer within ${handshakeTimeoutMs} ms`));
    }, handshakeTimeoutMs);
    try {
      return (await connector.connect(connection, inbox, next, AbortSignal.any([signal, timeout.signal])))
        .bound;
    } finally {
      clearTimeout(timer);
    }
  }

  async function attempt(
    target: Target,
    context: DialContext,
    asSocks4: ReadonlySet<number>,
    path: readonly Hop[] = fullPath,
  ): Promise<Attempt> {
    const nearest = path[0];
    if (nearest === undefined) return { ok: true, result: await options.direct.dial(target, context) };
    let first: DialResult;
    try {
      const { addresses: _checked, ...toHop } = context;
      first = await options.direct.dial(hopTarget(nearest), toHop);
    } catch (error) {
      throw hopDialError({ name: formatTarget(hopTarget(nearest)), protocol: nearest.protocol }, error);
    }
    const connection = first.connection;
    const inbox = new Inbox(connection);
    const signal = abortSignalOf(context.signal);
    let bound: Target = first.bound;
    for (const [index, hop] of path.entries()) {
      const next = path[index + 1];
      const nextTarget = next === undefined ? target : hopTarget(next);
      const auto = hop.protocol === "socks" && !asSocks4.has(index);
      const protocol: WireProtocol = hop.protocol === "socks" ? (auto ? "socks5" : "socks4") : hop.protocol;
      try {
        bound = await step(connectorFor(hop, protocol, context), connection, inbox, nextTarget, signal);
      } catch (error) {
        connection.close();
        if (auto && error instanceof NotSocks5Error) return { ok: false, retryAsSocks4: index };
        throw hopHandshakeError({ name: formatTarget(hopTarget(hop)), protocol }, "the handshake", error);
      }
    }
    return { ok: true, result: { connection, rest: inbox.takeRest(), bound, ended: inbox.ended } };
  }

  /** Dials `target` through `path`, retrying a `/S` hop as SOCKS4 when it is not a SOCKS5 server. */
  async function run(target: Target, context: DialContext, path: readonly Hop[]): Promise<DialResult> {
    const asSocks4 = new Set<number>();
    for (;;) {
      const outcome = await attempt(target, context, asSocks4, path);
      if (outcome.ok) return outcome.result;
      asSocks4.add(outcome.retryAsSocks4);
    }
  }

  const farthest = fullPath.at(-1);
  return {
    dial: (target, context) => run(target, context, fullPath),
    ...(farthest === undefined ? {} : {
      async reachFarthest(context: DialContext): Promise<FarthestHop> {
        const { addresses: _checked, ...toHop } = context;
        const reached = await run(hopTarget(farthest), toHop, fullPath.slice(0, -1));
        const inbox = new Inbox(reached.connection);
        return {
          connection: reached.connection,
          inbox,
          early: reached.rest,
          hop: farthest,
          name: formatTarget(hopTarget(farthest)),
          credentials: options.credentials?.(farthest) ?? null,
        };
      },
    }),
  };
}

/** A hop's address as a `Target`: IPv4 and IPv6 literals by kind, anything else a name. */
export function hopTarget(hop: Hop): Target {
  switch (ipFamily(hop.host)) {
    case 4:
      return { kind: "ipv4", host: hop.host, port: hop.port };
    case 6:
      return { kind: "ipv6", host: hop.host, port: hop.port };
    default:
      return { kind: "domain", host: hop.host, port: hop.port };
  }
}
