/**
 * Reply codes of SOCKS5 (RFC 1928 §6) and SOCKS4 (CD field), and the
 * protocol-neutral outcome names the server uses between them, and the one
 * table that turns a network error into such an outcome.
 *
 * @module
 */
import type { NetError, NetErrorCode } from "../runtime/types.ts";

/** SOCKS5 REP values. */
export const SOCKS5_REPLY = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

/** A SOCKS5 REP byte. */
export type Socks5ReplyCode = typeof SOCKS5_REPLY[keyof typeof SOCKS5_REPLY];

/** SOCKS4 CD values in replies. */
export const SOCKS4_REPLY = {
  GRANTED: 0x5a,
  REJECTED: 0x5b,
  NO_IDENTD: 0x5c,
  IDENTD_MISMATCH: 0x5d,
} as const;

/** A SOCKS4 CD byte. */
export type Socks4ReplyCode = typeof SOCKS4_REPLY[keyof typeof SOCKS4_REPLY];

/** Why a request failed, independent of the protocol that carries the answer. */
export type FailureReason =
  | "general_failure"
  | "not_allowed"
  | "network_unreachable"
  | "host_unreachable"
  | "connection_refused"
  | "ttl_expired"
  | "command_not_supported"
  | "address_type_not_supported";

const SOCKS5_CODE_FOR: Record<FailureReason, Socks5ReplyCode> = {
  general_failure: SOCKS5_REPLY.GENERAL_FAILURE,
  not_allowed: SOCKS5_REPLY.NOT_ALLOWED,
  network_unreachable: SOCKS5_REPLY.NETWORK_UNREACHABLE,
  host_unreachable: SOCKS5_REPLY.HOST_UNREACHABLE,
  connection_refused: SOCKS5_REPLY.CONNECTION_REFUSED,
  ttl_expired: SOCKS5_REPLY.TTL_EXPIRED,
  command_not_supported: SOCKS5_REPLY.COMMAND_NOT_SUPPORTED,
  address_type_not_supported: SOCKS5_REPLY.ADDRESS_TYPE_NOT_SUPPORTED,
};

/** The SOCKS5 REP byte for a failure. */
export function socks5CodeFor(reason: FailureReason): Socks5ReplyCode {
  return SOCKS5_CODE_FOR[reason];
}

/** The failure a SOCKS5 REP byte from a next hop stands for (unknown codes are general failures). */
export function failureForSocks5Code(code: number): FailureReason {
  for (const [reason, value] of Object.entries(SOCKS5_CODE_FOR)) {
    if (value === code) return reason as FailureReason;
  }
  return "general_failure";
}

const REASON_FOR_NET_ERROR: Record<NetErrorCode, FailureReason> = {
  refused: "connection_refused",
  host_unreachable: "host_unreachable",
  net_unreachable: "network_unreachable",
  timeout: "ttl_expired",
  reset: "general_failure",
  not_found: "host_unreachable",
  address_in_use: "general_failure",
  address_not_available: "network_unreachable",
  permission_denied: "not_allowed",
  aborted: "general_failure",
  closed: "general_failure",
  other: "general_failure",
};

/** The failure a network error stands for (refused → `connection_refused`, timeout → `ttl_expired`...). */
export function failureForNetError(error: NetError): FailureReason {
  return REASON_FOR_NET_ERROR[error.code];
}
