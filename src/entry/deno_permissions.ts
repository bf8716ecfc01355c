/**
 * The permissions srelay needs under Deno: network, its config, log and PID
 * files, environment, system information (host name), and starting itself
 * (background mode, workers), and FFI (crypt(3) in libcrypt for host
 * accounts, the syslog socket, libc's setgroups/setresgid/setresuid for
 * `--user`, glibc's malloc_trim after a burst). Used when it re-runs itself and by
 * `scripts/build.ts` for `deno compile`.
 *
 * @module
 */

/** Deno permission flags for the server. */
export const DENO_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--allow-run",
  "--allow-ffi",
];
