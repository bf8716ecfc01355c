/**
 * The workers section of the benchmark: whether `--workers` scales the
 * connection rate with cores. The compiled binary runs twice at once, with
 * `--workers 1` and with `--workers N`, and the load generator opens
 * connections with 50 concurrent clients against each:
 *
 * - unpinned: every process may run on every CPU;
 * - pinned: the load generator and the target on the first half of the
 *   CPUs, the server (every process and thread) on the other half, and N is
 *   that half's size (at least 2). On a 2-CPU machine: load on CPU 0, and
 *   `--workers 2` against 1 both on CPU 1;
 * - load pinned: the load generator and the target on the first half, the
 *   server on every CPU (on a 2-CPU machine: whether a second worker gets
 *   anything from the CPU the load shares with it).
 *
 * The two servers are measured in pairs, one right after the other (which
 * goes first alternates); the figures are medians over the pairs, each ratio
 * the median of the pairs' ratios.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { type Child, sleep, stopChild } from "./children.ts";
import { median, type SectionResult, WORKERS_FIGURES } from "./figures.ts";
import { type Loadgen, rate, type TargetServer } from "./loadgen.ts";
import { canPin, pinTree } from "./proc.ts";
import { type RunningServer, type ServerContext, startSrelay } from "./servers.ts";

/** Sizes and durations of the section. */
export interface WorkersSettings {
  readonly rounds: number;
  /** Pairs of measurements (--workers 1, --workers N) per round. */
  readonly pairs: number;
  readonly rateSeconds: number;
  readonly concurrency: number;
}

/** CPUs `first` to `last` in taskset's list form. */
function cpuList(first: number, last: number): string {
  return first === last ? String(first) : `${first}-${last}`;
}

function round(key: string, value: number): number {
  return key.endsWith("ratio") ? Math.round(value * 1000) / 1000 : Math.round(value * 100) / 100;
}

/** Measures the workers figures with the compiled binary `context.binary`. */
export async function measureWorkers(
  loadgen: Loadgen,
  target: TargetServer,
  context: ServerContext,
  settings: WorkersSettings,
  progress: (message: string) => void,
): Promise<SectionResult> {
  const count = cpus().length;
  const half = Math.floor(count / 2);
  const allCpus = cpuList(0, count - 1);
  const loadCpus = cpuList(0, Math.max(0, half - 1));
  const serverCpus = cpuList(half, count - 1);
  const workers = Math.max(2, count - half);
  const label = "srelay binary";
  const pairs = settings.rounds * settings.pairs;
  const setup = [
    `--workers 1 against --workers N, N = ${workers}, both running at once; ${settings.concurrency} concurrent clients for ${settings.rateSeconds} s per measurement`,
    `unpinned: every process on any of CPUs ${allCpus}`,
    `pinned: the load generator and the target on CPU ${loadCpus}, the server's every process and thread on CPU ${serverCpus}`,
    `load pinned: the load generator and the target on CPU ${loadCpus}, the server on any of CPUs ${allCpus}`,
    `${pairs} pair(s) of measurements, each measuring both servers in turn, unpinned, pinned, then load pinned (which server goes first alternates)`,
  ];
  const samples: Record<string, number[]> = {};
  const notes: string[] = [];
  const add = (key: string, value: number) => (samples[key] ??= []).push(value);
  const skipped = !existsSync(context.binary)
    ? `${context.binary} does not exist`
    : count < 2
    ? "it needs at least 2 CPUs"
    : !canPin()
    ? "taskset (util-linux) is missing"
    : undefined;
  if (skipped !== undefined) return { server: label, setup, figures: {}, samples, skipped, notes };
  const children: Child[] = [];
  /** Where the server runs in each placement (undefined: unpinned, load included). */
  const placements = [["", undefined], ["_pinned", serverCpus], ["_loadpinned", allCpus]] as const;
  const measureOne = async (server: RunningServer, serverOn: string | undefined): Promise<number> => {
    const pinned = serverOn !== undefined;
    if (pinned) {
      pinTree(server.child.pid, serverOn);
      pinTree(target.child.pid, loadCpus);
    }
    try {
      const result = await rate(
        loadgen,
        server.address,
        target.address,
        settings.concurrency,
        settings.rateSeconds,
        200_000,
        undefined,
        undefined,
        pinned ? loadCpus : undefined,
      );
      if (result.errors > 0) notes.push(`${result.errors} failed connections (server on CPU ${serverOn ?? allCpus})`);
      return result.connections / result.seconds;
    } finally {
      if (pinned) {
        pinTree(server.child.pid, allCpus);
        pinTree(target.child.pid, allCpus);
      }
    }
  };
  try {
    const one = await startSrelay(context, "srelay-workers-1", `${label}, --workers 1`, [context.binary], [
      "--workers",
      "1",
    ]);
    children.push(one.child);
    const many = await startSrelay(context, `srelay-workers-${workers}`, `${label}, --workers ${workers}`, [
      context.binary,
    ], ["--workers", String(workers)]);
    children.push(many.child);
    progress(`started ${label} with --workers 1 on ${one.address} and with --workers ${workers} on ${many.address}`);
    for (const server of [one, many]) await rate(loadgen, server.address, target.address, 1, 0.2, 5000);
    for (let pair = 0; pair < pairs; pair++) {
      const order = pair % 2 === 0 ? [["w1", one], ["wn", many]] as const : [["wn", many], ["w1", one]] as const;
      const taken: Record<string, number> = {};
      for (const [suffix, serverOn] of placements) {
        for (const [name, server] of order) {
          await sleep(300);
          taken[`conn_50_${name}${suffix}_per_s`] = await measureOne(server, serverOn);
        }
      }
      for (const [key, value] of Object.entries(taken)) add(key, value);
      for (const [suffix] of placements) {
        add(
          `${suffix === "" ? "unpinned" : suffix.slice(1)}_ratio`,
          taken[`conn_50_wn${suffix}_per_s`]! / taken[`conn_50_w1${suffix}_per_s`]!,
        );
      }
      progress(
        `workers pair ${pair + 1}/${pairs}: --workers 1 vs ${workers}: unpinned ${
          taken.conn_50_w1_per_s?.toFixed(0)
        } vs ${taken.conn_50_wn_per_s?.toFixed(0)} /s, pinned ${taken.conn_50_w1_pinned_per_s?.toFixed(0)} vs ${
          taken.conn_50_wn_pinned_per_s?.toFixed(0)
        } /s, load pinned ${taken.conn_50_w1_loadpinned_per_s?.toFixed(0)} vs ${
          taken.conn_50_wn_loadpinned_per_s?.toFixed(0)
        } /s`,
      );
    }
  } catch (error) {
    notes.push(`measurement failed: ${(error instanceof Error ? error.message : String(error)).split("\n")[0]}`);
    progress(`workers section failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    for (const child of children) await stopChild(child);
  }
  const figures: Record<string, number | null> = {};
  for (const { key } of WORKERS_FIGURES) {
    const value = median(samples[key] ?? []);
    figures[key] = value === null ? null : round(key, value);
  }
  for (const key of Object.keys(samples)) samples[key] = samples[key]!.map((v) => round(key, v));
  return { server: label, setup, figures, samples, notes };
}
