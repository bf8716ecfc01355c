/**
 * The interface every source of SOCKS5 users implements (the `-U` user file,
 * the host's accounts): given a user name and a password, say whether they
 * match, and if not, why. A bad password is an answer, never an exception.
 *
 * @module
 */

/** Why a login failed. Only the server's log sees it; the client always gets `01 01`. */
export type VerifyFailure =
  /** No such user (the password was still checked against a dummy hash). */
  | "unknown_user"
  /** The user exists and the password does not match. */
  | "wrong_password"
  /** The account cannot log in: a `!` or `*` hash, no hash, or no shadow entry. */
  | "locked"
  /** The account's expiry date has passed, or its password went past its inactive period. */
  | "expired"
  /** The user source failed (crypt(3) error, unreadable file, worker died). */
  | "unavailable"
  /** Too many verifications waiting already: refused at once rather than queued. */
  | "busy";

/** The answer of one verification. `detail` is for the log and never contains the password. */
export type VerifyResult =
  | { readonly ok: true; readonly user: string }
  | { readonly ok: false; readonly reason: VerifyFailure; readonly detail?: string };

/** A source of users that can check a password. */
export interface PasswordVerifier {
  /** Resolves with the verdict; rejects only on a programming error. */
  verify(user: string, password: string): Promise<VerifyResult>;
}

/**
 * crypt(3) of the host's libcrypt: `key` hashed with `setting` (a full hash
 * or its salt part), or `null` when libcrypt rejects the setting. Runs off
 * the event loop. Loaded by `src/runtime/crypt_deno.ts` or `crypt_bun.ts`.
 */
export type CryptFunction = (key: string, setting: string) => Promise<string | null>;

/** A failed verification, as a value. */
export function failure(reason: VerifyFailure, detail?: string): VerifyResult {
  return detail === undefined ? { ok: false, reason } : { ok: false, reason, detail };
}

/**
 * True when a user name or password can be checked at all: no NUL (crypt(3)
 * would stop there, so `pass\0junk` would pass as `pass`).
 */
export function checkable(text: string): boolean {
  return !text.includes("\0");
}

/**
 * Compares two strings in time that depends only on their lengths.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(constantTimeEqual("$6$a$b", "$6$a$b"), true);
 * assert.equal(constantTimeEqual("$6$a$b", "$6$a$c"), false);
 * ```
 */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const length = Math.max(a.length, b.length);
  for (let i = 0; i < length; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}
