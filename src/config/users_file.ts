/**
 * The `-U FILE` user file: the SOCKS5 users srelay accepts, one
 * `user:hash` line each, as `htpasswd -nB USER` and `srelay passwd` write
 * them (or `USER:` followed by the output of `openssl passwd -6`).
 *
 * ```text
 * # comment (a line whose first non-blank character is # or ;)
 * alice:$2y$10$abcdefghijklmnopqrstuuZFBUbfXoM8LFiPx8LYlO/sXZB/Cwk3K
 * bob:$6$saltsalt$...
 * carol:!$2y$10$...            (a leading ! or a lone * locks the account)
 * ```
 *
 * - The user name is everything before the first `:` and must match the
 *   client's exactly (srelay compared only a prefix: a bug not kept).
 * - The hash must be bcrypt (`$2a$`, `$2b$`, `$2y$`) or SHA-crypt (`$5$`,
 *   `$6$`); anything else is an error on its line, as is a second line for
 *   the same user (which of two passwords counts is not guessed).
 * - Blank lines and comments are skipped; leading and trailing blanks and a
 *   CR before the LF are ignored.
 *
 * Issue messages never contain a hash or what stands in its place (it could
 * be a password typed in by mistake); they may name the user.
 *
 * @module
 */
import { readConfigFile } from "./read_config_file.ts";
import { classifyUserHash, type UserHashScheme } from "../auth/user_hash.ts";
import type { ConfigIssue } from "./config_issue.ts";

/** One user of the file. */
export interface UserEntry {
  /** Physical line number. */
  readonly line: number;
  readonly user: string;
  /** The hash without a lock mark; empty for a lone `*` or `!`. */
  readonly hash: string;
  /** The hash's scheme; `null` for a locked entry without a usable hash. */
  readonly scheme: UserHashScheme | null;
  /** bcrypt cost or SHA-crypt rounds (0 when there is no hash). */
  readonly cost: number;
  /** True when the line locks the account (`!hash`, `!`, `*`). */
  readonly locked: boolean;
}

/** A parsed user file. */
export interface UsersFile {
  /** The users of the lines without errors, by exact name. */
  readonly users: ReadonlyMap<string, UserEntry>;
  readonly issues: readonly ConfigIssue[];
}

/** Longest user name RFC 1929 can carry, in bytes of UTF-8. */
const USER_MAX_BYTES = 255;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Why `user` cannot be a user name of the file (`null` when it can): empty,
 * over 255 bytes, a `:`, a control character, blanks at either end, or a
 * first character `#` or `;` (the line would be a comment).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(userNameProblem("alice"), null);
 * assert.equal(userNameProblem("a:b"), "the user name contains ':'");
 * ```
 */
export function userNameProblem(user: string): string | null {
  if (user === "") return "the user name is empty";
  if (user.includes(":")) return "the user name contains ':'";
  if (CONTROL.test(user)) return "the user name contains a control character";
  if (user.trim() !== user) return "the user name starts or ends with a blank";
  if (user.startsWith("#") || user.startsWith(";")) return "the user name starts with '#' or ';' (a comment)";
  const bytes = new TextEncoder().encode(user).length;
  if (bytes > USER_MAX_BYTES) return `the user name is ${bytes} bytes long (at most ${USER_MAX_BYTES})`;
  return null;
}

/** True for a blank line or a comment. */
export function isUsersFileComment(line: string): boolean {
  const trimmed = line.trim();
  return trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith(";");
}

/**
 * Parses user-file text. Every problem is reported with its physical line;
 * lines with errors are left out of `users`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const text = "# users\nalice:$2y$05$abcdefghijklmnopqrstuuZFBUbfXoM8LFiPx8LYlO/sXZB/Cwk3K\n";
 * const { users, issues } = parseUsersFile(text, "users");
 * assert.equal(users.get("alice")?.scheme, "bcrypt");
 * assert.deepEqual(issues, []);
 * ```
 */
export function parseUsersFile(text: string, file: string): UsersFile {
  const users = new Map<string, UserEntry>();
  const issues: ConfigIssue[] = [];
  const error = (line: number, message: string) => issues.push({ file, line, severity: "error", message });
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = index + 1;
    const raw = (lines[index] ?? "").replace(/\r$/, "");
    if (isUsersFileComment(raw)) continue;
    const trimmed = raw.trim();
    const colon = trimmed.indexOf(":");
    if (colon === -1) {
      error(line, "expected USER:HASH (no ':' on the line)");
      continue;
    }
    const user = trimmed.slice(0, colon);
    const field = trimmed.slice(colon + 1);
    const nameProblem = userNameProblem(user);
    if (nameProblem !== null) {
      error(line, nameProblem);
      continue;
    }
    if (field.includes(":")) {
      error(line, `expected USER:HASH, found ${field.split(":").length + 1} ':'-separated fields`);
      continue;
    }
    const previous = users.get(user);
    if (previous !== undefined) {
      error(line, `user '${user}' is already defined on line ${previous.line}`);
      continue;
    }
    const locked = field.startsWith("!") || field === "*";
    const hash = field.startsWith("!") ? field.slice(1) : field === "*" ? "" : field;
    if (locked && hash === "") {
      users.set(user, { line, user, hash: "", scheme: null, cost: 0, locked: true });
      continue;
    }
    const kind = classifyUserHash(hash);
    if (!kind.ok) {
      error(line, kind.message);
      continue;
    }
    if (kind.warning !== undefined) issues.push({ file, line, severity: "warning", message: kind.warning });
    users.set(user, { line, user, hash, scheme: kind.scheme, cost: kind.cost, locked });
  }
  if (users.size === 0 && !issues.some((issue) => issue.severity === "error")) {
    issues.push({ file, line: 0, severity: "warning", message: "no users: every password login will fail" });
  }
  return { users, issues };
}

/**
 * Reads and parses a user file. A file that cannot be read yields no users
 * and one error on line 0.
 */
export function loadUsersFile(path: string): UsersFile {
  const read = readConfigFile(path, "user file");
  return "issue" in read ? { users: new Map(), issues: [read.issue] } : parseUsersFile(read.text, path);
}

/** True when any issue is an error (the file must then be refused whole). */
export function hasErrors(issues: readonly ConfigIssue[]): boolean {
  return issues.some((issue) => issue.severity === "error");
}
