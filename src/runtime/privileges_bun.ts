/**
 * `--user` on Bun: `process.setgroups`, `process.setgid` and
 * `process.setuid`, which call libc. Run as root, setgid(2) and setuid(2) set
 * the real, effective and saved id together, and glibc applies each call to
 * every thread of the process. The ids are read back from
 * `/proc/self/status` on Linux (which shows the saved and filesystem ids
 * too), else from `process.getuid()` and friends.
 *
 * @module
 */
import process from "node:process";
import { type Credentials, type PrivilegeOps, procCredentials } from "./privileges.ts";

/** `CALL failed: EPERM: Operation not permitted` (Bun's own text may name another call: it is cut off). */
function describe(call: string, error: unknown): Error {
  const code = (error as { code?: unknown })?.code;
  let text = (error instanceof Error ? error.message : String(error)).replace(/^\w+\(\) failed: /, "");
  if (typeof code === "string") text = `${code}: ${text.replace(new RegExp(`^${code}: `), "")}`;
  return new Error(`${call} failed: ${text}`);
}

function fromProcess(): Credentials {
  const uid = process.getuid?.() ?? -1;
  const euid = process.geteuid?.() ?? uid;
  const gid = process.getgid?.() ?? -1;
  const egid = process.getegid?.() ?? gid;
  return {
    uid: { real: uid, effective: euid, saved: euid, fs: euid },
    gid: { real: gid, effective: egid, saved: egid, fs: egid },
    // getgroups(3) through node:process may add the effective gid to the list.
    groups: (process.getgroups?.() ?? []).filter((group) => group !== egid),
  };
}

/** Bun's way to switch users. */
export const bunPrivileges: PrivilegeOps = {
  method: "process.setgroups/setgid/setuid",
  drop(uid, gid) {
    const { setgroups, setgid, setuid } = process;
    if (setgroups === undefined || setgid === undefined || setuid === undefined) {
      throw new Error(`switching users is not supported on ${process.platform}`);
    }
    try {
      setgroups([]);
    } catch (error) {
      throw describe("setgroups([])", error);
    }
    try {
      setgid(gid);
    } catch (error) {
      throw describe(`setgid(${gid})`, error);
    }
    try {
      setuid(uid);
    } catch (error) {
      throw describe(`setuid(${uid})`, error);
    }
  },
  current() {
    return procCredentials() ?? fromProcess();
  },
  regainRoot() {
    for (const call of [process.setuid, process.setgid]) {
      if (call === undefined) continue;
      try {
        call(0);
        return true;
      } catch {
        // Refused, as it must be.
      }
    }
    return false;
  },
};
