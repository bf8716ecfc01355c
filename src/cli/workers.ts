/**
 * `--workers N`: N server processes sharing the listening ports through
 * SO_REUSEPORT, so the kernel spreads connections over all cores. The
 * supervisor starts worker 1, takes the addresses it reports it bound (port 0
 * resolved; `boundLine`, not the text of its start-up lines),
 * starts the others on exactly those addresses, forwards SIGHUP, SIGUSR1, SIGTERM and
 * SIGINT, and restarts a worker that dies unexpectedly.
 *
 * @module
 */
import { formatHostPort } from "../net/address.ts";
import type { ChildProcess } from "node:child_process";
import type { Logger } from "@logtape/logtape";
import { WORKER_ENV, WORKER_LISTEN_ENV } from "./process_role.ts";
import { spawnUntilReady } from "./ready_child.ts";

/** A running group of workers. */
export interface WorkerGroup {
  /** Start-up lines of worker 1 (the bound addresses). */
  readonly lines: readonly string[];
  /** Resolves with 0 once every worker exited after `stop`. */
  readonly stopped: Promise<number>;
  /** True once SIGTERM or SIGINT arrived: the workers drain. */
  readonly stopping: boolean;
  /** The private metrics endpoint (`host:port`) of each running worker that reported one, by number. */
  readonly metricsEndpoints: ReadonlyMap<number, string>;
}

const RESTART_DELAY_MS = 1000;

/** Starts `count` workers and supervises them until SIGTERM or SIGINT. */
export async function superviseWorkers(
  command: readonly string[],
  argv: readonly string[],
  count: number,
  logger: Logger,
): Promise<WorkerGroup> {
  const start = (number: number, listen: string | null) =>
    spawnUntilReady(command, argv, {
      env: { [WORKER_ENV]: String(number), ...(listen === null ? {} : { [WORKER_LISTEN_ENV]: listen }) },
      detached: false,
      stderr: "inherit",
    });
  const workers = new Map<number, ChildProcess>();
  const metricsEndpoints = new Map<number, string>();
  let stopping = false;
  let listen = "";
  let resolveStopped: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => {
    resolveStopped = resolve;
  });
  const forward = (signal: NodeJS.Signals) => {
    for (const child of workers.values()) child.kill(signal);
  };
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info("{signal} received: stopping {count} workers", { signal, count: workers.size });
    if (workers.size === 0) resolveStopped(0);
    forward("SIGTERM");
  };
  // Handlers first, so a signal during start-up reaches the workers already running.
  process.on("SIGHUP", () => forward("SIGHUP"));
  process.on("SIGUSR1", () => forward("SIGUSR1"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  const watch = (number: number, child: ChildProcess, metrics: string | null) => {
    workers.set(number, child);
    if (metrics !== null) metricsEndpoints.set(number, metrics);
    child.on("exit", (code, signal) => {
      workers.delete(number);
      metricsEndpoints.delete(number);
      if (stopping) {
        if (workers.size === 0) resolveStopped(0);
        return;
      }
      logger.error("Worker {number} (PID {pid}) exited ({how}); restarting it", {
        number,
        pid: child.pid,
        how: signal ?? `code ${code}`,
      });
      setTimeout(() => {
        if (stopping) return;
        start(number, listen).then(
          (restarted) => watch(number, restarted.child, restarted.metrics),
          (error: Error) => logger.error("Cannot restart worker {number}: {error}", { number, error: error.message }),
        );
      }, RESTART_DELAY_MS);
    });
  };
  let first;
  try {
    first = await start(1, null);
    watch(1, first.child, first.metrics);
    listen = JSON.stringify(first.bound);
    for (let number = 2; number <= count && !stopping; number++) {
      const started = await start(number, listen);
      watch(number, started.child, started.metrics);
    }
  } catch (error) {
    stopping = true;
    forward("SIGTERM");
    throw error;
  }
  logger.info("{count} workers share {listen}: PIDs {pids}", {
    count,
    listen: first.bound.map(({ host, port }) => formatHostPort(host, port)).join(
      " ",
    ),
    pids: [...workers.values()].map((child) => child.pid).join(", "),
  });
  return {
    lines: first.lines,
    stopped,
    get stopping() {
      return stopping;
    },
    metricsEndpoints,
  };
}
