/**
 * The PROXY protocol admitter (`--proxy-protocol`): the first admitter of
 * every listener. It reads a v1 or v2 header before any SOCKS byte and hands
 * the client address it carries to every later stage (tcp_wrappers, rules,
 * limits, the login throttle, logs and records).
 *
 * - A peer outside `--proxy-protocol-from` is closed at once, before a byte
 *   is read: its header is never believed (`denied`, a warning).
 * - A malformed, oversized or truncated header, a connection that sends
 *   something else (a SOCKS greeting without a header) and a header that
 *   does not arrive within the handshake timeout fail the handshake
 *   (`handshake_failed`, a warning naming the PROXY header).
 * - v2 LOCAL (what HAProxy's health checks send with `check-send-proxy`)
 *   is closed quietly: a debug line, outcome `proxy_local`.
 * - A header without IP addresses (v1 UNKNOWN, v2 UNSPEC or UNIX) or for UDP
 *   is `denied`: there is no client address to check, and the spec's
 *   fallback (the load balancer's own address) would pass it off as a
 *   trusted peer.
 *
 * The address the client reached us on (`ClientInfo.local`) stays the real
 * socket's: `-g`, BIND and UDP ASSOCIATE bind to addresses of this host, not
 * to the load balancer's.
 *
 * @module
 */
import { type Cidr, formatIp, parseHost, prefixMatch } from "../net/address.ts";
import { ProtocolError } from "../protocol/decoded.ts";
import { decodeProxyHeader } from "../protocol/proxy_protocol.ts";
import { NetError } from "../runtime/types.ts";
import type { AdmitDecision, Admitter, ClientInfo } from "./admit.ts";
import type { Handshake } from "./handshake.ts";
import { Refusal } from "./refusal.ts";

/** The default `--proxy-protocol-from`: loopback only. */
export const DEFAULT_PROXY_FROM = "127.0.0.0/8,::1";

/** The outcome of a v2 LOCAL header (a health check): closed quietly. */
export const PROXY_LOCAL_OUTCOME = "proxy_local";

/** True when `host` (a peer address, IPv4-mapped or not) lies in one of `trusted`. */
export function isTrustedProxy(trusted: readonly Cidr[], host: string): boolean {
  const address = parseHost(host);
  return address !== null && trusted.some((cidr) => prefixMatch(cidr, address));
}

/**
 * The admitter for `--proxy-protocol`, trusting headers from `trusted` only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCidr } from "../net/address.ts";
 * const admitter = proxyHeaderAdmitter([parseCidr("127.0.0.0/8")!]);
 * const client = { address: { host: "192.0.2.7", port: 40000, family: 4 as const },
 *   local: { host: "192.0.2.1", port: 1080, family: 4 as const } };
 * const decision = admitter.admit(client, null as never);
 * assert.ok(!("then" in decision) && !decision.admitted && decision.outcome === "denied");
 * ```
 */
export function proxyHeaderAdmitter(trusted: readonly Cidr[]): Admitter {
  return {
    admit(client, handshake) {
      if (client.address.host === "") {
        // The runtime could not tell the peer's address: it reset the connection before it was accepted
        // (HAProxy ends its health checks with a reset). Logged like any connection closed before a byte.
        throw new NetError("closed", "Cannot read PROXY header: the peer was gone before its address was known");
      }
      if (!isTrustedProxy(trusted, client.address.host)) {
        return {
          admitted: false,
          outcome: "denied",
          reason: `PROXY protocol: ${client.address.host} is not in --proxy-protocol-from`,
        };
      }
      return readHeader(client, handshake);
    },
  };
}

async function readHeader(client: ClientInfo, handshake: Handshake): Promise<AdmitDecision> {
  let header;
  try {
    header = await handshake.read(decodeProxyHeader);
  } catch (error) {
    if (error instanceof ProtocolError) {
      // The inbox says "Cannot decode message: connection ended after ..." for a truncated header.
      throw new ProtocolError(error.message.replace(/^Cannot decode message:/, "Cannot decode PROXY header:"));
    }
    if (error instanceof NetError) {
      throw new NetError(error.code, `Cannot read PROXY header: ${error.message}`, { cause: error });
    }
    throw error;
  }
  if (header.command === "local") {
    throw new Refusal("PROXY", PROXY_LOCAL_OUTCOME, "v2 LOCAL header (a health check): closed", undefined, "debug");
  }
  if (header.command === "unknown") {
    const what = header.version === 1 ? "v1 UNKNOWN" : "v2 UNSPEC or UNIX";
    return { admitted: false, outcome: "denied", reason: `PROXY header carries no IP client address (${what})` };
  }
  if (header.transport !== "stream") {
    return { admitted: false, outcome: "denied", reason: "PROXY header is for a UDP connection, not TCP" };
  }
  const address = parseHost(header.source.host);
  if (address === null) throw new ProtocolError(`Cannot decode PROXY header: bad source ${header.source.host}`);
  return {
    admitted: true,
    client: { ...client, address: { host: formatIp(address), port: header.source.port, family: address.family } },
  };
}
