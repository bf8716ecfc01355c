/**
 * IP address text: parsing, family detection, normalisation, IPv4-mapped
 * IPv6 handling and prefix (CIDR) matching. IPv6 parsing and RFC 5952
 * formatting come from ipaddr.js; IPv4 is a strict dotted quad.
 *
 * What counts as an address follows `isIP` of node:net (and `inet_pton`),
 * not the looser forms ipaddr.js also accepts:
 *
 * - IPv4 is four decimal parts without leading zeros: `010.1.1.1`, `1.2.3`,
 *   `127.1` and `0x7f.0.0.1` are names, not addresses (ipaddr.js would read
 *   `010` as octal 8, and the OS resolver might too, so they are never
 *   treated as literals);
 * - an IPv6 group has at most four hex digits, and an embedded IPv4 tail
 *   (`::ffff:1.2.3.4`) follows the IPv4 rule;
 * - `::1.2.3.4` is the IPv4-compatible address `::102:304`, as `inet_pton`
 *   reads it (ipaddr.js turns it into the IPv4-mapped `::ffff:1.2.3.4`);
 * - an IPv6 zone (`fe80::1%eth0`) is kept; it may contain letters, digits,
 *   `.`, `:` and `-`;
 * - brackets are not part of an address: `parseIp("[::1]")` is `null`, while
 *   `normalizeHost` strips them.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

/** An address family: 4 or 6. */
export type IpFamily = 4 | 6;

/** A parsed IP address: its family, its value as an unsigned 32- or 128-bit integer, and an IPv6 zone. */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
  /** IPv6 zone (scope) without the `%`; absent when there is none. */
  readonly zone?: string;
}

/** An address prefix: `network` has its host bits cleared; `prefix` is 0..32 or 0..128. */
export interface Cidr {
  readonly network: IpAddress;
  readonly prefix: number;
}

const IPV4_BITS = 32;
const IPV6_BITS = 128;
const DOTTED_QUAD = /^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$/;
const ZONE = /^[0-9A-Za-z.:-]+$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]+$/;
const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/;

/**
 * Parses an IPv4 or IPv6 literal (see the module notes for what counts);
 * `null` for anything else, brackets included.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseIp("10.0.0.1"), { family: 4, value: 0x0a000001n });
 * assert.deepEqual(parseIp("fe80::1%eth0"), { family: 6, value: 0xfe80n << 112n | 1n, zone: "eth0" });
 * assert.equal(parseIp("010.0.0.1"), null);
 * ```
 */
export function parseIp(text: string): IpAddress | null {
  const v4 = ipv4Octets(text);
  if (v4 !== null) return { family: 4, value: partsValue(v4, 8) };
  const percent = text.indexOf("%");
  const zone = percent < 0 ? undefined : text.slice(percent + 1);
  if (zone !== undefined && !ZONE.test(zone)) return null;
  const groups = ipv6Groups(percent < 0 ? text : text.slice(0, percent));
  if (groups === null) return null;
  const value = partsValue(groups, 16);
  return zone === undefined ? { family: 6, value } : { family: 6, value, zone };
}

/**
 * The family of an address literal, 0 for anything else: a drop-in for
 * `isIP` of node:net.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(["1.2.3.4", "::ffff:1.2.3.4", "[::1]", "example.com"].map(ipFamily), [4, 6, 0, 0]);
 * ```
 */
export function ipFamily(text: string): 0 | IpFamily {
  if (ipv4Octets(text) !== null) return 4;
  return parseIp(text)?.family ?? 0;
}

/**
 * The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`);
 * any other address is returned as it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(unmapIPv4(parseIp("::ffff:10.0.0.1")!), parseIp("10.0.0.1"));
 * ```
 */
export function unmapIPv4(address: IpAddress): IpAddress {
  if (address.family === 6 && address.value >> 32n === 0xffffn) {
    return { family: 4, value: address.value & 0xffffffffn };
  }
  return address;
}

/**
 * Formats an address: dotted decimal for IPv4, RFC 5952 text (lower case,
 * longest zero run as `::`) for IPv6, followed by `%zone` if it has one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(formatIp(parseIp("2001:DB8:0:0:0:0:0:1")!), "2001:db8::1");
 * ```
 */
export function formatIp(address: IpAddress): string {
  if (address.family === 4) return valueParts(address.value, 4, 8).join(".");
  const text = new ipaddr.IPv6(valueParts(address.value, 8, 16)).toRFC5952String();
  return address.zone === undefined ? text : `${text}%${address.zone}`;
}

/**
 * A host in the form srelay logs and compares: an IPv6 literal loses its
 * brackets and is written in RFC 5952 form, an IPv4-mapped one becomes
 * IPv4; any other text (a name) is returned unchanged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(normalizeHost("[::FFFF:127.0.0.1]"), "127.0.0.1");
 * assert.equal(normalizeHost("[2001:db8:0::1]"), "2001:db8::1");
 * assert.equal(normalizeHost("Example.COM"), "Example.COM");
 * ```
 */
export function normalizeHost(text: string): string {
  // A dotted quad (no leading zeros) is already in normal form.
  if (ipv4Octets(text) !== null) return text;
  const address = parseHost(text);
  return address === null ? text : formatIp(address);
}

/**
 * Parses a host that may be an address: an IPv6 literal may be bracketed,
 * and an IPv4-mapped one is returned as IPv4. `null` for a name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseHost("[::ffff:10.0.0.1]"), parseIp("10.0.0.1"));
 * assert.equal(parseHost("[10.0.0.1]"), null);
 * ```
 */
export function parseHost(text: string): IpAddress | null {
  const bracketed = text.startsWith("[") && text.endsWith("]");
  const address = parseIp(bracketed ? text.slice(1, -1) : text);
  if (address === null || (bracketed && address.family === 4)) return null;
  return unmapIPv4(address);
}

/**
 * The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(ipBytes(parseIp("192.0.2.1")!), new Uint8Array([192, 0, 2, 1]));
 * ```
 */
export function ipBytes(address: IpAddress): Uint8Array {
  return Uint8Array.from(valueParts(address.value, bitsOf(address.family) / 8, 8));
}

/**
 * The prefix covering `address`'s first `prefix` bits, its host bits
 * cleared and its zone dropped. Throws `RangeError` for a prefix length
 * outside 0..32 (IPv4) or 0..128 (IPv6).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(formatIp(toCidr(parseIp("10.1.2.3")!, 8).network), "10.0.0.0");
 * ```
 */
export function toCidr(address: IpAddress, prefix: number): Cidr {
  const bits = bitsOf(address.family);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) {
    throw new RangeError(`Cannot make a prefix: /${prefix} is not in 0..${bits} for IPv${address.family}`);
  }
  const shift = BigInt(bits - prefix);
  return { network: { family: address.family, value: (address.value >> shift) << shift }, prefix };
}

/**
 * Parses `address/length` (IPv6 optionally bracketed: `[2001:db8::]/32`);
 * an address without `/length` is a single-address prefix (`/32`, `/128`).
 * Host bits are cleared. `null` for anything else, including a zone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const cidr = parseCidr("192.168.1.77/24")!;
 * assert.equal(`${formatIp(cidr.network)}/${cidr.prefix}`, "192.168.1.0/24");
 * ```
 */
export function parseCidr(text: string): Cidr | null {
  const slash = text.lastIndexOf("/");
  const host = slash < 0 ? text : text.slice(0, slash);
  const length = slash < 0 ? undefined : text.slice(slash + 1);
  const bracketed = host.startsWith("[") && host.endsWith("]");
  const address = parseIp(bracketed ? host.slice(1, -1) : host);
  if (address === null || address.zone !== undefined || (bracketed && address.family === 4)) return null;
  if (length === undefined) return toCidr(address, bitsOf(address.family));
  if (!PREFIX_LENGTH.test(length) || Number(length) > bitsOf(address.family)) return null;
  return toCidr(address, Number(length));
}

/**
 * True when `address` lies in `cidr`. Families must match: an IPv4 address
 * is never in an IPv6 prefix, not even `::ffff:0:0/96` (apply `unmapIPv4`
 * first to match mapped addresses as IPv4). Zones are ignored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(prefixMatch(parseCidr("10.0.0.0/8")!, parseIp("10.200.0.1")!), true);
 * assert.equal(prefixMatch(parseCidr("::/0")!, parseIp("10.200.0.1")!), false);
 * ```
 */
export function prefixMatch(cidr: Cidr, address: IpAddress): boolean {
  if (cidr.network.family !== address.family) return false;
  const shift = BigInt(bitsOf(address.family) - cidr.prefix);
  return address.value >> shift === cidr.network.value >> shift;
}

/**
 * The prefix length of a netmask written as an address (`255.255.255.0` is
 * 24), or `null` when its one bits are not contiguous.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(maskPrefix(parseIp("255.255.255.0")!), 24);
 * assert.equal(maskPrefix(parseIp("255.0.255.0")!), null);
 * ```
 */
export function maskPrefix(mask: IpAddress): number | null {
  const bits = bitsOf(mask.family);
  const hostBits = ~mask.value & ((1n << BigInt(bits)) - 1n);
  if ((hostBits & (hostBits + 1n)) !== 0n) return null;
  return bits - (hostBits === 0n ? 0 : hostBits.toString(2).length);
}

/**
 * Formats a host and port, bracketing IPv6: `127.0.0.1:80`, `[::1]:80`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(formatHostPort("::1", 1080), "[::1]:1080");
 * assert.equal(formatHostPort("example.com", 80), "example.com:80");
 * ```
 */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The eight 16-bit groups of an IPv6 address without its zone, or `null` if the text is not one. */
function ipv6Groups(text: string): number[] | null {
  if (!IPV6_CHARS.test(text) || !text.includes(":")) return null;
  let hex = text;
  const dot = text.indexOf(".");
  if (dot >= 0) {
    // Rewrite an embedded IPv4 tail as two hex groups so that it obeys the
    // IPv4 rule and `::a.b.c.d` keeps its inet_pton meaning.
    const colon = text.lastIndexOf(":");
    const octets = colon < 0 ? null : ipv4Octets(text.slice(colon + 1));
    if (octets === null) return null;
    const [a = 0, b = 0, c = 0, d = 0] = octets;
    hex = `${text.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  if (hex.split(":").some((group) => group.length > 4)) return null;
  try {
    return ipaddr.IPv6.parse(hex).parts;
  } catch {
    return null;
  }
}

/**
 * The four octets of a dotted quad as the module notes define it (decimal,
 * no leading zeros); `null` for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(ipv4Octets("192.0.2.10"), [192, 0, 2, 10]);
 * assert.equal(ipv4Octets("192.0.2.010"), null);
 * ```
 */
export function ipv4Octets(text: string): number[] | null {
  if (!DOTTED_QUAD.test(text)) return null;
  const octets = text.split(".").map(Number);
  return octets.every((octet) => octet <= 255) ? octets : null;
}

function bitsOf(family: IpFamily): number {
  return family === 4 ? IPV4_BITS : IPV6_BITS;
}

function partsValue(parts: readonly number[], width: number): bigint {
  let value = 0n;
  for (const part of parts) value = (value << BigInt(width)) | BigInt(part);
  return value;
}

function valueParts(value: bigint, count: number, width: number): number[] {
  const mask = (1n << BigInt(width)) - 1n;
  const parts: number[] = [];
  for (let i = count - 1; i >= 0; i--) parts.push(Number((value >> BigInt(i * width)) & mask));
  return parts;
}
