/**
 * Deadlines of one fixed duration (the handshake timeout) under one timer.
 *
 * A timer per session costs a native timer, and clearing it, on every
 * connection. Every entry of a queue waits the same time, so the order in
 * which entries are added is the order in which they expire: the queue keeps
 * them in a `Map` (insertion-ordered, O(1) removal), and one timer, armed
 * for the oldest entry, expires what is due and re-arms for the next. An
 * entry that is removed in time costs a `Map.set` and a `Map.delete`.
 *
 * The timer is not cleared when the queue empties: it fires once more and
 * stops. Expiry is at most a few milliseconds late (timer granularity).
 *
 * @module
 */

/** Something with a deadline. */
export interface Expirable {
  /** Called once when the deadline passes, unless removed before. */
  expire(): void;
}

/** Deadlines of one duration, with one timer. */
export class DeadlineQueue {
  /** Milliseconds every entry waits. */
  readonly durationMs: number;
  readonly #entries = new Map<Expirable, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(durationMs: number) {
    this.durationMs = durationMs;
  }

  /** Number of entries waiting. */
  get size(): number {
    return this.#entries.size;
  }

  /** Starts `entry`'s deadline: `expire()` is called `durationMs` from now unless `delete` comes first. */
  add(entry: Expirable): void {
    this.#entries.set(entry, performance.now() + this.durationMs);
    if (this.#timer === undefined) this.#arm(this.durationMs);
  }

  /** Cancels `entry`'s deadline; false when it had none (already expired or removed). */
  delete(entry: Expirable): boolean {
    return this.#entries.delete(entry);
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(this.#fire, Math.max(0, Math.ceil(delayMs)));
  }

  #fire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    for (const [entry, deadline] of this.#entries) {
      if (deadline > now) {
        this.#arm(deadline - now);
        return;
      }
      this.#entries.delete(entry);
      entry.expire();
    }
  };
}

const queues = new Map<number, DeadlineQueue>();

/**
 * The process-wide queue for `durationMs` (one per distinct duration, so
 * every server with the same timeout shares one timer).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deadlineQueue } from "./deadline_queue.ts";
 * const queue = deadlineQueue(5);
 * assert.equal(deadlineQueue(5), queue);
 * const expired = await new Promise((resolve) => queue.add({ expire: () => resolve("expired") }));
 * assert.equal(expired, "expired");
 * ```
 */
export function deadlineQueue(durationMs: number): DeadlineQueue {
  let queue = queues.get(durationMs);
  if (queue === undefined) {
    queue = new DeadlineQueue(durationMs);
    queues.set(durationMs, queue);
  }
  return queue;
}
