/**
 * The SOCKS5 address block (RFC 1928 §4, §5): an address type, the address
 * and a port, shared by requests, replies and UDP datagram headers.
 *
 * ```text
 * +------+----------+----------+
 * | ATYP | DST.ADDR | DST.PORT |
 * +------+----------+----------+
 * |  1   | Variable |    2     |
 * +------+----------+----------+
 *
 * ATYP X'01' IPv4: DST.ADDR is 4 octets
 * ATYP X'03' DOMAINNAME: DST.ADDR is 1 length octet, then that many octets
 *            of name, with no terminating NUL
 * ATYP X'04' IPv6: DST.ADDR is 16 octets
 * DST.PORT is in network octet order
 * ```
 *
 * Domain names travel as single-byte characters (Latin-1, in practice
 * ASCII); IPv6 addresses are rendered as RFC 5952 text without brackets.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import { ipv4Octets } from "../net/address.ts";
import { type Decoded, needBytes, ProtocolError } from "./decoded.ts";
import type { Target } from "./target.ts";
import { hexByte } from "../util/hex.ts";

/** SOCKS5 ATYP values. */
export const ATYP = { IPV4: 0x01, DOMAIN: 0x03, IPV6: 0x04 } as const;

/** Most octets a SOCKS5 domain name can hold (its length is one octet). */
const MAX_DOMAIN_LENGTH = 255;

/**
 * Decodes the address block starting at `offset`.
 *
 * On success `size` counts the block's bytes from `offset`; while bytes are
 * missing, `need` is the total `bytes.length` required (offset included), so
 * a message decoder can return the result as its own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = new Uint8Array([0x01, 127, 0, 0, 1, 0x1f, 0x90]);
 * assert.deepEqual(decodeSocks5Address(bytes, 0), {
 *   ok: true,
 *   value: { kind: "ipv4", host: "127.0.0.1", port: 8080 },
 *   size: 7,
 * });
 * assert.deepEqual(decodeSocks5Address(bytes.subarray(0, 3), 0), { ok: false, need: 7 });
 * ```
 */
export function decodeSocks5Address(bytes: Uint8Array, offset: number): Decoded<Target> {
  const atyp = bytes[offset];
  if (atyp === undefined) return needBytes(offset + 1);
  switch (atyp) {
    case ATYP.IPV4: {
      const end = offset + 1 + 4 + 2;
      if (bytes.length < end) return needBytes(end);
      const a = offset + 1;
      const host = `${bytes[a]}.${bytes[a + 1]}.${bytes[a + 2]}.${bytes[a + 3]}`;
      return {
        ok: true,
        value: { kind: "ipv4", host, port: readPort(bytes, a + 4) },
        size: end - offset,
      };
    }
    case ATYP.IPV6: {
      const end = offset + 1 + 16 + 2;
      if (bytes.length < end) return needBytes(end);
      const a = offset + 1;
      const host = ipaddr.fromByteArray(Array.from(bytes.subarray(a, a + 16))).toString();
      return {
        ok: true,
        value: { kind: "ipv6", host, port: readPort(bytes, a + 16) },
        size: end - offset,
      };
    }
    case ATYP.DOMAIN: {
      const length = bytes[offset + 1];
      if (length === undefined) return needBytes(offset + 2);
      if (length === 0) {
        throw new ProtocolError("Cannot decode SOCKS5 address: domain name is empty");
      }
      const end = offset + 2 + length + 2;
      if (bytes.length < end) return needBytes(end);
      const name = bytes.subarray(offset + 2, offset + 2 + length);
      if (name.includes(0)) {
        throw new ProtocolError("Cannot decode SOCKS5 address: domain name contains a NUL byte");
      }
      const host = String.fromCharCode(...name);
      return {
        ok: true,
        value: { kind: "domain", host, port: readPort(bytes, end - 2) },
        size: end - offset,
      };
    }
    default:
      throw new ProtocolError(
        `Cannot decode SOCKS5 address: address type ${hexByte(atyp)} is unsupported`,
        "address_type_not_supported",
      );
  }
}

/**
 * Encodes a target as a SOCKS5 address block.
 *
 * Throws `RangeError` when the target cannot be represented: a port outside
 * 0..65535, a host that is not an address of its kind, or a domain name that
 * is empty, longer than 255 characters, or holds NUL or non-Latin-1 characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(
 *   encodeSocks5Address({ kind: "domain", host: "a.b", port: 80 }),
 *   new Uint8Array([0x03, 3, 0x61, 0x2e, 0x62, 0x00, 0x50]),
 * );
 * ```
 */
export function encodeSocks5Address(target: Target): Uint8Array {
  const bytes = new Uint8Array(socks5AddressLength(target));
  writeSocks5Address(target, bytes, 0);
  return bytes;
}

/**
 * Number of bytes `target` takes as a SOCKS5 address block. Throws
 * `RangeError` for a domain name the encoder would reject.
 */
export function socks5AddressLength(target: Target): number {
  switch (target.kind) {
    case "ipv4":
      return 1 + 4 + 2;
    case "ipv6":
      return 1 + 16 + 2;
    case "domain":
      checkDomain(target.host);
      return 1 + 1 + target.host.length + 2;
  }
}

/**
 * Writes `target` as a SOCKS5 address block into `into` at `offset` and
 * returns the offset just past it. Throws `RangeError` like
 * `encodeSocks5Address`, or when the block does not fit; nothing is written
 * then.
 */
export function writeSocks5Address(target: Target, into: Uint8Array, offset: number): number {
  checkPort(target.port);
  const length = socks5AddressLength(target);
  if (!Number.isInteger(offset) || offset < 0 || offset + length > into.length) {
    throw new RangeError(
      `Cannot encode SOCKS5 address: ${length} bytes do not fit at offset ${offset} of ${into.length}`,
    );
  }
  let at = offset;
  switch (target.kind) {
    case "ipv4": {
      const octets = ipv4OctetsOf(target.host);
      into[at++] = ATYP.IPV4;
      into.set(octets, at);
      at += 4;
      break;
    }
    case "ipv6": {
      const octets = ipv6Octets(target.host);
      into[at++] = ATYP.IPV6;
      into.set(octets, at);
      at += 16;
      break;
    }
    case "domain":
      into[at++] = ATYP.DOMAIN;
      into[at++] = target.host.length;
      for (let i = 0; i < target.host.length; i++) into[at++] = target.host.charCodeAt(i);
      break;
  }
  into[at++] = target.port >>> 8;
  into[at++] = target.port & 0xff;
  return at;
}

function readPort(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`Cannot encode SOCKS5 address: port ${port} is not in 0..65535`);
  }
}

function checkDomain(host: string): void {
  if (host.length === 0 || host.length > MAX_DOMAIN_LENGTH) {
    throw new RangeError(
      `Cannot encode SOCKS5 address: domain name must be 1..${MAX_DOMAIN_LENGTH} bytes, got ${host.length}`,
    );
  }
  for (let i = 0; i < host.length; i++) {
    const code = host.charCodeAt(i);
    if (code === 0 || code > 0xff) {
      throw new RangeError(
        `Cannot encode SOCKS5 address: domain name has an unrepresentable character at index ${i}`,
      );
    }
  }
}

function ipv4OctetsOf(host: string): number[] {
  const octets = ipv4Octets(host);
  if (octets === null) throw new RangeError(`Cannot encode SOCKS5 address: "${host}" is not an IPv4 address`);
  return octets;
}

function ipv6Octets(host: string): number[] {
  if (!ipaddr.IPv6.isValid(host)) {
    throw new RangeError(`Cannot encode SOCKS5 address: "${host}" is not an IPv6 address`);
  }
  return ipaddr.IPv6.parse(host).toByteArray();
}
