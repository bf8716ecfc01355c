/**
 * The SOCKS server: listeners, the session limit, accept failures, session
 * bookkeeping, graceful shutdown, and a memory release when it goes idle.
 * Each session runs the stages of `session.ts` with the policy snapshot
 * current when it was accepted.
 *
 * @module
 */
import type { Policy } from "../policy/policy.ts";
import { type Connection, type Listener, type NetAddress, NetError, type NetRuntime } from "../runtime/types.ts";
import { serveSession } from "./session.ts";
import { SessionShutdown } from "./session_shutdown.ts";
import { formatAddress, type ServerScope } from "./session_context.ts";

/** What the server is built from. */
export interface ServerOptions {
  readonly runtime: NetRuntime;
  readonly scope: ServerScope;
  /** The policy in force; read once for every new session, so a reload takes effect at once. */
  readonly policy: () => Policy;
  /** 0 = unlimited. */
  readonly maxSessions: number;
  readonly reusePort?: boolean;
}

/** Least time between two log lines about the same kind of trouble. */
const LOG_INTERVAL_MS = 1000;
/**
 * After this long without a new session the server counts as idle and asks
 * the runtime to give memory back (`NetRuntime.releaseMemory`)...
 */
const IDLE_RELEASE_MS = 3000;
/** ...provided this many sessions came since the last release: a trickle never triggers one... */
const RELEASE_AFTER_SESSIONS = 100;
/**
 * ...and at most this many are still running. A release collects garbage
 * with the event loop stopped, for a time that grows with the live sessions:
 * on Deno here 30-100 ms with up to 1,000, 380 ms with 9,900 (Bun: under 10 ms).
 */
const RELEASE_MAX_RUNNING = 1000;

/** A running SOCKS server. */
export class SocksServer {
  #options: ServerOptions;
  #listeners: Listener[] = [];
  #sessions = new Map<Connection, SessionShutdown>();
  #finished = new Set<() => void>();
  #nextId = 1;
  #rejected = 0;
  #lastRejectLog = 0;
  #acceptErrors = 0;
  #lastAcceptErrorLog = 0;
  #lastAcceptError: NetError | undefined;
  #acceptReportTimer: ReturnType<typeof setTimeout> | undefined;
  #draining = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** `#nextId` when the idle timer was armed: unchanged when it fires means no session came. */
  #idleMark = 0;
  /** `#nextId` at the last memory release. */
  #releasedAt = 1;

  constructor(options: ServerOptions) {
    this.#options = options;
  }

  /** Number of sessions in progress. */
  get activeSessions(): number {
    return this.#sessions.size;
  }

  /** Clients closed at once because `-m` sessions were already running, since the start. */
  get rejectedSessions(): number {
    return this.#rejected;
  }

  /** True once `shutdown` was called: no new sessions are accepted. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Addresses the server listens on. */
  get addresses(): NetAddress[] {
    return this.#listeners.map((listener) => listener.address);
  }

  /** Starts listening on `host:port`; returns the bound address. */
  async listen(host: string, port: number): Promise<NetAddress> {
    const listener = await this.#options.runtime.listen({
      host,
      port,
      ...(this.#options.reusePort ? { reusePort: true } : {}),
      onConnection: (connection) => this.#accept(connection),
      onAcceptError: (error) => this.#acceptFailed(error),
    });
    if (this.#draining) {
      listener.close();
      throw new NetError("aborted", "Cannot listen: the server is shutting down");
    }
    this.#listeners.push(listener);
    return listener.address;
  }

  /**
   * Stops accepting, waits up to `graceMs` for running sessions to finish,
   * then closes whatever is left. Resolves when every session is gone.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.#draining = true;
    clearTimeout(this.#acceptReportTimer);
    this.#acceptReportTimer = undefined;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#reportAcceptErrors();
    for (const listener of this.#listeners) listener.close();
    this.#listeners = [];
    if (this.#sessions.size === 0) return;
    const allDone = new Promise<void>((resolve) => {
      const check = () => {
        if (this.#sessions.size === 0) {
          this.#finished.delete(check);
          resolve();
        }
      };
      this.#finished.add(check);
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([allDone, expired]);
    clearTimeout(timer);
    if (this.#sessions.size > 0) {
      this.#options.scope.logger.warn("Grace period over: closing {count} sessions", { count: this.#sessions.size });
      for (const shutdown of this.#sessions.values()) shutdown.abort();
      await allDone;
    }
  }

  #accept(client: Connection): void {
    const { maxSessions, scope } = this.#options;
    if (maxSessions > 0 && this.#sessions.size >= maxSessions) {
      client.close();
      this.#rejected++;
      const now = Date.now();
      if (now - this.#lastRejectLog >= LOG_INTERVAL_MS) {
        scope.logger.warn("{client} closed: {active} sessions already running (-m {max}); {rejected} rejected so far", {
          client: formatAddress(client.remote),
          active: this.#sessions.size,
          max: maxSessions,
          rejected: this.#rejected,
          outcome: "over_limit",
        });
        this.#lastRejectLog = now;
      }
      return;
    }
    const shutdown = new SessionShutdown();
    this.#sessions.set(client, shutdown);
    serveSession(client, {
      id: this.#nextId++,
      scope,
      policy: this.#options.policy(),
      shutdown,
    }).finally(() => {
      this.#sessions.delete(client);
      for (const check of this.#finished) check();
    });
    if (
      this.#idleTimer === undefined && this.#nextId - this.#releasedAt >= RELEASE_AFTER_SESSIONS &&
      this.#options.runtime.releaseMemory !== undefined
    ) this.#armIdleTimer();
  }

  #armIdleTimer(): void {
    this.#idleMark = this.#nextId;
    this.#idleTimer = setTimeout(this.#onIdleTimer, IDLE_RELEASE_MS);
  }

  /** Releases memory once no session came for a whole interval and few are left; otherwise waits another. */
  #onIdleTimer = (): void => {
    if (this.#nextId !== this.#idleMark || this.#sessions.size > RELEASE_MAX_RUNNING) {
      this.#armIdleTimer();
      return;
    }
    this.#idleTimer = undefined;
    this.#releasedAt = this.#nextId;
    this.#options.runtime.releaseMemory?.();
  };

  /**
   * Logs accept failures at most once per interval, with how many there
   * were; failures held back are reported when the interval ends.
   */
  #acceptFailed(error: NetError): void {
    this.#acceptErrors++;
    this.#lastAcceptError = error;
    const wait = this.#lastAcceptErrorLog + LOG_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      clearTimeout(this.#acceptReportTimer);
      this.#acceptReportTimer = undefined;
      this.#reportAcceptErrors();
      return;
    }
    if (this.#acceptReportTimer !== undefined) return;
    this.#acceptReportTimer = setTimeout(() => {
      this.#acceptReportTimer = undefined;
      this.#reportAcceptErrors();
    }, wait);
  }

  #reportAcceptErrors(): void {
    if (this.#acceptErrors === 0 || this.#lastAcceptError === undefined) return;
    this.#lastAcceptErrorLog = Date.now();
    this.#options.scope.logger.error(
      "Cannot accept connections: {error} ({count} failures since the last report); retrying",
      { error: this.#lastAcceptError.message, count: this.#acceptErrors, outcome: "accept_failed" },
    );
    this.#acceptErrors = 0;
  }
}
