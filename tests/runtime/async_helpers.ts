/**
 * Promise helpers shared by the runtime adapter suites: every wait is
 * bounded, and a failed operation must fail with a `NetError`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { NetError } from "../../src/runtime/types.ts";

/** A promise with its resolve and reject functions. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** Creates a promise that the caller settles. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects when `promise` does not settle within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Awaits a promise that must reject with a `NetError`, and returns the error. */
export async function rejection(promise: Promise<unknown>): Promise<NetError> {
  try {
    await within(promise, 8_000, "the operation to fail");
  } catch (error) {
    assert.ok(error instanceof NetError, `expected a NetError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected the operation to fail");
}

/** Polls `condition` every 10 ms until it holds; fails after `ms`. */
export async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`Timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Does nothing (an event handler that ignores its event). */
export function ignore(): void {}
