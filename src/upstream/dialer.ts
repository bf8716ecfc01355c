/**
 * The outbound roles, after gost's split: a `Dialer` opens a stream that
 * reaches a target (directly or through a chain of next hops); a `Connector`
 * speaks one hop's proxy protocol over an already-open stream so that it
 * reaches the next address. A chain is a fold of connectors over the stream
 * a direct dial to the nearest hop opened.
 *
 * @module
 */
import type { Credentials } from "../config/passwd.ts";
import type { Hop } from "../config/srelay_conf.ts";
import type { Inbox } from "../io/inbox.ts";
import { ipFamily, normalizeHost } from "../net/address.ts";
import type { Target } from "../protocol/target.ts";
import type { Cancellation, Connection, NetAddress } from "../runtime/types.ts";

/** Per-dial settings. */
export interface DialContext {
  /** Aborting cancels the dial (connect and handshakes). */
  readonly signal: Cancellation;
  /**
   * Numeric local address for the outbound socket (`-g` / `-x`). Applied only
   * to destination addresses of the same family.
   */
  readonly localHost?: string;
  /**
   * The client's SOCKS4 USERID or SOCKS5 username, sent as USERID to SOCKS4
   * hops unless the dialer was configured with its own.
   */
  readonly userId?: string;
  /**
   * For a domain target: the addresses to dial instead of resolving the name
   * (the ones the destination rules checked). Applies to the target only,
   * never to a next hop.
   */
  readonly addresses?: readonly string[];
}

/** An open stream to the target. */
export interface DialResult {
  /**
   * The connection. After a chain the handshake's handlers are still
   * installed: the relay must install its own before yielding to the event
   * loop (events the handshake's handlers receive are dropped), then call
   * `resume()`, since the handshake pauses it when over 64 KiB arrive at once.
   */
  readonly connection: Connection;
  /** Bytes that came from the far side after the handshake; the relay sends them to the client first. */
  readonly rest: Uint8Array;
  /**
   * What the client is told as BND: for a direct dial the outbound socket's
   * local address; for a chain the last hop's BND (an HTTP hop has none, so
   * it is our local address toward the nearest hop).
   */
  readonly bound: Target;
  /**
   * True when the far side already sent FIN during the handshake (after the
   * bytes in `rest`): the connection will not report `onEnd` again.
   */
  readonly ended?: boolean;
}

/**
 * A stream to the farthest hop of a chain, already handshaken through every
 * hop before it: the caller speaks to that hop itself (BIND, UDP ASSOCIATE).
 */
export interface FarthestHop {
  readonly connection: Connection;
  /** Reads the hop's replies; it owns the connection's handlers. */
  readonly inbox: Inbox;
  /** Bytes the previous hop sent after its reply: the start of the farthest hop's first answer. */
  readonly early: Uint8Array;
  /** The hop as srelay.conf gives it (`protocol` socks5, socks4, socks for "try 5, then 4", or http). */
  readonly hop: Hop;
  /** `host:port` of the hop, for messages. */
  readonly name: string;
  /** Its srelay.passwd credentials, or null. */
  readonly credentials: Credentials | null;
}

/** Opens a stream that reaches a target. */
export interface Dialer {
  /** Connects to `target`; throws `NetError` (direct) or `HopError` (through hops). */
  dial(target: Target, context: DialContext): Promise<DialResult>;
  /**
   * Present on a chain: opens a stream to its farthest hop (throws
   * `HopError` naming the first hop that failed). `context.addresses` is
   * not applied to any hop.
   */
  reachFarthest?(context: DialContext): Promise<FarthestHop>;
}

/** Speaks one hop's proxy protocol over an open stream. */
export interface Connector {
  /**
   * Asks the hop at the far end of `connection` to connect to `target`.
   * Reads go through the shared `inbox` so bytes past the hop's reply are
   * kept. Throws `HopError` on any failure.
   */
  connect(
    connection: Connection,
    inbox: Inbox,
    target: Target,
    signal: AbortSignal,
  ): Promise<{ bound: Target }>;
}

/** Username and password for a next hop (from srelay.passwd). */
export type { Credentials };

/**
 * A socket address as a `Target`, its host normalised (`normalizeHost`):
 * IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) become IPv4.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(
 *   targetFromAddress({ host: "::ffff:192.0.2.1", port: 1080, family: 6 }),
 *   { kind: "ipv4", host: "192.0.2.1", port: 1080 },
 * );
 * ```
 */
export function targetFromAddress(address: NetAddress): Target {
  const host = normalizeHost(address.host);
  return { kind: ipFamily(host) === 6 ? "ipv6" : "ipv4", host, port: address.port };
}
