/**
 * Reverse DNS for log lines (`-r`): getnameinfo (so /etc/hosts counts, as
 * in srelay), bounded in time, cached, never failing.
 *
 * @module
 */
import { lookupService } from "node:dns/promises";

const TIMEOUT_MS = 2000;
const MAX_ENTRIES = 1000;

/** Looks up the name of an address; resolves to null when there is none in time. */
export type ReverseLookup = (address: string) => Promise<string | null>;

/** Creates a reverse lookup with a 2 s limit and a small cache. */
export function createReverseLookup(): ReverseLookup {
  const cache = new Map<string, Promise<string | null>>();
  return (address) => {
    const cached = cache.get(address);
    if (cached !== undefined) return cached;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const answer = Promise.race([
      lookupService(address, 0).then(({ hostname }) => (hostname === address ? null : hostname), () => null),
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
    cache.set(address, answer);
    return answer;
  };
}
