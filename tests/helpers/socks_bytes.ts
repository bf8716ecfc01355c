/**
 * SOCKS messages spelled out byte by byte for byte-script tests (written
 * here by hand rather than with the codecs under test).
 *
 * @module
 */

function ipv4(host: string): number[] {
  const parts = host.split(".").map(Number);
  if (parts.length !== 4 || parts.some((part) => !Number.isInteger(part) || part < 0 || part > 255)) {
    throw new RangeError(`socks_bytes: ${host} is not an IPv4 address`);
  }
  return parts;
}

function port16(port: number): number[] {
  return [port >> 8, port & 0xff];
}

function latin1(text: string): number[] {
  return Array.from(text, (char) => char.charCodeAt(0));
}

/** `05 01 00`: SOCKS5 greeting offering "no authentication" only. */
export const SOCKS5_GREETING = [5, 1, 0] as const;

/** `05 00`: the server selected "no authentication". */
export const SOCKS5_NO_AUTH_SELECTED = [5, 0] as const;

/** A SOCKS5 request `05 CMD 00 01 A.B.C.D PORT`. */
export function socks5Request(command: number, host: string, port: number): number[] {
  return [5, command, 0, 1, ...ipv4(host), ...port16(port)];
}

/** A SOCKS5 CONNECT to an IPv4 address. */
export function socks5Connect(host: string, port: number): number[] {
  return socks5Request(1, host, port);
}

/** A SOCKS5 CONNECT to a domain name (ATYP 03). */
export function socks5ConnectDomain(name: string, port: number): number[] {
  return [5, 1, 0, 3, name.length, ...latin1(name), ...port16(port)];
}

/** A SOCKS5 reply with an IPv4 BND: `05 REP 00 01 A.B.C.D PORT`. */
export function socks5Reply(code: number, host = "0.0.0.0", port = 0): number[] {
  return [5, code, 0, 1, ...ipv4(host), ...port16(port)];
}

/** A SOCKS4 request `04 CD PORT A.B.C.D USERID 00`. */
export function socks4Request(command: number, host: string, port: number, userId = ""): number[] {
  return [4, command, ...port16(port), ...ipv4(host), ...latin1(userId), 0];
}

/** A SOCKS4a CONNECT: DSTIP 0.0.0.1, then USERID 00 HOSTNAME 00. */
export function socks4aConnect(name: string, port: number, userId = ""): number[] {
  return [4, 1, ...port16(port), 0, 0, 0, 1, ...latin1(userId), 0, ...latin1(name), 0];
}

/** A SOCKS4 reply: VN 0, CD, DSTPORT, DSTIP. */
export function socks4Reply(code: number, host = "0.0.0.0", port = 0): number[] {
  return [0, code, ...port16(port), ...ipv4(host)];
}
