/**
 * What this process is, computed once from the environment its parent set:
 * a process started by the user, the detached background child, or worker
 * N of `--workers`, with the addresses the supervisor assigned it. Everything
 * else receives this value; nothing re-reads the environment.
 *
 * @module
 */
import type { ListenAddress } from "./listen_address.ts";

/** Environment variable that marks the detached child. */
export const DAEMON_CHILD_ENV = "SRELAY_DAEMON_CHILD";

/** Environment variable holding a worker's number (1..N); absent outside workers. */
export const WORKER_ENV = "SRELAY_WORKER";

/** Environment variable with the addresses workers 2..N bind, as a JSON array of `{host, port}`. */
export const WORKER_LISTEN_ENV = "SRELAY_WORKER_LISTEN";

/** This process's place in the process tree. */
export interface ProcessRole {
  /** True in the detached background child. */
  readonly backgroundChild: boolean;
  /** The worker number (1..N), or 0 outside workers. */
  readonly worker: number;
  /** The addresses a worker binds instead of its `-i` options, or null (worker 1 and non-workers). */
  readonly assignedListen: readonly ListenAddress[] | null;
  /**
   * True when a parent reads this process's stdout until the ready line
   * (the background child and workers): everything it must say goes there.
   */
  readonly reportsToParent: boolean;
}

function parseAssigned(text: string | undefined): ListenAddress[] | null {
  if (text === undefined || text === "") return null;
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value)) throw new TypeError(`${WORKER_LISTEN_ENV} is not a JSON array`);
  return value.map((item: { host?: unknown; port?: unknown }) => {
    if (typeof item?.host !== "string" || typeof item?.port !== "number") {
      throw new TypeError(`${WORKER_LISTEN_ENV} holds an entry that is not {host, port}`);
    }
    return { host: item.host, port: item.port };
  });
}

/**
 * Reads the role from an environment (the process's, at start-up).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const role = processRole({ SRELAY_WORKER: "2", SRELAY_WORKER_LISTEN: '[{"host":"::1","port":1080}]' });
 * assert.deepEqual(role.assignedListen, [{ host: "::1", port: 1080 }]);
 * assert.equal(role.reportsToParent, true);
 * ```
 */
export function processRole(env: Readonly<Record<string, string | undefined>>): ProcessRole {
  const backgroundChild = env[DAEMON_CHILD_ENV] === "1";
  const worker = Number(env[WORKER_ENV] ?? "0") || 0;
  return {
    backgroundChild,
    worker,
    assignedListen: worker > 0 ? parseAssigned(env[WORKER_LISTEN_ENV]) : null,
    reportsToParent: backgroundChild || worker > 0,
  };
}
