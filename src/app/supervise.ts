/**
 * `--workers N` in the supervising process: start the workers, print what
 * worker 1 reported, and wait until they have all stopped.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { CliOptions } from "../cli/options.ts";
import type { ProcessRole } from "../cli/process_role.ts";
import { READY_LINE } from "../cli/ready_lines.ts";
import { superviseWorkers } from "../cli/workers.ts";
import { shutdownLogging } from "../log/logger.ts";
import type { Platform } from "../platform.ts";
import type { NetRuntime } from "../runtime/types.ts";
import { type MetricsService, startSupervisorMetrics } from "./metrics.ts";
import { removePidFile, writePidFile } from "./pid_file.ts";
import type { Report } from "./report.ts";
import { reopenLog } from "./signals.ts";

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
  // The supervisor logs too: it reopens its own --log-file (the workers get the signal forwarded).
  process.on("SIGUSR1", () => void reopenLog("SIGUSR1", logger));
  process.on("SIGHUP", () => void reopenLog("SIGHUP", logger));
  if (options.user !== null) {
    logger.info(
      "--user {user}: each worker switches to it once it listens; the supervisor keeps running as it started, " +
        "since a restarted worker must bind the same ports again (below 1024 that needs root or CAP_NET_BIND_SERVICE, " +
        "and SO_REUSEPORT needs the same uid as the sockets already bound)",
      { user: options.user },
    );
  }
  let group;
  try {
    group = await superviseWorkers(platform.selfCommand, argv, options.workers, logger);
  } catch (error) {
    report(`srelay: cannot start ${options.workers} workers: ${(error as Error).message}`, true);
    await shutdownLogging();
    return 1;
  }
  let metrics: MetricsService | null = null;
  if (options.metrics !== null) {
    try {
      metrics = await startSupervisorMetrics(options, [runtime], group);
    } catch (error) {
      report(`srelay: cannot serve --metrics: ${(error as Error).message}`, true);
      process.kill(process.pid, "SIGTERM");
      await group.stopped;
      await shutdownLogging();
      return 1;
    }
  }
  for (const line of group.lines) report(line);
  if (metrics !== null) report(metrics.line);
  writePidFile(options.pidFile, logger);
  if (role.reportsToParent) report(READY_LINE);
  const code = await group.stopped;
  await metrics?.close();
  removePidFile(options.pidFile);
  logger.info("Stopped");
  await shutdownLogging();
  return code;
}
