/**
 * What a session needs from the server: settings, the router and a logger.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { NetAddress } from "../runtime/types.ts";
import type { Router } from "./router.ts";

/** Per-server settings every session reads. */
export interface SessionSettings {
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** After one direction ended, how long the other may stay open (0 = no limit). */
  readonly finWaitMs: number;
  /** SOCKS5 methods the server accepts, in its order of preference. */
  readonly socks5Methods: readonly number[];
  /** True when SOCKS4 requests are refused (user/password auth is required). */
  readonly refuseSocks4: boolean;
  /** `-g`: dial from the address the client connected to. */
  readonly sameInterface: boolean;
  /** `-x`/`-J`: dial from this address. */
  readonly sourceAddress: string | null;
}

/** Everything one session is given. */
export interface SessionContext {
  readonly id: number;
  readonly settings: SessionSettings;
  readonly router: Router;
  readonly logger: Logger;
  /** Aborted when the server shuts down and the grace period is over. */
  readonly shutdown: AbortSignal;
  /** Resolves to the client's label for logs (`1.2.3.4:5678` or `name[1.2.3.4]:5678`). */
  readonly clientLabel: Promise<string>;
}

/** Formats an address as `host:port` with IPv6 in brackets. */
export function formatAddress(address: NetAddress): string {
  return address.family === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
