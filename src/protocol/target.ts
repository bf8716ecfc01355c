/**
 * The destination of a request, shared by SOCKS4/4a, SOCKS5 and HTTP CONNECT.
 *
 * @module
 */

/** A destination: an IPv4 or IPv6 literal, or a domain name, with a port. */
export type Target =
  | { readonly kind: "ipv4"; readonly host: string; readonly port: number }
  | { readonly kind: "ipv6"; readonly host: string; readonly port: number }
  | { readonly kind: "domain"; readonly host: string; readonly port: number };

/** Formats a target as `host:port`, bracketing IPv6 (`[::1]:80`). */
export function formatTarget(target: Target): string {
  return target.kind === "ipv6" ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}
