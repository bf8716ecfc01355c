/**
 * Builds SOCKS5 authentication from the command line: `-a ORDER` (`n` no
 * authentication, `p` username/password, in the server's order of
 * preference) and `-U FILE` (the user file; without it `p` checks the
 * host's accounts). The entry point passes the runtime's crypt(3) loader.
 *
 * The parts that live as long as the process (the hash workers, the host's
 * accounts, the login throttle) are started once by `startAuthentication`;
 * the user table belongs to the policy snapshot, so each snapshot gets its
 * methods from `negotiationFor` with the users of its own read of the file.
 *
 * @module
 */
import type { ConfigIssue } from "../config/config_issue.ts";
import type { UsersFile } from "../config/users_file.ts";
import type { NegotiationPolicy, Socks5Authenticator } from "../server/negotiate.ts";
import { NO_AUTHENTICATION } from "../server/negotiate.ts";
import { type HashChecker, HashWorkerPool, type HashWorkerPoolOptions } from "./hash_queue.ts";
import { HostAccountVerifier } from "./host_accounts.ts";
import { createPasswordAuthenticator } from "./password_authenticator.ts";
import { LoginThrottle, type ThrottleOptions } from "./throttle.ts";
import { UserFileVerifier } from "./user_file.ts";
import type { CryptFunction, PasswordVerifier } from "./verifier.ts";

/** One `-a` letter. */
export type AuthMethodName = "none" | "password";

/**
 * Parses `-a ORDER`: `n`, `p`, `np` or `pn` (srelay's letters). Throws
 * `RangeError` (a usage error) for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseAuthOrder("pn"), ["password", "none"]);
 * ```
 */
export function parseAuthOrder(value: string): AuthMethodName[] {
  const order: AuthMethodName[] = [];
  for (const letter of value) {
    const method = letter === "n" ? "none" : letter === "p" ? "password" : null;
    if (method === null) throw new RangeError(`-a takes n and p in order of preference (n, p, np, pn), not '${value}'`);
    if (order.includes(method)) throw new RangeError(`-a names ${letter} twice in '${value}'`);
    order.push(method);
  }
  if (order.length === 0) throw new RangeError("-a needs n, p, np or pn");
  return order;
}

/** Options of `startAuthentication`. */
export interface AuthStartOptions {
  /** From `parseAuthOrder`. */
  readonly order: readonly AuthMethodName[];
  /** True with `-U FILE`: passwords are checked against the user file, not the host's accounts. */
  readonly userFile: boolean;
  /** The runtime's crypt(3) loader (`loadDenoCrypt` or `loadBunCrypt`); called only for host accounts. */
  readonly loadCrypt: () => Promise<CryptFunction>;
  /** Paths of the host's account files (tests). */
  readonly hostAccounts?: { readonly passwdPath?: string; readonly shadowPath?: string };
  readonly hashWorkers?: HashWorkerPoolOptions;
  readonly throttle?: ThrottleOptions;
  /** Wait before a failed login is answered. Default 1000 ms. */
  readonly failureDelayMs?: number;
}

/** The long-lived parts of authentication, shared by every policy snapshot. */
export interface AuthBackend {
  readonly order: readonly AuthMethodName[];
  /** The hash workers that check user-file passwords (`-U`), or null. */
  readonly hashes: HashChecker | null;
  /** The host's accounts (`-a p` without `-U`), or null. */
  readonly hostAccounts: PasswordVerifier | null;
  /** Failed logins per client address; kept across reloads so a SIGHUP does not forgive a guesser. */
  readonly throttle: LoginThrottle;
  readonly failureDelayMs?: number;
  /** Stops the hash workers. */
  close(): void;
}

/** A start-up failure of authentication, with the user file's issues when that is the cause. */
export class AuthSetupError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(message: string, issues: readonly ConfigIssue[] = []) {
    super(message);
    this.name = "AuthSetupError";
    this.issues = issues;
  }
}

/**
 * Starts what authentication needs for the whole run. Rejects with an
 * `AuthSetupError` when the hash workers cannot start or the host's accounts
 * cannot be used (no libcrypt, not root, no /etc/shadow): never a server that
 * silently accepts or refuses everyone.
 */
export async function startAuthentication(options: AuthStartOptions): Promise<AuthBackend> {
  let hashes: HashWorkerPool | null = null;
  let hostAccounts: PasswordVerifier | null = null;
  if (options.order.includes("password")) {
    try {
      if (options.userFile) hashes = await HashWorkerPool.start(options.hashWorkers);
      else hostAccounts = await HostAccountVerifier.open({ crypt: await options.loadCrypt(), ...options.hostAccounts });
    } catch (error) {
      throw new AuthSetupError(error instanceof Error ? error.message : String(error));
    }
  }
  return {
    order: options.order,
    hashes,
    hostAccounts,
    throttle: new LoginThrottle(options.throttle),
    ...(options.failureDelayMs === undefined ? {} : { failureDelayMs: options.failureDelayMs }),
    close: () => hashes?.close(),
  };
}

/**
 * The methods of one policy snapshot, in `-a` order: `users` is this
 * snapshot's read of the `-U` file (null for the host's accounts or `-a n`).
 * SOCKS4 is served only when `n` is in the order: it cannot carry a password.
 */
export function negotiationFor(
  backend: AuthBackend,
  users: { readonly path: string; readonly parsed: UsersFile } | null,
): NegotiationPolicy {
  const socks5: Socks5Authenticator[] = backend.order.map((method) => {
    if (method === "none") return NO_AUTHENTICATION;
    const verifier = users !== null && backend.hashes !== null
      ? new UserFileVerifier(users.path, users.parsed, backend.hashes)
      : backend.hostAccounts;
    if (verifier === null) throw new AuthSetupError("-a p needs the user file (-U) or the host's accounts");
    return createPasswordAuthenticator({
      verifier,
      throttle: backend.throttle,
      ...(backend.failureDelayMs === undefined ? {} : { failureDelayMs: backend.failureDelayMs }),
    });
  });
  return { socks5, socks4: backend.order.includes("none") };
}
