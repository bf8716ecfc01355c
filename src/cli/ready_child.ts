/**
 * Starting a copy of this program and waiting until it reports that it
 * serves: used for background mode and for `--workers`. The child prints
 * its start-up lines (and, on failure, its error) on stdout and then the
 * line `READY_LINE` (`./ready_lines.ts`); after that it never writes to
 * stdout again.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { BOUND_PREFIX, type BoundAddress, METRICS_PREFIX, READY_LINE } from "./ready_lines.ts";

/** How long to wait for a child to report. */
const START_TIMEOUT_MS = 30_000;

/** A child that reported ready, with what it printed before. */
export interface ReadyChild {
  readonly child: ChildProcess;
  /** What it printed for the user. */
  readonly lines: readonly string[];
  /** The addresses it reported with `boundLine` (empty when it reported none). */
  readonly bound: readonly BoundAddress[];
  /** Its private metrics endpoint (`host:port`, `METRICS_PREFIX`), or null. */
  readonly metrics: string | null;
}

/** Options for `spawnUntilReady`. */
export interface SpawnOptions {
  readonly env: Record<string, string>;
  /** New session, not killed with the parent's process group (background mode). */
  readonly detached: boolean;
  /** Where the child's stderr goes: nowhere, or the parent's stderr. */
  readonly stderr: "ignore" | "inherit";
}

/**
 * Spawns `command args` and resolves once it printed `READY_LINE`; rejects
 * with what it printed when it exits first or stays silent for 30 s.
 */
export function spawnUntilReady(
  command: readonly string[],
  args: readonly string[],
  options: SpawnOptions,
): Promise<ReadyChild> {
  const [program, ...prefix] = command;
  if (program === undefined) return Promise.reject(new Error("No command to start"));
  const child = spawn(program, [...prefix, ...args], {
    detached: options.detached,
    stdio: ["ignore", "pipe", options.stderr],
    env: { ...process.env, ...options.env },
  });
  return new Promise((resolve, reject) => {
    let output = "";
    let settled = false;
    const timer = setTimeout(
      () => fail(new Error(`the process did not report within ${START_TIMEOUT_MS / 1000} s\n${output}`)),
      START_TIMEOUT_MS,
    );
    function fail(error: Error) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.destroy();
      reject(error);
    }
    child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      output += text;
      const ready = output.indexOf(`${READY_LINE}\n`);
      if (ready < 0 || settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.destroy();
      const printed = output.slice(0, ready).split("\n").filter((line) => line !== "");
      const boundText = printed.find((line) => line.startsWith(BOUND_PREFIX));
      const metricsText = printed.find((line) => line.startsWith(METRICS_PREFIX));
      resolve({
        child,
        lines: printed.filter((line) => !line.startsWith(BOUND_PREFIX) && !line.startsWith(METRICS_PREFIX)),
        bound: boundText === undefined ? [] : JSON.parse(boundText.slice(BOUND_PREFIX.length)),
        metrics: metricsText === undefined ? null : metricsText.slice(METRICS_PREFIX.length),
      });
    });
    child.on("error", (error) => fail(new Error(`cannot start: ${error.message}`)));
    child.on("exit", () => fail(new Error(output.trimEnd())));
  });
}
