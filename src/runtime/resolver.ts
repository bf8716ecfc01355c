/**
 * Host name resolution for outbound connections.
 *
 * Uses `node:dns/promises` `lookup` (getaddrinfo, so /etc/hosts and
 * nsswitch apply and `localhost` works) on Deno, Bun and Node alike, and adds
 * what a relay needs on top (srelay-reference §3 item 14): a timeout, so one
 * slow name cannot stall a session for the resolver's own minutes (a name
 * with no answer in time fails like one the system resolver gave up on,
 * EAI_AGAIN: `not_found`, so the client gets REP 04 whichever timer ran out
 * first); in-flight
 * coalescing, so a burst of requests for one name costs one lookup; and a
 * small TTL cache. Failures are not cached.
 *
 * @module
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import { NetError } from "./types.ts";

/** Resolves host names to numeric addresses. */
export interface Resolver {
  /**
   * Returns every address of `name` (IPv6 and IPv4, in the system's order,
   * without duplicates). A numeric address is returned as is. Throws
   * `NetError` "not_found" when the name does not resolve, also when the
   * lookup gets no answer in time ("no answer within N ms"), and "aborted"
   * when `signal` aborts.
   */
  resolve(name: string, signal?: AbortSignal): Promise<string[]>;
}

/** The system lookup, injectable for tests. */
export type LookupFunction = (
  name: string,
) => Promise<ReadonlyArray<{ readonly address: string; readonly family: number }>>;

/** Options for `createResolver`. */
export interface ResolverOptions {
  /** Longest wait for one lookup, in milliseconds (default 10000). */
  readonly timeoutMs?: number;
  /** How long a successful answer is reused, in milliseconds (default 30000; 0 disables the cache). */
  readonly cacheTtlMs?: number;
  /** Most names cached at once; the oldest entry is evicted first (default 1000). */
  readonly maxEntries?: number;
  /** The lookup to use (default `node:dns/promises` `lookup` with `all` and `verbatim`). */
  readonly lookup?: LookupFunction;
  /** Clock in milliseconds, injectable for tests (default `Date.now`). */
  readonly now?: () => number;
}

interface CacheEntry {
  readonly addresses: readonly string[];
  readonly expires: number;
}

/** Creates a resolver with a timeout, in-flight coalescing and a TTL cache. */
export function createResolver(options: ResolverOptions = {}): Resolver {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const cacheTtlMs = options.cacheTtlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 1000;
  const lookup = options.lookup ?? systemLookup;
  const now = options.now ?? Date.now;
  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<readonly string[]>>();

  function remember(key: string, addresses: readonly string[]): void {
    if (cacheTtlMs <= 0 || maxEntries <= 0) return;
    cache.delete(key);
    while (cache.size >= maxEntries) {
      const oldest = cache.keys().next();
      if (oldest.done) break;
      cache.delete(oldest.value);
    }
    cache.set(key, { addresses, expires: now() + cacheTtlMs });
  }

  function start(name: string, key: string): Promise<readonly string[]> {
    const pending = withTimeout(lookup(name), name, timeoutMs).then(
      (records) => {
        const addresses = [...new Set(records.map((record) => record.address))];
        if (addresses.length === 0) {
          throw new NetError("not_found", `Cannot resolve ${name}: no addresses`);
        }
        remember(key, addresses);
        return addresses;
      },
      (error: unknown) => {
        throw lookupError(name, error);
      },
    ).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
    return pending;
  }

  return {
    resolve(name, signal) {
      if (signal?.aborted) return Promise.reject(abortError(name, signal));
      if (isIP(name) !== 0) return Promise.resolve([name]);
      const key = name.toLowerCase();
      const cached = cache.get(key);
      if (cached !== undefined) {
        if (cached.expires > now()) return Promise.resolve([...cached.addresses]);
        cache.delete(key);
      }
      const pending = inFlight.get(key) ?? start(name, key);
      return untilAborted(pending, name, signal).then((addresses) => [...addresses]);
    },
  };
}

function systemLookup(
  name: string,
): Promise<ReadonlyArray<{ readonly address: string; readonly family: number }>> {
  return dnsLookup(name, { all: true, verbatim: true });
}

function withTimeout<T>(promise: Promise<T>, name: string, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new NetError("not_found", `Cannot resolve ${name}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function untilAborted<T>(promise: Promise<T>, name: string, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(name, signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function abortError(name: string, signal: AbortSignal): NetError {
  return signal.reason instanceof NetError
    ? signal.reason
    : new NetError("aborted", `Cannot resolve ${name}: aborted`, { cause: signal.reason });
}

function lookupError(name: string, error: unknown): NetError {
  if (error instanceof NetError) return error;
  const code = typeof error === "object" && error !== null && "code" in error
    ? String((error as { code: unknown }).code)
    : "";
  const detail = code === "ENOTFOUND" || code === "ENODATA" || code === "EAI_NONAME"
    ? "no such host"
    : code === "EAI_AGAIN" || code === "ETIMEOUT"
    ? "temporary resolver failure"
    : error instanceof Error
    ? error.message
    : String(error);
  return new NetError(
    "not_found",
    `Cannot resolve ${name}: ${detail}${code !== "" ? ` (${code})` : ""}`,
    { cause: error },
  );
}
