/**
 * Switching the process to another user (`--user`): what the core asks of
 * a runtime, and the reader of Linux's `/proc/<pid>/status` that both
 * runtimes use to see every id the kernel holds (real, effective, saved and
 * filesystem uid and gid, supplementary groups), per thread.
 *
 * The runtimes differ: Bun has `process.setgroups`, `setgid` and `setuid`
 * (`privileges_bun.ts`); Deno's `node:process` has no `setgroups`, so Deno
 * calls libc through FFI (`privileges_deno.ts`).
 *
 * @module
 */
import { readFileSync } from "node:fs";

/** One kind of id as the kernel holds it. */
export interface Ids {
  readonly real: number;
  readonly effective: number;
  readonly saved: number;
  /** The filesystem id (Linux); equal to `effective` where the system has none or it cannot be read. */
  readonly fs: number;
}

/** A process's (or thread's) identity. */
export interface Credentials {
  readonly uid: Ids;
  readonly gid: Ids;
  /** Supplementary groups. */
  readonly groups: readonly number[];
}

/** What a runtime offers to switch users. */
export interface PrivilegeOps {
  /** How it switches, for the log: e.g. `process.setuid` or `libc setresuid (FFI)`. */
  readonly method: string;
  /**
   * Clears the supplementary groups, then sets the real, effective and saved
   * gid to `gid`, then the real, effective and saved uid to `uid`, in that
   * order (once the uid is dropped, the groups could no longer be changed).
   * Throws an `Error` naming the call that failed and why.
   */
  drop(uid: number, gid: number): void;
  /** The ids in force now. */
  current(): Credentials;
  /**
   * Tries to become root again (uid 0, then gid 0) and says whether it
   * worked. A successful drop to a user other than root must answer false.
   */
  regainRoot(): boolean;
}

function idsOf(line: string | undefined): Ids | null {
  const fields = line?.trim().split(/\s+/).map(Number);
  if (fields === undefined || fields.length < 4 || fields.some((n) => !Number.isInteger(n))) return null;
  const [real, effective, saved, fs] = fields as [number, number, number, number];
  return { real, effective, saved, fs };
}

/**
 * Reads the `Uid:`, `Gid:` and `Groups:` lines of a `/proc/.../status` text;
 * null when they are not all there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const status = "Name:\tsrelay\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nGroups:\t4 24 \n";
 * assert.deepEqual(parseProcStatus(status)?.groups, [4, 24]);
 * assert.equal(parseProcStatus(status)?.uid.saved, 65534);
 * ```
 */
export function parseProcStatus(text: string): Credentials | null {
  const field = (name: string) => text.match(new RegExp(`^${name}:(.*)$`, "m"))?.[1];
  const uid = idsOf(field("Uid"));
  const gid = idsOf(field("Gid"));
  const groupsText = field("Groups");
  if (uid === null || gid === null || groupsText === undefined) return null;
  const groups = groupsText.trim() === "" ? [] : groupsText.trim().split(/\s+/).map(Number);
  return { uid, gid, groups };
}

/** This process's ids from `/proc/self/status`, or null where there is no such file (not Linux). */
export function procCredentials(path = "/proc/self/status"): Credentials | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  return parseProcStatus(text);
}
