/**
 * `--user` on Deno: libc's `setgroups`, `setresgid` and `setresuid` through
 * `Deno.dlopen` (needs `--allow-ffi`). Deno's `node:process` has `setuid`
 * and `setgid` but no `setgroups`, and a drop that keeps root's
 * supplementary groups is no drop, so all three calls go to libc, and
 * `getresuid`/`getresgid` read the result back. glibc applies each set*id
 * call to every thread of the process (its "setxid" broadcast), so Deno's
 * worker threads change with the main one. Linux only.
 *
 * @module
 */
import { type Credentials, type PrivilegeOps, procCredentials } from "./privileges.ts";

const SYMBOLS = {
  setgroups: { parameters: ["usize", "pointer"], result: "i32" },
  setresgid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  setresuid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  getresuid: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  getresgid: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  getgroups: { parameters: ["i32", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The library the calls come from. */
const LIBC = "libc.so.6";

function errnoText(libc: Libc): string {
  const location = libc.__errno_location();
  if (location === null) return "unknown error";
  const errno = new Deno.UnsafePointerView(location).getInt32();
  const text = libc.strerror(errno);
  return `${text === null ? "error" : Deno.UnsafePointerView.getCString(text)} (errno ${errno})`;
}

function check(libc: Libc, call: string, result: number): void {
  if (result !== 0) throw new Error(`${call} failed: ${errnoText(libc)}`);
}

function triple(
  libc: Libc,
  call: "getresuid" | "getresgid",
  fs: number | undefined,
): Credentials["uid"] {
  const cells = [new Uint32Array(1), new Uint32Array(1), new Uint32Array(1)] as const;
  check(libc, call, libc[call](cells[0], cells[1], cells[2]));
  const [real, effective, saved] = cells.map((cell) => cell[0] as number) as [number, number, number];
  return { real, effective, saved, fs: fs ?? effective };
}

function groups(libc: Libc): number[] {
  const count = libc.getgroups(0, new Uint32Array(1));
  if (count < 0) throw new Error(`getgroups failed: ${errnoText(libc)}`);
  if (count === 0) return [];
  const list = new Uint32Array(count);
  const read = libc.getgroups(count, list);
  if (read < 0) throw new Error(`getgroups failed: ${errnoText(libc)}`);
  return [...list.subarray(0, read)];
}

/** Opens libc and returns Deno's way to switch users; rejects where there is no libc to use. */
export function loadDenoPrivileges(): Promise<PrivilegeOps> {
  if (Deno.build.os !== "linux") {
    return Promise.reject(
      new Error(`switching users is supported on Linux only under Deno (this is ${Deno.build.os})`),
    );
  }
  let libc: Libc;
  try {
    libc = Deno.dlopen(LIBC, SYMBOLS).symbols;
  } catch (error) {
    return Promise.reject(new Error(`cannot open ${LIBC}: ${(error as Error).message}`));
  }
  return Promise.resolve({
    method: "libc setgroups/setresgid/setresuid (FFI)",
    drop(uid, gid) {
      check(libc, "setgroups(0, NULL)", libc.setgroups(0n, null));
      check(libc, `setresgid(${gid}, ${gid}, ${gid})`, libc.setresgid(gid, gid, gid));
      check(libc, `setresuid(${uid}, ${uid}, ${uid})`, libc.setresuid(uid, uid, uid));
    },
    current() {
      const proc = procCredentials();
      return {
        uid: triple(libc, "getresuid", proc?.uid.fs),
        gid: triple(libc, "getresgid", proc?.gid.fs),
        groups: groups(libc),
      };
    },
    regainRoot() {
      return libc.setresuid(0, 0, 0) === 0 || libc.setresgid(0, 0, 0) === 0;
    },
  });
}
