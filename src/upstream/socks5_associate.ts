/**
 * UDP ASSOCIATE toward a SOCKS5 next hop: the farthest hop of a chain gives
 * us its own association, and our datagrams (SOCKS5 UDP header included) go
 * to the UDP relay address it names.
 *
 * The control connection is the chain's stream to the farthest hop
 * (`Dialer.reachFarthest`): the hops before it carry only that TCP stream.
 * The datagrams themselves go from this host straight to the farthest hop's
 * UDP relay, so that relay must be reachable from here (the usual case: one
 * SOCKS5 hop, or hops on one network).
 *
 * The greeting, RFC 1929 and the request are `socks5Connector`'s (CMD 3).
 * We bind our UDP socket first and declare its port in DST (the address
 * unspecified, since the hop sees the control connection come from the hop
 * before it, or from us); a reply that names no address (`0.0.0.0`, `::`)
 * means "my own address": the hop's name is resolved, preferring the address
 * the control connection reached. A `/S` hop that turns out to speak only
 * SOCKS4, a SOCKS4 hop and an HTTP hop cannot carry UDP: `HopError` with
 * `command_not_supported` (REP 07).
 *
 * @module
 */
import { ipFamily, normalizeHost } from "../net/address.ts";
import { SOCKS5_COMMAND } from "../protocol/socks5.ts";
import type { Target } from "../protocol/target.ts";
import { type Connection, type DatagramSocket, type NetAddress, NetError, type NetRuntime } from "../runtime/types.ts";
import type { FarthestHop } from "./dialer.ts";
import { describeHop, HopError, hopHandshakeError } from "./hop_error.ts";
import { NotSocks5Error, socks5Connector } from "./socks5_connector.ts";

/** A next hop's UDP association, as this side holds it. */
export interface HopAssociation {
  /** Our UDP socket toward the hop's relay (its handlers are the caller's to set). */
  readonly socket: DatagramSocket;
  /** The hop's UDP relay: where datagrams go, and the only source accepted from the hop. */
  readonly relay: NetAddress;
  /** `host:port` of the hop, for messages. */
  readonly name: string;
  /** Called once when the hop ends its association (its control connection closed or sent FIN). */
  onEnd: ((error?: NetError) => void) | null;
  /** Closes the control connection and the socket. Idempotent. */
  close(): void;
}

/** What `associateThroughHop` needs besides the hop. */
export interface HopAssociateOptions {
  readonly runtime: Pick<NetRuntime, "bindDatagram">;
  /** Aborting cancels the request (and closes the control connection). */
  readonly signal: AbortSignal;
  /** Longest wait for the hop's answers, in milliseconds. */
  readonly timeoutMs: number;
  /** Resolves the hop's name when its reply names no address. */
  readonly resolve: (name: string) => Promise<readonly string[]>;
  /** Numeric local address for our UDP socket, used when its family fits (`-x`, `-g`). */
  readonly localHost?: string;
}

/**
 * Asks the farthest hop for a UDP association over `farthest.connection`.
 * On failure the control connection is closed and a `HopError` thrown.
 */
export async function associateThroughHop(
  farthest: FarthestHop,
  options: HopAssociateOptions,
): Promise<HopAssociation> {
  const { connection, inbox, hop, name } = farthest;
  const label = { name, protocol: hop.protocol === "socks" ? "socks5" : hop.protocol };
  if (hop.protocol === "socks4" || hop.protocol === "http") {
    connection.close();
    throw cannotCarryUdp(name, hop.protocol);
  }
  if (farthest.early.length > 0) {
    connection.close();
    throw new HopError(
      name,
      "general_failure",
      `${describeHop(label)} sent ${farthest.early.length} bytes before the SOCKS5 greeting`,
    );
  }
  const family = ipFamily(hop.host) || connection.remote.family;
  let socket: DatagramSocket | null = null;
  const timeout = new AbortController();
  const timer = setTimeout(
    () => timeout.abort(new NetError("timeout", `No answer within ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );
  const signal = AbortSignal.any([options.signal, timeout.signal]);
  try {
    socket = await bindFor(options, family);
    const connector = socks5Connector({
      hop: name,
      credentials: () => farthest.credentials,
      command: SOCKS5_COMMAND.UDP_ASSOCIATE,
    });
    const declared: Target = family === 6
      ? { kind: "ipv6", host: "::", port: socket.local.port }
      : { kind: "ipv4", host: "0.0.0.0", port: socket.local.port };
    let bound: Target;
    try {
      ({ bound } = await connector.connect(connection, inbox, declared, signal));
    } catch (error) {
      if (error instanceof NotSocks5Error) {
        throw new HopError(
          name,
          "command_not_supported",
          `${describeHop({ name, protocol: "socks" })} speaks only SOCKS4, which cannot carry UDP`,
          { cause: error },
        );
      }
      throw error;
    }
    const relay = await relayAddress(bound, farthest, options, label, signal);
    if (relay.family !== socket.local.family) {
      socket.close();
      socket = await bindFor(options, relay.family);
    }
    return holdAssociation(connection, socket, relay, name);
  } catch (error) {
    socket?.close();
    connection.close();
    throw hopHandshakeError(label, "the SOCKS5 UDP ASSOCIATE request", error);
  } finally {
    clearTimeout(timer);
  }
}

/** The `HopError` for a hop whose protocol has no UDP. */
export function cannotCarryUdp(name: string, protocol: string): HopError {
  const what = protocol === "http" ? "an HTTP CONNECT proxy" : "a SOCKS4 server";
  return new HopError(
    name,
    "command_not_supported",
    `${describeHop({ name, protocol })} is ${what}, which cannot carry UDP: only a SOCKS5 farthest hop can`,
  );
}

function bindFor(options: HopAssociateOptions, family: 4 | 6): Promise<DatagramSocket> {
  const local = options.localHost !== undefined && ipFamily(options.localHost) === family
    ? options.localHost
    : family === 6
    ? "::"
    : "0.0.0.0";
  return options.runtime.bindDatagram({ host: local, port: 0 });
}

/** The hop's UDP relay from its BND: a name is resolved, an unspecified address means the hop's own. */
async function relayAddress(
  bound: Target,
  farthest: FarthestHop,
  options: HopAssociateOptions,
  label: { name: string; protocol: string },
  signal: AbortSignal,
): Promise<NetAddress> {
  if (bound.port === 0) {
    throw new HopError(farthest.name, "general_failure", `${describeHop(label)} named UDP relay port 0`);
  }
  let host = bound.kind === "domain" ? bound.host : normalizeHost(bound.host);
  if (host === "0.0.0.0" || host === "::") host = farthest.hop.host;
  if (ipFamily(host) === 0) {
    const addresses = await abortable(options.resolve(host), signal);
    const reached = normalizeHost(farthest.connection.remote.host);
    host = addresses.map(normalizeHost).find((address) => address === reached) ?? addresses[0] ?? "";
    if (ipFamily(host) === 0) {
      throw new HopError(farthest.name, "host_unreachable", `${describeHop(label)}: cannot resolve its UDP relay`);
    }
  }
  host = normalizeHost(host);
  return { host, port: bound.port, family: ipFamily(host) === 6 ? 6 : 4 };
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Keeps the control connection: its end (FIN, close, error) ends the association. */
function holdAssociation(
  connection: Connection,
  socket: DatagramSocket,
  relay: NetAddress,
  name: string,
): HopAssociation {
  let ended = false;
  const association: HopAssociation = {
    socket,
    relay,
    name,
    onEnd: null,
    close() {
      ended = true;
      socket.close();
      connection.close();
    },
  };
  const end = (error?: NetError) => {
    if (ended) return;
    ended = true;
    socket.close();
    connection.close();
    association.onEnd?.(error);
  };
  connection.setHandlers({
    onData: () => {},
    onEnd: () => end(),
    onClose: (error) => end(error),
  });
  connection.resume();
  if (connection.closed) end();
  return association;
}
