/**
 * SOCKS5 (RFC 1928) messages: the client's method greeting, the server's
 * method selection, the request and the reply.
 *
 * ```text
 * Greeting (client → server, §3)      Method selection (server → client, §3)
 * +----+----------+----------+        +----+--------+
 * |VER | NMETHODS | METHODS  |        |VER | METHOD |
 * +----+----------+----------+        +----+--------+
 * | 1  |    1     | 1 to 255 |        | 1  |   1    |
 * +----+----------+----------+        +----+--------+
 *
 * Request (client → server, §4)
 * +----+-----+-------+------+----------+----------+
 * |VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
 * +----+-----+-------+------+----------+----------+
 * | 1  |  1  | X'00' |  1   | Variable |    2     |
 * +----+-----+-------+------+----------+----------+
 *
 * Reply (server → client, §6)
 * +----+-----+-------+------+----------+----------+
 * |VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |
 * +----+-----+-------+------+----------+----------+
 * | 1  |  1  | X'00' |  1   | Variable |    2     |
 * +----+-----+-------+------+----------+----------+
 * ```
 *
 * VER is X'05'. The ATYP/ADDR/PORT block is `socks5_address.ts`; the REP
 * codes are `SOCKS5_REPLY` in `reply.ts`.
 *
 * @module
 */
import { type Decoded, needBytes, ProtocolError } from "./decoded.ts";
import { decodeSocks5Address, socks5AddressLength, writeSocks5Address } from "./socks5_address.ts";
import type { Target } from "./target.ts";
import { hexByte } from "../util/hex.ts";

/** The SOCKS5 VER byte. */
export const SOCKS5_VERSION = 5;

/** SOCKS5 METHOD values used in greetings and method selections. */
export const SOCKS5_METHOD = {
  NO_AUTH: 0x00,
  GSSAPI: 0x01,
  USERNAME_PASSWORD: 0x02,
  NO_ACCEPTABLE: 0xff,
} as const;

/** SOCKS5 CMD values. */
export const SOCKS5_COMMAND = { CONNECT: 1, BIND: 2, UDP_ASSOCIATE: 3 } as const;

/** A SOCKS5 CMD byte. */
export type Socks5Command = typeof SOCKS5_COMMAND[keyof typeof SOCKS5_COMMAND];

/** The methods a client offers, in the order it sent them. */
export interface Socks5Greeting {
  methods: number[];
}

/** A SOCKS5 request: what to do, and with which destination. */
export interface Socks5Request {
  command: Socks5Command;
  target: Target;
}

/** A SOCKS5 reply: the REP code and the bound address. */
export interface Socks5Reply {
  code: number;
  bound: Target;
}

/** The bound address sent when there is none to report: 0.0.0.0:0. */
const UNSPECIFIED: Target = { kind: "ipv4", host: "0.0.0.0", port: 0 };

/**
 * Decodes the client's greeting. Throws `ProtocolError` when VER is not 5
 * or no method is offered.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(decodeSocks5Greeting(new Uint8Array([0x05, 0x02, 0x00, 0x02])), {
 *   ok: true,
 *   value: { methods: [0, 2] },
 *   size: 4,
 * });
 * ```
 */
export function decodeSocks5Greeting(bytes: Uint8Array): Decoded<Socks5Greeting> {
  checkVersion(bytes, "greeting");
  const count = bytes[1];
  if (count === undefined) return needBytes(2);
  if (count === 0) {
    throw new ProtocolError("Cannot decode SOCKS5 greeting: no methods offered");
  }
  const size = 2 + count;
  if (bytes.length < size) return needBytes(size);
  return { ok: true, value: { methods: Array.from(bytes.subarray(2, size)) }, size };
}

/** Encodes a greeting offering `methods` (1..255 method bytes; else `RangeError`). */
export function encodeSocks5Greeting(methods: readonly number[]): Uint8Array {
  if (methods.length === 0 || methods.length > 255) {
    throw new RangeError(
      `Cannot encode SOCKS5 greeting: 1..255 methods are required, got ${methods.length}`,
    );
  }
  const bytes = new Uint8Array(2 + methods.length);
  bytes[0] = SOCKS5_VERSION;
  bytes[1] = methods.length;
  methods.forEach((method, i) => {
    bytes[2 + i] = checkByte(method, "SOCKS5 greeting", "method");
  });
  return bytes;
}

/** Encodes the server's method selection (`05 METHOD`). */
export function encodeSocks5MethodSelection(method: number): Uint8Array {
  return new Uint8Array([SOCKS5_VERSION, checkByte(method, "SOCKS5 method selection", "method")]);
}

/** Decodes the server's method selection. Throws `ProtocolError` when VER is not 5. */
export function decodeSocks5MethodSelection(bytes: Uint8Array): Decoded<{ method: number }> {
  checkVersion(bytes, "method selection");
  const method = bytes[1];
  if (method === undefined) return needBytes(2);
  return { ok: true, value: { method }, size: 2 };
}

/**
 * Decodes a request. Throws `ProtocolError` with reply `general_failure`
 * when VER is not 5, `command_not_supported` for a CMD other than 1, 2 or 3
 * (as soon as that byte arrives) and `address_type_not_supported` for an
 * unknown ATYP. RSV is not checked.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(decodeSocks5Request(new Uint8Array([5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90])), {
 *   ok: true,
 *   value: { command: 1, target: { kind: "ipv4", host: "127.0.0.1", port: 8080 } },
 *   size: 10,
 * });
 * ```
 */
export function decodeSocks5Request(bytes: Uint8Array): Decoded<Socks5Request> {
  checkVersion(bytes, "request");
  const command = bytes[1];
  if (command === undefined) return needBytes(2);
  if (!isCommand(command)) {
    throw new ProtocolError(
      `Cannot decode SOCKS5 request: command ${hexByte(command)} is unsupported`,
      "command_not_supported",
    );
  }
  if (bytes.length < 3) return needBytes(3);
  const address = decodeSocks5Address(bytes, 3);
  if (!address.ok) return address;
  return { ok: true, value: { command, target: address.value }, size: 3 + address.size };
}

/** Encodes a request. Throws `RangeError` for a target the address block cannot hold. */
export function encodeSocks5Request(command: Socks5Command, target: Target): Uint8Array {
  return encodeHeaderAndAddress(checkByte(command, "SOCKS5 request", "command"), target);
}

/**
 * Encodes a full reply `05 REP 00 ATYP ADDR PORT`. A `null` bound address
 * is sent as 0.0.0.0:0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(encodeSocks5Reply(0x05, null), new Uint8Array([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]));
 * ```
 */
export function encodeSocks5Reply(code: number, bound: Target | null): Uint8Array {
  return encodeHeaderAndAddress(
    checkByte(code, "SOCKS5 reply", "reply code"),
    bound ?? UNSPECIFIED,
  );
}

/**
 * Decodes a next hop's reply. Throws `ProtocolError` when VER is not 5 or
 * the address block is malformed; the REP code itself is not judged.
 */
export function decodeSocks5Reply(bytes: Uint8Array): Decoded<Socks5Reply> {
  checkVersion(bytes, "reply");
  if (bytes.length < 3) return needBytes(3);
  const address = decodeSocks5Address(bytes, 3);
  if (!address.ok) return address;
  return { ok: true, value: { code: bytes[1] ?? 0, bound: address.value }, size: 3 + address.size };
}

function encodeHeaderAndAddress(second: number, target: Target): Uint8Array {
  const bytes = new Uint8Array(3 + socks5AddressLength(target));
  bytes[0] = SOCKS5_VERSION;
  bytes[1] = second;
  writeSocks5Address(target, bytes, 3);
  return bytes;
}

function checkVersion(bytes: Uint8Array, message: string): void {
  const version = bytes[0];
  if (version !== undefined && version !== SOCKS5_VERSION) {
    throw new ProtocolError(
      `Cannot decode SOCKS5 ${message}: version ${hexByte(version)} is not 0x05`,
    );
  }
}

function isCommand(value: number): value is Socks5Command {
  return value === SOCKS5_COMMAND.CONNECT || value === SOCKS5_COMMAND.BIND ||
    value === SOCKS5_COMMAND.UDP_ASSOCIATE;
}

function checkByte(value: number, message: string, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xff) {
    throw new RangeError(`Cannot encode ${message}: ${field} ${value} is not a byte`);
  }
  return value;
}
