/**
 * Checks sans-I/O codecs against byte-vector tables: hex helpers, the
 * three-way vector check (decode the whole input, encode the value, feed it
 * one byte at a time) and the malformed-input check.
 *
 * Uses only `node:test` and `node:assert/strict`, so it runs under both
 * `deno test` and `bun test`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type Decoded, ProtocolError, type ProtocolErrorReply } from "../../src/protocol/decoded.ts";

/** A valid message: its bytes as hex and the value they stand for. */
export interface Vector<T> {
  /** Where the bytes come from, e.g. "curl 7.88 --socks5-hostname request". */
  name: string;
  /** The message bytes; whitespace is ignored. */
  hex: string;
  value: T;
  /** The encoder produces other bytes (the decoder is lenient here). */
  decodeOnly?: boolean;
}

/** Malformed bytes and the reply the `ProtocolError` must carry. */
export interface MalformedVector {
  name: string;
  hex: string;
  reply: ProtocolErrorReply;
}

/** A decoder under test. */
export type Decoder<T> = (bytes: Uint8Array) => Decoded<T>;

/** Bytes appended to a message to check that the decoder stops at its end. */
const GARBAGE = new Uint8Array([0xff, 0x00, 0x05, 0x04]);

/** Parses hex such as "05 01 00 01 7f000001"; whitespace is ignored. */
export function fromHex(hex: string): Uint8Array {
  const digits = hex.replace(/\s+/g, "");
  if (digits.length % 2 !== 0 || /[^0-9a-fA-F]/.test(digits)) {
    throw new TypeError(`Cannot parse hex: ${JSON.stringify(hex)} is not whole bytes of hex`);
  }
  const bytes = new Uint8Array(digits.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** Formats bytes as space-separated lowercase hex, for readable assertion diffs. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join(" ");
}

/** Asserts that `actual` holds the bytes written in `expectedHex`. */
export function assertHex(actual: Uint8Array, expectedHex: string): void {
  assert.ok(actual instanceof Uint8Array, "expected a Uint8Array");
  assert.equal(toHex(actual), toHex(fromHex(expectedHex)));
}

/**
 * Asserts that `decode` reads `bytes` as `expected` with `size` equal to the
 * length, and stops at the same size when garbage follows the message.
 */
export function assertDecodes<T>(decode: Decoder<T>, bytes: Uint8Array, expected: T): void {
  const whole = decode(bytes);
  assert.deepEqual(whole, { ok: true, value: expected, size: bytes.length });
  const padded = new Uint8Array(bytes.length + GARBAGE.length);
  padded.set(bytes);
  padded.set(GARBAGE, bytes.length);
  assert.deepEqual(decode(padded), { ok: true, value: expected, size: bytes.length });
}

/**
 * Feeds `bytes` one byte at a time: every proper prefix must give
 * `{ ok: false }` with `prefix.length < need <= bytes.length`, and the full
 * input must give `{ ok: true, size: bytes.length }`.
 */
export function assertNeedsEveryPrefix<T>(decode: Decoder<T>, bytes: Uint8Array): void {
  for (let length = 0; length < bytes.length; length++) {
    const result = decode(bytes.slice(0, length));
    assert.equal(result.ok, false, `prefix of ${length} bytes decoded`);
    if (result.ok) return;
    assert.ok(
      result.need > length && result.need <= bytes.length,
      `prefix of ${length} bytes: need ${result.need} is not in ${length + 1}..${bytes.length}`,
    );
  }
  const full = decode(bytes);
  assert.equal(full.ok && full.size, bytes.length);
}

/**
 * Asserts that `decode` throws a `ProtocolError` with `reply` for `bytes`,
 * and that no prefix of them decodes or throws a different reply.
 */
export function assertRejects<T>(
  decode: Decoder<T>,
  bytes: Uint8Array,
  reply: ProtocolErrorReply,
): void {
  assert.throws(() => decode(bytes), (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${String(error)}`);
    assert.equal(error.reply, reply);
    assert.match(error.message, /^Cannot decode [^:]+: \S/);
    return true;
  });
  for (let length = 0; length < bytes.length; length++) {
    try {
      assert.equal(decode(bytes.slice(0, length)).ok, false, `prefix of ${length} bytes decoded`);
    } catch (error) {
      assert.ok(
        error instanceof ProtocolError && error.reply === reply,
        `prefix of ${length} bytes: ${error}`,
      );
    }
  }
}

/** What `testVectors` checks: a decoder, its encoder (if any) and the vectors. */
export interface VectorSuite<T> {
  decode: Decoder<T>;
  encode?: (value: T) => Uint8Array;
  vectors: readonly Vector<T>[];
}

/**
 * Registers, for each vector, the three checks: decode the whole input,
 * encode the value (unless there is no encoder or the vector is
 * `decodeOnly`), and feed it one byte at a time.
 */
export function testVectors<T>(label: string, suite: VectorSuite<T>): void {
  const { decode, encode, vectors } = suite;
  describe(label, () => {
    for (const vector of vectors) {
      const bytes = fromHex(vector.hex);
      test(`decodes ${vector.name}`, () => assertDecodes(decode, bytes, vector.value));
      if (encode !== undefined && !vector.decodeOnly) {
        test(`encodes ${vector.name}`, () => assertHex(encode(vector.value), vector.hex));
      }
      test(`returns need for every prefix of ${vector.name}`, () => assertNeedsEveryPrefix(decode, bytes));
    }
  });
}

/** Registers one rejection test per malformed vector. */
export function testMalformed<T>(
  label: string,
  suite: { decode: Decoder<T>; vectors: readonly MalformedVector[] },
): void {
  const { decode, vectors } = suite;
  describe(label, () => {
    for (const vector of vectors) {
      test(`rejects ${vector.name} with ${vector.reply}`, () => {
        assertRejects(decode, fromHex(vector.hex), vector.reply);
      });
    }
  });
}
