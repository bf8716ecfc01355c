/**
 * Smoke test of the benchmark harness: runs `scripts/bench.ts --quick --json`
 * once and checks that it reports every figure, as a number, for every
 * server that ran (the bare relays and the CPU per connection included),
 * that only the third-party servers may be missing, and that every section
 * the bench ran (all by default, whichever it lists) reports all of its
 * figures. It asserts nothing about speed.
 *
 * Not a unit test: its name does not end in `_test.ts`, so `bun test` and
 * `deno test` over `src/` and `tests/` leave it out. `scripts/test.ts` runs
 * it as a step of its own (`bun test ./tests/bench/smoke.ts`, with its own
 * report and time limit), each check below counted as one test:
 *
 *     bun scripts/test.ts --only bench
 *
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCommand } from "../helpers/run_command.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BENCH_TIMEOUT_MS = 240_000;

/** Figures the direct (no proxy) column must report. */
const DIRECT_FIGURES = [
  "bulk_1_mib_s",
  "bulk_8_mib_s",
  "conn_seq_per_s",
  "conn_50_per_s",
  "echo_p50_us",
  "echo_p99_us",
];

/** Figures every proxy column must report. */
const PROXY_FIGURES = [
  ...DIRECT_FIGURES,
  "cpu_us_per_conn_seq",
  "cpu_us_per_conn_50",
  "cpu_s_per_gib",
  "rss_idle_kib",
  "rss_1k_kib",
  "rss_high_kib",
  "kib_per_session_1k",
  "kib_per_session",
];

/** Columns that must run: direct, srelay four ways, and the bare relay on each runtime. */
const REQUIRED_COLUMNS = [
  "direct",
  "srelay-bin",
  "srelay-bun",
  "srelay-deno",
  "srelay-bun-node",
  "bare-bun",
  "bare-deno",
];

/** Columns that may be skipped, when their program is not installed. */
const THIRD_PARTY_COLUMNS = ["microsocks", "dante"];

/** Sections that must run (the bench may list more; those are checked too). */
const REQUIRED_SECTIONS = ["relay", "auth", "acl", "metrics", "startup", "workers"];

/** Figures of the UDP section that need Dante: checked when Dante ran in the relay comparison. */
const UDP_DANTE_FIGURES = [
  "dgrams_dante_per_s",
  "dgrams_ratio",
  "p50_dante_us",
  "p50_ratio",
  "p99_dante_us",
  "p99_ratio",
  "loss_dante_pct",
];

/**
 * The figures each section must report. A section the bench ran that is not
 * listed here must report at least one figure, and every one it reports as a
 * number.
 */
function sectionFigures(name: string, danteRan: boolean): readonly string[] | undefined {
  switch (name) {
    case "auth":
      return [
        "logins_1_per_s",
        "logins_4_per_s",
        "echo_p50_quiet_us",
        "echo_p99_quiet_us",
        "echo_p50_guess_new_us",
        "echo_p99_guess_new_us",
        "echo_p50_guess_one_us",
        "echo_p99_guess_one_us",
        "guesses_new_checked_per_s",
        "guesses_one_refused_per_s",
      ];
    case "acl":
      return [
        "conn_seq_plain_per_s",
        "conn_seq_acl_per_s",
        "conn_seq_ratio",
        "conn_50_plain_per_s",
        "conn_50_acl_per_s",
        "conn_50_ratio",
      ];
    case "metrics":
      return [
        "conn_seq_plain_per_s",
        "conn_seq_metrics_per_s",
        "conn_seq_ratio",
        "conn_50_plain_per_s",
        "conn_50_metrics_per_s",
        "conn_50_ratio",
        "bulk_1_plain_mib_s",
        "bulk_1_metrics_mib_s",
        "bulk_1_ratio",
        "bulk_8_plain_mib_s",
        "bulk_8_metrics_mib_s",
        "bulk_8_ratio",
        "record_ns",
        "record_share_pct",
      ];
    case "proxy":
      return [
        "conn_seq_plain_per_s",
        "conn_seq_v2_per_s",
        "conn_seq_v2_ratio",
        "conn_seq_v1_per_s",
        "conn_seq_v1_ratio",
        "conn_50_plain_per_s",
        "conn_50_v2_per_s",
        "conn_50_v2_ratio",
        "conn_50_v1_per_s",
        "conn_50_v1_ratio",
      ];
    case "udp":
      return [
        "dgrams_direct_per_s",
        "dgrams_srelay_per_s",
        "p50_direct_us",
        "p50_srelay_us",
        "p99_direct_us",
        "p99_srelay_us",
        "loss_srelay_pct",
        ...(danteRan ? UDP_DANTE_FIGURES : []),
      ];
    case "startup":
      return [
        "bin_listening_ms",
        "bin_listening_min_ms",
        "bin_started_ms",
        "bin_size_mib",
        "bun_listening_ms",
        "deno_listening_ms",
        "floor_compiled_ms",
        "floor_bun_ms",
        "floor_deno_ms",
      ];
    case "workers":
      return [
        "conn_50_w1_per_s",
        "conn_50_wn_per_s",
        "unpinned_ratio",
        "conn_50_w1_pinned_per_s",
        "conn_50_wn_pinned_per_s",
        "pinned_ratio",
        "conn_50_w1_loadpinned_per_s",
        "conn_50_wn_loadpinned_per_s",
        "loadpinned_ratio",
      ];
    default:
      return undefined;
  }
}

interface Section {
  figures: Record<string, unknown>;
  skipped?: string;
  notes: string[];
}

interface BenchJson {
  config: Record<string, unknown>;
  columns: { id: string; figures: Record<string, unknown>; notes: string[] }[];
  skipped: { id: string; reason: string }[];
  [section: string]: unknown;
}

// One run of the quick bench feeds every check below; the bench bounds its
// own steps, the time limit only guards against a hang.
const run = await runCommand(process.execPath, ["scripts/bench.ts", "--quick", "--json"], {
  cwd: ROOT,
  timeoutMs: BENCH_TIMEOUT_MS,
});
const context = `exit code ${run.code}\nstderr:\n${run.stderr.slice(-3000)}`;
let result: BenchJson | undefined;
try {
  result = JSON.parse(run.stdout) as BenchJson;
} catch {
  result = undefined;
}
const ran = result?.columns.map((c) => c.id) ?? [];
const sections = typeof result?.config.sections === "string" ? result.config.sections.split(",") : [];

function assertNumber(where: string, value: unknown, notes: readonly string[]): void {
  assert.ok(
    typeof value === "number" && Number.isFinite(value),
    `${where} is ${JSON.stringify(value)} (notes: ${notes.join("; ")})\n${context}`,
  );
}

test("bench --quick --json exits 0 and prints its result as JSON", () => {
  assert.ok(result !== undefined, `bench did not print JSON: ${run.stdout.slice(0, 500)}\n${context}`);
  assert.equal(run.code, 0, context);
});

test("every server ran, but a third-party one that is not installed", () => {
  assert.equal(ran[0], "direct", context);
  for (const id of REQUIRED_COLUMNS) assert.ok(ran.includes(id), `${id} did not run\n${context}`);
  for (const skipped of result?.skipped ?? []) {
    assert.ok(THIRD_PARTY_COLUMNS.includes(skipped.id), `${skipped.id} was skipped: ${skipped.reason}`);
    assert.match(skipped.reason, /not installed/);
  }
  assert.equal(typeof result?.config.high_sessions, "number", context);
});

test("every section ran", () => {
  for (const name of REQUIRED_SECTIONS) assert.ok(sections.includes(name), `${name} did not run\n${context}`);
});

for (const column of result?.columns ?? []) {
  test(`${column.id} reports every figure`, () => {
    for (const key of column.id === "direct" ? DIRECT_FIGURES : PROXY_FIGURES) {
      assertNumber(`${column.id}.${key}`, column.figures[key], column.notes);
    }
  });
}

for (const name of sections.filter((section) => section !== "relay")) {
  test(`the ${name} section reports every figure`, () => {
    const section = result?.[name] as Section | null | undefined;
    assert.ok(section !== null && section !== undefined, `the ${name} section did not run\n${context}`);
    assert.equal(section.skipped, undefined, `the ${name} section was skipped: ${section.skipped}`);
    const keys = sectionFigures(name, ran.includes("dante")) ?? Object.keys(section.figures);
    assert.ok(keys.length > 0, `the ${name} section reports no figure\n${context}`);
    for (const key of keys) assertNumber(`${name}.${key}`, section.figures[key], section.notes);
  });
}
