/**
 * Users from a `-U FILE` user file (`src/config/users_file.ts`), checked
 * through a `HashChecker` (the hash workers of `hash_queue.ts`).
 *
 * - The name must match a line exactly (a `Map` lookup).
 * - An unknown user, a locked entry, or a password that cannot be checked
 *   (it contains NUL) is still checked, against a dummy hash of the file's
 *   most common scheme and cost, so that it takes as long as a wrong
 *   password and the answer's timing does not tell which names exist.
 * - A verifier holds one read of the file: a SIGHUP builds a new policy
 *   snapshot, and with it a new verifier (`auth_setup.ts`).
 *
 * @module
 */
import { hasErrors, type UserEntry, type UsersFile } from "../config/users_file.ts";
import type { HashCheck, HashChecker } from "./hash_queue.ts";
import { defaultDummyUserHash, dummyUserHash } from "./user_hash.ts";
import { checkable, failure, type PasswordVerifier, type VerifyFailure, type VerifyResult } from "./verifier.ts";

/** The users in force and the dummy hash that goes with them. */
interface Table {
  readonly users: ReadonlyMap<string, UserEntry>;
  readonly dummy: string;
}

/**
 * A dummy hash for `users`: of the scheme and cost most entries use, so an
 * unknown user costs what a typical wrong password costs.
 */
export function dummyHashFor(users: ReadonlyMap<string, UserEntry>): string {
  const counts = new Map<string, { count: number; hash: string }>();
  for (const entry of users.values()) {
    if (entry.scheme === null) continue;
    const key = `${entry.scheme}:${entry.cost}`;
    const seen = counts.get(key);
    if (seen === undefined) counts.set(key, { count: 1, hash: entry.hash });
    else seen.count++;
  }
  let best: { count: number; hash: string } | undefined;
  for (const candidate of counts.values()) if (best === undefined || candidate.count > best.count) best = candidate;
  return best === undefined ? defaultDummyUserHash() : dummyUserHash(best.hash);
}

/** The `PasswordVerifier` of a `-U` user file. */
export class UserFileVerifier implements PasswordVerifier {
  /** The file's path. */
  readonly path: string;
  readonly #checker: HashChecker;
  readonly #table: Table;

  /** Builds a verifier from an already parsed file (it must have no errors). */
  constructor(path: string, parsed: UsersFile, checker: HashChecker) {
    if (hasErrors(parsed.issues)) throw new Error(`Cannot use user file ${path}: it has errors`);
    this.path = path;
    this.#checker = checker;
    this.#table = { users: parsed.users, dummy: dummyHashFor(parsed.users) };
  }

  /** Users in force. */
  get size(): number {
    return this.#table.users.size;
  }

  async verify(user: string, password: string): Promise<VerifyResult> {
    const table = this.#table;
    const entry = checkable(user) ? table.users.get(user) : undefined;
    if (entry === undefined || entry.locked || entry.scheme === null || !checkable(password)) {
      const reason: VerifyFailure = entry === undefined
        ? "unknown_user"
        : entry.locked || entry.scheme === null
        ? "locked"
        : "wrong_password";
      const dummy = await this.#checker.check(password, table.dummy);
      if (dummy === "busy") return failure("busy");
      return failure(reason, reason === "wrong_password" ? "the password contains NUL" : undefined);
    }
    return resultOf(await this.#checker.check(password, entry.hash), user);
  }
}

function resultOf(check: HashCheck, user: string): VerifyResult {
  switch (check) {
    case "match":
      return { ok: true, user };
    case "mismatch":
      return failure("wrong_password");
    case "busy":
      return failure("busy");
    case "error":
      return failure("unavailable", "the hash worker failed");
  }
}
