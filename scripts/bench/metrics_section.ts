/**
 * The metrics section of the benchmark: the connection rate and bulk
 * throughput of the compiled srelay with `--metrics 127.0.0.1:0`, beside the
 * same binary without it. With metrics on, every finished session builds its
 * record and updates the counters and histograms once; nothing is counted
 * per chunk, so bulk should not move at all and the connection rate only by
 * the per-session update.
 *
 * The two servers are measured in pairs, one right after the other (which
 * goes first alternates): 1 and 50 concurrent clients for the rate, 1 and 8
 * streams for bulk. The figures are medians over all pairs, each ratio the
 * median of the pairs' ratios. After the last pair the metrics server is
 * scraped once, and its session count must cover every connection the load
 * generator made through it.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { ServerMetrics } from "../../src/metrics/server_metrics.ts";
import type { SessionRecord } from "../../src/server/account.ts";
import { type Child, sleep, stopChild } from "./children.ts";
import { median, METRICS_FIGURES, type SectionResult } from "./figures.ts";
import { bulk, type Loadgen, rate, type TargetServer } from "./loadgen.ts";
import { type ServerContext, startSrelay } from "./servers.ts";

/** Sizes and durations of the section. */
export interface MetricsSettings {
  readonly rounds: number;
  /** Pairs of measurements (without, with metrics) per round. */
  readonly pairs: number;
  readonly rateSeconds: number;
  readonly concurrency: number;
  /** Bytes each way of each bulk measurement (split over its streams). */
  readonly bulkBytes: number;
}

const MIB = 1024 * 1024;

function round(key: string, value: number): number {
  if (key.endsWith("ratio")) return Math.round(value * 1000) / 1000;
  if (key.endsWith("pct")) return Math.round(value * 10_000) / 10_000;
  return Math.round(value * 100) / 100;
}

/**
 * Nanoseconds one finished session's metric update takes
 * (`ServerMetrics.record`), timed in this process over `count` records that
 * cycle through the usual outcomes; the median of 5 runs.
 */
export function recordNanoseconds(count = 200_000): number {
  const base: SessionRecord = {
    id: 1,
    client: { host: "127.0.0.1", port: 40000, family: 4 },
    version: "5",
    command: "connect",
    target: "127.0.0.1:80",
    user: "",
    route: "direct",
    bytesUp: 517,
    bytesDown: 5120,
    seconds: 0.01,
    outcome: "done",
    authMethod: "none",
    handshakeSeconds: 0.0004,
    connectSeconds: 0.0003,
  };
  const records: SessionRecord[] = [
    base,
    { ...base, bytesUp: 10, bytesDown: 0, outcome: "idle_timeout" },
    { ...base, outcome: "failed", reason: "connection_refused", bytesDown: 0 },
    { ...base, route: "relay=127.0.0.1:1080" },
  ];
  const metrics = new ServerMetrics(null, { residentBytes: () => 0, descriptors: () => null });
  const runs: number[] = [];
  for (let run = 0; run < 5; run++) {
    const started = performance.now();
    for (let i = 0; i < count; i++) metrics.record(records[i & 3]!);
    runs.push(((performance.now() - started) * 1e6) / count);
  }
  return median(runs) ?? 0;
}

/** Reads `srelay_sessions_total` (all series summed) from the metrics endpoint at `base`. */
async function scrapedSessions(base: string): Promise<number> {
  const response = await fetch(`${base}/metrics`);
  const text = await response.text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("srelay_sessions_total{")) total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

/** Measures the metrics figures with the compiled binary `context.binary`. */
export async function measureMetrics(
  loadgen: Loadgen,
  target: TargetServer,
  context: ServerContext,
  settings: MetricsSettings,
  progress: (message: string) => void,
): Promise<SectionResult> {
  const label = "srelay binary";
  const pairs = settings.rounds * settings.pairs;
  const setup = [
    "with metrics: `--metrics 127.0.0.1:0` (nothing scrapes it during the measurements; it is scraped once at the end)",
    "without: the same binary without it; both log as in the main benchmark",
    `${pairs} pairs of measurements, each measuring both servers in turn (which goes first alternates): ${settings.rateSeconds} s with 1 client and ${settings.rateSeconds} s with ${settings.concurrency}, then ${
      settings.bulkBytes / MIB
    } MiB each way over 1 stream and over 8`,
  ];
  const samples: Record<string, number[]> = {};
  const notes: string[] = [];
  const add = (key: string, value: number) => (samples[key] ??= []).push(value);
  if (!existsSync(context.binary)) {
    return { server: label, setup, figures: {}, samples, skipped: `${context.binary} does not exist`, notes };
  }
  const recordNs = recordNanoseconds();
  add("record_ns", recordNs);
  const children: Child[] = [];
  let connectionsThroughMetrics = 0;
  try {
    const plain = await startSrelay(context, "srelay-metrics-plain", `${label}, no metrics`, [context.binary]);
    children.push(plain.child);
    const metered = await startSrelay(context, "srelay-metrics", `${label}, --metrics`, [context.binary], [
      "--metrics",
      "127.0.0.1:0",
    ]);
    children.push(metered.child);
    await sleep(300);
    const base = /metrics on (http:\/\/\S+)\/metrics/.exec(readFileSync(metered.child.logFile, "utf8"))?.[1];
    if (base === undefined) throw new Error("the --metrics server did not print its metrics address");
    progress(`started ${label} without metrics on ${plain.address} and with them on ${metered.address} (${base})`);
    for (const server of [plain, metered]) await rate(loadgen, server.address, target.address, 1, 0.2, 5000);
    for (let pair = 0; pair < pairs; pair++) {
      const order = pair % 2 === 0 ? [["plain", plain], ["metrics", metered]] as const : [
        ["metrics", metered],
        ["plain", plain],
      ] as const;
      const taken: Record<string, number> = {};
      for (const [name, server] of order) {
        await sleep(300);
        for (const [concurrency, key] of [[1, "seq"], [settings.concurrency, "50"]] as const) {
          const result = await rate(
            loadgen,
            server.address,
            target.address,
            concurrency,
            settings.rateSeconds,
            200_000,
          );
          if (result.errors > 0) {
            notes.push(`pair ${pair + 1}, ${name}: ${result.errors} failed connections with ${concurrency} client(s)`);
          }
          if (name === "metrics") connectionsThroughMetrics += result.connections;
          taken[`conn_${key}_${name}_per_s`] = result.connections / result.seconds;
        }
        for (const streams of [1, 8] as const) {
          const result = await bulk(loadgen, server.address, target.address, streams, settings.bulkBytes);
          if (result.failed_streams > 0) {
            throw new Error(`${name}: ${result.failed_streams} of ${streams} bulk streams did not deliver every byte`);
          }
          if (name === "metrics") connectionsThroughMetrics += streams;
          taken[`bulk_${streams}_${name}_mib_s`] = settings.bulkBytes / MIB / result.seconds;
        }
      }
      for (const [key, value] of Object.entries(taken)) add(key, value);
      for (const key of ["conn_seq", "conn_50"]) {
        add(`${key}_ratio`, taken[`${key}_metrics_per_s`]! / taken[`${key}_plain_per_s`]!);
      }
      for (const key of ["bulk_1", "bulk_8"]) {
        add(`${key}_ratio`, taken[`${key}_metrics_mib_s`]! / taken[`${key}_plain_mib_s`]!);
      }
      // The update's share of the time one sequential connection takes without metrics.
      add("record_share_pct", (recordNs * taken.conn_seq_plain_per_s!) / 1e7);
      progress(
        `metrics pair ${pair + 1}/${pairs}: ${taken.conn_seq_plain_per_s?.toFixed(0)} vs ${
          taken.conn_seq_metrics_per_s?.toFixed(0)
        } /s sequential, ${taken.conn_50_plain_per_s?.toFixed(0)} vs ${
          taken.conn_50_metrics_per_s?.toFixed(0)
        } /s with ${settings.concurrency}, bulk ${taken.bulk_1_plain_mib_s?.toFixed(0)} vs ${
          taken.bulk_1_metrics_mib_s?.toFixed(0)
        } MiB/s (1 stream), ${taken.bulk_8_plain_mib_s?.toFixed(0)} vs ${taken.bulk_8_metrics_mib_s?.toFixed(0)} (8)`,
      );
    }
    await sleep(300);
    const counted = await scrapedSessions(base);
    // The warm-up rate run adds a few sessions of its own.
    if (counted < connectionsThroughMetrics) {
      notes.push(`the scrape counted ${counted} sessions, fewer than the ${connectionsThroughMetrics} measured`);
    } else {
      notes.push(
        `the final scrape counted ${counted} finished sessions (the measurements made ${connectionsThroughMetrics}, the warm-up the rest)`,
      );
    }
  } catch (error) {
    notes.push(`measurement failed: ${(error instanceof Error ? error.message : String(error)).split("\n")[0]}`);
    progress(`metrics section failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    for (const child of children) await stopChild(child);
  }
  const figures: Record<string, number | null> = {};
  for (const { key } of METRICS_FIGURES) {
    const value = median(samples[key] ?? []);
    figures[key] = value === null ? null : round(key, value);
  }
  for (const key of Object.keys(samples)) samples[key] = samples[key]!.map((v) => round(key, v));
  return { server: label, setup, figures, samples, notes };
}
