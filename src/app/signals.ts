/**
 * Step 5 of `run()`: SIGHUP reloads every reloadable file into one new
 * policy snapshot, put in force whole or rejected whole; SIGTERM and SIGINT
 * drain the server (no new sessions, up to `--grace` for running ones);
 * SIGUSR1 closes `--log-file` and opens it again (log rotation), and so
 * does SIGHUP when the file was renamed or removed.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { formatIssue } from "../config/config_issue.ts";
import type { CliOptions } from "../cli/options.ts";
import { reopenLogFile, shutdownLogging } from "../log/logger.ts";
import { readPolicyFiles } from "../policy/load.ts";
import { policyFiles } from "./policy_files.ts";
import type { Composition } from "./compose.ts";
import { logPolicyFiles } from "./log_policy.ts";

/** The installed handlers' state. */
export interface Signals {
  /** True once SIGTERM or SIGINT arrived. */
  readonly stopping: boolean;
  /** Resolves with the exit code once the server has drained and logging is flushed. */
  readonly exited: Promise<number>;
}

/** Reads the files again and swaps the policy, or keeps the old one and says why. */
export function reload(options: CliOptions, composition: Composition, logger: Logger): boolean {
  logger.info("SIGHUP received: reloading {file}", { file: options.config.path });
  const read = readPolicyFiles(policyFiles(options));
  if (!read.ok) {
    for (const issue of read.issues) logger.error("{issue}", { issue: formatIssue(issue) });
    logger.error(
      "Reload rejected: {file} has errors; the previous route table stays in force, and so does every other file",
      { file: read.failedFile },
    );
    return false;
  }
  composition.swapPolicy(read.files);
  logPolicyFiles(logger, options, read.files, read.issues, composition.hostsAccess());
  return true;
}

/**
 * Closes `--log-file` and opens it again by name (after logrotate renamed
 * it); on SIGHUP only when the file was renamed or removed. A file that
 * cannot be opened (after `--user`, NAME must be allowed to write it) is
 * logged, and lines keep going to the old one.
 */
export async function reopenLog(signal: "SIGUSR1" | "SIGHUP", logger: Logger): Promise<void> {
  try {
    const file = await reopenLogFile({ onlyIfMoved: signal === "SIGHUP" });
    if (file !== null) logger.info("{signal} received: reopened the log file {file}", { signal, file });
  } catch (error) {
    logger.error("{signal} received: cannot reopen the log file: {error}; lines keep going to the file opened before", {
      signal,
      error: (error as Error).message,
    });
  }
}

/** Installs SIGHUP, SIGUSR1, SIGTERM and SIGINT handlers; `onStopped` runs after the drain. */
export function installSignals(
  options: CliOptions,
  composition: Composition,
  logger: Logger,
  onStopped: () => void,
): Signals {
  let stopping = false;
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  const { server } = composition;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("{signal} received: no new sessions; waiting up to {grace} s for {active} running sessions", {
      signal,
      grace: options.graceMs / 1000,
      active: server.activeSessions,
    });
    await server.shutdown(options.graceMs);
    onStopped();
    logger.info("Stopped");
    await shutdownLogging();
    resolveExit(0);
  };
  process.on("SIGHUP", () => {
    void reopenLog("SIGHUP", logger);
    reload(options, composition, logger);
  });
  process.on("SIGUSR1", () => void reopenLog("SIGUSR1", logger));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  return {
    get stopping() {
      return stopping;
    },
    exited,
  };
}
