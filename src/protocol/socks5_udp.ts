/**
 * The header of SOCKS5 UDP ASSOCIATE datagrams (RFC 1928 §7). Each UDP
 * datagram carries one whole message, so this codec works on complete
 * datagrams rather than returning `Decoded`.
 *
 * ```text
 * +----+------+------+----------+----------+----------+
 * |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
 * +----+------+------+----------+----------+----------+
 * | 2  |  1   |  1   | Variable |    2     | Variable |
 * +----+------+------+----------+----------+----------+
 *
 * RSV   Reserved X'0000'
 * FRAG  Current fragment number (X'00' for a standalone datagram)
 * ```
 *
 * @module
 */
import { ProtocolError } from "./decoded.ts";
import { decodeSocks5Address, socks5AddressLength, writeSocks5Address } from "./socks5_address.ts";
import type { Target } from "./target.ts";

/** A decoded UDP datagram: fragment number, destination (or source) and data. */
export interface Socks5UdpDatagram {
  fragment: number;
  target: Target;
  payload: Uint8Array;
}

/** RSV and FRAG, before the address block. */
const PREFIX_LENGTH = 3;

/**
 * Decodes a whole datagram; `payload` is a view into `bytes`. Throws
 * `ProtocolError` when the datagram ends inside its header or the address
 * block is malformed (`address_type_not_supported` for an unknown ATYP).
 * RSV is not checked.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const datagram = decodeSocks5UdpDatagram(
 *   new Uint8Array([0, 0, 0, 1, 127, 0, 0, 1, 0, 53, 0xab]),
 * );
 * assert.deepEqual(datagram, {
 *   fragment: 0,
 *   target: { kind: "ipv4", host: "127.0.0.1", port: 53 },
 *   payload: new Uint8Array([0xab]),
 * });
 * ```
 */
export function decodeSocks5UdpDatagram(bytes: Uint8Array): Socks5UdpDatagram {
  const fragment = bytes[2];
  if (fragment !== undefined) {
    const address = decodeSocks5Address(bytes, PREFIX_LENGTH);
    if (address.ok) {
      const payload = bytes.subarray(PREFIX_LENGTH + address.size);
      return { fragment, target: address.value, payload };
    }
  }
  throw new ProtocolError(
    `Cannot decode SOCKS5 UDP datagram: ${bytes.length} bytes end inside the header`,
  );
}

/**
 * Encodes a datagram for `target` carrying `payload`. Throws `RangeError`
 * for a fragment number outside 0..255 or a target the address block cannot
 * hold.
 */
export function encodeSocks5UdpDatagram(
  target: Target,
  payload: Uint8Array,
  fragment = 0,
): Uint8Array {
  if (!Number.isInteger(fragment) || fragment < 0 || fragment > 0xff) {
    throw new RangeError(
      `Cannot encode SOCKS5 UDP datagram: fragment ${fragment} is not in 0..255`,
    );
  }
  const headerLength = PREFIX_LENGTH + socks5AddressLength(target);
  const bytes = new Uint8Array(headerLength + payload.length);
  bytes[2] = fragment;
  writeSocks5Address(target, bytes, PREFIX_LENGTH);
  bytes.set(payload, headerLength);
  return bytes;
}
