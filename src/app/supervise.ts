/**
 * `--workers N` in the supervising process: start the workers, print what
 * worker 1 reported, and wait until they have all stopped.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { CliOptions } from "../cli/options.ts";
import type { ProcessRole } from "../cli/process_role.ts";
import { READY_LINE } from "../cli/ready_child.ts";
import { superviseWorkers } from "../cli/workers.ts";
import { shutdownLogging } from "../log/logger.ts";
import type { Platform } from "../platform.ts";
import type { NetRuntime } from "../runtime/types.ts";
import { removePidFile, writePidFile } from "./pid_file.ts";
import type { Report } from "./report.ts";

/** Runs the supervisor until its workers have stopped; resolves to the exit code. */
export async function runWorkers(
  platform: Platform,
  argv: readonly string[],
  options: CliOptions,
  role: ProcessRole,
  runtime: NetRuntime,
  report: Report,
): Promise<number> {
  const logger = getLogger(["srelay"]);
  if (!runtime.canReusePort) {
    report(
      `srelay: --workers needs SO_REUSEPORT, which the ${runtime.name} socket layer does not offer on ${process.platform}`,
      true,
    );
    await shutdownLogging();
    return 2;
  }
  let group;
  try {
    group = await superviseWorkers(platform.selfCommand, argv, options.workers, logger);
  } catch (error) {
    report(`srelay: cannot start ${options.workers} workers: ${(error as Error).message}`, true);
    await shutdownLogging();
    return 1;
  }
  for (const line of group.lines) report(line);
  writePidFile(options.pidFile, logger);
  if (role.reportsToParent) report(READY_LINE);
  const code = await group.stopped;
  removePidFile(options.pidFile);
  logger.info("Stopped");
  await shutdownLogging();
  return code;
}
