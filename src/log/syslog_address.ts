/**
 * Where syslog lines go (`--syslog-address`): a local Unix datagram socket
 * (`/dev/log`, as syslog(3) uses) or a collector reached over UDP.
 *
 * @module
 */
import { formatHostPort } from "../net/address.ts";
import ipaddr from "ipaddr.js";

/** A Unix datagram socket path, or a UDP collector. */
export type SyslogAddress =
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "udp"; readonly host: string; readonly port: number };

/** The local syslog socket, as syslog(3) uses it. */
export const DEFAULT_SYSLOG_ADDRESS: SyslogAddress = { kind: "unix", path: "/dev/log" };

/** The syslog UDP port (RFC 3164), used when a `HOST` has no `:PORT`. */
export const SYSLOG_UDP_PORT = 514;

/**
 * Parses `--syslog-address`: an absolute path (a Unix datagram socket), or
 * `HOST`, `HOST:PORT`, `[IPV6]`, `[IPV6]:PORT` or a bare IPv6 literal (UDP;
 * the port defaults to 514, an empty host to 127.0.0.1). Throws a
 * `TypeError` that says what is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSyslogAddress } from "./syslog_address.ts";
 * assert.deepEqual(parseSyslogAddress("/run/systemd/journal/dev-log"), {
 *   kind: "unix",
 *   path: "/run/systemd/journal/dev-log",
 * });
 * assert.deepEqual(parseSyslogAddress("logs.example:5140"), { kind: "udp", host: "logs.example", port: 5140 });
 * assert.deepEqual(parseSyslogAddress("[::1]"), { kind: "udp", host: "::1", port: 514 });
 * ```
 */
export function parseSyslogAddress(text: string): SyslogAddress {
  const fail = (why: string) => new TypeError(`'${text}' ${why}`);
  if (text.startsWith("/")) return { kind: "unix", path: text };
  if (text.includes("/")) throw fail("is not a socket path (it must be absolute) nor HOST:PORT");
  let host: string;
  let portText: string | null = null;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) throw fail("lacks the ']' after the IPv6 address");
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) throw fail("has something other than ':PORT' after ']'");
      portText = rest.slice(1);
    }
    if (!ipaddr.IPv6.isValid(host)) throw fail(`has '${host}' in brackets, which is not an IPv6 address`);
  } else if (text.indexOf(":") !== text.lastIndexOf(":")) {
    if (!ipaddr.IPv6.isValid(text)) throw fail("is not HOST:PORT (write an IPv6 address as [ADDRESS]:PORT)");
    host = text;
  } else {
    const colon = text.indexOf(":");
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? null : text.slice(colon + 1);
  }
  let port = SYSLOG_UDP_PORT;
  if (portText !== null) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if (port < 1 || port > 65535) throw fail(`has port '${portText}', which is not a number from 1 to 65535`);
  }
  return { kind: "udp", host: host === "" ? "127.0.0.1" : host, port };
}

/**
 * The address as the user would write it, for messages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSyslogAddress } from "./syslog_address.ts";
 * assert.equal(formatSyslogAddress({ kind: "udp", host: "::1", port: 514 }), "[::1]:514");
 * assert.equal(formatSyslogAddress({ kind: "unix", path: "/dev/log" }), "/dev/log");
 * ```
 */
export function formatSyslogAddress(address: SyslogAddress): string {
  if (address.kind === "unix") return address.path;
  return formatHostPort(address.host, address.port);
}
