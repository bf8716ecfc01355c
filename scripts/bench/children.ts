/**
 * Child processes of the benchmark: each runs in its own process group, with
 * its output in a log file, and every one still alive is killed (group and
 * all) when the benchmark ends, however it ends.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import process from "node:process";

/** How to start a child. */
export interface ChildOptions {
  readonly cwd?: string;
  /** File that receives the child's stdout and stderr. */
  readonly logFile: string;
  /** Give the child a pipe on stdin (closing it tells our load generator to stop). */
  readonly stdinPipe?: boolean;
  /** Capture stdout in {@link Child.stdout} instead of the log file. */
  readonly captureStdout?: boolean;
  /** Raise the child's open-files limit to this many (down to the hard limit when we may not). */
  readonly openFiles?: number;
  /** Variables added to this process's environment for the child. */
  readonly env?: Readonly<Record<string, string>>;
}

/** A running child process. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  readonly logFile: string;
  /** Resolves with the exit code (or null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Whether the child has exited. */
  hasExited(): boolean;
  /** What the child printed on stdout so far, when captured. */
  stdout(): string;
}

const live = new Set<Child>();

/** Starts `command` in a new process group; it is killed by {@link killAll} if still running. */
export function startChild(
  name: string,
  command: string,
  args: readonly string[],
  options: ChildOptions,
): Child {
  const log = openSync(options.logFile, "a");
  const [file, argv] = options.openFiles === undefined ? [command, args] : [
    "/bin/sh",
    [
      "-c",
      `ulimit -n ${options.openFiles} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`,
      command,
      ...args,
    ],
  ];
  const proc = spawn(file, argv, {
    cwd: options.cwd,
    env: options.env === undefined ? process.env : { ...process.env, ...options.env },
    detached: true,
    stdio: [options.stdinPipe ? "pipe" : "ignore", options.captureStdout ? "pipe" : log, log],
  });
  closeSync(log);
  if (proc.pid === undefined) {
    throw new Error(`Cannot start ${name}: spawning ${command} failed`);
  }
  let out = "";
  proc.stdout?.setEncoding("utf8").on("data", (text: string) => {
    out += text;
  });
  let exited = false;
  const child: Child = {
    name,
    pid: proc.pid,
    process: proc,
    logFile: options.logFile,
    exited: new Promise((resolve) => {
      proc.on("exit", (code) => {
        exited = true;
        live.delete(child);
        resolve(code);
      });
      proc.on("error", () => {
        exited = true;
        live.delete(child);
        resolve(null);
      });
    }),
    hasExited: () => exited,
    stdout: () => out,
  };
  live.add(child);
  return child;
}

/** Sends a signal to a child's whole process group, ignoring a group that is gone. */
function signalGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group has already exited.
  }
}

/** Stops a child: SIGTERM to its group, then SIGKILL after `graceMs`. */
export async function stopChild(child: Child, graceMs = 3000): Promise<void> {
  if (child.hasExited()) {
    signalGroup(child, "SIGKILL");
    return;
  }
  signalGroup(child, "SIGTERM");
  const timer = setTimeout(() => signalGroup(child, "SIGKILL"), graceMs);
  await child.exited;
  clearTimeout(timer);
  signalGroup(child, "SIGKILL");
}

/** Kills every child still running, synchronously (safe in exit handlers). */
export function killAll(): void {
  for (const child of live) signalGroup(child, "SIGKILL");
  live.clear();
}

/** The last `chars` characters of a child's log, for error messages. */
export function logTail(child: Child, chars = 1500): string {
  try {
    return readFileSync(child.logFile, "utf8").slice(-chars).trim();
  } catch {
    return "";
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls a child's log file until `pattern` matches, and returns the match.
 * Fails when the child exits first or `timeoutMs` passes.
 */
export async function waitForLog(
  child: Child,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const match = readFileSync(child.logFile, "utf8").match(pattern);
    if (match !== null) return match;
    if (child.hasExited()) break;
    await sleep(20);
  }
  const why = child.hasExited() ? "it exited" : `nothing matched within ${timeoutMs / 1000} s`;
  throw new Error(
    `Cannot start ${child.name}: ${why} before printing ${pattern}\n${logTail(child)}`,
  );
}
