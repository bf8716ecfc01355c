/**
 * Smoke test of the benchmark harness: runs `scripts/bench.ts --quick --json`
 * once and checks that it reports every figure, as a number, for every server
 * that ran, and that only the third-party servers may be missing; and that
 * the authentication and access-control sections report all of theirs. It
 * asserts nothing about speed.
 *
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCommand } from "./helpers/run_command.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BENCH_TIMEOUT_MS = 150_000;

/** Figures every proxy column must report. */
const PROXY_FIGURES = [
  "bulk_1_mib_s",
  "bulk_8_mib_s",
  "conn_seq_per_s",
  "conn_50_per_s",
  "echo_p50_us",
  "echo_p99_us",
  "cpu_s_per_gib",
  "rss_idle_kib",
  "rss_1k_kib",
  "rss_high_kib",
  "kib_per_session",
];

/** Figures the direct (no proxy) column must report. */
const DIRECT_FIGURES = PROXY_FIGURES.slice(0, 6);

const SRELAY_COLUMNS = ["srelay-bin", "srelay-bun", "srelay-deno", "srelay-bun-node"];

/** Figures of the authentication section. */
const AUTH_FIGURES = [
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

/** Figures of the access-control section. */
const ACL_FIGURES = [
  "conn_seq_plain_per_s",
  "conn_seq_acl_per_s",
  "conn_seq_ratio",
  "conn_50_plain_per_s",
  "conn_50_acl_per_s",
  "conn_50_ratio",
];

interface Section {
  figures: Record<string, unknown>;
  skipped?: string;
  notes: string[];
}

interface BenchJson {
  config: Record<string, unknown>;
  columns: { id: string; figures: Record<string, unknown>; notes: string[] }[];
  skipped: { id: string; reason: string }[];
  auth: Section | null;
  acl: Section | null;
}

/** Runs the quick bench; the bench bounds its own steps, the limit only guards against a hang. */
function runBench() {
  return runCommand(process.execPath, ["scripts/bench.ts", "--quick", "--json"], {
    cwd: ROOT,
    timeoutMs: BENCH_TIMEOUT_MS,
  });
}

// One run measures every runtime, so the test is registered under bun test
// only (not skipped under deno test: running it twice would only double CI time).
if ("Bun" in globalThis) {
  test(
    "bench --quick --json reports every figure for every server (bun test only: one run measures every runtime, so running it under both runners would only double CI time)",
    {
      timeout: BENCH_TIMEOUT_MS + 30_000,
    },
    async () => {
      const { code, stdout, stderr } = await runBench();
      const context = `exit code ${code}\nstderr:\n${stderr.slice(-3000)}`;
      let result: BenchJson;
      try {
        result = JSON.parse(stdout) as BenchJson;
      } catch {
        assert.fail(`bench did not print JSON: ${stdout.slice(0, 500)}\n${context}`);
      }
      const ids = result.columns.map((c) => c.id);
      assert.equal(ids[0], "direct", context);
      for (const id of SRELAY_COLUMNS) assert.ok(ids.includes(id), `${id} did not run\n${context}`);
      for (const skipped of result.skipped) {
        assert.ok(
          ["microsocks", "dante"].includes(skipped.id),
          `${skipped.id} was skipped: ${skipped.reason}`,
        );
        assert.match(skipped.reason, /not installed/);
      }
      assert.equal(typeof result.config.high_sessions, "number");
      for (const column of result.columns) {
        for (const key of column.id === "direct" ? DIRECT_FIGURES : PROXY_FIGURES) {
          const value = column.figures[key];
          assert.ok(
            typeof value === "number" && Number.isFinite(value),
            `${column.id}.${key} is ${JSON.stringify(value)} (notes: ${column.notes.join("; ")})\n${context}`,
          );
        }
      }
      for (
        const [name, section, keys] of [["auth", result.auth, AUTH_FIGURES], ["acl", result.acl, ACL_FIGURES]] as const
      ) {
        assert.ok(section !== null && section !== undefined, `the ${name} section did not run\n${context}`);
        assert.equal(section.skipped, undefined, `the ${name} section was skipped: ${section.skipped}`);
        for (const key of keys) {
          const value = section.figures[key];
          assert.ok(
            typeof value === "number" && Number.isFinite(value),
            `${name}.${key} is ${JSON.stringify(value)} (notes: ${section.notes.join("; ")})\n${context}`,
          );
        }
      }
      assert.equal(code, 0, context);
    },
  );
}
