/**
 * Step 1 of `run()`: the commands that answer and exit without serving:
 * `-h`, `-v` and `--check-config` (which reads every file the server would:
 * -c, -u, -U, --rules and the tcp_wrappers tables).
 *
 * @module
 */
import { openHostsAccess } from "../acl/hosts_access.ts";
import { formatIssue } from "../config/config_issue.ts";
import { formatRouteTable } from "../config/format_routes.ts";
import { formatRules } from "../config/rules.ts";
import { helpText } from "../cli/help.ts";
import type { CliOptions } from "../cli/options.ts";
import { readPolicyFiles } from "../policy/load.ts";
import { VERSION } from "../version.ts";
import { blocksInternal, policyFiles } from "./policy_files.ts";
import type { Report } from "./report.ts";

/** Answers a one-shot command; resolves to its exit code, or null when the options ask to serve. */
export function runOneShot(options: CliOptions, runtimeName: string, report: Report): number | null {
  if (options.showHelp) {
    process.stdout.write(helpText());
    return 0;
  }
  if (options.showVersion) {
    report(`srelay ${VERSION} (${runtimeName})`);
    return 0;
  }
  if (options.checkConfig) return checkConfig(options, report);
  return null;
}

/** `--check-config`: print the effective routing table and every issue; exit 1 on errors. */
function checkConfig(options: CliOptions, report: Report): number {
  const read = readPolicyFiles(policyFiles(options));
  for (const issue of read.issues) report(formatIssue(issue), true);
  if (!read.ok) {
    const errors = read.issues.filter((issue) => issue.severity === "error").length;
    report(`${read.failedFile}: ${errors} ${errors === 1 ? "error" : "errors"}`, true);
    return 1;
  }
  const { routes } = read.files;
  if (routes.missingDefault) report(`# ${options.config.path} does not exist: every destination is direct`);
  else report(`# ${options.config.path}: ${routes.rules.length} rules, first match wins; hops in travel order`);
  report(formatRouteTable(routes.rules));
  if (read.files.rules !== null) {
    report(`# ${options.rulesFile}: ${read.files.rules.length} destination rules, first match wins`);
    report(formatRules(read.files.rules));
  }
  if (options.tcpWrappers !== null) {
    const access = openHostsAccess({ allowFile: options.tcpWrappers.allow, denyFile: options.tcpWrappers.deny });
    for (const issue of access.issues) report(formatIssue(issue), true);
    report(`# tcp_wrappers (-w): ${options.tcpWrappers.allow} and ${options.tcpWrappers.deny}, daemon name srelay`);
  }
  if (blocksInternal(options, options.listen)) {
    report(
      "# default for an exposed listener without authentication: destinations on this host (loopback, its own and link-local addresses) are blocked unless a rule passes them by address; --allow-internal lifts it",
    );
  }
  return 0;
}
