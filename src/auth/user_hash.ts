/**
 * The hashes a `-U` user file may hold, checked in TypeScript so they work
 * on every OS and inside the compiled binary:
 *
 * - bcrypt `$2a$`, `$2b$`, `$2y$` (`htpasswd -B`), through bcryptjs;
 * - SHA-crypt `$5$`, `$6$` (`openssl passwd -5/-6`, `mkpasswd`), through `sha_crypt.ts`.
 *
 * `classifyUserHash` validates a hash when the file is loaded (so a bad line
 * is a `file:line` error at start-up, never a failed login later),
 * `checkUserHash` verifies a password (synchronous and CPU-bound: the hash
 * worker calls it), `dummyUserHash` makes a hash of the same scheme and cost
 * with a random salt, which unknown users are checked against so that they
 * take as long as a wrong password.
 *
 * @module
 */
import { compareSync, hashSync } from "bcryptjs";
import { constantTimeEqual } from "./verifier.ts";
import {
  parseShaCryptSetting,
  SHA_CRYPT_ROUNDS_MAX,
  SHA_CRYPT_ROUNDS_MIN,
  shaCrypt,
  shaCryptHashLength,
} from "./sha_crypt.ts";

/** The schemes a user file may use. */
export type UserHashScheme = "bcrypt" | "sha256-crypt" | "sha512-crypt";

/** What `classifyUserHash` found. */
export type UserHashClass =
  | {
    readonly ok: true;
    readonly scheme: UserHashScheme;
    /** bcrypt's cost (log2 of the rounds) or SHA-crypt's rounds. */
    readonly cost: number;
    /** Set when the hash is valid but slow enough to mention. */
    readonly warning?: string;
  }
  | { readonly ok: false; readonly message: string };

/** bcrypt costs above this are refused: one login would take minutes to hours. */
export const BCRYPT_COST_MAX = 20;
/** bcrypt costs above this get a warning (about a second of CPU per login in JavaScript). */
export const BCRYPT_COST_SLOW = 14;
/** SHA-crypt rounds above this are refused. */
export const SHA_CRYPT_ROUNDS_REFUSED = 50_000_000;
/** SHA-crypt rounds above this get a warning. */
export const SHA_CRYPT_ROUNDS_SLOW = 1_000_000;

const BCRYPT = /^\$2[aby]\$([0-9]{2})\$[./A-Za-z0-9]{53}$/;
const SHA_CRYPT = /^\$([56])\$(?:rounds=([0-9]{1,10})\$)?([^$:\s]{0,16})\$([./A-Za-z0-9]+)$/;
const CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUPPORTED = "use bcrypt ($2y$, `htpasswd -nB USER`) or SHA-crypt ($6$, `openssl passwd -6`)";

/** Schemes people may try, named in the error message. */
const KNOWN_UNSUPPORTED: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\$1\$/, "$1$ (MD5-crypt)"],
  [/^\$apr1\$/, "$apr1$ (Apache MD5, htpasswd's default: use htpasswd -B)"],
  [/^\$y\$/, "$y$ (yescrypt)"],
  [/^\$7\$/, "$7$ (scrypt)"],
  [/^\$gy\$/, "$gy$ (gost-yescrypt)"],
  [/^\$2x\$/, "$2x$ (bcrypt with the 2011 sign-extension bug)"],
  [/^\$2\$/, "$2$ (the original bcrypt)"],
  [/^\$argon2/, "argon2"],
  [/^\$(sha1|md5|3|nt)\$/, "a legacy crypt scheme"],
  [/^\{SHA\}/, "{SHA} (htpasswd -s)"],
  [/^\{SSHA/, "{SSHA}"],
];

/**
 * Validates one hash from a user file. Error messages never repeat the hash
 * (it might be a password typed in by mistake).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const hash = "$2y$05$abcdefghijklmnopqrstuuZFBUbfXoM8LFiPx8LYlO/sXZB/Cwk3K";
 * assert.deepEqual(classifyUserHash(hash), { ok: true, scheme: "bcrypt", cost: 5 });
 * assert.equal(classifyUserHash("secret").ok, false);
 * ```
 */
export function classifyUserHash(hash: string): UserHashClass {
  if (hash === "") return { ok: false, message: `empty password hash: ${SUPPORTED}` };
  if (hash.startsWith("$2")) {
    const match = BCRYPT.exec(hash);
    if (match === null) {
      for (const [pattern, name] of KNOWN_UNSUPPORTED) {
        if (pattern.test(hash)) return { ok: false, message: `unsupported hash scheme ${name}: ${SUPPORTED}` };
      }
      return { ok: false, message: "malformed bcrypt hash (expected $2y$NN$ and 53 characters of ./0-9A-Za-z)" };
    }
    const cost = Number(match[1]);
    if (cost < 4) return { ok: false, message: `bcrypt cost ${cost} is below the minimum 4` };
    if (cost > BCRYPT_COST_MAX) {
      return { ok: false, message: `bcrypt cost ${cost} is too slow to verify (at most ${BCRYPT_COST_MAX})` };
    }
    if (cost > BCRYPT_COST_SLOW) {
      return { ok: true, scheme: "bcrypt", cost, warning: `bcrypt cost ${cost} takes seconds of CPU per login` };
    }
    return { ok: true, scheme: "bcrypt", cost };
  }
  if (/^\$[56]\$/.test(hash)) {
    const match = SHA_CRYPT.exec(hash);
    const id = hash[1] as "5" | "6";
    const name = id === "5" ? "SHA-256-crypt" : "SHA-512-crypt";
    if (match === null) {
      return { ok: false, message: `malformed ${name} hash (expected $${id}$[rounds=N$]SALT$HASH)` };
    }
    const encoded = match[4] ?? "";
    if (encoded.length !== shaCryptHashLength(id)) {
      return {
        ok: false,
        message: `malformed ${name} hash (the hash part has ${encoded.length} characters, not ${
          shaCryptHashLength(id)
        })`,
      };
    }
    const rounds = match[2] === undefined ? 5000 : Number(match[2]);
    if (rounds < SHA_CRYPT_ROUNDS_MIN || rounds > SHA_CRYPT_ROUNDS_MAX) {
      return {
        ok: false,
        message:
          `malformed ${name} hash (rounds=${rounds} is outside ${SHA_CRYPT_ROUNDS_MIN}..${SHA_CRYPT_ROUNDS_MAX})`,
      };
    }
    if (rounds > SHA_CRYPT_ROUNDS_REFUSED) {
      return {
        ok: false,
        message: `${name} rounds=${rounds} is too slow to verify (at most ${SHA_CRYPT_ROUNDS_REFUSED})`,
      };
    }
    const scheme = id === "5" ? "sha256-crypt" : "sha512-crypt";
    if (rounds > SHA_CRYPT_ROUNDS_SLOW) {
      return { ok: true, scheme, cost: rounds, warning: `${name} rounds=${rounds} takes seconds of CPU per login` };
    }
    return { ok: true, scheme, cost: rounds };
  }
  for (const [pattern, name] of KNOWN_UNSUPPORTED) {
    if (pattern.test(hash)) return { ok: false, message: `unsupported hash scheme ${name}: ${SUPPORTED}` };
  }
  const id = /^\$([^$]{1,16})\$/.exec(hash);
  if (id !== null) return { ok: false, message: `unknown hash scheme $${id[1]}$: ${SUPPORTED}` };
  return { ok: false, message: `not a password hash (plain text?): ${SUPPORTED}` };
}

/**
 * True when `password` matches `hash` (one `classifyUserHash` accepted).
 * Throws `Error` for a hash of another scheme. CPU-bound: run it in the hash
 * worker.
 */
export function checkUserHash(password: string, hash: string): boolean {
  if (hash.startsWith("$2")) return compareSync(password, hash);
  if (hash.startsWith("$5$") || hash.startsWith("$6$")) {
    const computed = shaCrypt(password, hash);
    return computed !== null && constantTimeEqual(computed, hash);
  }
  throw new Error("Cannot check password: the hash is neither bcrypt nor SHA-crypt");
}

/**
 * A hash of the same scheme and cost as `like` (a valid user-file hash) with
 * a random salt and a random digest: checking a password against it costs
 * as much as against `like` and never matches.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const dummy = dummyUserHash("$6$rounds=6000$abc$" + "x".repeat(86));
 * assert.match(dummy, /^\$6\$rounds=6000\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
 * ```
 */
export function dummyUserHash(like: string): string {
  if (like.startsWith("$2")) return `${like.slice(0, 7)}${randomCryptChars(53)}`;
  const parsed = parseShaCryptSetting(like);
  if (parsed === null) throw new Error("Cannot make a dummy hash: the hash is neither bcrypt nor SHA-crypt");
  const rounds = parsed.explicitRounds ? `rounds=${parsed.rounds}$` : "";
  return `$${parsed.id}$${rounds}${randomCryptChars(16)}$${randomCryptChars(shaCryptHashLength(parsed.id))}`;
}

/** The dummy for a file with no usable entry: bcrypt at the cost `srelay passwd` uses. */
export function defaultDummyUserHash(): string {
  return `$2b$${String(PASSWD_BCRYPT_COST).padStart(2, "0")}$${randomCryptChars(53)}`;
}

/** The bcrypt cost `srelay passwd` writes. */
export const PASSWD_BCRYPT_COST = 10;

/** A bcrypt hash of `password` at `cost` (for `srelay passwd`; CPU-bound). */
export function bcryptHash(password: string, cost: number = PASSWD_BCRYPT_COST): string {
  return hashSync(password, cost);
}

/** `count` random characters of crypt's base-64 alphabet. */
export function randomCryptChars(count: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(count));
  let out = "";
  for (const byte of bytes) out += CRYPT_ALPHABET[byte & 0x3f];
  return out;
}
