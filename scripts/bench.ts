/**
 * Benchmarks srelay against microsocks and Dante on loopback, in one run,
 * then measures the cost of authentication and of access control.
 *
 *     bun scripts/bench.ts [--quick] [--json] [--rounds N] [--servers id,id] [--sections relay,auth,acl,metrics,proxy,udp,startup,workers] [--baseline-binary PATH] [--keep]
 *
 * Starts, on 127.0.0.1: a C target server, microsocks, Dante (`-N 2`) and
 * srelay as the compiled Bun binary (built if missing), on Bun, on Deno and
 * on Bun with `--io node`, and a bare SOCKS5 relay on Bun and on Deno
 * (`scripts/bench/bare_relay_*.ts`: what each runtime allows). A C load generator (`scripts/bench/loadgen.c`,
 * compiled here with `cc -O2`) speaks SOCKS5 (no auth, CONNECT) to each in
 * turn, round-robin within each round, and the same load with no proxy
 * ("direct") gives the physical limit. Reports medians over the rounds of:
 * bulk throughput with 1 and 8 streams, connection rate (sequential and 50
 * concurrent clients) and the server's CPU time per connection in each,
 * small-echo latency p50/p99, CPU seconds per GiB relayed, and RSS idle and with 1,000 and 10,000 idle relayed sessions.
 *
 * Then, with the compiled binary only: logins per second with `-a p -U`
 * (bcrypt cost 10) and the echo latency of an established session while 20
 * clients guess passwords (`scripts/bench/auth_section.ts`), and the
 * connection rate with 1,000 tcp_wrappers lines and 1,000 destination rules
 * beside the rate without them (`scripts/bench/acl_section.ts`), and the
 * connection rate and bulk throughput with `--metrics` beside the same
 * without it (`scripts/bench/metrics_section.ts`), the connection rate with
 * `--proxy-protocol` and PROXY v2 and v1 headers beside the same without
 * (`scripts/bench/proxy_section.ts`), and UDP ASSOCIATE datagrams per second
 * and round trips beside Dante's UDP relay (`scripts/bench/udp_section.ts`),
 * the time from exec to the start-up lines and the binary's size
 * (`scripts/bench/startup_section.ts`), and the connection rate with
 * `--workers 1` against more, unpinned and pinned
 * (`scripts/bench/workers_section.ts`).
 *
 * Prints Markdown (or, with `--json`, JSON) on stdout and progress on
 * stderr. Every child is killed at the end, on error and on SIGINT/SIGTERM.
 * Exits 1 when a server that started could not be measured on every figure.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { measureAcl } from "./bench/acl_section.ts";
import { measureAuth } from "./bench/auth_section.ts";
import { measureMetrics } from "./bench/metrics_section.ts";
import { measureProxyProtocol } from "./bench/proxy_section.ts";
import { measureUdp } from "./bench/udp_section.ts";
import { measureStartup } from "./bench/startup_section.ts";
import { measureWorkers } from "./bench/workers_section.ts";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { VERSION } from "../src/version.ts";
import { type Child, killAll, sleep, stopChild } from "./bench/children.ts";
import {
  type BenchResult,
  type ColumnResult,
  type FigureKey,
  FIGURES,
  LOW_SESSIONS,
  median,
  type SectionResult,
} from "./bench/figures.ts";
import {
  bulk,
  compileLoadgen,
  hold,
  latency,
  type Loadgen,
  rate,
  startTarget,
  type TargetServer,
} from "./bench/loadgen.ts";
import { canPin, firstLine, machineInfo, pinTree, treeCpuSeconds, treeRssKiB } from "./bench/proc.ts";
import { renderMarkdown } from "./bench/report.ts";
import { findCommand, type ServerContext, SERVERS, type ServerSpec } from "./bench/servers.ts";
import { artifactName, hostTarget } from "./targets.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MIB = 1024 * 1024;
/** Every CPU of this machine, in taskset's list form. */
const ALL_CPUS = `0-${cpus().length - 1}`;
const GIB = 1024 * MIB;

/** Sizes and durations of one run. */
interface Settings {
  readonly rounds: number;
  /** Bytes moved each way by each bulk test (split over its streams). */
  readonly bulkBytes: number;
  readonly rateSeconds: number;
  readonly rateMax: number;
  readonly concurrency: number;
  readonly latencyCount: number;
  readonly latencySeconds: number;
  /** Longest a `hold` may take to open its sessions and keep them. */
  readonly holdSeconds: number;
  /** Idle sessions for the high RSS figure (fewer if the open-files limit requires). */
  readonly highSessions: number;
  /** Seconds after which no further round starts (the rounds already done still count). */
  readonly roundsBudgetSeconds: number;
  /** Seconds of each logins-per-second measurement (auth section). */
  readonly loginSeconds: number;
  /** Seconds of each latency measurement in the auth section. */
  readonly authLatencySeconds: number;
  /** Seconds the password guessers run before the latency is measured. */
  readonly guessWarmupSeconds: number;
  /** Pairs (without, with the checks) per round in the access-control section. */
  readonly aclPairs: number;
  /** Seconds of each connection-rate measurement there. */
  readonly aclRateSeconds: number;
  /** Pairs (without, with --metrics) per round in the metrics section. */
  readonly metricsPairs: number;
  /** Bytes each way of each bulk measurement there. */
  readonly metricsBulkBytes: number;
  /** Groups (no header, v2, v1) per round in the PROXY protocol section. */
  readonly proxyPairs: number;
  /** Passes over the columns per round in the UDP section. */
  readonly udpPairs: number;
  /** Seconds of each latency and each rate measurement there. */
  readonly udpSeconds: number;
  /** Starts of each command in the start-up section. */
  readonly startupRuns: number;
  /** Pairs (--workers 1, --workers N) per round in the workers section. */
  readonly workersPairs: number;
}

const DEFAULT_SETTINGS: Settings = {
  rounds: 3,
  bulkBytes: GIB,
  rateSeconds: 1.5,
  rateMax: 200_000,
  concurrency: 50,
  latencyCount: 5000,
  latencySeconds: 10,
  holdSeconds: 90,
  highSessions: 10_000,
  roundsBudgetSeconds: 200,
  loginSeconds: 2,
  authLatencySeconds: 3,
  guessWarmupSeconds: 1.5,
  aclPairs: 3,
  aclRateSeconds: 1,
  metricsPairs: 3,
  metricsBulkBytes: 256 * MIB,
  proxyPairs: 3,
  udpPairs: 2,
  udpSeconds: 1.5,
  startupRuns: 20,
  workersPairs: 1,
};

const QUICK_SETTINGS: Settings = {
  ...DEFAULT_SETTINGS,
  rounds: 1,
  bulkBytes: 64 * MIB,
  rateSeconds: 0.3,
  latencyCount: 500,
  latencySeconds: 3,
  highSessions: 2000,
  roundsBudgetSeconds: 30,
  loginSeconds: 1,
  authLatencySeconds: 1,
  guessWarmupSeconds: 1.5,
  aclPairs: 1,
  aclRateSeconds: 0.3,
  metricsPairs: 1,
  metricsBulkBytes: 32 * MIB,
  proxyPairs: 1,
  udpPairs: 1,
  udpSeconds: 0.5,
  startupRuns: 5,
  workersPairs: 1,
};

/** The parts of a run: the relay comparison, authentication, access control. */
const SECTIONS = ["relay", "auth", "acl", "metrics", "proxy", "udp", "startup", "workers"] as const;
type Section = typeof SECTIONS[number];
/** Password-guessing clients in the auth section. */
const GUESSERS = 20;

/** Options from the command line. */
interface Options {
  readonly quick: boolean;
  readonly json: boolean;
  readonly keep: boolean;
  readonly rounds?: number;
  readonly servers?: readonly string[];
  readonly sections: readonly Section[];
  /** Another srelay binary the start-up section times beside the current one. */
  readonly baseline?: string;
}

const USAGE = `usage: bench.ts [--quick] [--json] [--rounds N] [--servers id,id,...] [--sections s,s]
                [--baseline-binary PATH] [--keep]
  --quick        64 MiB transfers, one round, short rate tests, 2,000 idle
                 sessions instead of 10,000 (about a minute)
  --json         print JSON instead of Markdown
  --rounds N     rounds of the per-round figures (default 3)
  --servers ids  only these servers (${SERVERS.map((s) => s.id).join(", ")}); direct always runs
  --sections s   only these parts (default all): relay (the comparison), auth
                 (logins/s, latency while ${GUESSERS} clients guess passwords), acl
                 (connection rate with 1,000 tcp_wrappers lines and 1,000 rules),
                 metrics (connection rate and bulk with and without --metrics),
                 proxy (connection rate with PROXY v2/v1 headers and --proxy-protocol
                 against without), udp (UDP ASSOCIATE datagrams/s and round trips,
                 srelay against Dante), startup (exec to the start-up lines, 20
                 starts each, 5 with --quick; binary size), workers (connection rate
                 with --workers 1 against N, unpinned and pinned)
  --baseline-binary PATH
                 the startup section also times this srelay binary (e.g. a copy of
                 dist/srelay-linux-x64 from before a change), in the same runs
  --keep         keep the work directory with the servers' logs`;

function parseOptions(args: readonly string[]): Options {
  let quick = false;
  let json = false;
  let keep = false;
  let rounds: number | undefined;
  let servers: string[] | undefined;
  let sections: Section[] = [...SECTIONS];
  let baseline: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--quick") quick = true;
    else if (arg === "--json") json = true;
    else if (arg === "--keep") keep = true;
    else if (arg === "--rounds") {
      rounds = Number(args[++i]);
      if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) {
        throw new Error(
          `Cannot parse options: --rounds must be a whole number from 1 to 20\n${USAGE}`,
        );
      }
    } else if (arg === "--servers") {
      servers = (args[++i] ?? "").split(",").filter(Boolean);
      const unknown = servers.filter((id) => !SERVERS.some((s) => s.id === id));
      if (unknown.length > 0) {
        throw new Error(`Cannot parse options: unknown server ${unknown.join(", ")}\n${USAGE}`);
      }
    } else if (arg === "--sections") {
      const wanted = (args[++i] ?? "").split(",").filter(Boolean);
      const unknown = wanted.filter((name) => !(SECTIONS as readonly string[]).includes(name));
      if (wanted.length === 0 || unknown.length > 0) {
        throw new Error(`Cannot parse options: --sections takes ${SECTIONS.join(", ")}\n${USAGE}`);
      }
      sections = SECTIONS.filter((name) => wanted.includes(name));
    } else if (arg === "--baseline-binary") {
      baseline = args[++i];
      if (baseline === undefined || baseline === "") {
        throw new Error(`Cannot parse options: --baseline-binary takes the path of an srelay binary\n${USAGE}`);
      }
    } else if (arg === "-h" || arg === "--help") {
      console.log(USAGE);
      process.exit(0);
    } else {
      throw new Error(`Cannot parse options: unknown argument ${arg}\n${USAGE}`);
    }
  }
  return { quick, json, keep, rounds, servers, sections, baseline };
}

/** A column being measured: direct (no child) or a running server. */
interface Column extends ColumnResult {
  readonly address?: string;
  readonly child?: Child;
  /** Set once a measurement failed; the column is not measured again. */
  failed: boolean;
}

function newColumn(id: string, label: string, address?: string, child?: Child): Column {
  return { id, label, address, child, failed: false, figures: {}, samples: {}, notes: [] };
}

function addSample(column: Column, key: FigureKey, value: number): void {
  (column.samples[key] ??= []).push(value);
}

const started = performance.now();
/** Work directories to delete when the run ends, however it ends. */
const workDirs: string[] = [];

/** Kills every child and deletes the work directories. */
function cleanUp(): void {
  killAll();
  for (const dir of workDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

function progress(message: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${message}\n`);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Builds the host binary with scripts/build.ts when it is missing. */
function ensureBinary(context: ServerContext): void {
  if (existsSync(context.binary)) return;
  progress(`${context.binary} is missing: building it`);
  const build = spawnSync(context.bun, [join(ROOT, "scripts/build.ts"), "--host"], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
    timeout: 600_000,
  });
  if (build.status !== 0) {
    progress("building the host binary failed: the srelay binary column will be skipped");
  }
}

/**
 * Echo latency with the load generator, the server (every thread of every
 * process) and the target pinned to CPU 0 when `pin` is set: on this kind of
 * VM a wake-up across CPUs costs tens of microseconds, so unpinned round trips
 * depend more on where the scheduler put each process than on the relay.
 */
async function measureLatency(
  loadgen: Loadgen,
  target: TargetServer,
  column: Column,
  settings: Settings,
  pin: boolean,
): Promise<void> {
  const pids = pin ? [target.child.pid, ...(column.child === undefined ? [] : [column.child.pid])] : [];
  for (const pid of pids) pinTree(pid, "0");
  try {
    const echo = await latency(
      loadgen,
      column.address,
      target.address,
      settings.latencyCount,
      settings.latencySeconds,
      pin ? "0" : undefined,
    );
    addSample(column, "echo_p50_us", echo.p50_us);
    addSample(column, "echo_p99_us", echo.p99_us);
  } finally {
    for (const pid of pids) pinTree(pid, ALL_CPUS);
  }
}

/** One round's figures for one column. */
async function measureRound(
  loadgen: Loadgen,
  target: TargetServer,
  column: Column,
  settings: Settings,
  pin: boolean,
): Promise<void> {
  const proxy = column.address;
  // Latency first, after a pause: the previous column's connection churn
  // disturbs loopback round trips for a few hundred milliseconds.
  await sleep(500);
  await measureLatency(loadgen, target, column, settings, pin);
  const cpuBefore = column.child === undefined ? 0 : treeCpuSeconds(column.child.pid);
  for (const streams of [1, 8] as const) {
    const result = await bulk(loadgen, proxy, target.address, streams, settings.bulkBytes);
    if (result.failed_streams > 0) {
      throw new Error(
        `${result.failed_streams} of ${streams} bulk streams did not deliver every byte`,
      );
    }
    addSample(
      column,
      streams === 1 ? "bulk_1_mib_s" : "bulk_8_mib_s",
      settings.bulkBytes / MIB / result.seconds,
    );
  }
  if (column.child !== undefined) {
    // Two bulk tests, each relaying bulkBytes in each direction.
    const relayedGiB = (4 * settings.bulkBytes) / GIB;
    addSample(column, "cpu_s_per_gib", (treeCpuSeconds(column.child.pid) - cpuBefore) / relayedGiB);
  }
  for (const concurrency of [1, settings.concurrency]) {
    const rateCpuBefore = column.child === undefined ? 0 : treeCpuSeconds(column.child.pid);
    const result = await rate(
      loadgen,
      proxy,
      target.address,
      concurrency,
      settings.rateSeconds,
      settings.rateMax,
    );
    if (result.errors > 0) {
      column.notes.push(`${result.errors} failed connections with ${concurrency} client(s)`);
    }
    addSample(
      column,
      concurrency === 1 ? "conn_seq_per_s" : "conn_50_per_s",
      result.connections / result.seconds,
    );
    if (column.child !== undefined && result.connections > 0) {
      addSample(
        column,
        concurrency === 1 ? "cpu_us_per_conn_seq" : "cpu_us_per_conn_50",
        ((treeCpuSeconds(column.child.pid) - rateCpuBefore) * 1e6) / result.connections,
      );
    }
  }
}

/**
 * How many idle sessions the high RSS figure can use: `wanted`, or fewer when
 * the open-files hard limit (which children inherit and cannot raise without
 * CAP_SYS_RESOURCE) leaves a relay less than two sockets per session.
 */
function highSessionCount(wanted: number): number {
  const limit = firstLine("/bin/sh", ["-c", "ulimit -Hn"]);
  const hard = limit === undefined || limit === "unlimited" ? Infinity : Number(limit);
  // Runtimes keep some descriptors of their own (epoll, eventfd, pipes, files).
  return Math.min(wanted, Math.floor((hard - 200) / 2 / 100) * 100);
}

/** Wait after the rounds before the idle sessions: past srelay's release of memory when idle (3 s). */
const MEMORY_SETTLE_MS = 3500;

/**
 * RSS with LOW_SESSIONS and `high` idle sessions held open through the
 * server, and each step's growth per session (RSS after minus RSS before).
 */
async function measureMemory(
  loadgen: Loadgen,
  target: string,
  column: Column,
  settings: Settings,
  high: number,
): Promise<void> {
  const { address, child } = column;
  if (address === undefined || child === undefined) return;
  // srelay gives memory back once it has had no new session for 3 s
  // (server.ts): the figures then price the idle sessions, not the garbage
  // the rounds left. The others have nothing to wait for.
  await sleep(MEMORY_SETTLE_MS);
  const steps: [FigureKey, FigureKey, number][] = [
    ["rss_1k_kib", "kib_per_session_1k", LOW_SESSIONS],
    ["rss_high_kib", "kib_per_session", high],
  ];
  for (const [key, perSession, count] of steps) {
    const before = treeRssKiB(child.pid);
    const held = await hold(loadgen, address, target, count, settings.holdSeconds);
    try {
      await sleep(500);
      const rss = treeRssKiB(child.pid);
      if (held.opened < count) {
        column.notes.push(`only ${held.opened} of ${count} idle sessions opened`);
        column.figures[key] = null;
        column.figures[perSession] = null;
        continue;
      }
      column.figures[key] = rss;
      column.figures[perSession] = (rss - before) / count;
    } finally {
      await held.release();
    }
    await sleep(300);
  }
}

function runtimeVersions(context: ServerContext): Record<string, string> {
  const danted = findCommand("danted");
  return {
    srelay: VERSION,
    bun: firstLine(context.bun, ["--version"]) ?? "unknown",
    deno: /deno (\S+)/.exec(firstLine(context.deno, ["--version"]) ?? "")?.[1] ?? "unknown",
    microsocks: firstLine("dpkg-query", ["-W", "-f=${Version}", "microsocks"]) ?? "unknown",
    dante: /v(\d+(?:\.\d+)+)/.exec(danted === undefined ? "" : firstLine(danted, ["-v"]) ?? "")?.[1] ??
      "unknown",
  };
}

/** Starts the wanted servers; those that cannot run here are listed in `skipped` with the reason. */
async function startServers(
  wanted: readonly ServerSpec[],
  context: ServerContext,
  skipped: BenchResult["skipped"],
): Promise<Column[]> {
  const columns: Column[] = [];
  for (const spec of wanted) {
    const reason = spec.unavailable(context);
    if (reason !== undefined) {
      skipped.push({ id: spec.id, label: spec.label, reason });
      progress(`skip ${spec.label}: ${reason}`);
      continue;
    }
    try {
      const server = await spec.start(context);
      columns.push(newColumn(spec.id, spec.label, server.address, server.child));
      progress(`started ${spec.label} on ${server.address}`);
    } catch (error) {
      skipped.push({
        id: spec.id,
        label: spec.label,
        reason: errorText(error).split("\n")[0] ?? "",
      });
      progress(errorText(error));
    }
  }
  return columns;
}

/** Runs one measurement step of a column; a failure is noted and ends that column's measurements. */
async function attempt(column: Column, what: string, work: () => Promise<void>): Promise<void> {
  if (column.failed) return;
  try {
    await work();
  } catch (error) {
    column.failed = true;
    column.notes.push(`${what} failed: ${errorText(error).split("\n")[0]}`);
    progress(`${column.label}: ${what} failed: ${errorText(error)}`);
  }
}

/** A whole number with thousands separators, e.g. `9,900`. */
function count(value: number): string {
  return value.toLocaleString("en-US");
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/** A column's result: medians of its samples (RSS readings as taken), in report order, rounded. */
function columnResult(column: Column): ColumnResult {
  const figures: ColumnResult["figures"] = {};
  const samples: ColumnResult["samples"] = {};
  for (const { key } of FIGURES) {
    const taken = column.samples[key];
    if (taken !== undefined) samples[key] = taken.map(round2);
    const value = taken === undefined ? column.figures[key] : median(taken);
    if (value !== undefined) figures[key] = value === null ? null : round2(value);
  }
  return { id: column.id, label: column.label, figures, samples, notes: column.notes };
}

async function main(options: Options): Promise<BenchResult> {
  const settings = {
    ...(options.quick ? QUICK_SETTINGS : DEFAULT_SETTINGS),
    ...(options.rounds ? { rounds: options.rounds } : {}),
  };
  const workDir = mkdtempSync(join(tmpdir(), "srelay-bench-"));
  if (!options.keep) workDirs.push(workDir);
  const host = hostTarget();
  const context: ServerContext = {
    root: ROOT,
    workDir,
    bun: join(ROOT, "node_modules/.bin/bun"),
    deno: join(ROOT, "node_modules/.bin/deno"),
    binary: join(ROOT, "dist", host === undefined ? "srelay" : artifactName(host)),
  };
  const highSessions = highSessionCount(settings.highSessions);
  const pin = canPin();
  const skipped: BenchResult["skipped"] = [];
  const notes: string[] = [];
  const relay = options.sections.includes("relay");
  if (relay && !pin) {
    notes.push(
      "taskset is missing: echo latency was measured unpinned, and varies with where the scheduler puts each process",
    );
  }
  if (relay && highSessions < settings.highSessions) {
    notes.push(
      `RSS measured at ${count(highSessions)} idle sessions, not ${
        count(settings.highSessions)
      }: the open-files hard limit (ulimit -Hn) is too low for a relay to hold 2 sockets per session, and this process may not raise it`,
    );
  }
  const columns: Column[] = relay ? [newColumn("direct", "direct (no proxy)")] : [];
  let target: Child | undefined;
  let auth: SectionResult | null = null;
  let acl: SectionResult | null = null;
  let metrics: SectionResult | null = null;
  let proxy: SectionResult | null = null;
  let udp: SectionResult | null = null;
  let startup: SectionResult | null = null;
  let workers: SectionResult | null = null;
  try {
    const wanted = relay ? SERVERS.filter((s) => options.servers === undefined || options.servers.includes(s.id)) : [];
    if (wanted.some((s) => s.id === "srelay-bin") || options.sections.some((s) => s !== "relay")) {
      ensureBinary(context);
    }
    const loadgen = compileLoadgen(join(ROOT, "scripts/bench/loadgen.c"), workDir);
    const targetServer = await startTarget(loadgen);
    target = targetServer.child;
    const targetAddress = targetServer.address;
    columns.push(...await startServers(wanted, context, skipped));
    if (relay) await sleep(1000);
    for (const column of columns) {
      if (column.child !== undefined) column.figures.rss_idle_kib = treeRssKiB(column.child.pid);
    }

    progress("warm-up");
    for (const column of columns) {
      await attempt(column, "warm-up", async () => {
        await bulk(
          loadgen,
          column.address,
          targetAddress,
          1,
          Math.min(settings.bulkBytes, 32 * MIB),
        );
        await rate(loadgen, column.address, targetAddress, 1, 0.2, 5000);
      });
    }

    for (let round = 0; round < settings.rounds; round++) {
      if (round > 0 && performance.now() - started > settings.roundsBudgetSeconds * 1000) {
        notes.push(
          `stopped after ${round} of ${settings.rounds} rounds: the time budget of ${settings.roundsBudgetSeconds} s was spent`,
        );
        break;
      }
      // Rotate the order each round so no server always runs first or last.
      const order = columns.map((_, i) => columns[(i + round) % columns.length]).filter((c) => c !== undefined);
      for (const column of order) {
        await attempt(
          column,
          `round ${round + 1}`,
          () => measureRound(loadgen, targetServer, column, settings, pin),
        );
        const s = column.samples;
        progress(
          `round ${round + 1}/${settings.rounds} ${column.label}: bulk ${s.bulk_1_mib_s?.at(-1)?.toFixed(0)}/${
            s.bulk_8_mib_s?.at(-1)?.toFixed(0)
          } MiB/s, ` +
            `conn ${s.conn_seq_per_s?.at(-1)?.toFixed(0)}/${s.conn_50_per_s?.at(-1)?.toFixed(0)} /s, ` +
            (column.child === undefined
              ? ""
              : `cpu ${s.cpu_us_per_conn_seq?.at(-1)?.toFixed(0)}/${
                s.cpu_us_per_conn_50?.at(-1)?.toFixed(0)
              } µs/conn, `) +
            `p50 ${s.echo_p50_us?.at(-1)?.toFixed(1)} µs`,
        );
      }
    }

    for (const column of columns) {
      if (column.child === undefined) continue;
      await attempt(
        column,
        "idle sessions",
        () => measureMemory(loadgen, targetAddress, column, settings, highSessions),
      );
      progress(`memory ${column.label}: ${JSON.stringify(column.figures)}`);
    }
    // The relays are done: stop them before the sections, which start their own.
    for (const column of columns) if (column.child !== undefined) await stopChild(column.child);

    if (options.sections.includes("auth")) {
      progress("authentication: logins/s, latency while clients guess passwords");
      auth = await measureAuth(loadgen, targetServer, context, {
        rounds: settings.rounds,
        loginSeconds: settings.loginSeconds,
        latencySeconds: settings.authLatencySeconds,
        guessWarmupSeconds: settings.guessWarmupSeconds,
        guessers: GUESSERS,
      }, progress);
    }
    if (options.sections.includes("acl")) {
      progress("access control: connection rate with and without the checks");
      acl = await measureAcl(loadgen, targetServer, context, {
        rounds: settings.rounds,
        pairs: settings.aclPairs,
        rateSeconds: settings.aclRateSeconds,
        concurrency: settings.concurrency,
      }, progress);
    }
    if (options.sections.includes("metrics")) {
      progress("metrics: connection rate and bulk with and without --metrics");
      metrics = await measureMetrics(loadgen, targetServer, context, {
        rounds: settings.rounds,
        pairs: settings.metricsPairs,
        rateSeconds: settings.aclRateSeconds,
        concurrency: settings.concurrency,
        bulkBytes: settings.metricsBulkBytes,
      }, progress);
    }
    if (options.sections.includes("proxy")) {
      progress("PROXY protocol: connection rate with v2 and v1 headers and without --proxy-protocol");
      proxy = await measureProxyProtocol(loadgen, targetServer, context, {
        rounds: settings.rounds,
        pairs: settings.proxyPairs,
        rateSeconds: settings.aclRateSeconds,
        concurrency: settings.concurrency,
      }, progress);
    }
    if (options.sections.includes("udp")) {
      progress("UDP: datagrams/s and round trips through srelay, Dante and direct");
      udp = await measureUdp(context, {
        rounds: settings.rounds,
        pairs: settings.udpPairs,
        seconds: settings.udpSeconds,
      }, progress);
    }
    if (options.sections.includes("startup")) {
      progress("start-up: exec to the start-up lines");
      startup = await measureStartup(loadgen, context, {
        runs: settings.startupRuns,
        ...(options.baseline === undefined ? {} : { baseline: options.baseline }),
      }, progress);
    }
    if (options.sections.includes("workers")) {
      progress("workers: connection rate with --workers 1 and more, unpinned and pinned");
      workers = await measureWorkers(loadgen, targetServer, context, {
        rounds: settings.rounds,
        pairs: settings.workersPairs,
        rateSeconds: settings.aclRateSeconds,
        concurrency: settings.concurrency,
      }, progress);
    }
  } finally {
    for (const column of columns) if (column.child !== undefined) await stopChild(column.child);
    if (target !== undefined) {
      target.process.stdin?.end();
      await stopChild(target, 1000);
    }
    cleanUp();
    if (options.keep) progress(`logs kept in ${workDir}`);
  }
  const runtime = "Deno" in globalThis ? "deno run -A" : "bun";
  return {
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    command: [runtime, "scripts/bench.ts", ...process.argv.slice(2)].join(" "),
    quick: options.quick,
    seconds: round2((performance.now() - started) / 1000),
    machine: { ...machineInfo(), ...runtimeVersions(context) },
    config: {
      rounds: settings.rounds,
      ...(relay
        ? {
          bulk_mib_each_way: settings.bulkBytes / MIB,
          rate_seconds: settings.rateSeconds,
          concurrency: settings.concurrency,
          echo_count: settings.latencyCount,
          echo_cpus: pin ? "all pinned to CPU 0" : "unpinned",
          high_sessions: highSessions,
        }
        : {}),
      sections: options.sections.join(","),
    },
    columns: columns.map(columnResult),
    skipped,
    notes,
    auth,
    acl,
    metrics,
    proxy,
    udp,
    startup,
    workers,
  };
}

/** True when every server that ran has every figure it should have, and so has every section that ran. */
function complete(result: BenchResult): boolean {
  const sectionComplete = (section: SectionResult | null) =>
    section === null || section.skipped !== undefined ||
    Object.values(section.figures).every((value) => typeof value === "number");
  return result.columns.every((c) =>
    FIGURES.every((f) => (c.id === "direct" && !f.direct) || typeof c.figures[f.key] === "number")
  ) && sectionComplete(result.auth) && sectionComplete(result.acl) && sectionComplete(result.metrics) &&
    sectionComplete(result.proxy) && sectionComplete(result.udp) && sectionComplete(result.startup) &&
    sectionComplete(result.workers);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    cleanUp();
    process.exit(130);
  });
}
process.on("exit", cleanUp);

try {
  const options = parseOptions(process.argv.slice(2));
  const result = await main(options);
  process.stdout.write(
    options.json ? `${JSON.stringify(result, null, 2)}\n` : renderMarkdown(result),
  );
  process.exit(complete(result) ? 0 : 1);
} catch (error) {
  cleanUp();
  console.error(errorText(error));
  process.exit(2);
}
