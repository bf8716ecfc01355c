/**
 * For the tests of `privileges_bun.ts` and `privileges_deno.ts`: runs a
 * child of this runtime, as root, that drops to nobody (65534/65534) with
 * the adapter and reports what every thread's ids became. Dropping in the
 * test runner itself would leave it unable to clean up.
 *
 * @module
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Credentials } from "./privileges.ts";

/** What the child saw. */
export interface Probe {
  readonly before: Credentials;
  readonly after?: Credentials;
  readonly regained?: boolean;
  readonly error?: string;
  /** Each thread's `Uid:`, `Gid:` and `Groups:` lines after the drop (trailing blanks cut), joined by `|`. */
  readonly threads: readonly string[];
}

/** Why the probe cannot run here, or false. */
export function probeSkip(): string | false {
  if (process.platform !== "linux") return "Linux only";
  if (process.geteuid?.() !== 0) return "needs root";
  try {
    execFileSync("setpriv", ["--version"], { stdio: "ignore" });
  } catch {
    return "needs setpriv (util-linux)";
  }
  return false;
}

/**
 * Runs `runtime` on a script that imports `load` (an expression giving the
 * `PrivilegeOps`, with `imports` before it) and drops to nobody. The child
 * starts as root with the supplementary groups 4 and 24 (`setpriv`), or,
 * with `withoutSetid`, as root without CAP_SETUID and CAP_SETGID.
 */
export function probeDrop(
  runtime: readonly string[],
  imports: string,
  load: string,
  withoutSetid = false,
): Probe {
  const dir = mkdtempSync(join(tmpdir(), "srelay-privileges-"));
  const script = join(dir, "probe.ts");
  writeFileSync(
    script,
    `${imports}
import { readdirSync, readFileSync } from "node:fs";
const ops = await ${load};
const out: Record<string, unknown> = { before: ops.current() };
try {
  ops.drop(65534, 65534);
  out.after = ops.current();
  out.regained = ops.regainRoot();
} catch (error) {
  out.error = (error as Error).message;
}
out.threads = readdirSync("/proc/self/task").map((task) =>
  (readFileSync("/proc/self/task/" + task + "/status", "utf8").match(/^(Uid|Gid|Groups):.*$/gm) ?? []).map((line) => line.trimEnd()).join("|")
);
console.log(JSON.stringify(out));
process.exit(0);
`,
  );
  const wrapper = withoutSetid
    ? ["--bounding-set", "-setuid,-setgid", "--inh-caps", "-setuid,-setgid"]
    : ["--groups", "4,24", "--reuid", "0", "--regid", "0"];
  try {
    const result = spawnSync("setpriv", [...wrapper, "--", ...runtime, script], {
      encoding: "utf8",
      timeout: 30_000,
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
    });
    const line = result.stdout.trim().split("\n").at(-1) ?? "";
    if (!line.startsWith("{")) throw new Error(`the probe printed no result:\n${result.stdout}\n${result.stderr}`);
    return JSON.parse(line) as Probe;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
