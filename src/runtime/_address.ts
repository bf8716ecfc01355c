/**
 * Builds the core's `NetAddress` from what a runtime reports, shared by the
 * adapters of this folder.
 *
 * @module
 */
import { normalizeHost } from "../net/address.ts";
import type { NetAddress } from "./types.ts";

export { formatHostPort } from "../net/address.ts";

/** Four decimal octets as `inet_ntop` writes them (no leading zeros). */
const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * Normalises a numeric host and port (`normalizeHost`): IPv4-mapped IPv6
 * (`::ffff:1.2.3.4`, what a dual-stack listener reports for IPv4 peers)
 * becomes plain IPv4, brackets are dropped, IPv6 is written in RFC 5952
 * form, and the family follows from the text.
 */
export function toNetAddress(host: string, port: number): NetAddress {
  // What the kernel reports for IPv4 is already in normal form.
  if (DOTTED_QUAD.test(host)) return { host, port, family: 4 };
  const normal = normalizeHost(host);
  return { host: normal, port, family: normal.includes(":") ? 6 : 4 };
}
