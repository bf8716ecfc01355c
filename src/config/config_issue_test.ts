import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ConfigIssue, formatIssue } from "./config_issue.ts";

describe("formatIssue", () => {
  const cases: Array<[ConfigIssue, string]> = [
    [
      { file: "srelay.conf", line: 12, severity: "error", message: "invalid port 'x'" },
      "srelay.conf:12: invalid port 'x'",
    ],
    [
      { file: "/etc/srelay.conf", line: 3, severity: "warning", message: "port 'anything' is read as 'any'" },
      "/etc/srelay.conf:3: warning: port 'anything' is read as 'any'",
    ],
    [
      { file: "missing.conf", line: 0, severity: "error", message: "Cannot read config file: ENOENT" },
      "missing.conf:0: Cannot read config file: ENOENT",
    ],
  ];
  for (const [issue, expected] of cases) {
    test(expected, () => {
      assert.equal(formatIssue(issue), expected);
    });
  }
});
