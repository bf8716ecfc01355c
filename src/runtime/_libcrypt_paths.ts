/**
 * Where libcrypt is on this system, for the Bun and Deno crypt(3) adapters.
 *
 * @module
 */
import { existsSync } from "node:fs";

/** Folders libcrypt is looked for in (absolute paths only: a bare name could be found in the working directory). */
const LIBRARY_DIRS: readonly string[] = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib/aarch64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/lib64",
  "/usr/lib64",
  "/lib",
  "/usr/lib",
  "/usr/local/lib",
];

/** Absolute paths of the libcrypt files present on this system, best first. */
export function libcryptPaths(): string[] {
  const found: string[] = [];
  for (const name of ["libcrypt.so.1", "libcrypt.so.2"]) {
    for (const dir of LIBRARY_DIRS) {
      const path = `${dir}/${name}`;
      if (existsSync(path)) found.push(path);
    }
  }
  return found;
}
