/**
 * SHA-crypt (`$5$` SHA-256, `$6$` SHA-512), Ulrich Drepper's "Unix crypt
 * using SHA-256 and SHA-512" (the scheme glibc, libxcrypt and
 * `openssl passwd -5/-6` implement), on node:crypto's hashes.
 *
 * Written here rather than taken from npm: the candidate package (unixcrypt
 * 3.0.4) computes wrong hashes for passwords whose length is a multiple of
 * the digest size (32 bytes for `$5$`, 64 for `$6$`): it leaves out digest B
 * in step 10 and the P sequence in step 16.
 *
 * Synchronous and CPU-bound (5000 rounds by default): call it from the hash
 * worker (`hash_worker.ts`), not on the event loop.
 *
 * @module
 */
import { createHash } from "node:crypto";

const ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ROUNDS_DEFAULT = 5000;
/** Smallest and largest `rounds=` glibc accepts; values outside are clamped. */
export const SHA_CRYPT_ROUNDS_MIN = 1000;
export const SHA_CRYPT_ROUNDS_MAX = 999_999_999;
const SALT_MAX = 16;
const ENCODER = new TextEncoder();

/** One SHA-crypt variant. */
interface Variant {
  readonly id: "5" | "6";
  readonly algorithm: "sha256" | "sha512";
  readonly size: 32 | 64;
  /** Length of the encoded hash. */
  readonly encodedLength: 43 | 86;
}

const VARIANTS: Readonly<Record<"5" | "6", Variant>> = {
  "5": { id: "5", algorithm: "sha256", size: 32, encodedLength: 43 },
  "6": { id: "6", algorithm: "sha512", size: 64, encodedLength: 86 },
};

/** A parsed SHA-crypt setting: `$5$salt`, `$6$rounds=N$salt`, optionally followed by `$hash`. */
export interface ShaCryptSetting {
  readonly id: "5" | "6";
  /** Rounds after clamping to 1000..999999999. */
  readonly rounds: number;
  /** True when the setting said `rounds=` (the output then says it too). */
  readonly explicitRounds: boolean;
  /** The salt, at most 16 characters. */
  readonly salt: string;
  /** The encoded hash that followed the salt, if any. */
  readonly hash?: string;
}

/**
 * Parses a SHA-crypt setting or full hash the way glibc does; `null` when it
 * is not `$5$` or `$6$`. The salt ends at the next `$` and is cut to 16
 * characters; `rounds=` is clamped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseShaCryptSetting("$6$rounds=10$salt"), {
 *   id: "6", rounds: 1000, explicitRounds: true, salt: "salt",
 * });
 * ```
 */
export function parseShaCryptSetting(setting: string): ShaCryptSetting | null {
  const match = /^\$([56])\$/.exec(setting);
  if (match === null) return null;
  const id = match[1] as "5" | "6";
  let rest = setting.slice(3);
  let rounds = ROUNDS_DEFAULT;
  let explicitRounds = false;
  const roundsMatch = /^rounds=([0-9]+)\$/.exec(rest);
  if (roundsMatch !== null) {
    const value = Number(roundsMatch[1]);
    rounds = Math.min(SHA_CRYPT_ROUNDS_MAX, Math.max(SHA_CRYPT_ROUNDS_MIN, value));
    explicitRounds = true;
    rest = rest.slice(roundsMatch[0].length);
  }
  const end = rest.indexOf("$");
  const salt = (end === -1 ? rest : rest.slice(0, end)).slice(0, SALT_MAX);
  const result: ShaCryptSetting = { id, rounds, explicitRounds, salt };
  if (end !== -1) return { ...result, hash: rest.slice(end + 1) };
  return result;
}

/**
 * SHA-crypt of `key` with `setting` (`$5$...` or `$6$...`, a setting or a
 * full hash); `null` when `setting` is not SHA-crypt.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * // From the specification's test vectors.
 * assert.equal(
 *   shaCrypt("Hello world!", "$5$saltstring"),
 *   "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
 * );
 * ```
 */
export function shaCrypt(key: string, setting: string): string | null {
  const parsed = parseShaCryptSetting(setting);
  if (parsed === null) return null;
  const variant = VARIANTS[parsed.id];
  const encoded = encode(digest(ENCODER.encode(key), ENCODER.encode(parsed.salt), parsed.rounds, variant), variant);
  const rounds = parsed.explicitRounds ? `rounds=${parsed.rounds}$` : "";
  return `$${variant.id}$${rounds}${parsed.salt}$${encoded}`;
}

/** The encoded hash's length for `$5$` (43) and `$6$` (86). */
export function shaCryptHashLength(id: "5" | "6"): number {
  return VARIANTS[id].encodedLength;
}

function hash(variant: Variant, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash(variant.algorithm);
  for (const part of parts) h.update(part);
  return new Uint8Array(h.digest());
}

/** Repeats `block` to fill `length` bytes (steps 16 and 20 of the specification). */
function fill(block: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += block.length) {
    out.set(block.subarray(0, Math.min(block.length, length - offset)), offset);
  }
  return out;
}

function digest(key: Uint8Array, salt: Uint8Array, rounds: number, variant: Variant): Uint8Array {
  const size = variant.size;
  // Steps 4-8: digest B.
  const b = hash(variant, key, salt, key);
  // Steps 1-3 and 9-12: digest A.
  const a = createHash(variant.algorithm);
  a.update(key);
  a.update(salt);
  let count = key.length;
  for (; count > size; count -= size) a.update(b);
  a.update(b.subarray(0, count));
  for (let bits = key.length; bits > 0; bits >>= 1) a.update((bits & 1) !== 0 ? b : key);
  let result = new Uint8Array(a.digest());
  // Steps 13-16: the P sequence.
  const dp = createHash(variant.algorithm);
  for (let i = 0; i < key.length; i++) dp.update(key);
  const p = fill(new Uint8Array(dp.digest()), key.length);
  // Steps 17-20: the S sequence.
  const ds = createHash(variant.algorithm);
  const saltRepeats = 16 + (result[0] ?? 0);
  for (let i = 0; i < saltRepeats; i++) ds.update(salt);
  const s = fill(new Uint8Array(ds.digest()), salt.length);
  // Step 21: the rounds.
  for (let round = 0; round < rounds; round++) {
    const c = createHash(variant.algorithm);
    c.update((round & 1) !== 0 ? p : result);
    if (round % 3 !== 0) c.update(s);
    if (round % 7 !== 0) c.update(p);
    c.update((round & 1) !== 0 ? result : p);
    result = new Uint8Array(c.digest());
  }
  return result;
}

/** Step 22: crypt's base-64 of the digest's bytes, in the specification's order. */
function encode(bytes: Uint8Array, variant: Variant): string {
  let out = "";
  const put = (b2: number, b1: number, b0: number, chars: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < chars; i++) {
      out += ITOA64[w & 0x3f];
      w >>>= 6;
    }
  };
  const at = (index: number) => bytes[index] ?? 0;
  if (variant.size === 64) {
    for (let i = 0; i < 21; i++) {
      const [x, y, z] = [i, i + 21, i + 42];
      if (i % 3 === 0) put(at(x), at(y), at(z), 4);
      else if (i % 3 === 1) put(at(y), at(z), at(x), 4);
      else put(at(z), at(x), at(y), 4);
    }
    put(0, 0, at(63), 2);
  } else {
    for (let i = 0; i < 10; i++) {
      const [x, y, z] = [i, i + 10, i + 20];
      if (i % 3 === 0) put(at(x), at(y), at(z), 4);
      else if (i % 3 === 1) put(at(z), at(x), at(y), 4);
      else put(at(y), at(z), at(x), 4);
    }
    put(0, at(31), at(30), 3);
  }
  return out;
}
