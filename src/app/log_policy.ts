/**
 * The log lines that say which policy files are in force: the route table
 * (or its absence) and every warning found in the files.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { type ConfigIssue, issueText } from "../config/config_issue.ts";
import type { CliOptions } from "../cli/options.ts";
import type { HostsAccess } from "../acl/hosts_access.ts";
import type { PolicyFilesRead } from "../policy/load.ts";

/** Logs the warnings of a read and what the route table, the rules and the tcp_wrappers tables hold. */
export function logPolicyFiles(
  logger: Logger,
  options: CliOptions,
  files: PolicyFilesRead,
  warnings: readonly ConfigIssue[],
  hostsAccess: HostsAccess | null,
): void {
  for (const issue of warnings) logger.warn("{issue}", { issue: issueText(issue) });
  for (const issue of hostsAccess?.issues ?? []) logger.warn("{issue}", { issue: issueText(issue) });
  if (files.routes.missingDefault) {
    logger.info("No route table at {file}: every destination is reached directly", { file: options.config.path });
  } else {
    logger.info("Route table {file}: {count} rules", { file: options.config.path, count: files.routes.rules.length });
  }
  if (files.rules !== null) {
    logger.info("Destination rules {file}: {count} rules, first match wins, no match passes", {
      file: options.rulesFile,
      count: files.rules.length,
    });
  }
  if (hostsAccess !== null) {
    logger.info("tcp_wrappers: {allow} and {deny}, daemon name srelay", {
      allow: files.hostsAccess?.allow,
      deny: files.hostsAccess?.deny,
    });
    if (hostsAccess.usesNames && !options.reverseLookup) {
      logger.warn(
        "tcp_wrappers rules name hosts, KNOWN, LOCAL or PARANOID, but without -r client names are unknown: those patterns never match (UNKNOWN matches every client)",
      );
    }
  }
}
