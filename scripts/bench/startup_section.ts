/**
 * The start-up section of the benchmark: how long srelay takes from exec to
 * its start-up lines, and the compiled binary's size.
 *
 * Each start is timed by the load generator (`loadgen startup`, in C): from
 * just before the fork of `srelay -f -i 127.0.0.1:0 -c EMPTY` to the first
 * output that holds `listening on` (printed on stdout once every listener is
 * open), and, for the binary, to the log line that holds ` started on `
 * (stderr); then the process group is killed. The same is timed for srelay
 * on Bun and on Deno, and for the floor each runtime sets: a program that
 * only prints one line, compiled with `bun build --compile --minify` (as
 * the release binary is) and run by bun and by deno.
 *
 * Every run starts each command once, in an order that rotates per run, so
 * that a busy moment of the machine does not land on one command only; the
 * figures are the medians over the runs (after one untimed start of each),
 * and for the binaries also the fastest start. With a baseline binary (the bench's
 * `--baseline-binary PATH`, e.g. a copy of `dist/srelay-linux-x64` from
 * before a change), it runs in the same rounds, and the ratio is the median
 * of each run's binary ÷ baseline.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { median, type SectionResult, STARTUP_FIGURES } from "./figures.ts";
import { type Loadgen, startup } from "./loadgen.ts";
import type { ServerContext } from "./servers.ts";

/** Sizes of the section. */
export interface StartupSettings {
  /** Starts of each command. */
  readonly runs: number;
  /** Another srelay binary to start in the same rounds, or undefined. */
  readonly baseline?: string;
}

/** Longest one start may take before it counts as failed. */
const START_SECONDS = 20;
const MIB = 1024 * 1024;
const LISTENING = "listening on";
const STARTED = " started on ";

/** One command the section starts, and the figure key of each pattern it waits for. */
interface Candidate {
  readonly name: string;
  readonly command: readonly string[];
  readonly patterns: readonly { readonly text: string; readonly key: string }[];
  readonly env?: Readonly<Record<string, string>>;
}

function round(key: string, value: number): number {
  return key.endsWith("ratio") ? Math.round(value * 1000) / 1000 : Math.round(value * 100) / 100;
}

/** Compiles the one-line floor program with `bun build --compile --minify`; returns its path or an error. */
function compileFloor(context: ServerContext, source: string): { path?: string; error?: string } {
  const path = join(context.workDir, "floor-compiled");
  const build = spawnSync(
    context.bun,
    ["build", "--compile", "--minify", "--outfile", path, source],
    { cwd: context.workDir, stdio: ["ignore", "ignore", "pipe"], timeout: 120_000, encoding: "utf8" },
  );
  if (build.status === 0 && existsSync(path)) return { path };
  return { error: `bun build --compile failed: ${(build.stderr ?? "").trim().split("\n")[0] ?? ""}` };
}

/** Measures the start-up figures. */
export async function measureStartup(
  loadgen: Loadgen,
  context: ServerContext,
  settings: StartupSettings,
  progress: (message: string) => void,
): Promise<SectionResult> {
  const label = "srelay: the compiled binary, on Bun and on Deno";
  const routes = join(context.workDir, "startup.conf");
  writeFileSync(routes, "");
  const serve = ["-f", "-i", "127.0.0.1:0", "-c", routes];
  const floor = join(context.workDir, "floor.ts");
  writeFileSync(floor, 'console.log("listening on 127.0.0.1:0");\n');
  const setup = [
    `\`${
      serve.join(" ").replace(routes, "EMPTY")
    }\` started ${settings.runs} times each, in an order that rotates per run; each start is killed once it printed what is timed`,
    `timed by the C load generator from just before the fork to the first output holding "${LISTENING}" (stdout) and, for the binaries, "${STARTED.trim()}" (stderr)`,
    "floors: a program that only prints one line, compiled with `bun build --compile --minify`, run by `bun` and by `deno run`",
  ];
  const samples: Record<string, number[]> = {};
  const notes: string[] = [];
  const add = (key: string, value: number) => (samples[key] ??= []).push(value);
  if (!existsSync(context.binary)) {
    return { server: label, setup, figures: {}, samples, skipped: `${context.binary} does not exist`, notes };
  }
  add("bin_size_mib", statSync(context.binary).size / MIB);
  const binaryPatterns = (prefix: string) => [
    { text: LISTENING, key: `${prefix}_listening_ms` },
    { text: STARTED, key: `${prefix}_started_ms` },
  ];
  const candidates: Candidate[] = [
    { name: "binary", command: [context.binary, ...serve], patterns: binaryPatterns("bin") },
    {
      name: "bun",
      command: [context.bun, join(context.root, "src/entry/bun.ts"), ...serve],
      patterns: [{ text: LISTENING, key: "bun_listening_ms" }],
    },
    {
      name: "deno",
      command: [context.deno, "run", "-A", join(context.root, "src/entry/deno.ts"), ...serve],
      patterns: [{ text: LISTENING, key: "deno_listening_ms" }],
      env: { DENO_NO_UPDATE_CHECK: "1" },
    },
    { name: "floor bun", command: [context.bun, floor], patterns: [{ text: LISTENING, key: "floor_bun_ms" }] },
    {
      name: "floor deno",
      command: [context.deno, "run", floor],
      patterns: [{ text: LISTENING, key: "floor_deno_ms" }],
      env: { DENO_NO_UPDATE_CHECK: "1" },
    },
  ];
  if (settings.baseline !== undefined) {
    if (!existsSync(settings.baseline)) {
      return {
        server: label,
        setup,
        figures: {},
        samples,
        skipped: `the baseline binary ${settings.baseline} does not exist`,
        notes,
      };
    }
    add("baseline_size_mib", statSync(settings.baseline).size / MIB);
    setup.push(`baseline: ${settings.baseline}, started in the same runs`);
    candidates.push({
      name: "baseline",
      command: [settings.baseline, ...serve],
      patterns: binaryPatterns("baseline"),
    });
  }
  progress("start-up: compiling the floor program with bun build --compile");
  const compiled = compileFloor(context, floor);
  if (compiled.path === undefined) notes.push(`no compiled floor: ${compiled.error}`);
  else {candidates.push({
      name: "floor compiled",
      command: [compiled.path],
      patterns: [{ text: LISTENING, key: "floor_compiled_ms" }],
    });}

  try {
    // One untimed start each first: the first exec after a build reads the binary from disk.
    for (const candidate of candidates) {
      await startup(loadgen, candidate.patterns.map((p) => p.text), candidate.command, START_SECONDS, candidate.env);
    }
    for (let run = 0; run < settings.runs; run++) {
      const taken: Record<string, number> = {};
      for (let i = 0; i < candidates.length; i++) {
        const candidate = candidates[(i + run) % candidates.length]!;
        const result = await startup(
          loadgen,
          candidate.patterns.map((p) => p.text),
          candidate.command,
          START_SECONDS,
          candidate.env,
        );
        candidate.patterns.forEach((pattern, index) => (taken[pattern.key] = result.ms[index] ?? NaN));
      }
      for (const [key, value] of Object.entries(taken)) add(key, value);
      if (taken.baseline_listening_ms !== undefined && taken.bin_listening_ms !== undefined) {
        add("bin_vs_baseline_ratio", taken.bin_listening_ms / taken.baseline_listening_ms);
      }
      progress(
        `start-up run ${run + 1}/${settings.runs}: binary ${taken.bin_listening_ms?.toFixed(1)} ms${
          taken.baseline_listening_ms === undefined ? "" : ` (baseline ${taken.baseline_listening_ms.toFixed(1)} ms)`
        }, bun ${taken.bun_listening_ms?.toFixed(1)} ms, deno ${taken.deno_listening_ms?.toFixed(1)} ms, floors ${
          taken.floor_compiled_ms?.toFixed(1)
        }/${taken.floor_bun_ms?.toFixed(1)}/${taken.floor_deno_ms?.toFixed(1)} ms`,
      );
    }
  } catch (error) {
    notes.push(`measurement failed: ${(error instanceof Error ? error.message : String(error)).split("\n")[0]}`);
    progress(`start-up section failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  const figures: Record<string, number | null> = {};
  for (const { key } of STARTUP_FIGURES) {
    if (key.startsWith("baseline") || key === "bin_vs_baseline_ratio") {
      if (settings.baseline === undefined) continue;
    }
    const fastest = /^(\w+)_listening_min_ms$/.exec(key);
    const taken = samples[fastest === null ? key : `${fastest[1]}_listening_ms`] ?? [];
    const value = fastest === null ? median(taken) : taken.length === 0 ? null : Math.min(...taken);
    figures[key] = value === null ? null : round(key, value);
  }
  for (const key of Object.keys(samples)) samples[key] = samples[key]!.map((v) => round(key, v));
  return { server: label, setup, figures, samples, notes };
}
