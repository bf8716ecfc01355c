/**
 * Builds the core's `NetAddress` from what a runtime reports, shared by the
 * adapters of this folder.
 *
 * @module
 */
import type { NetAddress } from "./types.ts";

const MAPPED_PREFIX = "::ffff:";

/**
 * Normalises a numeric host and port: IPv4-mapped IPv6 (`::ffff:1.2.3.4`,
 * what a dual-stack listener reports for IPv4 peers) becomes plain IPv4,
 * brackets are dropped, and the family follows from the text.
 */
export function toNetAddress(host: string, port: number): NetAddress {
  let bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (bare.toLowerCase().startsWith(MAPPED_PREFIX) && bare.includes(".")) {
    bare = bare.slice(MAPPED_PREFIX.length);
  }
  return { host: bare, port, family: bare.includes(":") ? 6 : 4 };
}

/** Formats an address for messages: `127.0.0.1:80`, `[::1]:80`. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
