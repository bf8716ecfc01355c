/**
 * The figures the benchmark reports, with their units and which way is
 * better, and the shape of its machine-readable result.
 *
 * @module
 */

/** The key of a figure, as used in the JSON output. */
export type FigureKey =
  | "bulk_1_mib_s"
  | "bulk_8_mib_s"
  | "conn_seq_per_s"
  | "conn_50_per_s"
  | "cpu_us_per_conn_seq"
  | "cpu_us_per_conn_50"
  | "echo_p50_us"
  | "echo_p99_us"
  | "cpu_s_per_gib"
  | "rss_idle_kib"
  | "rss_1k_kib"
  | "rss_high_kib"
  | "kib_per_session_1k"
  | "kib_per_session";

/** One reported figure. */
export interface FigureSpec {
  readonly key: FigureKey;
  readonly label: string;
  /** Whether a larger value is better (throughput) or worse (latency, memory, CPU). */
  readonly higherIsBetter: boolean;
  /** Whether the figure exists for the direct (no proxy) path. */
  readonly direct: boolean;
  /** Divisor applied for display (1024 turns KiB into MiB). */
  readonly displayDivisor: number;
  /** Decimal places shown. */
  readonly digits: number;
}

/**
 * Every figure, in report order. RSS figures are stored in KiB and shown in
 * MiB. `{name}` in a label stands for that entry of the result's `config`.
 */
export const FIGURES: readonly FigureSpec[] = [
  {
    key: "bulk_1_mib_s",
    label: "bulk, 1 stream (MiB/s each way)",
    higherIsBetter: true,
    direct: true,
    displayDivisor: 1,
    digits: 0,
  },
  {
    key: "bulk_8_mib_s",
    label: "bulk, 8 streams (MiB/s each way)",
    higherIsBetter: true,
    direct: true,
    displayDivisor: 1,
    digits: 0,
  },
  {
    key: "conn_seq_per_s",
    label: "connections/s, sequential",
    higherIsBetter: true,
    direct: true,
    displayDivisor: 1,
    digits: 0,
  },
  {
    key: "conn_50_per_s",
    label: "connections/s, 50 concurrent",
    higherIsBetter: true,
    direct: true,
    displayDivisor: 1,
    digits: 0,
  },
  {
    key: "cpu_us_per_conn_seq",
    label: "CPU per connection, sequential (µs)",
    higherIsBetter: false,
    direct: false,
    displayDivisor: 1,
    digits: 0,
  },
  {
    key: "cpu_us_per_conn_50",
    label: "CPU per connection, 50 concurrent (µs)",
    higherIsBetter: false,
    direct: false,
    displayDivisor: 1,
    digits: 0,
  },
  {
    key: "echo_p50_us",
    label: "echo latency p50 (µs)",
    higherIsBetter: false,
    direct: true,
    displayDivisor: 1,
    digits: 1,
  },
  {
    key: "echo_p99_us",
    label: "echo latency p99 (µs)",
    higherIsBetter: false,
    direct: true,
    displayDivisor: 1,
    digits: 1,
  },
  {
    key: "cpu_s_per_gib",
    label: "CPU s per GiB relayed",
    higherIsBetter: false,
    direct: false,
    displayDivisor: 1,
    digits: 2,
  },
  {
    key: "rss_idle_kib",
    label: "RSS idle (MiB)",
    higherIsBetter: false,
    direct: false,
    displayDivisor: 1024,
    digits: 1,
  },
  {
    key: "rss_1k_kib",
    label: "RSS, 1,000 idle sessions (MiB)",
    higherIsBetter: false,
    direct: false,
    displayDivisor: 1024,
    digits: 1,
  },
  {
    key: "rss_high_kib",
    label: "RSS, {high_sessions} idle sessions (MiB)",
    higherIsBetter: false,
    direct: false,
    displayDivisor: 1024,
    digits: 1,
  },
  {
    key: "kib_per_session_1k",
    label: "KiB per idle session (at 1,000)",
    higherIsBetter: false,
    direct: false,
    displayDivisor: 1,
    digits: 1,
  },
  {
    key: "kib_per_session",
    label: "KiB per idle session (at {high_sessions})",
    higherIsBetter: false,
    direct: false,
    displayDivisor: 1,
    digits: 1,
  },
];

/** Idle sessions behind `rss_1k_kib`. */
export const LOW_SESSIONS = 1000;

/** Results for one column of the report. */
export interface ColumnResult {
  readonly id: string;
  readonly label: string;
  /** Median of the rounds (or the single reading for RSS); null where it could not be measured. */
  readonly figures: Partial<Record<FigureKey, number | null>>;
  /** Every round's reading, for the figures measured per round. */
  readonly samples: Partial<Record<FigureKey, number[]>>;
  readonly notes: string[];
}

/** A figure of the authentication or access-control section (one srelay, no comparison columns). */
export interface SectionFigureSpec {
  readonly key: string;
  readonly label: string;
  readonly higherIsBetter: boolean;
  readonly digits: number;
}

/**
 * The authentication section: srelay with `-a p -U FILE` (one bcrypt cost 10
 * user), logins per second, and the echo latency of an established,
 * logged-in session with and without 20 clients guessing passwords.
 */
export const AUTH_FIGURES: readonly SectionFigureSpec[] = [
  { key: "logins_1_per_s", label: "logins/s, 1 client", higherIsBetter: true, digits: 1 },
  { key: "logins_4_per_s", label: "logins/s, 4 concurrent clients", higherIsBetter: true, digits: 1 },
  { key: "echo_p50_quiet_us", label: "echo latency p50, no guessing (µs)", higherIsBetter: false, digits: 1 },
  { key: "echo_p99_quiet_us", label: "echo latency p99, no guessing (µs)", higherIsBetter: false, digits: 1 },
  {
    key: "echo_p50_guess_new_us",
    label: "echo latency p50, 20 guessers, each guess from a new address (µs)",
    higherIsBetter: false,
    digits: 1,
  },
  {
    key: "echo_p99_guess_new_us",
    label: "echo latency p99, 20 guessers, each guess from a new address (µs)",
    higherIsBetter: false,
    digits: 1,
  },
  {
    key: "echo_p50_guess_one_us",
    label: "echo latency p50, 20 guessers from one address (µs)",
    higherIsBetter: false,
    digits: 1,
  },
  {
    key: "echo_p99_guess_one_us",
    label: "echo latency p99, 20 guessers from one address (µs)",
    higherIsBetter: false,
    digits: 1,
  },
  {
    key: "guesses_new_checked_per_s",
    label: "guesses/s checked (answered after 1 s), each from a new address",
    higherIsBetter: false,
    digits: 1,
  },
  {
    key: "guesses_one_refused_per_s",
    label: "guesses/s refused unchecked (throttled), from one address",
    higherIsBetter: false,
    digits: 0,
  },
];

/**
 * The access-control section: the connection rate of srelay with `-w`
 * (generated hosts.allow and hosts.deny) and `--rules` (generated rules),
 * beside the same srelay without them.
 */
export const ACL_FIGURES: readonly SectionFigureSpec[] = [
  { key: "conn_seq_plain_per_s", label: "connections/s, sequential, no checks", higherIsBetter: true, digits: 0 },
  { key: "conn_seq_acl_per_s", label: "connections/s, sequential, with the checks", higherIsBetter: true, digits: 0 },
  { key: "conn_seq_ratio", label: "ratio, sequential (with ÷ without)", higherIsBetter: true, digits: 3 },
  { key: "conn_50_plain_per_s", label: "connections/s, 50 concurrent, no checks", higherIsBetter: true, digits: 0 },
  {
    key: "conn_50_acl_per_s",
    label: "connections/s, 50 concurrent, with the checks",
    higherIsBetter: true,
    digits: 0,
  },
  { key: "conn_50_ratio", label: "ratio, 50 concurrent (with ÷ without)", higherIsBetter: true, digits: 3 },
];

/**
 * The metrics section: the connection rate and bulk throughput of srelay
 * with `--metrics`, beside the same srelay without it.
 */
export const METRICS_FIGURES: readonly SectionFigureSpec[] = [
  { key: "conn_seq_plain_per_s", label: "connections/s, sequential, no metrics", higherIsBetter: true, digits: 0 },
  {
    key: "conn_seq_metrics_per_s",
    label: "connections/s, sequential, --metrics",
    higherIsBetter: true,
    digits: 0,
  },
  { key: "conn_seq_ratio", label: "ratio, sequential (with ÷ without)", higherIsBetter: true, digits: 3 },
  { key: "conn_50_plain_per_s", label: "connections/s, 50 concurrent, no metrics", higherIsBetter: true, digits: 0 },
  {
    key: "conn_50_metrics_per_s",
    label: "connections/s, 50 concurrent, --metrics",
    higherIsBetter: true,
    digits: 0,
  },
  { key: "conn_50_ratio", label: "ratio, 50 concurrent (with ÷ without)", higherIsBetter: true, digits: 3 },
  { key: "bulk_1_plain_mib_s", label: "bulk, 1 stream, no metrics (MiB/s each way)", higherIsBetter: true, digits: 0 },
  {
    key: "bulk_1_metrics_mib_s",
    label: "bulk, 1 stream, --metrics (MiB/s each way)",
    higherIsBetter: true,
    digits: 0,
  },
  { key: "bulk_1_ratio", label: "ratio, bulk 1 stream (with ÷ without)", higherIsBetter: true, digits: 3 },
  { key: "bulk_8_plain_mib_s", label: "bulk, 8 streams, no metrics (MiB/s each way)", higherIsBetter: true, digits: 0 },
  {
    key: "bulk_8_metrics_mib_s",
    label: "bulk, 8 streams, --metrics (MiB/s each way)",
    higherIsBetter: true,
    digits: 0,
  },
  { key: "bulk_8_ratio", label: "ratio, bulk 8 streams (with ÷ without)", higherIsBetter: true, digits: 3 },
  {
    key: "record_ns",
    label: "metric update per finished session, in process (ns)",
    higherIsBetter: false,
    digits: 0,
  },
  {
    key: "record_share_pct",
    label: "that update's share of one sequential connection's time (%)",
    higherIsBetter: false,
    digits: 3,
  },
];

/**
 * The start-up section: milliseconds from the fork of `srelay -f -i
 * 127.0.0.1:0` to its `listening on` line (stdout) and to its `started` log
 * line (stderr), as the compiled binary, on Bun and on Deno, beside the same
 * for a program that only prints one line (the runtime's floor); and the
 * binary's size. Medians over the starts, and for the binaries also the
 * fastest start (other work on the machine only ever adds time). With
 * `--baseline-binary`, another binary (e.g. the one before a change) is
 * started in the same rounds.
 */
export const STARTUP_FIGURES: readonly SectionFigureSpec[] = [
  { key: "bin_listening_ms", label: "binary: exec to `listening on` (ms)", higherIsBetter: false, digits: 1 },
  {
    key: "bin_listening_min_ms",
    label: "binary: exec to `listening on`, fastest start (ms)",
    higherIsBetter: false,
    digits: 1,
  },
  { key: "bin_started_ms", label: "binary: exec to the `started` log line (ms)", higherIsBetter: false, digits: 1 },
  { key: "bin_size_mib", label: "binary: size (MiB)", higherIsBetter: false, digits: 1 },
  {
    key: "baseline_listening_ms",
    label: "baseline binary: exec to `listening on` (ms)",
    higherIsBetter: false,
    digits: 1,
  },
  {
    key: "baseline_listening_min_ms",
    label: "baseline binary: exec to `listening on`, fastest start (ms)",
    higherIsBetter: false,
    digits: 1,
  },
  {
    key: "baseline_started_ms",
    label: "baseline binary: exec to the `started` log line (ms)",
    higherIsBetter: false,
    digits: 1,
  },
  { key: "baseline_size_mib", label: "baseline binary: size (MiB)", higherIsBetter: false, digits: 1 },
  {
    key: "bin_vs_baseline_ratio",
    label: "binary ÷ baseline, exec to `listening on` (median of the pairs)",
    higherIsBetter: false,
    digits: 3,
  },
  { key: "bun_listening_ms", label: "on Bun: exec to `listening on` (ms)", higherIsBetter: false, digits: 1 },
  { key: "deno_listening_ms", label: "on Deno: exec to `listening on` (ms)", higherIsBetter: false, digits: 1 },
  {
    key: "floor_compiled_ms",
    label: "floor: a compiled Bun program that prints one line (ms)",
    higherIsBetter: false,
    digits: 1,
  },
  { key: "floor_bun_ms", label: "floor: bun running a one-line script (ms)", higherIsBetter: false, digits: 1 },
  { key: "floor_deno_ms", label: "floor: deno running a one-line script (ms)", higherIsBetter: false, digits: 1 },
];

/**
 * The workers section: the connection rate (50 concurrent clients) of the
 * compiled binary with `--workers 1` and with N (the server's half of the
 * CPUs, at least 2): unpinned; pinned (the load generator and the target on
 * one half of the CPUs, the server on the other); load pinned (the load on
 * one half, the server on every CPU).
 */
export const WORKERS_FIGURES: readonly SectionFigureSpec[] = [
  { key: "conn_50_w1_per_s", label: "connections/s, --workers 1, unpinned", higherIsBetter: true, digits: 0 },
  { key: "conn_50_wn_per_s", label: "connections/s, --workers N, unpinned", higherIsBetter: true, digits: 0 },
  { key: "unpinned_ratio", label: "ratio, unpinned (--workers N ÷ 1)", higherIsBetter: true, digits: 3 },
  { key: "conn_50_w1_pinned_per_s", label: "connections/s, --workers 1, pinned", higherIsBetter: true, digits: 0 },
  { key: "conn_50_wn_pinned_per_s", label: "connections/s, --workers N, pinned", higherIsBetter: true, digits: 0 },
  { key: "pinned_ratio", label: "ratio, pinned (--workers N ÷ 1)", higherIsBetter: true, digits: 3 },
  {
    key: "conn_50_w1_loadpinned_per_s",
    label: "connections/s, --workers 1, load pinned",
    higherIsBetter: true,
    digits: 0,
  },
  {
    key: "conn_50_wn_loadpinned_per_s",
    label: "connections/s, --workers N, load pinned",
    higherIsBetter: true,
    digits: 0,
  },
  { key: "loadpinned_ratio", label: "ratio, load pinned (--workers N ÷ 1)", higherIsBetter: true, digits: 3 },
];

/** The result of the authentication or access-control section. */
export interface SectionResult {
  /** The srelay measured, e.g. `srelay binary`. */
  readonly server: string;
  /** What was set up, in words (files, sizes, clients). */
  readonly setup: string[];
  /** Medians over the rounds; null where it could not be measured. */
  readonly figures: Record<string, number | null>;
  /** Every round's reading. */
  readonly samples: Record<string, number[]>;
  /** Why the section did not run, when it did not. */
  readonly skipped?: string;
  readonly notes: string[];
}

/** The whole benchmark result, as `--json` prints it. */
export interface BenchResult {
  readonly date: string;
  readonly command: string;
  readonly quick: boolean;
  readonly seconds: number;
  readonly machine: Record<string, string | number>;
  readonly config: Record<string, number | string>;
  /** `direct` first, then each server that ran. */
  readonly columns: ColumnResult[];
  /** Servers that could not run, and why. */
  readonly skipped: { readonly id: string; readonly label: string; readonly reason: string }[];
  readonly notes: string[];
  /** Authentication figures (`--sections auth`), or null when not run. */
  readonly auth: SectionResult | null;
  /** Access-control figures (`--sections acl`), or null when not run. */
  readonly acl: SectionResult | null;
  /** `--metrics` cost figures (`--sections metrics`), or null when not run. */
  readonly metrics: SectionResult | null;
  /** `--proxy-protocol` cost figures (`--sections proxy`), or null when not run. */
  readonly proxy: SectionResult | null;
  /** UDP ASSOCIATE figures (`--sections udp`), or null when not run. */
  readonly udp: SectionResult | null;
  /** Start-up times and binary size (`--sections startup`), or null when not run. */
  readonly startup: SectionResult | null;
  /** `--workers` scaling figures (`--sections workers`), or null when not run. */
  readonly workers: SectionResult | null;
}

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] ?? null : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}
