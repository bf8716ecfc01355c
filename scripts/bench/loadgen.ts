/**
 * Builds and drives the C load generator (`scripts/bench/loadgen.c`): the
 * target server it provides, and its bulk, connection-rate, latency,
 * idle-session and password-guessing commands, and its start-up timer.
 * Every run has a time limit.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { type Child, logTail, startChild, stopChild, waitForLog } from "./children.ts";

/** Open-files limit for the load generator and target (10,000 sessions and then some). */
export const OPEN_FILES = 65536;

/** Result of `loadgen bulk`. */
export interface BulkResult {
  readonly seconds: number;
  readonly bytes_each_way: number;
  readonly streams: number;
  readonly failed_streams: number;
}

/** Result of `loadgen rate`. */
export interface RateResult {
  readonly connections: number;
  readonly errors: number;
  readonly seconds: number;
}

/** Result of `loadgen guess`: guesses refused slowly (checked), fast (throttled), otherwise, or failed to connect. */
export interface GuessResult {
  readonly attempts: number;
  readonly slow: number;
  readonly fast: number;
  readonly other: number;
  readonly errors: number;
  readonly seconds: number;
}

/** Where `loadgen guess` sends guesses from: one address, one per client, or a new one per guess. */
export type GuessSpread = "one" | "each" | "new";

/** User name and password for SOCKS5 method 02 (the load generator's `LOADGEN_AUTH`). */
export interface Login {
  readonly user: string;
  readonly password: string;
}

/** The PROXY protocol header version sessions start with (the load generator's `LOADGEN_PROXY_HEADER`). */
export type ProxyHeader = "v1" | "v2";

/** Result of `loadgen latency`. */
export interface LatencyResult {
  readonly count: number;
  readonly p50_us: number;
  readonly p99_us: number;
}

/** Sessions held open by `loadgen hold`. */
export interface HeldSessions {
  readonly opened: number;
  readonly failed: number;
  /** Closes the sessions and waits for the load generator to exit. */
  release(): Promise<void>;
}

/** The compiled load generator and a directory for its logs. */
export interface Loadgen {
  readonly binary: string;
  readonly workDir: string;
}

/** Compiles `loadgen.c` with `cc -O2` into `workDir`. */
export function compileLoadgen(source: string, workDir: string): Loadgen {
  const binary = join(workDir, "loadgen");
  try {
    execFileSync("cc", ["-O2", "-pthread", "-o", binary, source], {
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 60_000,
    });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot compile the load generator with cc (install gcc): ${detail}`);
  }
  return { binary, workDir };
}

let runs = 0;

function logFor(loadgen: Loadgen, what: string): string {
  return join(loadgen.workDir, `loadgen-${++runs}-${what}.log`);
}

/**
 * Runs one measuring command and parses the JSON line it prints. With
 * `cpus`, the load generator runs pinned to those CPUs (taskset list form).
 */
async function measure<T>(
  loadgen: Loadgen,
  args: readonly string[],
  timeoutMs: number,
  cpus?: string,
  login?: Login,
  proxyHeader?: ProxyHeader,
  env?: Readonly<Record<string, string>>,
): Promise<T> {
  const [command, argv] = cpus === undefined
    ? [loadgen.binary, args]
    : ["taskset", ["-c", cpus, loadgen.binary, ...args]];
  const child = startChild(`loadgen ${args[0]}`, command, argv, {
    logFile: logFor(loadgen, args[0] ?? "run"),
    captureStdout: true,
    openFiles: OPEN_FILES,
    env: { ...env, ...(login === undefined ? {} : authEnv(login)), ...proxyHeaderEnv(proxyHeader) },
  });
  const timer = setTimeout(() => void stopChild(child, 500), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  const line = child.stdout().trim().split("\n").pop() ?? "";
  if (code !== 0 || !line.startsWith("{")) {
    const why = code === null ? `was stopped after ${timeoutMs / 1000} s` : `exited with code ${code}`;
    throw new Error(
      `Cannot measure with loadgen ${args.join(" ")}: it ${why}\n${line}\n${logTail(child)}`,
    );
  }
  return JSON.parse(line) as T;
}

/** The running target server. */
export interface TargetServer {
  readonly child: Child;
  /** `127.0.0.1:PORT` it listens on. */
  readonly address: string;
}

/** Starts the target server. */
export async function startTarget(loadgen: Loadgen): Promise<TargetServer> {
  const child = startChild("target", loadgen.binary, ["target"], {
    logFile: logFor(loadgen, "target"),
    stdinPipe: true,
    openFiles: OPEN_FILES,
  });
  const match = await waitForLog(child, /^port (\d+)$/m, 5000);
  return { child, address: `127.0.0.1:${match[1]}` };
}

function authEnv(login: Login): Record<string, string> {
  return { LOADGEN_AUTH: `${login.user}:${login.password}` };
}

function proxyHeaderEnv(proxyHeader: ProxyHeader | undefined): Record<string, string> {
  return proxyHeader === undefined ? {} : { LOADGEN_PROXY_HEADER: proxyHeader };
}

/** `proxy` is `HOST:PORT`, or undefined to connect to the target directly. */
function via(proxy: string | undefined): string {
  return proxy ?? "-";
}

/** Moves `bytes` each way over `streams` parallel sessions. */
export function bulk(
  loadgen: Loadgen,
  proxy: string | undefined,
  target: string,
  streams: number,
  bytes: number,
): Promise<BulkResult> {
  return measure<BulkResult>(
    loadgen,
    ["bulk", via(proxy), target, String(streams), String(bytes)],
    180_000,
  );
}

/**
 * Opens, uses and closes sessions from `concurrency` clients for `seconds`;
 * with `login`, every session logs in with SOCKS5 method 02 first; with
 * `proxyHeader`, every session starts with a PROXY protocol header; with
 * `cpus`, the load generator runs pinned to those CPUs (taskset list form).
 */
export function rate(
  loadgen: Loadgen,
  proxy: string | undefined,
  target: string,
  concurrency: number,
  seconds: number,
  max: number,
  login?: Login,
  proxyHeader?: ProxyHeader,
  cpus?: string,
): Promise<RateResult> {
  return measure<RateResult>(
    loadgen,
    [
      "rate",
      via(proxy),
      target,
      String(concurrency),
      String(seconds),
      String(max),
    ],
    (seconds + 30) * 1000,
    cpus,
    login,
    proxyHeader,
  );
}

/** Result of `loadgen startup`: milliseconds from fork to the first line containing each pattern. */
export interface StartupResult {
  readonly ms: number[];
}

/**
 * Starts `command` once (in its own process group, stdout and stderr on one
 * pipe) and times, from just before the fork, the first output line that
 * contains each of `patterns`; then kills the command's process group.
 * Fails when the command exits, or `seconds` pass, before every pattern was seen.
 */
export function startup(
  loadgen: Loadgen,
  patterns: readonly string[],
  command: readonly string[],
  seconds: number,
  env?: Readonly<Record<string, string>>,
): Promise<StartupResult> {
  return measure<StartupResult>(
    loadgen,
    ["startup", String(seconds), patterns.join("|"), ...command],
    (seconds + 10) * 1000,
    undefined,
    undefined,
    undefined,
    env,
  );
}

/**
 * Times `count` sequential small echoes over one session (for at most
 * `seconds`), optionally pinned to `cpus`; with `login`, the session logs
 * in with method 02 first.
 */
export function latency(
  loadgen: Loadgen,
  proxy: string | undefined,
  target: string,
  count: number,
  seconds: number,
  cpus?: string,
  login?: Login,
): Promise<LatencyResult> {
  return measure<LatencyResult>(
    loadgen,
    ["latency", via(proxy), target, String(count), String(seconds)],
    (seconds + 30) * 1000,
    cpus,
    login,
  );
}

/** Password guessers running in the background. */
export interface Guessers {
  /** Stops them and resolves with their counts. */
  stop(): Promise<GuessResult>;
}

/**
 * Starts `clients` threads that guess `login.user`'s password through
 * `proxy` (wrong passwords only) from the loopback addresses `spread` says
 * (for `new`, starting with the `first`th), for at most `seconds`; resolves
 * once they run.
 */
export async function startGuessers(
  loadgen: Loadgen,
  proxy: string,
  target: string,
  login: Login,
  clients: number,
  seconds: number,
  spread: GuessSpread,
  first = 0,
): Promise<Guessers> {
  const args = ["guess", proxy, target, String(clients), String(seconds), spread, String(first)];
  const child = startChild("loadgen guess", loadgen.binary, args, {
    logFile: logFor(loadgen, "guess"),
    stdinPipe: true,
    captureStdout: true,
    openFiles: OPEN_FILES,
    env: authEnv(login),
  });
  const deadline = performance.now() + 5000;
  while (!/^ready$/m.test(child.stdout()) && !child.hasExited() && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  if (!/^ready$/m.test(child.stdout())) {
    await stopChild(child, 500);
    throw new Error(`Cannot start the password guessers: loadgen ${args.join(" ")}\n${logTail(child)}`);
  }
  return {
    async stop() {
      child.process.stdin?.end();
      // A guess in progress waits for its answer (about 1 s when the password is checked).
      const timer = setTimeout(() => void stopChild(child, 500), 30_000);
      const code = await child.exited;
      clearTimeout(timer);
      const line = child.stdout().trim().split("\n").pop() ?? "";
      if (code !== 0 || !line.startsWith("{")) {
        throw new Error(`Cannot count the guesses: loadgen guess exited with code ${code}\n${line}\n${logTail(child)}`);
      }
      return JSON.parse(line) as GuessResult;
    },
  };
}

/** Opens `count` idle relayed sessions and holds them until released (at most `seconds`). */
export async function hold(
  loadgen: Loadgen,
  proxy: string,
  target: string,
  count: number,
  seconds: number,
): Promise<HeldSessions> {
  const child = startChild("loadgen hold", loadgen.binary, [
    "hold",
    proxy,
    target,
    String(count),
    String(seconds),
  ], {
    logFile: logFor(loadgen, "hold"),
    stdinPipe: true,
    captureStdout: true,
    openFiles: OPEN_FILES,
  });
  const deadline = performance.now() + seconds * 1000;
  let match: RegExpMatchArray | null = null;
  while (match === null && !child.hasExited() && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    match = /^ready (\d+) (\d+)$/m.exec(child.stdout());
  }
  const release = async () => {
    child.process.stdin?.end();
    const timer = setTimeout(() => void stopChild(child, 500), 30_000);
    await child.exited;
    clearTimeout(timer);
  };
  if (match === null) {
    await stopChild(child, 500);
    throw new Error(
      `Cannot hold ${count} sessions through ${proxy}: the load generator never got them open\n${logTail(child)}`,
    );
  }
  return { opened: Number(match[1]), failed: Number(match[2]), release };
}
