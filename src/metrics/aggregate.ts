/**
 * `--metrics` with `--workers N`: the supervisor serves the one scrape
 * endpoint and adds up its workers. Each worker serves its metrics privately
 * on a loopback port it reports to the supervisor; at every scrape the
 * supervisor fetches `/metrics.json` from each (concurrently, with a
 * timeout) and sums samples with equal labels: counters, histograms and
 * gauges alike (active sessions, memory and descriptors of the whole
 * server, the supervisor's own process included).
 *
 * Counters stay monotonic when a worker is restarted: the last figures read
 * from the worker that died are kept and added to every later scrape
 * (what it counted after that last read is lost). A worker that does not
 * answer in time is represented by its last figures.
 *
 * @module
 */
import { FAMILIES_PATH } from "./http_endpoint.ts";
import { mergeFamilies, type MetricFamily } from "./registry.ts";

/** Fetches one worker's families from `host:port`. */
export type FamiliesFetcher = (endpoint: string, timeoutMs: number) => Promise<MetricFamily[]>;

/** Fetches `http://ENDPOINT/metrics.json` with the global `fetch`. */
export const fetchFamilies: FamiliesFetcher = async (endpoint, timeoutMs) => {
  const response = await fetch(`http://${endpoint}${FAMILIES_PATH}`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`${endpoint} answered ${response.status}`);
  const families: unknown = await response.json();
  if (!Array.isArray(families)) throw new Error(`${endpoint} did not send a list of metrics`);
  return families as MetricFamily[];
};

/** Keeps only what must not go back down: counters and histograms. */
function cumulative(families: readonly MetricFamily[]): MetricFamily[] {
  return families.filter((family) => family.type !== "gauge");
}

/** Adds up the supervisor's own metrics and every worker's. */
export class WorkerAggregator {
  readonly #own: () => readonly MetricFamily[];
  readonly #endpoints: () => ReadonlyMap<number, string>;
  readonly #fetch: FamiliesFetcher;
  readonly #timeoutMs: number;
  /** The last figures read from each worker, with the endpoint they came from. */
  readonly #last = new Map<number, { readonly endpoint: string; readonly families: MetricFamily[] }>();
  /** Counters and histograms of workers that were replaced, summed. */
  #retired: MetricFamily[] = [];

  /**
   * `own`: the supervisor's metrics (the metric set without sessions, and
   * its process figures); `endpoints`: the workers' private endpoints by
   * worker number, as they are now.
   */
  constructor(
    own: () => readonly MetricFamily[],
    endpoints: () => ReadonlyMap<number, string>,
    options: { readonly fetch?: FamiliesFetcher; readonly timeoutMs?: number } = {},
  ) {
    this.#own = own;
    this.#endpoints = endpoints;
    this.#fetch = options.fetch ?? fetchFamilies;
    this.#timeoutMs = options.timeoutMs ?? 2000;
  }

  /** The whole server's metrics, read now. */
  async families(): Promise<MetricFamily[]> {
    const current = this.#endpoints();
    for (const [number, last] of this.#last) {
      if (current.get(number) === last.endpoint) continue;
      this.#retired = mergeFamilies([this.#retired, cumulative(last.families)]);
      this.#last.delete(number);
    }
    let answered = 0;
    const read = await Promise.all([...current].map(async ([number, endpoint]) => {
      try {
        const families = await this.#fetch(endpoint, this.#timeoutMs);
        this.#last.set(number, { endpoint, families });
        answered++;
        return families;
      } catch {
        const last = this.#last.get(number);
        return last?.endpoint === endpoint ? cumulative(last.families) : [];
      }
    }));
    const workers: MetricFamily = {
      name: "srelay_workers",
      help: "Workers whose metrics this scrape read (--workers); the others are counted from their last figures.",
      type: "gauge",
      labelNames: [],
      samples: [{ labels: [], value: answered }],
    };
    return [...mergeFamilies([this.#own(), this.#retired, ...read]), workers];
  }
}
