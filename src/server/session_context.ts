/**
 * What a session is given: the server-wide settings and hooks, its number,
 * the policy snapshot it read once at its start, and the shutdown signal.
 *
 * @module
 */
import { formatHostPort } from "../net/address.ts";
import type { Logger } from "@logtape/logtape";
import type { Policy } from "../policy/policy.ts";
import type { Resolver } from "../runtime/resolver.ts";
import type { NetAddress, NetRuntime } from "../runtime/types.ts";
import type { SessionRecorder } from "./account.ts";
import type { Admitter } from "./admit.ts";
import type { CommandSlots } from "./command_limits.ts";
import type { SessionShutdown } from "./session_shutdown.ts";

/** Per-server settings every session reads. */
export interface SessionSettings {
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** After one direction ended, how long the other may stay open (0 = no limit). */
  readonly finWaitMs: number;
  /** `-g`: dial from the address the client connected to. */
  readonly sameInterface: boolean;
  /** `-x`/`-J`: dial from this address. */
  readonly sourceAddress: string | null;
  /** `--bind-timeout`: how long a BIND waits for its peer to connect. */
  readonly bindTimeoutMs: number;
  /** `-b`: BIND may listen on a requested port below 1024. */
  readonly bindAnyPort: boolean;
}

/** What every session of one server shares. */
export interface ServerScope {
  readonly settings: SessionSettings;
  readonly logger: Logger;
  /** Admitters that are part of the listener, not of the policy (PROXY protocol, per-client limits). */
  readonly admitters: readonly Admitter[];
  /** Receive each finished session's record. */
  readonly recorders: readonly SessionRecorder[];
  /** Turns a client address into its log label; a promise when it needs a lookup (`-r`). */
  readonly labelClient: (address: NetAddress) => string | Promise<string>;
  /** The socket layer, for sockets a command opens itself (BIND's listener). */
  readonly runtime: NetRuntime;
  /** Resolves names a command needs itself (BIND's expected peer). */
  readonly resolver: Resolver;
  /** BIND listeners and UDP associations in use, against their limits (`command_limits.ts`). */
  readonly commandSlots: CommandSlots;
  /**
   * This host's interface addresses as `address/prefix` (BIND picks the one
   * on the peer's network); default: node:os `networkInterfaces()`.
   */
  readonly interfaces?: () => readonly string[];
}

/** Everything one session is given. */
export interface SessionContext {
  readonly id: number;
  readonly scope: ServerScope;
  /** The policy in force when the session started; a reload never changes it. */
  readonly policy: Policy;
  /** Aborted when the server shuts down and the grace period is over (no AbortController unless asked). */
  readonly shutdown: SessionShutdown;
}

/**
 * Formats an address as `host:port` with IPv6 in brackets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(formatAddress({ host: "::1", port: 1080, family: 6 }), "[::1]:1080");
 * ```
 */
export function formatAddress(address: NetAddress): string {
  return formatHostPort(address.host, address.port);
}
