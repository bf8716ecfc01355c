/**
 * Reading a configuration file's text, for every file grammar of this
 * folder: the text, or the one line-0 error that says why it cannot be read.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import type { ConfigIssue } from "./config_issue.ts";

/**
 * Reads `path` as UTF-8. `kind` names the file in the error
 * (`Cannot read config file: ...`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const read = readConfigFile("/nonexistent/srelay.conf", "config file");
 * assert.ok("issue" in read);
 * assert.equal(read.issue.line, 0);
 * assert.match(read.issue.message, /^Cannot read config file: /);
 * ```
 */
export function readConfigFile(
  path: string,
  kind: string,
): { readonly text: string } | { readonly issue: ConfigIssue } {
  try {
    return { text: readFileSync(path, "utf8") };
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return { issue: { file: path, line: 0, severity: "error", message: `Cannot read ${kind}: ${detail}` } };
  }
}
