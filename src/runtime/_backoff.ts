/**
 * The retry delay after a failing accept (EMFILE, ENFILE, ENOMEM...) or
 * receive: doubling from 10 ms to at most 1 s, back to the start after a
 * success, so a process out of descriptors neither spins nor stays deaf
 * long once they free up.
 *
 * @module
 */

const FIRST_DELAY_MS = 10;
const MAX_DELAY_MS = 1_000;

/** Exponential backoff for retrying a failing socket operation. */
export class Backoff {
  #next = FIRST_DELAY_MS;

  /** The delay to wait before the next attempt; each call doubles the following one. */
  next(): number {
    const delay = this.#next;
    this.#next = Math.min(delay * 2, MAX_DELAY_MS);
    return delay;
  }

  /** Starts over from the shortest delay (call after a success). */
  reset(): void {
    this.#next = FIRST_DELAY_MS;
  }
}
