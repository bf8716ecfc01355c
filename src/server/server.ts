/**
 * The SOCKS server: listeners, the session limit, session bookkeeping and
 * graceful shutdown. Protocol work happens in `session.ts`.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Connection, Listener, NetAddress, NetRuntime } from "../runtime/types.ts";
import type { Router } from "./router.ts";
import { formatAddress, type SessionContext, type SessionSettings } from "./session_context.ts";
import { serveSession } from "./session.ts";

/** What the server is built from. */
export interface ServerOptions {
  readonly runtime: NetRuntime;
  readonly settings: SessionSettings;
  /** Current router; read for every new session so a reload takes effect at once. */
  readonly router: () => Router;
  readonly logger: Logger;
  /** 0 = unlimited. */
  readonly maxSessions: number;
  /** Turns a client address into its log label (`-r` resolves names). */
  readonly labelClient: (address: NetAddress) => Promise<string>;
  readonly reusePort?: boolean;
}

/** A running SOCKS server. */
export class SocksServer {
  #options: ServerOptions;
  #listeners: Listener[] = [];
  #sessions = new Map<Connection, AbortController>();
  #finished = new Set<() => void>();
  #nextId = 1;
  #rejected = 0;
  #lastRejectLog = 0;

  constructor(options: ServerOptions) {
    this.#options = options;
  }

  /** Number of sessions in progress. */
  get activeSessions(): number {
    return this.#sessions.size;
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
    });
    this.#listeners.push(listener);
    return listener.address;
  }

  /**
   * Stops accepting, waits up to `graceMs` for running sessions to finish,
   * then closes whatever is left. Resolves when every session is gone.
   */
  async shutdown(graceMs: number): Promise<void> {
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
      this.#options.logger.warn("Grace period over: closing {count} sessions", { count: this.#sessions.size });
      for (const controller of this.#sessions.values()) controller.abort();
      await allDone;
    }
  }

  #accept(client: Connection): void {
    const { maxSessions, logger } = this.#options;
    if (maxSessions > 0 && this.#sessions.size >= maxSessions) {
      client.close();
      this.#rejected++;
      const now = Date.now();
      if (now - this.#lastRejectLog >= 1000) {
        logger.warn("{client} closed: {active} sessions already running (-m {max}); {rejected} rejected so far", {
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
    const controller = new AbortController();
    this.#sessions.set(client, controller);
    const context: SessionContext = {
      id: this.#nextId++,
      settings: this.#options.settings,
      router: this.#options.router(),
      logger,
      shutdown: controller.signal,
      clientLabel: this.#options.labelClient(client.remote),
    };
    serveSession(client, context).finally(() => {
      this.#sessions.delete(client);
      for (const check of this.#finished) check();
    });
  }
}
