/**
 * `--max-per-client N`: at most N sessions at once per client address, an
 * admitter of the listener placed right after the PROXY protocol one, so it
 * counts the real client, not the load balancer.
 *
 * - The key is the client's address: IPv4 as it is (an IPv4-mapped IPv6
 *   address counts as its IPv4 address), IPv6 per full address (not per
 *   /64: one host may use many addresses of its /64, and a /64 may be
 *   shared by many hosts behind one router).
 * - A client over its limit is refused before any SOCKS byte
 *   (`over_client_limit`). Its log line is rate-limited per address: at
 *   most one warning a second, with the number refused since the last one;
 *   the others are logged at debug level.
 * - The slot is taken when the client is admitted and given back by the
 *   admission's `release()`, which the session calls when it ends, whatever
 *   ended it (`session.ts`); `admitClient` gives it back at once when a
 *   later admitter refuses the client or fails.
 * - Cost per connection: one Map read and one write, and a closure; with
 *   the option off (0) the admitter is not installed at all.
 *
 * With `--workers`, each worker counts its own sessions.
 *
 * @module
 */
import { normalizeHost } from "../net/address.ts";
import type { AdmitDecision, Admitter } from "./admit.ts";

/** The outcome of a client refused by `--max-per-client`. */
export const OVER_CLIENT_LIMIT_OUTCOME = "over_client_limit";

/** Least time between two warning lines about one address. */
const LOG_INTERVAL_MS = 1000;

/** Addresses whose last warning time is remembered at most (the oldest is forgotten first). */
const MAX_REMEMBERED = 4096;

/** When an address's refusal was last logged as a warning, and how many were refused since. */
interface Reported {
  at: number;
  refused: number;
}

/** The key a client address is counted under: IPv4 as it is, IPv6 in RFC 5952 form, IPv4-mapped as IPv4. */
export function clientKey(host: string): string {
  return host.includes(":") ? normalizeHost(host) : host;
}

/**
 * The admitter for `--max-per-client max` (max > 0); `now` is the clock of
 * the log rate limit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const admitter = clientLimitAdmitter(1);
 * const client = { address: { host: "192.0.2.7", port: 40000, family: 4 as const },
 *   local: { host: "192.0.2.1", port: 1080, family: 4 as const } };
 * const first = admitter.admit(client, null as never);
 * assert.ok(!("then" in first) && first.admitted);
 * const second = admitter.admit(client, null as never);
 * assert.ok(!("then" in second) && !second.admitted && second.outcome === "over_client_limit");
 * first.release?.();
 * const third = admitter.admit(client, null as never);
 * assert.ok(!("then" in third) && third.admitted);
 * ```
 */
export function clientLimitAdmitter(max: number, now: () => number = Date.now): Admitter {
  const active = new Map<string, number>();
  const reported = new Map<string, Reported>();

  const refuse = (key: string): AdmitDecision => {
    const time = now();
    let entry = reported.get(key);
    if (entry !== undefined && time - entry.at < LOG_INTERVAL_MS) {
      entry.refused++;
      return {
        admitted: false,
        outcome: OVER_CLIENT_LIMIT_OUTCOME,
        reason: `${max} sessions from ${key} already running (--max-per-client ${max})`,
        level: "debug",
      };
    }
    const refused = (entry?.refused ?? 0) + 1;
    if (entry === undefined) {
      entry = { at: time, refused: 0 };
      if (reported.size >= MAX_REMEMBERED) reported.delete(reported.keys().next().value as string);
    } else {
      reported.delete(key); // re-inserted at the newest end
      entry.at = time;
      entry.refused = 0;
    }
    reported.set(key, entry);
    return {
      admitted: false,
      outcome: OVER_CLIENT_LIMIT_OUTCOME,
      reason:
        `${max} sessions from ${key} already running (--max-per-client ${max}); ${refused} refused since the last such line`,
    };
  };

  return {
    admit(client) {
      // A peer whose address the runtime could not tell is already gone: nothing to count.
      if (client.address.host === "") return { admitted: true, client };
      const key = clientKey(client.address.host);
      const count = active.get(key) ?? 0;
      if (count >= max) return refuse(key);
      active.set(key, count + 1);
      let held = true;
      return {
        admitted: true,
        client,
        release() {
          if (!held) return;
          held = false;
          const left = (active.get(key) ?? 1) - 1;
          if (left <= 0) active.delete(key);
          else active.set(key, left);
        },
      };
    },
  };
}
