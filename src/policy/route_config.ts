/**
 * Loading srelay.conf for start-up, `--check-config` and SIGHUP: a file
 * with errors is rejected as a whole (every error listed), a missing default
 * file means "everything direct", a missing explicit file is an error.
 *
 * @module
 */
import { existsSync } from "node:fs";
import type { ConfigIssue } from "../config/config_issue.ts";
import { loadSrelayConf, type RouteRule } from "../config/srelay_conf.ts";

/** The outcome of reading the route table. */
export interface RouteConfigLoad {
  /** False when the file has errors (or an explicit file is missing): do not use `rules`. */
  readonly ok: boolean;
  readonly rules: readonly RouteRule[];
  /** Errors and warnings, with file and line. */
  readonly issues: readonly ConfigIssue[];
  /** Set when the default file does not exist (so every destination is direct). */
  readonly missingDefault: boolean;
}

/** Reads and checks the route table at `path`. */
export function loadRouteConfig(path: string, explicit: boolean): RouteConfigLoad {
  if (!explicit && !existsSync(path)) return { ok: true, rules: [], issues: [], missingDefault: true };
  const { rules, issues } = loadSrelayConf(path);
  return {
    ok: !issues.some((issue) => issue.severity === "error"),
    rules,
    issues,
    missingDefault: false,
  };
}
