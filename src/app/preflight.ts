/**
 * Step 2 of `run()`: check every file before anything starts (and before
 * the process detaches, so errors reach the user's terminal): the policy's
 * files with `file:line` errors, and that the log file can be written.
 *
 * @module
 */
import { appendFileSync } from "node:fs";
import { formatIssue } from "../config/config_issue.ts";
import type { CliOptions } from "../cli/options.ts";
import { type PolicyFilesRead, readPolicyFiles } from "../policy/load.ts";
import type { ConfigIssue } from "../config/config_issue.ts";
import { policyFiles } from "./policy_files.ts";
import type { Report } from "./report.ts";

/** Files that passed the preflight, and the warnings to log once logging is set up. */
export interface Preflight {
  readonly files: PolicyFilesRead;
  readonly warnings: readonly ConfigIssue[];
}

/** Checks every file; reports errors and resolves to null when something is wrong (exit 1). */
export function preflight(options: CliOptions, report: Report): Preflight | null {
  const read = readPolicyFiles(policyFiles(options));
  if (!read.ok) {
    for (const issue of read.issues) report(formatIssue(issue), true);
    if (read.issues.some((issue) => issue.line !== 0)) {
      report(`srelay: ${read.failedFile} has errors; nothing started`, true);
    }
    return null;
  }
  if (options.logFile !== null) {
    try {
      appendFileSync(options.logFile, "");
    } catch (error) {
      report(`srelay: cannot write the log file: ${(error as Error).message}`, true);
      return null;
    }
  }
  const warnings = [...read.issues];
  if (options.usersFile !== null && !options.authMethods.includes("password")) {
    warnings.push({ file: options.usersFile, line: 0, severity: "warning", message: "-U has no effect without -a p" });
  }
  return { files: read.files, warnings };
}
