/**
 * Failed logins counted per client address, so that password guessing
 * stays slow without letting one client lock out others.
 *
 * - Each client address (an IPv4 address, or the /64 an IPv6 address is
 *   in, since one host usually has a whole /64) has a window of
 *   `windowMs` that starts with its first failure.
 * - A login that is still being checked counts as a failure until it ends,
 *   so opening many connections at once gains nothing.
 * - Once failures reach `maxFailures` within the window, that address's
 *   logins are refused at once for `blockMs`, without a password check.
 * - Only that address is affected. Successes do not reset the count
 *   (otherwise one valid account would let its owner guess others freely).
 * - Memory is bounded: at most `maxEntries` addresses are remembered; the
 *   one touched longest ago is forgotten first.
 *
 * @module
 */
import { formatIp, parseIp, toCidr, unmapIPv4 } from "../net/address.ts";

/** Options of `LoginThrottle`. */
export interface ThrottleOptions {
  /** Failures within the window that block the address. Default 5. */
  readonly maxFailures?: number;
  /** The window, from the first failure. Default 60 s. */
  readonly windowMs?: number;
  /** How long a blocked address is refused. Default 300 s. */
  readonly blockMs?: number;
  /** Addresses remembered at most. Default 10000. */
  readonly maxEntries?: number;
  /** The clock (tests set it). */
  readonly now?: () => number;
}

/** One login in progress: end it with exactly one of its methods. */
export interface ThrottleTicket {
  /** The password was right. */
  succeed(): void;
  /** The login failed (unknown user, wrong password, locked, expired). */
  fail(): void;
  /** The login was not decided (the check was busy or unavailable): counts for nothing. */
  cancel(): void;
}

/** The throttle's answer when a login starts. */
export type ThrottleDecision =
  | { readonly allowed: true; readonly ticket: ThrottleTicket }
  | {
    readonly allowed: false;
    /** The address key (`throttleKey`). */
    readonly key: string;
    /** `blocked`: too many failures; `pending`: too many logins of this address are being checked. */
    readonly reason: "blocked" | "pending";
    readonly retryAfterMs: number;
  };

interface Entry {
  windowStart: number;
  failures: number;
  inFlight: number;
  blockedUntil: number;
  /** Logins waiting for one of this address's checks to end (`turn`). */
  waiters: Array<() => void>;
  /** When a refusal of this address was last logged at warning level. */
  refusalLoggedAt: number;
}

/** Least time between two warning lines about one throttled address. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * The key an address is counted under: the IPv4 address (IPv4-mapped IPv6
 * included), or the IPv6 /64; anything unparsable as itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(throttleKey("::ffff:192.0.2.7"), "192.0.2.7");
 * assert.equal(throttleKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
 * ```
 */
export function throttleKey(host: string): string {
  const parsed = parseIp(host);
  if (parsed === null) return host;
  const address = unmapIPv4({ family: parsed.family, value: parsed.value });
  if (address.family === 4) return formatIp(address);
  return `${formatIp(toCidr(address, 64).network)}/64`;
}

/** Per-address failure counting for password logins. */
export class LoginThrottle {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly blockMs: number;
  readonly maxEntries: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(options: ThrottleOptions = {}) {
    this.maxFailures = options.maxFailures ?? 5;
    this.windowMs = options.windowMs ?? 60_000;
    this.blockMs = options.blockMs ?? 300_000;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.#now = options.now ?? Date.now;
    if (this.maxFailures < 1 || this.maxEntries < 1) {
      throw new RangeError("LoginThrottle needs maxFailures and maxEntries of at least 1");
    }
  }

  /** Addresses remembered now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Starts a login from `host` (a numeric address), or refuses it. */
  begin(host: string): ThrottleDecision {
    const key = throttleKey(host);
    const now = this.#now();
    const entry = this.#touch(key, now);
    if (entry.blockedUntil > now) {
      return { allowed: false, key, reason: "blocked", retryAfterMs: entry.blockedUntil - now };
    }
    if (entry.failures + entry.inFlight >= this.maxFailures) {
      // Failures alone would have blocked: logins still being checked fill the rest.
      return { allowed: false, key, reason: "pending", retryAfterMs: 1000 };
    }
    entry.inFlight++;
    let ended = false;
    const end = (failed: boolean) => {
      if (ended) return;
      ended = true;
      entry.inFlight--;
      const waiters = entry.waiters;
      entry.waiters = [];
      for (const wake of waiters) wake();
      if (!failed) return;
      const at = this.#now();
      if (entry.failures === 0 || at - entry.windowStart >= this.windowMs) {
        entry.windowStart = at;
        entry.failures = 0;
      }
      entry.failures++;
      if (entry.failures >= this.maxFailures) entry.blockedUntil = at + this.blockMs;
    };
    return {
      allowed: true,
      ticket: { succeed: () => end(false), fail: () => end(true), cancel: () => end(false) },
    };
  }

  /**
   * Resolves once one of `host`'s logins being checked ends (or at once when
   * none is), or when `signal` aborts: a login that `begin` answered with
   * `pending` waits for its turn instead of being refused, so a browser's
   * parallel connections with the right password all get in.
   */
  turn(host: string, signal: AbortSignal): Promise<void> {
    const entry = this.#entries.get(throttleKey(host));
    if (entry === undefined || entry.inFlight === 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        resolve();
      };
      entry.waiters.push(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * True when a refusal of `key` should be logged as a warning: at most once
   * every 10 s per address, so a blocked address that keeps retrying does
   * not flood the log.
   */
  noteRefusal(key: string): boolean {
    const entry = this.#entries.get(key);
    const now = this.#now();
    if (entry === undefined) return true;
    if (now - entry.refusalLoggedAt < REFUSAL_LOG_INTERVAL_MS && entry.refusalLoggedAt !== 0) return false;
    entry.refusalLoggedAt = now;
    return true;
  }

  /** True when `host`'s logins are refused now. */
  blocked(host: string): boolean {
    const entry = this.#entries.get(throttleKey(host));
    return entry !== undefined && entry.blockedUntil > this.#now();
  }

  /** The entry for `key` (an ended block or window cleared), moved to the newest end; evicts the oldest. */
  #touch(key: string, now: number): Entry {
    let entry = this.#entries.get(key);
    if (entry !== undefined) {
      this.#entries.delete(key);
      const blockEnded = entry.blockedUntil !== 0 && entry.blockedUntil <= now;
      const windowEnded = entry.blockedUntil === 0 && now - entry.windowStart >= this.windowMs;
      if (blockEnded || windowEnded) {
        entry.failures = 0;
        entry.blockedUntil = 0;
      }
    } else {
      entry = { windowStart: now, failures: 0, inFlight: 0, blockedUntil: 0, waiters: [], refusalLoggedAt: 0 };
    }
    this.#entries.set(key, entry);
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    return entry;
  }
}
