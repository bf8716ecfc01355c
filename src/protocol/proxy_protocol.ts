/**
 * The PROXY protocol, versions 1 and 2 (HAProxy's proxy-protocol.txt): the
 * header a load balancer sends before the client's own bytes to say who the
 * client is.
 *
 * ```text
 * Version 1: one line of ASCII, at most 107 bytes with its CRLF
 *   PROXY TCP4 192.0.2.7 198.51.100.1 56324 1080\r\n
 *   PROXY TCP6 2001:db8::7 2001:db8::1 56324 1080\r\n
 *   PROXY UNKNOWN[ anything]\r\n
 *
 * Version 2: binary
 *   +------------------------------------+--------+-----+---------+-------------+------+
 *   | \r\n\r\n\0\r\nQUIT\n (12 bytes)      | VERCMD | FAM | LEN (2) | addresses   | TLVs |
 *   +------------------------------------+--------+-----+---------+-------------+------+
 *   VERCMD: 0x20 LOCAL, 0x21 PROXY
 *   FAM:    0x00 UNSPEC; 0x11/0x12 IPv4 TCP/UDP (12 bytes of addresses);
 *           0x21/0x22 IPv6 TCP/UDP (36 bytes); 0x31/0x32 UNIX (216 bytes)
 *   addresses: source address, destination address, source port, destination port
 *   TLV:    TYPE (1) LENGTH (2) VALUE; a CRC32C TLV (type 0x03) is checked
 * ```
 *
 * The decoder is strict where HAProxy is: every byte of a v1 line is
 * printable ASCII, addresses are literals of the declared family, ports are
 * decimal without leading zeros, v2 family bytes outside the table above and
 * TLVs that do not fit exactly are malformed. It rejects input as soon as a
 * prefix cannot start a header (a SOCKS greeting sent without a header is
 * refused on its first byte). A v2 header may be at most
 * `MAX_PROXY_V2_LENGTH` bytes in all.
 *
 * @module
 */
import { formatIp, type IpAddress, ipBytes, parseIp } from "../net/address.ts";
import { type Decoded, needBytes, ProtocolError } from "./decoded.ts";

/** The 12 bytes every v2 header starts with. */
export const PROXY_V2_SIGNATURE: Uint8Array = Uint8Array.of(
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
);

/** The longest v1 header, CRLF included (the spec's limit). */
export const MAX_PROXY_V1_LENGTH = 107;

/** The longest v2 header srelay reads, the 16 fixed bytes included (the spec allows 65551). */
export const MAX_PROXY_V2_LENGTH = 4096;

/** Well-known v2 TLV types. */
export const PROXY_TLV = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
} as const;

/** One end of the proxied connection: an IP literal (RFC 5952 for IPv6) and a port. */
export interface ProxyEndpoint {
  readonly host: string;
  readonly port: number;
}

/** A v2 type-length-value extension, kept as raw bytes. */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Uint8Array;
}

/**
 * A decoded header.
 *
 * - `proxy`: a relayed connection from `source` to `destination` (v1 TCP4 or
 *   TCP6; v2 PROXY over IPv4 or IPv6).
 * - `unknown`: a relayed connection whose endpoints are not IP addresses
 *   (v1 UNKNOWN; v2 PROXY with family UNSPEC or UNIX).
 * - `local`: v2 LOCAL, a connection the proxy made itself (a health check);
 *   its address block and TLVs are discarded, as the spec says.
 */
export type ProxyHeader =
  | {
    readonly version: 1 | 2;
    readonly command: "proxy";
    readonly family: 4 | 6;
    /** v1 is always `stream` (TCP). */
    readonly transport: "stream" | "datagram";
    readonly source: ProxyEndpoint;
    readonly destination: ProxyEndpoint;
    /** v1 has none. */
    readonly tlvs: readonly ProxyTlv[];
  }
  | { readonly version: 1 | 2; readonly command: "unknown"; readonly tlvs: readonly ProxyTlv[] }
  | { readonly version: 2; readonly command: "local" };

const V1_PREFIX = "PROXY ";
const V2_FIXED = 16;
const V2_VERSION = 0x20;
const V2_LOCAL = 0x00;
const V2_PROXY = 0x01;
const TLV_HEADER = 3;
const CR = 0x0d;
const LF = 0x0a;
const PORT = /^(0|[1-9][0-9]{0,4})$/;

/** Address-block length per v2 family nibble (UNSPEC, INET, INET6, UNIX). */
const V2_ADDRESS_LENGTH = [0, 12, 36, 216] as const;

/** The FAM bytes the spec defines; every other value is malformed. */
const V2_FAMILIES = new Set([0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32]);

function malformed(reason: string): ProtocolError {
  return new ProtocolError(`Cannot decode PROXY header: ${reason}`);
}

/**
 * Decodes a v1 or v2 header from the start of `bytes`. Throws
 * `ProtocolError` (reply `general_failure`) as soon as the bytes cannot be
 * one: another first byte, a broken signature, a v1 line without CRLF in
 * 107 bytes, a v2 header over `MAX_PROXY_V2_LENGTH`, a bad address, port,
 * family, command, TLV or CRC32C.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const line = new TextEncoder().encode("PROXY TCP4 192.0.2.7 198.51.100.1 56324 1080\r\n");
 * const decoded = decodeProxyHeader(line);
 * assert.ok(decoded.ok && decoded.value.command === "proxy");
 * assert.deepEqual(decoded.value.source, { host: "192.0.2.7", port: 56324 });
 * assert.equal(decoded.size, line.length);
 * ```
 */
export function decodeProxyHeader(bytes: Uint8Array): Decoded<ProxyHeader> {
  const first = bytes[0];
  if (first === undefined) return needBytes(1);
  if (first === V1_PREFIX.charCodeAt(0)) return decodeV1(bytes);
  if (first === PROXY_V2_SIGNATURE[0]) return decodeV2(bytes);
  throw malformed(`first byte 0x${first.toString(16).padStart(2, "0")} starts neither a v1 nor a v2 header`);
}

function decodeV1(bytes: Uint8Array): Decoded<ProxyHeader> {
  const prefixLength = Math.min(bytes.length, V1_PREFIX.length);
  for (let i = 0; i < prefixLength; i++) {
    if (bytes[i] !== V1_PREFIX.charCodeAt(i)) throw malformed(`v1 header does not start with "PROXY "`);
  }
  // The CR may be at offset 105 at the latest, so that the LF ends the line at 107 bytes.
  const limit = Math.min(bytes.length, MAX_PROXY_V1_LENGTH - 1);
  for (let i = V1_PREFIX.length; i < limit; i++) {
    const byte = bytes[i] as number;
    if (byte === CR) {
      if (i + 1 >= bytes.length) return needBytes(i + 2);
      if (bytes[i + 1] !== LF) throw malformed("v1 header has CR without LF");
      return { ok: true, value: parseV1Line(String.fromCharCode(...bytes.subarray(V1_PREFIX.length, i))), size: i + 2 };
    }
    if (byte < 0x20 || byte > 0x7e) {
      throw malformed(`v1 header has byte 0x${byte.toString(16).padStart(2, "0")} at offset ${i}`);
    }
  }
  if (bytes.length >= MAX_PROXY_V1_LENGTH - 1) throw malformed(`v1 header has no CRLF in ${MAX_PROXY_V1_LENGTH} bytes`);
  return needBytes(bytes.length + 1);
}

function parseV1Line(line: string): ProxyHeader {
  if (line === "UNKNOWN" || line.startsWith("UNKNOWN ")) return { version: 1, command: "unknown", tlvs: [] };
  const fields = line.split(" ");
  const [protocol, source, destination, sourcePort, destinationPort] = fields;
  if (protocol !== "TCP4" && protocol !== "TCP6") {
    throw malformed(`v1 protocol ${JSON.stringify(protocol)} is not TCP4, TCP6 or UNKNOWN`);
  }
  if (fields.length !== 5) throw malformed(`v1 ${protocol} line has ${fields.length - 1} fields, not 4`);
  const family = protocol === "TCP4" ? 4 : 6;
  return {
    version: 1,
    command: "proxy",
    family,
    transport: "stream",
    source: { host: v1Address(source as string, family), port: v1Port(sourcePort as string) },
    destination: { host: v1Address(destination as string, family), port: v1Port(destinationPort as string) },
    tlvs: [],
  };
}

function v1Address(text: string, family: 4 | 6): string {
  const address = parseIp(text);
  if (address === null || address.family !== family || address.zone !== undefined) {
    throw malformed(`v1 address ${JSON.stringify(text)} is not an IPv${family} address`);
  }
  return formatIp(address);
}

function v1Port(text: string): number {
  if (!PORT.test(text) || Number(text) > 0xffff) {
    throw malformed(`v1 port ${JSON.stringify(text)} is not a port in 0..65535`);
  }
  return Number(text);
}

function decodeV2(bytes: Uint8Array): Decoded<ProxyHeader> {
  const signatureLength = Math.min(bytes.length, PROXY_V2_SIGNATURE.length);
  for (let i = 0; i < signatureLength; i++) {
    if (bytes[i] !== PROXY_V2_SIGNATURE[i]) throw malformed(`v2 signature is wrong at byte ${i}`);
  }
  const versionCommand = bytes[12];
  if (versionCommand !== undefined) {
    if ((versionCommand & 0xf0) !== V2_VERSION) throw malformed(`v2 version nibble ${versionCommand >> 4} is not 2`);
    const command = versionCommand & 0x0f;
    if (command !== V2_LOCAL && command !== V2_PROXY) throw malformed(`v2 command ${command} is not LOCAL or PROXY`);
  }
  const familyByte = bytes[13];
  if (familyByte !== undefined && !V2_FAMILIES.has(familyByte)) {
    throw malformed(`v2 family and transport byte 0x${familyByte.toString(16).padStart(2, "0")} is undefined`);
  }
  if (bytes.length < V2_FIXED) return needBytes(V2_FIXED);
  const command = (versionCommand as number) & 0x0f;
  const family = (familyByte as number) >> 4;
  const length = readUint16(bytes, 14);
  const total = V2_FIXED + length;
  if (total > MAX_PROXY_V2_LENGTH) {
    throw malformed(`v2 header of ${total} bytes is longer than ${MAX_PROXY_V2_LENGTH}`);
  }
  const addressLength = V2_ADDRESS_LENGTH[family as 0 | 1 | 2 | 3];
  if (command === V2_PROXY && length < addressLength) {
    throw malformed(`v2 length ${length} is too short for the ${addressLength} bytes of its addresses`);
  }
  if (bytes.length < total) return needBytes(total);
  if (command === V2_LOCAL) return { ok: true, value: { version: 2, command: "local" }, size: total };
  const header = bytes.subarray(0, total);
  const tlvs = readTlvs(header, V2_FIXED + addressLength);
  checkCrc(header, tlvs);
  if (family === 1 || family === 2) {
    const size = family === 1 ? 4 : 16;
    const at = V2_FIXED;
    return {
      ok: true,
      value: {
        version: 2,
        command: "proxy",
        family: family === 1 ? 4 : 6,
        transport: ((familyByte as number) & 0x0f) === 1 ? "stream" : "datagram",
        source: { host: ipText(header, at, size), port: readUint16(header, at + 2 * size) },
        destination: { host: ipText(header, at + size, size), port: readUint16(header, at + 2 * size + 2) },
        tlvs,
      },
      size: total,
    };
  }
  return { ok: true, value: { version: 2, command: "unknown", tlvs }, size: total };
}

function readTlvs(header: Uint8Array, start: number): ProxyTlv[] {
  const tlvs: ProxyTlv[] = [];
  let at = start;
  while (at < header.length) {
    if (at + TLV_HEADER > header.length) throw malformed(`v2 TLV at offset ${at} is cut short`);
    const type = header[at] as number;
    const length = readUint16(header, at + 1);
    const end = at + TLV_HEADER + length;
    if (end > header.length) throw malformed(`v2 TLV 0x${type.toString(16)} at offset ${at} overruns the header`);
    tlvs.push({ type, value: header.slice(at + TLV_HEADER, end) });
    at = end;
  }
  return tlvs;
}

/** Checks a CRC32C TLV against the header (its own value counted as zeros). */
function checkCrc(header: Uint8Array, tlvs: readonly ProxyTlv[]): void {
  const crcs = tlvs.filter((tlv) => tlv.type === PROXY_TLV.CRC32C);
  if (crcs.length === 0) return;
  if (crcs.length > 1 || crcs[0]?.value.length !== 4) throw malformed("v2 CRC32C TLV is not one 4-byte value");
  const expected = readUint32(crcs[0].value, 0);
  const copy = header.slice();
  let at = V2_FIXED + V2_ADDRESS_LENGTH[(copy[13] as number) >> 4 as 0 | 1 | 2 | 3];
  while (at < copy.length) {
    const length = readUint16(copy, at + 1);
    if (copy[at] === PROXY_TLV.CRC32C) copy.fill(0, at + TLV_HEADER, at + TLV_HEADER + length);
    at += TLV_HEADER + length;
  }
  const actual = crc32c(copy);
  if (actual !== expected) {
    throw malformed(`v2 CRC32C is 0x${expected.toString(16)}, the header's is 0x${actual.toString(16)}`);
  }
}

function ipText(bytes: Uint8Array, at: number, size: 4 | 16): string {
  let value = 0n;
  for (let i = 0; i < size; i++) value = (value << 8n) | BigInt(bytes[at + i] as number);
  return formatIp({ family: size === 4 ? 4 : 6, value });
}

function readUint16(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
}

function readUint32(bytes: Uint8Array, at: number): number {
  return (((bytes[at] ?? 0) << 24) | ((bytes[at + 1] ?? 0) << 16) | ((bytes[at + 2] ?? 0) << 8) |
    (bytes[at + 3] ?? 0)) >>>
    0;
}

/** Options for `encodeProxyHeader`. */
export interface ProxyEncodeOptions {
  /** v2 only: append a CRC32C TLV over the whole header. */
  readonly crc32c?: boolean;
}

/**
 * Encodes a header. v1: `local` and `datagram` cannot be expressed
 * (`RangeError`). v2: `unknown` is written with family UNSPEC. Throws
 * `RangeError` for an endpoint that is not an IP literal of the header's
 * family, a port outside 0..65535, or a TLV or header over 65535 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeProxyHeader({
 *   version: 1, command: "proxy", family: 4, transport: "stream",
 *   source: { host: "192.0.2.7", port: 56324 }, destination: { host: "198.51.100.1", port: 1080 }, tlvs: [],
 * });
 * assert.equal(new TextDecoder().decode(bytes), "PROXY TCP4 192.0.2.7 198.51.100.1 56324 1080\r\n");
 * ```
 */
export function encodeProxyHeader(header: ProxyHeader, options: ProxyEncodeOptions = {}): Uint8Array {
  return header.version === 1 ? encodeV1(header) : encodeV2(header, options.crc32c ?? false);
}

function encodeV1(header: ProxyHeader): Uint8Array {
  if (header.command === "local") throw new RangeError("Cannot encode PROXY v1 header: v1 has no LOCAL command");
  if (header.command === "unknown") return new TextEncoder().encode("PROXY UNKNOWN\r\n");
  if (header.transport !== "stream") throw new RangeError("Cannot encode PROXY v1 header: v1 carries TCP only");
  const source = endpointAddress(header.source, header.family);
  const destination = endpointAddress(header.destination, header.family);
  const line = `PROXY TCP${header.family} ${formatIp(source)} ${
    formatIp(destination)
  } ${header.source.port} ${header.destination.port}\r\n`;
  return new TextEncoder().encode(line);
}

function encodeV2(header: ProxyHeader, withCrc: boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  let familyByte = 0x00;
  if (header.command === "proxy") {
    familyByte = (header.family === 4 ? 0x10 : 0x20) | (header.transport === "stream" ? 0x01 : 0x02);
    const source = ipBytes(endpointAddress(header.source, header.family));
    const destination = ipBytes(endpointAddress(header.destination, header.family));
    parts.push(source, destination, uint16(header.source.port), uint16(header.destination.port));
  }
  const tlvs = header.command === "local" ? [] : [...header.tlvs];
  if (withCrc) tlvs.push({ type: PROXY_TLV.CRC32C, value: new Uint8Array(4) });
  for (const tlv of tlvs) {
    if (!Number.isInteger(tlv.type) || tlv.type < 0 || tlv.type > 0xff || tlv.value.length > 0xffff) {
      throw new RangeError(`Cannot encode PROXY v2 header: TLV type ${tlv.type} or its length is out of range`);
    }
    parts.push(Uint8Array.of(tlv.type), uint16(tlv.value.length), tlv.value);
  }
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  if (length > 0xffff) throw new RangeError(`Cannot encode PROXY v2 header: ${length} bytes follow the fixed part`);
  const bytes = new Uint8Array(V2_FIXED + length);
  bytes.set(PROXY_V2_SIGNATURE);
  bytes[12] = V2_VERSION | (header.command === "local" ? V2_LOCAL : V2_PROXY);
  bytes[13] = familyByte;
  bytes.set(uint16(length), 14);
  let at = V2_FIXED;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  if (withCrc) {
    const crc = crc32c(bytes);
    bytes.set([crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff], bytes.length - 4);
  }
  return bytes;
}

function endpointAddress(endpoint: ProxyEndpoint, family: 4 | 6): IpAddress {
  const address = parseIp(endpoint.host);
  if (address === null || address.family !== family || address.zone !== undefined) {
    throw new RangeError(`Cannot encode PROXY header: ${JSON.stringify(endpoint.host)} is not an IPv${family} address`);
  }
  if (!Number.isInteger(endpoint.port) || endpoint.port < 0 || endpoint.port > 0xffff) {
    throw new RangeError(`Cannot encode PROXY header: port ${endpoint.port} is not in 0..65535`);
  }
  return address;
}

function uint16(value: number): Uint8Array {
  return Uint8Array.of(value >>> 8, value & 0xff);
}

let crcTable: Uint32Array | undefined;

/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as the v2 CRC32C TLV
 * uses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * ```
 */
export function crc32c(bytes: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (crcTable[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
