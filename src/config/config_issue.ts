/**
 * A problem found in a configuration file (srelay.conf, srelay.passwd),
 * located by file and physical line, and its one-line text form.
 *
 * @module
 */

/**
 * One problem in a configuration file. `line` is the physical line number
 * (1-based, comment and blank lines counted); 0 means the whole file (for
 * example when it cannot be read). Errors drop the line they are on;
 * warnings keep it.
 */
export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly message: string;
  readonly severity: "error" | "warning";
}

/**
 * Formats an issue as `FILE:LINE: message`, or `FILE:LINE: warning: message`
 * for a warning.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(
 *   formatIssue({ file: "srelay.conf", line: 3, message: "invalid port 'x'", severity: "error" }),
 *   "srelay.conf:3: invalid port 'x'",
 * );
 * assert.equal(
 *   formatIssue({ file: "srelay.conf", line: 4, message: "port 'anyway' is read as 'any'", severity: "warning" }),
 *   "srelay.conf:4: warning: port 'anyway' is read as 'any'",
 * );
 * ```
 */
export function formatIssue(issue: ConfigIssue): string {
  const prefix = issue.severity === "warning" ? "warning: " : "";
  return `${issue.file}:${issue.line}: ${prefix}${issue.message}`;
}

/**
 * Formats an issue for a log line, whose level already says how bad it is:
 * `FILE:LINE: message`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(
 *   issueText({ file: "srelay.conf", line: 4, message: "port 'anyway' is read as 'any'", severity: "warning" }),
 *   "srelay.conf:4: port 'anyway' is read as 'any'",
 * );
 * ```
 */
export function issueText(issue: ConfigIssue): string {
  return `${issue.file}:${issue.line}: ${issue.message}`;
}
