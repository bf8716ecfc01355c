/**
 * SOCKS4 and its 4A extension (Ying-Da Lee's SOCKS4.protocol and
 * SOCKS4A.protocol): the request and the reply.
 *
 * ```text
 * Request (client → server)
 *         +----+----+----+----+----+----+----+----+----+----+....+----+
 *         | VN | CD | DSTPORT |      DSTIP        | USERID       |NULL|
 *         +----+----+----+----+----+----+----+----+----+----+....+----+
 * # bytes:   1    1      2              4           variable       1
 *
 * 4A: DSTIP is 0.0.0.x with x nonzero, and the destination domain name
 * follows USERID's NULL, terminated by another NULL:
 *         +----+----+---------+-----------+--------+----+----------+----+
 *         | VN | CD | DSTPORT |  0.0.0.x  | USERID |NULL| HOSTNAME |NULL|
 *         +----+----+---------+-----------+--------+----+----------+----+
 *
 * Reply (server → client)
 *         +----+----+----+----+----+----+----+----+
 *         | VN | CD | DSTPORT |      DSTIP        |
 *         +----+----+----+----+----+----+----+----+
 * # bytes:   1    1      2              4
 * ```
 *
 * In requests VN is 4 and CD is 1 (CONNECT) or 2 (BIND). In replies VN
 * "should be 0" and CD is 90..93 (`SOCKS4_REPLY` in `reply.ts`). USERID is
 * read as UTF-8 (invalid sequences become U+FFFD), the 4A hostname as
 * single-byte (Latin-1) characters like a SOCKS5 domain name.
 *
 * @module
 */
import { ipBytes, parseHost, parseIp } from "../net/address.ts";
import { type Decoded, needBytes, ProtocolError } from "./decoded.ts";
import type { Target } from "./target.ts";
import { hexByte } from "../util/hex.ts";

/** The VN byte of a SOCKS4 request. */
export const SOCKS4_VERSION = 4;

/** SOCKS4 CD values in requests. */
export const SOCKS4_COMMAND = { CONNECT: 1, BIND: 2 } as const;

/** A SOCKS4 CD byte in a request. */
export type Socks4Command = typeof SOCKS4_COMMAND[keyof typeof SOCKS4_COMMAND];

/** A SOCKS4 or 4A request; 4A requests have a `domain` target. */
export interface Socks4Request {
  command: Socks4Command;
  target: Target;
  userId: string;
}

/** VN, CD, DSTPORT and DSTIP: the fixed part of requests and replies. */
const HEADER_LENGTH = 8;

/** Most bytes USERID and the 4A hostname may have before their NUL. */
const MAX_FIELD_LENGTH = 255;

/** The VN byte of a reply; "should be 0" says SOCKS4.protocol. */
const REPLY_VERSION = 0;

const UTF8_DECODER = new TextDecoder("utf-8", { ignoreBOM: true });
const UTF8_ENCODER = new TextEncoder();

/**
 * Decodes a SOCKS4 or 4A request. Throws `ProtocolError` with reply
 * `general_failure` when VN is not 4 or USERID/hostname is too long (or the
 * hostname empty), and `command_not_supported` for a CD other than 1 or 2.
 * While a NUL-terminated field is still arriving, `need` is one more byte.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * // 4A: CONNECT example.com:80 with an empty USERID
 * const name = new TextEncoder().encode("example.com");
 * const bytes = new Uint8Array([4, 1, 0, 80, 0, 0, 0, 1, 0, ...name, 0]);
 * assert.deepEqual(decodeSocks4Request(bytes), {
 *   ok: true,
 *   value: { command: 1, target: { kind: "domain", host: "example.com", port: 80 }, userId: "" },
 *   size: 21,
 * });
 * ```
 */
export function decodeSocks4Request(bytes: Uint8Array): Decoded<Socks4Request> {
  const version = bytes[0];
  if (version !== undefined && version !== SOCKS4_VERSION) {
    throw new ProtocolError(
      `Cannot decode SOCKS4 request: version ${hexByte(version)} is not 0x04`,
    );
  }
  const command = bytes[1];
  if (
    command !== undefined && command !== SOCKS4_COMMAND.CONNECT && command !== SOCKS4_COMMAND.BIND
  ) {
    throw new ProtocolError(
      `Cannot decode SOCKS4 request: command ${hexByte(command)} is unsupported`,
      "command_not_supported",
    );
  }
  if (command === undefined || bytes.length < HEADER_LENGTH) return needBytes(HEADER_LENGTH);
  const userEnd = findNul(bytes, HEADER_LENGTH, "user ID");
  if (userEnd < 0) return needBytes(bytes.length + 1);
  const port = readPort(bytes, 2);
  const is4a = bytes[4] === 0 && bytes[5] === 0 && bytes[6] === 0 && bytes[7] !== 0;
  if (!is4a) {
    const host = `${bytes[4]}.${bytes[5]}.${bytes[6]}.${bytes[7]}`;
    const userId = UTF8_DECODER.decode(bytes.subarray(HEADER_LENGTH, userEnd));
    return {
      ok: true,
      value: { command, target: { kind: "ipv4", host, port }, userId },
      size: userEnd + 1,
    };
  }
  if (bytes[userEnd + 1] === 0) {
    throw new ProtocolError("Cannot decode SOCKS4A request: hostname is empty");
  }
  const hostEnd = findNul(bytes, userEnd + 1, "hostname");
  if (hostEnd < 0) return needBytes(bytes.length + 1);
  const host = String.fromCharCode(...bytes.subarray(userEnd + 1, hostEnd));
  const userId = UTF8_DECODER.decode(bytes.subarray(HEADER_LENGTH, userEnd));
  return {
    ok: true,
    value: { command, target: { kind: "domain", host, port }, userId },
    size: hostEnd + 1,
  };
}

/**
 * Encodes a SOCKS4 request, or a 4A request (DSTIP 0.0.0.1 plus hostname)
 * for a domain target. Throws `RangeError` for an IPv6 target, an IPv4
 * target in 0.0.0.1..0.0.0.255 (the 4A marker), a USERID with NUL or over
 * 255 bytes of UTF-8, or a hostname or port the request cannot hold.
 */
export function encodeSocks4Request(
  command: Socks4Command,
  target: Target,
  userId: string,
): Uint8Array {
  if (target.kind === "ipv6") {
    throw new RangeError("Cannot encode SOCKS4 request: IPv6 destinations are not representable");
  }
  if (command !== SOCKS4_COMMAND.CONNECT && command !== SOCKS4_COMMAND.BIND) {
    throw new RangeError(`Cannot encode SOCKS4 request: command ${command} is not 1 or 2`);
  }
  checkPort(target.port, "request");
  const user = UTF8_ENCODER.encode(userId);
  if (user.length > MAX_FIELD_LENGTH || user.includes(0)) {
    throw new RangeError(
      `Cannot encode SOCKS4 request: user ID must be at most ${MAX_FIELD_LENGTH} bytes of UTF-8 without NUL`,
    );
  }
  const host = target.kind === "domain" ? target.host : "";
  if (target.kind === "domain") checkHostname(host);
  const hostLength = host.length === 0 ? 0 : host.length + 1;
  const bytes = new Uint8Array(HEADER_LENGTH + user.length + 1 + hostLength);
  bytes[0] = SOCKS4_VERSION;
  bytes[1] = command;
  bytes[2] = target.port >>> 8;
  bytes[3] = target.port & 0xff;
  if (target.kind === "ipv4") {
    const octets = ipv4Octets(target.host, "request");
    if (octets[0] === 0 && octets[1] === 0 && octets[2] === 0 && octets[3] !== 0) {
      throw new RangeError(
        `Cannot encode SOCKS4 request: ${target.host} would be read as a SOCKS4A marker`,
      );
    }
    bytes.set(octets, 4);
  } else {
    bytes[7] = 1;
  }
  bytes.set(user, HEADER_LENGTH);
  let at = HEADER_LENGTH + user.length + 1;
  for (let i = 0; i < host.length; i++) bytes[at++] = host.charCodeAt(i);
  return bytes;
}

/**
 * Encodes an 8-byte reply with VN 0 (never 4, which the original srelay
 * sent). DSTPORT/DSTIP come from `bound` when its host is an IPv4 address
 * (an IPv4-mapped IPv6 address counts as its IPv4 address); otherwise, or
 * for `null`, they are 0.0.0.0:0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(
 *   encodeSocks4Reply(0x5a, { host: "10.0.0.1", port: 1080 }),
 *   new Uint8Array([0x00, 0x5a, 0x04, 0x38, 10, 0, 0, 1]),
 * );
 * ```
 */
export function encodeSocks4Reply(
  code: number,
  bound: { host: string; port: number } | null,
): Uint8Array {
  if (!Number.isInteger(code) || code < 0 || code > 0xff) {
    throw new RangeError(`Cannot encode SOCKS4 reply: reply code ${code} is not a byte`);
  }
  const bytes = new Uint8Array(HEADER_LENGTH);
  bytes[0] = REPLY_VERSION;
  bytes[1] = code;
  const octets = bound === null ? null : boundIpv4(bound.host);
  if (bound !== null && octets !== null) {
    checkPort(bound.port, "reply");
    bytes[2] = bound.port >>> 8;
    bytes[3] = bound.port & 0xff;
    bytes.set(octets, 4);
  }
  return bytes;
}

/**
 * Decodes a next hop's reply. VN may be 0 or, leniently, 4; anything else
 * throws `ProtocolError`. The CD code itself is not judged.
 */
export function decodeSocks4Reply(
  bytes: Uint8Array,
): Decoded<{ code: number; bound: { host: string; port: number } }> {
  const version = bytes[0];
  if (version !== undefined && version !== REPLY_VERSION && version !== SOCKS4_VERSION) {
    throw new ProtocolError(`Cannot decode SOCKS4 reply: version ${hexByte(version)} is not 0x00`);
  }
  if (bytes.length < HEADER_LENGTH) return needBytes(HEADER_LENGTH);
  const host = `${bytes[4]}.${bytes[5]}.${bytes[6]}.${bytes[7]}`;
  return {
    ok: true,
    value: { code: bytes[1] ?? 0, bound: { host, port: readPort(bytes, 2) } },
    size: HEADER_LENGTH,
  };
}

/**
 * Index of the NUL ending the field that starts at `start`, or -1 while it
 * has not arrived. Throws once more than 255 bytes arrived without one.
 */
function findNul(bytes: Uint8Array, start: number, field: string): number {
  const limit = Math.min(bytes.length, start + MAX_FIELD_LENGTH + 1);
  for (let i = start; i < limit; i++) {
    if (bytes[i] === 0) return i;
  }
  if (limit === start + MAX_FIELD_LENGTH + 1) {
    throw new ProtocolError(
      `Cannot decode SOCKS4 request: ${field} is longer than ${MAX_FIELD_LENGTH} bytes`,
    );
  }
  return -1;
}

function checkHostname(host: string): void {
  if (host.length === 0 || host.length > MAX_FIELD_LENGTH) {
    throw new RangeError(
      `Cannot encode SOCKS4A request: hostname must be 1..${MAX_FIELD_LENGTH} bytes, got ${host.length}`,
    );
  }
  for (let i = 0; i < host.length; i++) {
    const code = host.charCodeAt(i);
    if (code === 0 || code > 0xff) {
      throw new RangeError(
        `Cannot encode SOCKS4A request: hostname has an unrepresentable character at index ${i}`,
      );
    }
  }
}

function boundIpv4(host: string): Uint8Array | null {
  const address = parseHost(host);
  return address?.family === 4 ? ipBytes(address) : null;
}

function ipv4Octets(host: string, message: string): Uint8Array {
  const address = parseIp(host);
  if (address?.family !== 4) {
    throw new RangeError(`Cannot encode SOCKS4 ${message}: "${host}" is not an IPv4 address`);
  }
  return ipBytes(address);
}

function checkPort(port: number, message: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`Cannot encode SOCKS4 ${message}: port ${port} is not in 0..65535`);
  }
}

function readPort(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
}
