/**
 * Builds srelay's single-file executables into `dist/`.
 *
 *     bun scripts/build.ts                       every target, with Bun
 *     bun scripts/build.ts --host                the host target only (CI)
 *     deno run -A scripts/build.ts --runtime deno [--host]
 *
 * Bun builds go through `Bun.build({ compile })` and land in
 * `dist/srelay-<os>-<arch>[-musl][.exe]`; `.env` and `bunfig.toml` autoloading
 * is off so a stray file in the user's directory cannot change the binary's
 * behaviour. For start-up time the modules are embedded as JavaScriptCore
 * bytecode (`bytecode`) and split into chunks (`splitting`): what
 * `src/main.ts` and `src/entry/bun.ts` load with `import()`, and the node:
 * modules behind it, is read only when a run needs it. The embedded source
 * maps keep stack traces pointing at `src/` files. Deno builds run
 * `deno compile` and land in `dist/deno/`; they need Deno's `denort`
 * runtime for each target, which `deno compile` downloads from Deno's own
 * host (not from a package registry).
 * Each run writes `SHA256SUMS` for the artifacts it built, in `sha256sum`
 * format, and smoke-tests the host artifact with `-V`.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { DENO_PERMISSIONS } from "../src/entry/deno_permissions.ts";
import { VERSION } from "../src/version.ts";
import { artifactName, hostTarget, type Target, TARGETS } from "./targets.ts";

/** The slice of Bun's build API this script uses. */
interface BunBuildApi {
  build(config: {
    entrypoints: string[];
    compile: {
      target: string;
      outfile: string;
      autoloadDotenv: boolean;
      autoloadBunfig: boolean;
    };
    format: "esm";
    bytecode: boolean;
    splitting: boolean;
    minify: boolean;
    sourcemap: "linked";
    throw: boolean;
  }): Promise<{ success: boolean; logs: unknown[]; outputs: { kind: string; path: string }[] }>;
}

/** Options taken from the command line. */
interface BuildOptions {
  readonly runtime: "bun" | "deno";
  readonly hostOnly: boolean;
}

/** What one successful target build produced. */
interface Artifact {
  readonly name: string;
  readonly path: string;
  readonly seconds: number;
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Upper bound for one target's build, including any runtime download. */
const TARGET_TIMEOUT_MS = 300_000;
/** Upper bound for running a built binary with `-V`. */
const SMOKE_TIMEOUT_MS = 20_000;
const USAGE = `usage: build.ts [--host] [--runtime bun|deno]
  --host          build only the target of this machine (default: all targets)
  --runtime bun   compile with Bun.build into dist/ (default; run the script with bun)
  --runtime deno  compile with deno compile into dist/deno/`;

function parseOptions(args: readonly string[]): BuildOptions {
  let runtime: BuildOptions["runtime"] = "bun";
  let hostOnly = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--host") {
      hostOnly = true;
    } else if (arg === "--runtime" || arg?.startsWith("--runtime=")) {
      const value = arg === "--runtime" ? args[++i] : arg.slice("--runtime=".length);
      if (value !== "bun" && value !== "deno") {
        throw new Error(
          `Cannot parse options: --runtime must be bun or deno, not ${value ?? "nothing"}\n${USAGE}`,
        );
      }
      runtime = value;
    } else if (arg === "-h" || arg === "--help") {
      console.log(USAGE);
      process.exit(0);
    } else {
      throw new Error(`Cannot parse options: unknown argument ${arg}\n${USAGE}`);
    }
  }
  return { runtime, hostOnly };
}

function selectTargets(hostOnly: boolean): Target[] {
  if (!hostOnly) return [...TARGETS];
  const host = hostTarget();
  if (host === undefined) {
    throw new Error(
      `Cannot build for the host: ${process.platform}-${process.arch} is not a release target`,
    );
  }
  return [host];
}

/** Rejects after `ms` milliseconds unless `work` settles first. */
async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Cannot ${what}: gave up after ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a command, streaming its output, and resolves with its exit code and stderr. */
function run(
  command: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (chunk: Uint8Array) => {
      stdout += new TextDecoder().decode(chunk);
      process.stdout.write(chunk);
    });
    child.stderr.on("data", (chunk: Uint8Array) => {
      stderr += new TextDecoder().decode(chunk);
      process.stderr.write(chunk);
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function bunApi(): BunBuildApi {
  const bun = (globalThis as { Bun?: BunBuildApi }).Bun;
  if (bun === undefined) {
    throw new Error(
      "Cannot build with Bun: this script is not running under Bun (run `bun scripts/build.ts`)",
    );
  }
  return bun;
}

async function buildWithBun(bun: BunBuildApi, target: Target, outfile: string): Promise<void> {
  const result = await withTimeout(
    bun.build({
      // The hash worker (bcrypt, SHA-crypt off the event loop) is a second entry point:
      // inside the binary it is /$bunfs/root/auth/hash_worker.js.
      entrypoints: [join(ROOT, "src/entry/bun.ts"), join(ROOT, "src/auth/hash_worker.ts")],
      compile: { target: target.bun, outfile, autoloadDotenv: false, autoloadBunfig: false },
      format: "esm",
      bytecode: true,
      splitting: true,
      minify: true,
      sourcemap: "linked",
      throw: false,
    }),
    TARGET_TIMEOUT_MS,
    `build ${target.bun}`,
  );
  if (!result.success) {
    throw new Error(
      `Cannot build ${target.bun}: ${result.logs.map(String).join("\n") || "Bun.build failed"}`,
    );
  }
  // The executable embeds the source maps; the side files Bun also writes (one per chunk) are not shipped.
  for (const output of result.outputs) {
    if (output.kind === "sourcemap") rmSync(output.path, { force: true });
  }
}

function denoCommand(): string {
  if ("Deno" in globalThis) return process.execPath;
  const local = join(ROOT, "node_modules/.bin/deno");
  return existsSync(local) ? local : "deno";
}

async function buildWithDeno(target: Target, outfile: string): Promise<void> {
  if (target.deno === undefined) {
    throw new Error(
      `Cannot build ${
        artifactName(target)
      } with Deno: deno compile has no ${target.os}-${target.arch}-${target.libc} target`,
    );
  }
  const args = [
    "compile",
    "--frozen",
    "--unstable-net",
    ...DENO_PERMISSIONS,
    "--target",
    target.deno,
    "--output",
    outfile,
    "--include",
    join(ROOT, "src/auth/hash_worker.ts"),
    join(ROOT, "src/entry/deno.ts"),
  ];
  console.log(`$ deno ${args.join(" ")}`);
  const { code, stderr } = await run(denoCommand(), args, TARGET_TIMEOUT_MS);
  if (code === 0) return;
  const download = /denort|dl\.deno\.land|error sending request|dns error/i.test(stderr);
  throw new Error(
    download
      ? `Cannot build ${target.deno} with deno compile: it must download the denort runtime for that target from Deno's download host, and that download failed (the project's build machines reach only the npm and Debian registries, so it always fails there). Build on a machine that can reach Deno's download host, or, for the host target only, set DENORT_BIN to a local denort binary of the same Deno version`
      : `Cannot build ${target.deno} with deno compile: it exited with code ${code}`,
  );
}

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}

/** Runs the host artifact with `-V` and checks that it prints {@link VERSION}. */
async function smokeTest(path: string): Promise<void> {
  const { stdout, stderr } = await run(path, ["-V"], SMOKE_TIMEOUT_MS);
  if (!`${stdout}\n${stderr}`.includes(VERSION)) {
    throw new Error(`Cannot verify ${path}: \`-V\` did not print version ${VERSION}`);
  }
}

function formatMiB(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const targets = selectTargets(options.hostOnly);
  const outDir = join(ROOT, options.runtime === "bun" ? "dist" : "dist/deno");
  mkdirSync(outDir, { recursive: true });
  const bun = options.runtime === "bun" ? bunApi() : undefined;
  const host = hostTarget();
  const built: Artifact[] = [];
  const failures: string[] = [];
  console.log(
    `srelay ${VERSION}: building ${targets.length} target(s) with ${options.runtime} into ${outDir}`,
  );
  for (const target of targets) {
    const name = artifactName(target);
    const path = join(outDir, name);
    const started = performance.now();
    if (options.runtime === "deno" && target.deno === undefined) {
      console.log(`skip ${name}: deno compile has no musl target`);
      continue;
    }
    try {
      rmSync(path, { force: true });
      await (bun === undefined ? buildWithDeno(target, path) : buildWithBun(bun, target, path));
      if (target === host) await smokeTest(path);
      const seconds = (performance.now() - started) / 1000;
      built.push({ name, path, seconds });
      console.log(`built ${name}  ${formatMiB(statSync(path).size)}  ${seconds.toFixed(1)} s`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      failures.push(`${name}: ${message}`);
      console.error(`FAILED ${name}: ${message}`);
    }
  }
  if (built.length > 0) {
    const lines = await Promise.all(built.map(async (a) => `${await sha256(a.path)}  ${a.name}\n`));
    writeFileSync(join(outDir, "SHA256SUMS"), lines.join(""));
    console.log(`wrote ${join(outDir, "SHA256SUMS")}`);
  }
  if (failures.length > 0) {
    console.error(`build: ${failures.length} of ${targets.length} target(s) failed`);
    return 1;
  }
  return 0;
}

try {
  process.exit(await main());
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(2);
}
