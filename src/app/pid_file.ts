/**
 * `-p FILE`: the PID file, written once the server listens and removed when
 * it stops. A failure to write is logged, not fatal (as in srelay).
 *
 * @module
 */
import { unlinkSync, writeFileSync } from "node:fs";
import type { Logger } from "@logtape/logtape";

/** Writes this process's PID to `path` (if set). */
export function writePidFile(path: string | null, logger: Logger): void {
  if (path === null) return;
  try {
    writeFileSync(path, `${process.pid}\n`);
  } catch (error) {
    logger.error("Cannot write PID file {file}: {error}", { file: path, error: (error as Error).message });
  }
}

/** Removes the PID file (if set and still there). */
export function removePidFile(path: string | null): void {
  if (path === null) return;
  try {
    unlinkSync(path);
  } catch {
    // Already gone: nothing to remove.
  }
}
