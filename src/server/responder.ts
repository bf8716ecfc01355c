/**
 * Stage replies for SOCKS4 and SOCKS5 behind one interface, so command
 * handlers never look at the protocol version. SOCKS4 replies always carry
 * VN 0 (the original srelay sent 4 on errors, which strict clients reject).
 *
 * @module
 */
import { type FailureReason, SOCKS4_REPLY, socks5CodeFor } from "../protocol/reply.ts";
import { encodeSocks4Reply } from "../protocol/socks4.ts";
import { encodeSocks5Reply } from "../protocol/socks5.ts";
import type { Target } from "../protocol/target.ts";

/** Builds a protocol's reply bytes. */
export interface Responder {
  fail(reason: FailureReason): Uint8Array;
  /** A success reply naming `bound` (BND.ADDR/BND.PORT). Throws `RangeError` when it cannot be encoded. */
  succeed(bound: Target): Uint8Array;
}

function socks4Bound(bound: Target): { host: string; port: number } | null {
  return bound.kind === "ipv4" ? bound : null;
}

/** SOCKS4/4a replies: CD 0x5A or 0x5B; BND only for IPv4. */
export const SOCKS4_RESPONDER: Responder = {
  fail: () => encodeSocks4Reply(SOCKS4_REPLY.REJECTED, null),
  succeed: (bound) => encodeSocks4Reply(SOCKS4_REPLY.GRANTED, socks4Bound(bound)),
};

/** SOCKS5 replies: REP from the failure reason; a failure carries 0.0.0.0:0. */
export const SOCKS5_RESPONDER: Responder = {
  fail: (reason) => encodeSocks5Reply(socks5CodeFor(reason), null),
  succeed: (bound) => encodeSocks5Reply(0, bound),
};
