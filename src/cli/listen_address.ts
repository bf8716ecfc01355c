/**
 * Parses the `-i` listening address forms of srelay(8): `host`, `host:port`,
 * `:port`, `[v6]`, `[v6]:port`. A bare IPv6 literal (`::1`) is accepted too.
 *
 * @module
 */
import { formatHostPort } from "../net/address.ts";

/** The default SOCKS port. */
export const DEFAULT_PORT = 1080;

/** One `-i` value: `host` null means every local address (IPv4 and IPv6). */
export interface ListenAddress {
  readonly host: string | null;
  readonly port: number;
}

/** Parses a port number from text, or returns null when it is not 0..65535. */
export function parsePort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port <= 65535 ? port : null;
}

/** Parses one `-i` value. Throws `TypeError` with a message naming the value. */
export function parseListenAddress(text: string): ListenAddress {
  const fail = (why: string) => new TypeError(`Cannot parse -i '${text}': ${why}`);
  let host: string;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) throw fail("missing ']' after the IPv6 address");
    host = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) throw fail("expected ':port' after ']'");
      portText = after.slice(1);
    }
    if (!host.includes(":")) throw fail(`'${host}' is not an IPv6 address`);
  } else if ((text.match(/:/g) ?? []).length > 1) {
    host = text;
  } else {
    const colon = text.indexOf(":");
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
  }
  let port = DEFAULT_PORT;
  if (portText !== undefined) {
    const parsed = parsePort(portText);
    if (parsed === null) throw fail(`port '${portText}' is not a number from 0 to 65535`);
    port = parsed;
  }
  return { host: host === "" ? null : host, port };
}

/** Formats a listening spec back into `-i` syntax. */
export function formatListenAddress(spec: ListenAddress): string {
  if (spec.host === null) return `:${spec.port}`;
  return formatHostPort(spec.host, spec.port);
}
