/**
 * The lines a child started by `spawnUntilReady` (background mode,
 * `--workers`) prints on stdout for its parent: its start-up lines, data
 * lines for the supervisor, and finally `READY_LINE`.
 *
 * @module
 */

/** Line a child prints on stdout once it serves. */
export const READY_LINE = "srelay: ready";

/**
 * Prefix of the line a worker prints before `READY_LINE` with the addresses
 * it bound, as a JSON array of `{host, port}`: data for the supervisor,
 * never shown to the user.
 */
export const BOUND_PREFIX = "srelay-bound: ";

/**
 * Prefix of the line a worker prints before `READY_LINE` with the loopback
 * `host:port` of its private metrics endpoint (`--metrics`): data for the
 * supervisor, never shown to the user.
 */
export const METRICS_PREFIX = "srelay-metrics: ";

/** An address a child reported it bound. */
export interface BoundAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * The line that reports `addresses` to the supervisor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(boundLine([{ host: "::1", port: 1080 }]), 'srelay-bound: [{"host":"::1","port":1080}]');
 * ```
 */
export function boundLine(addresses: readonly BoundAddress[]): string {
  return BOUND_PREFIX + JSON.stringify(addresses.map(({ host, port }) => ({ host, port })));
}
