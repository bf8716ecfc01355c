/**
 * `--user NAME` (and `--group NAME`): once the listeners are open, srelay
 * becomes NAME for good. The supplementary groups are cleared, then the
 * real, effective and saved gid become NAME's primary group (or `--group`),
 * then the real, effective and saved uid become NAME's. The result is read
 * back, and on Linux every thread's ids are checked in
 * `/proc/self/task/<tid>/status`; becoming root again must fail. Any
 * difference is an error: the caller stops the server and exits 1, so srelay
 * never serves as root by accident.
 *
 * NAME and the group are looked up in /etc/passwd and /etc/group (the local
 * files only, no NSS), or given as numbers.
 *
 * @module
 */
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import type { Logger } from "@logtape/logtape";
import type { CliOptions } from "../cli/options.ts";
import { type Credentials, type Ids, parseProcStatus, type PrivilegeOps } from "../runtime/privileges.ts";
import { policyFiles } from "./policy_files.ts";

/** Whom to become. */
export interface Account {
  /** `--user` as given. */
  readonly user: string;
  readonly uid: number;
  /** `--group` as given, or the name of the user's primary group (or its number). */
  readonly group: string;
  readonly gid: number;
}

/** Where the account files are (tests point them elsewhere). */
export interface AccountFiles {
  readonly passwd: string;
  readonly group: string;
}

const SYSTEM_FILES: AccountFiles = { passwd: "/etc/passwd", group: "/etc/group" };

const ID = /^\d{1,10}$/;

/** Lines `name:x:id:...` of /etc/passwd or /etc/group: the third field (and the fourth) by name. */
function entries(path: string): Map<string, readonly string[]> {
  const map = new Map<string, readonly string[]>();
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields.length < 3 || fields[0] === "" || line.startsWith("#") || line.startsWith("+") || line.startsWith("-")) {
      continue;
    }
    if (!map.has(fields[0]!)) map.set(fields[0]!, fields);
  }
  return map;
}

function idField(fields: readonly string[] | undefined, index: number): number | null {
  const text = fields?.[index];
  return text !== undefined && ID.test(text) ? Number(text) : null;
}

/**
 * Looks up `--user` and `--group`. Throws an `Error` whose message says
 * what is wrong (an unknown name, a number with no group).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
 * import { join } from "node:path";
 * const dir = mkdtempSync("/tmp/srelay-doc-");
 * writeFileSync(join(dir, "passwd"), "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
 * writeFileSync(join(dir, "group"), "nogroup:x:65534:\nproxy:x:13:\n");
 * const files = { passwd: join(dir, "passwd"), group: join(dir, "group") };
 * assert.deepEqual(resolveAccount("nobody", null, files), { user: "nobody", uid: 65534, group: "nogroup", gid: 65534 });
 * assert.equal(resolveAccount("nobody", "proxy", files).gid, 13);
 * rmSync(dir, { recursive: true });
 * ```
 */
export function resolveAccount(user: string, group: string | null, files: AccountFiles = SYSTEM_FILES): Account {
  if (process.platform === "win32") throw new Error("--user is not supported on Windows");
  const users = entries(files.passwd);
  const found = users.get(user);
  let uid = idField(found, 2);
  let gid = idField(found, 3);
  if (found === undefined) {
    if (!ID.test(user)) throw new Error(`--user ${user}: no such user in ${files.passwd}`);
    uid = Number(user);
  } else if (uid === null) {
    throw new Error(`--user ${user}: ${files.passwd} has no numeric uid for ${user}`);
  }
  const groups = entries(files.group);
  let groupName: string;
  if (group !== null) {
    const entry = groups.get(group);
    if (entry !== undefined) {
      gid = idField(entry, 2);
      if (gid === null) throw new Error(`--group ${group}: ${files.group} has no numeric gid for ${group}`);
    } else if (ID.test(group)) {
      gid = Number(group);
    } else {
      throw new Error(`--group ${group}: no such group in ${files.group}`);
    }
    groupName = group;
  } else {
    if (gid === null) {
      throw new Error(`--user ${user}: uid ${uid} has no entry in ${files.passwd}, so it has no group: add --group`);
    }
    const primary = gid;
    groupName = [...groups].find(([, fields]) => idField(fields, 2) === primary)?.[0] ?? String(primary);
  }
  return { user, uid: uid as number, group: groupName, gid: gid as number };
}

function allEqual(ids: Ids, id: number): boolean {
  return ids.real === id && ids.effective === id && ids.saved === id && ids.fs === id;
}

function describeIds(ids: Ids): string {
  return `${ids.real}/${ids.effective}/${ids.saved}/${ids.fs}`;
}

/** Why `credentials` are not exactly `account`'s, or null when they are. */
export function mismatch(credentials: Credentials, account: Account): string | null {
  const problems: string[] = [];
  if (!allEqual(credentials.uid, account.uid)) {
    problems.push(`uid (real/effective/saved/fs) is ${describeIds(credentials.uid)}, not ${account.uid}`);
  }
  if (!allEqual(credentials.gid, account.gid)) {
    problems.push(`gid (real/effective/saved/fs) is ${describeIds(credentials.gid)}, not ${account.gid}`);
  }
  if (credentials.groups.length > 0) {
    problems.push(`supplementary groups are ${credentials.groups.join(" ")}, not none`);
  }
  return problems.length === 0 ? null : problems.join("; ");
}

/** Checks every thread in `taskDir` (Linux); does nothing where the directory does not exist. */
function checkThreads(account: Account, taskDir: string): void {
  let tasks: string[];
  try {
    tasks = readdirSync(taskDir);
  } catch {
    return;
  }
  for (const task of tasks) {
    let text: string;
    try {
      text = readFileSync(`${taskDir}/${task}/status`, "utf8");
    } catch {
      continue; // The thread has ended.
    }
    const credentials = parseProcStatus(text);
    const problem = credentials === null ? "its status has no Uid/Gid/Groups lines" : mismatch(credentials, account);
    if (problem !== null) throw new Error(`thread ${task}: ${problem}`);
  }
}

/** What `dropPrivileges` did. */
export interface Dropped {
  /** False when the process already ran as exactly this account, with no supplementary groups. */
  readonly changed: boolean;
}

/**
 * Becomes `account` for good and checks it, or throws an `Error` saying
 * what failed; the caller must then stop (exit 1).
 */
export function dropPrivileges(account: Account, ops: PrivilegeOps, taskDir = "/proc/self/task"): Dropped {
  const where = `--user ${account.user} (uid ${account.uid}, gid ${account.gid})`;
  const before = ops.current();
  const changed = mismatch(before, account) !== null;
  try {
    if (changed) ops.drop(account.uid, account.gid);
    const problem = mismatch(ops.current(), account);
    if (problem !== null) throw new Error(problem);
    checkThreads(account, taskDir);
    if (account.uid !== 0 && ops.regainRoot()) throw new Error("the process could become root again");
  } catch (error) {
    throw new Error(`cannot switch to ${where}: ${(error as Error).message}`);
  }
  return { changed };
}

/**
 * Which of `files` this process cannot read, and which of `writable` it
 * cannot write (after the drop: files a reload or a log rotation opens
 * again by name).
 */
export function inaccessible(files: readonly string[], writable: readonly string[]): string[] {
  const missing: string[] = [];
  for (const [list, mode, what] of [[files, constants.R_OK, "read"], [writable, constants.W_OK, "write"]] as const) {
    for (const path of list) {
      try {
        accessSync(path, mode);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== "ENOENT") missing.push(`cannot ${what} ${path} (${code ?? (error as Error).message})`);
      }
    }
  }
  return missing;
}

/** The files a reload reads again (to be readable by the account) and the log file (to be writable). */
function reopenedFiles(options: CliOptions): { read: string[]; write: string[] } {
  const files = policyFiles(options);
  const read = [
    files.config.path,
    files.passwdFile,
    files.rulesFile,
    files.usersFile,
    files.hostsAccess?.allow,
    files
      .hostsAccess?.deny,
  ].filter((path): path is string => typeof path === "string");
  return { read, write: options.logFile === null ? [] : [options.logFile] };
}

/**
 * After the listeners are open: becomes `account`, logs it, and warns about
 * files a SIGHUP or SIGUSR1 would open again that the account cannot.
 * Returns why it failed (the caller stops and exits 1), or null.
 */
export function becomeUser(
  account: Account,
  ops: PrivilegeOps,
  options: CliOptions,
  logger: Logger,
  taskDir = "/proc/self/task",
): string | null {
  let dropped: Dropped;
  try {
    dropped = dropPrivileges(account, ops, taskDir);
  } catch (error) {
    logger.error("{error}; stopping", { error: (error as Error).message });
    return (error as Error).message;
  }
  logger.info(
    dropped.changed
      ? "Now running as {user} (uid {uid}) and group {group} (gid {gid}), no supplementary groups ({method})"
      : "Already running as {user} (uid {uid}) and group {group} (gid {gid}), no supplementary groups",
    { user: account.user, uid: account.uid, group: account.group, gid: account.gid, method: ops.method },
  );
  const { read, write } = reopenedFiles(options);
  for (const problem of inaccessible(read, write)) {
    logger.warning("As {user}, srelay {problem}: a reload (SIGHUP) or log reopen (SIGUSR1) will fail", {
      user: account.user,
      problem,
    });
  }
  return null;
}
