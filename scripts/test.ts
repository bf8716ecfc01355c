/**
 * The project's test command (`npm test`, `deno task test`, `.ci/run` all
 * reach it through `scripts/test.sh`).
 *
 * 1. Builds the host binary with `scripts/build.ts --host`, then runs
 *    `deno lint` and `deno fmt --check` (each counted as one test).
 * 2. Runs the examples in JSDoc (`deno test --doc` over `src` and `mod.ts`,
 *    test files excluded), each example counted as one test.
 * 3. Runs every `*_test.ts` under `src/` and `tests/` with `deno test -A`,
 *    then with `bun test`, streaming their usual output, with `SRELAY_BIN`
 *    set to the binary's absolute path so end-to-end tests can run it. The
 *    end-to-end tests (`tests/e2e/`) run under `bun test` only: each starts
 *    srelay under every runtime itself, so a second runner would repeat the
 *    same matrix.
 * 4. Runs the benchmark's smoke test (`tests/bench/smoke.ts`: one
 *    `scripts/bench.ts --quick --json`, then a check per server and per
 *    section) in a `bun test` of its own, after the others: it is not a unit
 *    test, so its name keeps it out of the runs above.
 * 5. Counts results from each runner's JUnit report and ends with exactly one
 *    line `tests: N passed, N failed`, summed over every step.
 *
 * Each step has a time limit (`SRELAY_TEST_TIMEOUT`, seconds per runner,
 * default 900; `SRELAY_BENCH_TEST_TIMEOUT` for the bench step, default 300).
 * A step that fails without a failing test to show for it (a build error, a
 * crash, a timeout, a runner that ran no test) counts as one failed test, so
 * the closing line never reads "0 failed" for a broken run. Exits 1 when
 * anything failed.
 *
 * `--only STEP,...` runs only those steps (build, lint, fmt, doc, deno, bun,
 * bench), e.g. `bun scripts/test.ts --only bench`; the closing line counts
 * what ran.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { artifactName, hostTarget } from "./targets.ts";

/** Counts taken from one JUnit report. */
interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/** How one step ended. */
interface StepResult {
  readonly code: number | null;
  readonly timedOut: boolean;
  readonly seconds: number;
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BUN = join(ROOT, "node_modules/.bin/bun");
const DENO = join(ROOT, "node_modules/.bin/deno");
const BUILD_TIMEOUT_S = 300;
const RUNNER_TIMEOUT_S = positiveNumber(process.env.SRELAY_TEST_TIMEOUT) ?? 900;
const BENCH_TIMEOUT_S = positiveNumber(process.env.SRELAY_BENCH_TEST_TIMEOUT) ?? 300;
/** The benchmark's smoke test, run in a step of its own. */
const BENCH_SMOKE = "./tests/bench/smoke.ts";
/** The steps, in the order they run. */
const STEPS = ["build", "lint", "fmt", "doc", "deno", "bun", "bench"] as const;
type Step = typeof STEPS[number];
/** Bun's per-test default (5 s) is too short for end-to-end tests; tests may still set their own. */
const BUN_TEST_TIMEOUT_MS = 30_000;
/** How long a step that ran out of time has, after SIGTERM, before its process group is killed. */
const STOP_GRACE_MS = 5000;
const TEST_DIRS = ["src", "tests"];
/** What `deno lint` and `deno fmt --check` look at. */
const SOURCES = ["src", "tests", "scripts", "mod.ts"];
/**
 * Test files (or folders, ending in `/`) that run under `bun test` only:
 * they start srelay under every runtime themselves.
 */
const BUN_ONLY = ["tests/e2e/"];

function positiveNumber(text: string | undefined): number | undefined {
  const value = Number(text);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/** Children still running, killed (with their process groups) if we are interrupted. */
const running = new Set<number>();

function isBunOnly(file: string): boolean {
  const path = relative(ROOT, file).split(sep).join("/");
  return BUN_ONLY.some((entry) => entry.endsWith("/") ? path.startsWith(entry) : path === entry);
}

function findTestFiles(dir: string, found: string[]): string[] {
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== "node_modules") findTestFiles(path, found);
    else if (entry.isFile() && entry.name.endsWith("_test.ts")) found.push(path);
  }
  return found;
}

/**
 * Runs a command in its own process group, streaming its output. After
 * `timeoutS` the group gets SIGTERM (the bench then stops the servers it
 * started in groups of their own) and, `STOP_GRACE_MS` later, SIGKILL.
 */
function runStep(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutS: number,
): Promise<StepResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env,
      stdio: ["ignore", "inherit", "inherit"],
      detached: true,
    });
    const pid = child.pid;
    let timedOut = false;
    if (pid !== undefined) running.add(pid);
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(`\n${command} did not finish within ${timeoutS} s: stopping it`);
      if (pid !== undefined) {
        killGroup(pid, "SIGTERM");
        setTimeout(() => killGroup(pid), STOP_GRACE_MS);
      }
    }, timeoutS * 1000);
    const finish = (code: number | null) => {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      setTimeout(() => {
        if (pid !== undefined) {
          running.delete(pid);
          killGroup(pid);
        }
        resolve({ code, timedOut, seconds });
      }, timedOut ? STOP_GRACE_MS : 0);
    };
    child.on("error", (error) => {
      console.error(`Cannot run ${command}: ${error.message}`);
      finish(null);
    });
    child.on("exit", (code) => finish(code));
  });
}

/** Signals a process group (SIGKILL unless told), ignoring groups that are already gone. */
function killGroup(pid: number, signal: NodeJS.Signals = "SIGKILL"): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group has already exited.
  }
}

function attribute(attributes: string, name: string): string {
  return new RegExp(`\\b${name}="([^"]*)"`).exec(attributes)?.[1] ?? "";
}

/**
 * Counts the test cases of a JUnit report. With `leavesOnly`, a case whose
 * name is the `A > B` prefix of another case is a group (Deno reports each
 * `describe` as a case and its tests as `describe > test` steps) and is not
 * counted.
 */
function countJunit(xml: string, leavesOnly: boolean): Counts {
  const cases = [...xml.matchAll(/<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)].map((
    m,
  ) => ({
    name: attribute(m[1] ?? "", "name"),
    body: m[2] ?? "",
  }));
  const names = cases.map((c) => c.name);
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  for (const c of cases) {
    if (leavesOnly && names.some((n) => n.startsWith(`${c.name} &gt; `))) continue;
    if (/<(failure|error)\b/.test(c.body)) counts.failed++;
    else if (/<skipped\b/.test(c.body)) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

/** Turns a runner's exit and report into counts, adding one failure for a run that broke without saying why. */
function judge(runner: string, step: StepResult, reportPath: string, leavesOnly: boolean, timeoutS: number): Counts {
  const counts = existsSync(reportPath)
    ? countJunit(readFileSync(reportPath, "utf8"), leavesOnly)
    : { passed: 0, failed: 0, skipped: 0 };
  const total = counts.passed + counts.failed + counts.skipped;
  let problem = "";
  if (step.timedOut) problem = `was killed after ${timeoutS} s`;
  else if (step.code !== 0 && counts.failed === 0) {
    problem = `exited with code ${step.code} without a failing test in its report`;
  } else if (total === 0) problem = "ran no test";
  if (problem !== "") {
    console.log(`${runner} ${problem}: counted as one failed test`);
    counts.failed++;
  }
  console.log(
    `runner ${runner}: passed ${counts.passed}, failed ${counts.failed}, skipped ${counts.skipped} (${
      step.seconds.toFixed(1)
    } s)`,
  );
  return counts;
}

/** Runs a command that passes or fails as a whole, counted as one test. */
async function check(name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Counts> {
  console.log(`== ${name}: ${relative(ROOT, command)} ${args.join(" ")}`);
  const step = await runStep(command, args, env, BUILD_TIMEOUT_S);
  if (step.code === 0) return { passed: 1, failed: 0, skipped: 0 };
  console.log(`${name} ${step.timedOut ? "timed out" : "failed"}: counted as one failed test`);
  return { passed: 0, failed: 1, skipped: 0 };
}

/** The steps `--only` picks, or every step. */
function parseSteps(args: readonly string[]): ReadonlySet<Step> {
  if (args.length === 0) return new Set(STEPS);
  const wanted = args[0] === "--only" && args.length === 2 ? (args[1] ?? "").split(",").filter(Boolean) : [];
  const unknown = wanted.filter((name) => !(STEPS as readonly string[]).includes(name));
  if (wanted.length === 0 || unknown.length > 0) {
    throw new Error(`usage: test.ts [--only STEP,...] (steps: ${STEPS.join(", ")})`);
  }
  return new Set(STEPS.filter((step) => wanted.includes(step)));
}

async function main(steps: ReadonlySet<Step>): Promise<number> {
  for (const bin of [BUN, DENO]) {
    if (!existsSync(bin)) {
      console.error(`Cannot run the tests: ${relative(ROOT, bin)} is missing (run npm ci first)`);
      return 1;
    }
  }
  const total: Counts = { passed: 0, failed: 0, skipped: 0 };
  const add = (counts: Counts) => {
    total.passed += counts.passed;
    total.failed += counts.failed;
    total.skipped += counts.skipped;
  };
  const env: NodeJS.ProcessEnv = { ...process.env, DENO_NO_UPDATE_CHECK: "1" };

  if (steps.has("build")) {
    console.log("== build: bun scripts/build.ts --host");
    const build = await runStep(BUN, ["scripts/build.ts", "--host"], env, BUILD_TIMEOUT_S);
    if (build.code !== 0) {
      console.log("build of the host binary failed: counted as one failed test");
      total.failed++;
    }
  }
  if (steps.has("lint")) add(await check("lint", DENO, ["lint", ...SOURCES], env));
  if (steps.has("fmt")) add(await check("fmt", DENO, ["fmt", "--check", ...SOURCES], env));
  const host = hostTarget();
  const binary = host === undefined ? undefined : join(ROOT, "dist", artifactName(host));
  if (binary !== undefined && existsSync(binary)) env.SRELAY_BIN = binary;

  const files = TEST_DIRS.flatMap((dir) => findTestFiles(join(ROOT, dir), []))
    .sort()
    .map((path) => ({ path: `./${relative(ROOT, path)}`, bunOnly: isBunOnly(path) }));
  const everyFile = files.map((file) => file.path);
  const denoFiles = files.filter((file) => !file.bunOnly).map((file) => file.path);
  if (steps.has("deno") || steps.has("bun")) {
    console.log(
      `== ${files.length} test file(s), ${files.length - denoFiles.length} under bun test only; SRELAY_BIN=${
        env.SRELAY_BIN ?? "(unset)"
      }`,
    );
  }

  const reports = mkdtempSync(join(tmpdir(), "srelay-test-"));
  try {
    const runners: {
      name: Step;
      title: string;
      files: string[];
      command: string;
      args: string[];
      report: string;
      leavesOnly: boolean;
      timeoutS: number;
    }[] = [
      {
        name: "doc",
        title: "deno test --doc (JSDoc examples)",
        files: ["src", "mod.ts"],
        command: DENO,
        args: ["test", "--doc", "-A", "--ignore=**/*_test.ts", `--junit-path=${join(reports, "doc.xml")}`],
        report: join(reports, "doc.xml"),
        leavesOnly: true,
        timeoutS: RUNNER_TIMEOUT_S,
      },
      {
        name: "deno",
        title: "deno test",
        files: denoFiles,
        command: DENO,
        args: ["test", "-A", `--junit-path=${join(reports, "deno.xml")}`],
        report: join(reports, "deno.xml"),
        leavesOnly: true,
        timeoutS: RUNNER_TIMEOUT_S,
      },
      {
        name: "bun",
        title: "bun test",
        files: everyFile,
        command: BUN,
        args: [
          "test",
          `--timeout=${BUN_TEST_TIMEOUT_MS}`,
          "--reporter=junit",
          `--reporter-outfile=${join(reports, "bun.xml")}`,
        ],
        report: join(reports, "bun.xml"),
        leavesOnly: false,
        timeoutS: RUNNER_TIMEOUT_S,
      },
      {
        name: "bench",
        title: "bun test tests/bench/smoke.ts (the benchmark's smoke test: bench --quick --json)",
        files: [BENCH_SMOKE],
        command: BUN,
        args: ["test", "--reporter=junit", `--reporter-outfile=${join(reports, "bench.xml")}`],
        report: join(reports, "bench.xml"),
        leavesOnly: false,
        timeoutS: BENCH_TIMEOUT_S,
      },
    ];
    const lines: string[] = [];
    for (const runner of runners.filter((r) => steps.has(r.name))) {
      console.log(`== ${runner.title}`);
      const step = runner.files.length === 0
        ? { code: 0, timedOut: false, seconds: 0 }
        : await runStep(runner.command, [...runner.args, ...runner.files], env, runner.timeoutS);
      const counts = judge(runner.name, step, runner.report, runner.leavesOnly, runner.timeoutS);
      lines.push(`${runner.name} ${counts.skipped}`);
      add(counts);
    }
    console.log(`skipped: ${total.skipped} (${lines.join(", ")})`);
  } finally {
    rmSync(reports, { recursive: true, force: true });
  }
  console.log(`tests: ${total.passed} passed, ${total.failed} failed`);
  return total.failed === 0 ? 0 : 1;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    for (const pid of running) killGroup(pid);
    process.exit(130);
  });
}

try {
  process.exit(await main(parseSteps(process.argv.slice(2))));
} catch (error) {
  for (const pid of running) killGroup(pid);
  console.error(`Cannot run the tests: ${error instanceof Error ? error.message : String(error)}`);
  console.log("tests: 0 passed, 1 failed");
  process.exit(1);
}
