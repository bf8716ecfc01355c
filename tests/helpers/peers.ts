/**
 * Which Debian peers (curl, ncat, microsocks, ...) are installed, so tests
 * that need one can skip with a clear reason when it is missing.
 *
 * @module
 */
import { spawnSync } from "node:child_process";

const found = new Map<string, string | null>();

/** Absolute path of `program` on PATH (also /usr/sbin), or null. */
export function which(program: string): string | null {
  if (!found.has(program)) {
    const result = spawnSync("sh", ["-c", `PATH="$PATH:/usr/sbin:/sbin" command -v ${program}`], {
      encoding: "utf8",
    });
    found.set(program, result.status === 0 ? result.stdout.trim() : null);
  }
  return found.get(program)!;
}

/** `false` when `program` is installed, else a skip reason naming the Debian package. */
export function needs(program: string, debianPackage = program): string | false {
  return which(program) === null ? `${program} is not installed (apt-get install ${debianPackage})` : false;
}
