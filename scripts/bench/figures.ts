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
  | "echo_p50_us"
  | "echo_p99_us"
  | "cpu_s_per_gib"
  | "rss_idle_kib"
  | "rss_1k_kib"
  | "rss_high_kib"
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
}

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[mid] ?? null
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}
