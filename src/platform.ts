/**
 * What an entry point tells the core about the runtime it runs on. The core
 * never detects the runtime itself: `src/entry/<runtime>.ts` builds this.
 *
 * @module
 */
import type { CryptFunction } from "./auth/verifier.ts";
import type { SyslogOpeners } from "./log/syslog_sink.ts";
import type { PrivilegeOps } from "./runtime/privileges.ts";
import type { NetRuntime } from "./runtime/types.ts";

/** The runtime-specific pieces the core needs. */
export interface Platform {
  /** The hosting runtime, for messages. */
  readonly name: "deno" | "bun";
  /** Loads the runtime's own socket adapter. */
  loadNativeRuntime(): Promise<NetRuntime>;
  /** Loads the node:net socket adapter. */
  loadNodeRuntime(): Promise<NetRuntime>;
  /** The command that starts this same program again (arguments follow). */
  readonly selfCommand: readonly string[];
  /** The runtime's syslog transports (a Unix datagram socket, UDP). */
  readonly syslog: SyslogOpeners;
  /** Loads crypt(3) from libcrypt (host accounts); rejects with the reason where it cannot. */
  loadCrypt(): Promise<CryptFunction>;
  /** Loads the calls that switch users (`--user`); rejects with the reason where it cannot. */
  loadPrivileges(): Promise<PrivilegeOps>;
}
