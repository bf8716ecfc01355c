/**
 * What the user must see at start-up: errors on stderr and the start-up
 * lines on stdout; in a process whose parent reads its stdout (background
 * child, workers), everything on stdout, where the parent picks it up.
 *
 * @module
 */
import type { ProcessRole } from "../cli/process_role.ts";

/** Prints one line for the user. */
export type Report = (text: string, isError?: boolean) => void;

/** The reporter for a role. */
export function reporter(role: ProcessRole): Report {
  return (text, isError = false) => {
    (isError && !role.reportsToParent ? process.stderr : process.stdout).write(`${text}\n`);
  };
}
