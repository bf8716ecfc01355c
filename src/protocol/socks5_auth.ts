/**
 * SOCKS5 username/password sub-negotiation (RFC 1929), spoken after the
 * server selects method X'02'.
 *
 * ```text
 * Request (client → server)
 * +----+------+----------+------+----------+
 * |VER | ULEN |  UNAME   | PLEN |  PASSWD  |
 * +----+------+----------+------+----------+
 * | 1  |  1   | 1 to 255 |  1   | 1 to 255 |
 * +----+------+----------+------+----------+
 *
 * Reply (server → client)
 * +----+--------+
 * |VER | STATUS |
 * +----+--------+
 * | 1  |   1    |
 * +----+--------+
 * ```
 *
 * VER is X'01'. STATUS X'00' is success; anything else is failure and the
 * server closes the connection. UNAME and PASSWD are read as UTF-8.
 *
 * @module
 */
import { type Decoded, needBytes, ProtocolError } from "./decoded.ts";
import { hexByte } from "../util/hex.ts";

/** The RFC 1929 VER byte. */
export const USERPASS_VERSION = 1;

/** The VER byte many SOCKS5 servers wrongly put in their RFC 1929 reply. */
const LENIENT_REPLY_VERSION = 5;

const UTF8_DECODER = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const UTF8_ENCODER = new TextEncoder();

/**
 * Decodes a username/password request. Throws `ProtocolError` when VER is
 * not 1, a field is empty or a field is not valid UTF-8.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(decodeUserPassRequest(new Uint8Array([1, 1, 0x75, 1, 0x70])), {
 *   ok: true,
 *   value: { username: "u", password: "p" },
 *   size: 5,
 * });
 * ```
 */
export function decodeUserPassRequest(
  bytes: Uint8Array,
): Decoded<{ username: string; password: string }> {
  const version = bytes[0];
  if (version === undefined) return needBytes(2);
  if (version !== USERPASS_VERSION) {
    throw new ProtocolError(
      `Cannot decode username/password request: version ${hexByte(version)} is not 0x01`,
    );
  }
  const userLength = bytes[1];
  if (userLength === undefined) return needBytes(2);
  if (userLength === 0) {
    throw new ProtocolError("Cannot decode username/password request: username is empty");
  }
  const passAt = 2 + userLength;
  const passLength = bytes[passAt];
  if (passLength === undefined) return needBytes(passAt + 1);
  if (passLength === 0) {
    throw new ProtocolError("Cannot decode username/password request: password is empty");
  }
  const size = passAt + 1 + passLength;
  if (bytes.length < size) return needBytes(size);
  const username = decodeField(bytes.subarray(2, passAt), "username");
  const password = decodeField(bytes.subarray(passAt + 1, size), "password");
  return { ok: true, value: { username, password }, size };
}

/**
 * Encodes a username/password request. Throws `RangeError` when either
 * field is empty or longer than 255 bytes of UTF-8.
 */
export function encodeUserPassRequest(username: string, password: string): Uint8Array {
  const user = encodeField(username, "username");
  const pass = encodeField(password, "password");
  const bytes = new Uint8Array(3 + user.length + pass.length);
  bytes[0] = USERPASS_VERSION;
  bytes[1] = user.length;
  bytes.set(user, 2);
  bytes[2 + user.length] = pass.length;
  bytes.set(pass, 3 + user.length);
  return bytes;
}

/** Encodes the server's verdict: `01 00` on success, `01 01` on failure. */
export function encodeUserPassReply(success: boolean): Uint8Array {
  return new Uint8Array([USERPASS_VERSION, success ? 0x00 : 0x01]);
}

/**
 * Decodes a next hop's verdict; success iff STATUS is 0. VER may be 1 or,
 * leniently, 5; anything else throws `ProtocolError`.
 */
export function decodeUserPassReply(bytes: Uint8Array): Decoded<{ success: boolean }> {
  const version = bytes[0];
  if (version === undefined) return needBytes(2);
  if (version !== USERPASS_VERSION && version !== LENIENT_REPLY_VERSION) {
    throw new ProtocolError(
      `Cannot decode username/password reply: version ${hexByte(version)} is not 0x01`,
    );
  }
  const status = bytes[1];
  if (status === undefined) return needBytes(2);
  return { ok: true, value: { success: status === 0 }, size: 2 };
}

function decodeField(bytes: Uint8Array, field: string): string {
  try {
    return UTF8_DECODER.decode(bytes);
  } catch {
    throw new ProtocolError(`Cannot decode username/password request: ${field} is not valid UTF-8`);
  }
}

function encodeField(value: string, field: string): Uint8Array {
  const bytes = UTF8_ENCODER.encode(value);
  if (bytes.length === 0 || bytes.length > 255) {
    throw new RangeError(
      `Cannot encode username/password request: ${field} must be 1..255 bytes of UTF-8, got ${bytes.length}`,
    );
  }
  return bytes;
}
