/**
 * Password checks off the event loop, with a bound on how many may wait.
 *
 * bcrypt and SHA-crypt take milliseconds of CPU per check (more at higher
 * costs); done on the event loop they would stall every relay for that
 * long. `HashWorkerPool` runs them in Web Workers (`hash_worker.ts`, on
 * Deno and Bun alike), one check per worker at a time. `BoundedQueue` lets
 * at most `concurrency` jobs run and `maxQueued` wait; past that a check is
 * answered `busy` at once, so a flood of logins cannot queue work without
 * end (the client is refused and may retry).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { HashWorkerReply, HashWorkerRequest } from "./hash_worker.ts";

/** A check's outcome: `busy` when the queue was full, `error` when the worker failed. */
export type HashCheck = "match" | "mismatch" | "busy" | "error";

/** Something that checks a password against a user-file hash. */
export interface HashChecker {
  check(password: string, hash: string): Promise<HashCheck>;
}

/**
 * Runs async jobs with at most `concurrency` at once and at most `maxQueued`
 * waiting, first in first out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const queue = new BoundedQueue(1, 0);
 * const first = queue.run(() => new Promise((resolve) => setTimeout(resolve, 10, 1)));
 * assert.equal(queue.run(() => Promise.resolve(2)), undefined); // full: refused at once
 * assert.equal(await first, 1);
 * ```
 */
export class BoundedQueue {
  readonly concurrency: number;
  readonly maxQueued: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(concurrency: number, maxQueued: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`BoundedQueue concurrency must be a positive integer, got ${concurrency}`);
    }
    if (!Number.isInteger(maxQueued) || maxQueued < 0) {
      throw new RangeError(`BoundedQueue maxQueued must be a non-negative integer, got ${maxQueued}`);
    }
    this.concurrency = concurrency;
    this.maxQueued = maxQueued;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running;
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** Runs `job` when a slot is free; `undefined` at once when the queue is full. */
  run<T>(job: () => Promise<T>): Promise<T> | undefined {
    if (this.#running < this.concurrency) return this.#start(job);
    if (this.#waiting.length >= this.maxQueued) return undefined;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push(() => this.#start(job).then(resolve, reject));
    });
  }

  #start<T>(job: () => Promise<T>): Promise<T> {
    this.#running++;
    let promise: Promise<T>;
    try {
      promise = job();
    } catch (error) {
      promise = Promise.reject(error);
    }
    return promise.finally(() => {
      this.#running--;
      this.#waiting.shift()?.();
    });
  }
}

/** Options of `HashWorkerPool.start`. */
export interface HashWorkerPoolOptions {
  /** Workers (checks running at once). Default: 2, or 1 on a single-CPU machine. */
  readonly threads?: number;
  /** Checks that may wait for a worker; more are answered `busy`. Default 64. */
  readonly maxQueued?: number;
  /** Where the worker module is; default `defaultHashWorkerUrl()`. */
  readonly workerUrl?: string | URL;
  /** A check that takes longer fails (`error`) and its worker is replaced. Default 60 s. */
  readonly checkTimeoutMs?: number;
  /** How long the workers have to answer the start-up ping. Default 30 s. */
  readonly startTimeoutMs?: number;
}

/**
 * The worker module's URL: `hash_worker.ts` beside this file, or, inside a
 * binary made by `bun build --compile` (whose modules live under
 * `/$bunfs/root/`, or `B:/~BUN/root/` on Windows), the bundled
 * `hash_worker.js`. Bun places it relative to the entry points' common
 * folder: `auth/hash_worker.js` when the entry points are
 * `src/entry/bun.ts` and `src/auth/hash_worker.ts`.
 */
export function defaultHashWorkerUrl(moduleUrl: string = import.meta.url): string {
  const root = moduleUrl.startsWith("file:///$bunfs/")
    ? "/$bunfs/root/"
    : /^file:\/\/\/[A-Za-z]:\/~BUN\//.test(moduleUrl)
    ? "B:/~BUN/root/"
    : null;
  if (root === null) return new URL("./hash_worker.ts", moduleUrl).href;
  const candidates = ["auth/hash_worker.js", "src/auth/hash_worker.js", "hash_worker.js"].map((path) => root + path);
  return candidates.find((path) => existsSync(path)) ?? candidates[0] as string;
}

/** The default number of workers: one fewer than the cores (the event loop keeps one), 1 or 2. */
export function defaultHashThreads(): number {
  return Math.max(1, Math.min(2, availableParallelism() - 1));
}

interface Pending {
  readonly resolve: (reply: HashWorkerReply) => void;
  readonly timer: ReturnType<typeof setTimeout> | undefined;
}

/** One worker, whether it answered its start-up ping, and the request it is working on. */
class Slot {
  worker: Worker | null = null;
  /** Settles with the ping's reply once the worker is loaded; `null` before a worker is started. */
  ready: Promise<HashWorkerReply> | null = null;
  pending: Pending | null = null;
  /** Taken by a check from its choice of this slot until it ends. */
  busy = false;
}

const WORKER_NAME = "srelay-hash-worker";

/** Web Workers that check user-file hashes, behind a `BoundedQueue`. */
export class HashWorkerPool implements HashChecker {
  readonly #url: string;
  readonly #slots: Slot[];
  readonly #queue: BoundedQueue;
  readonly #checkTimeoutMs: number;
  readonly #startTimeoutMs: number;
  #nextId = 1;
  #closed = false;

  private constructor(url: string, threads: number, maxQueued: number, checkTimeoutMs: number, startTimeoutMs: number) {
    this.#url = url;
    this.#slots = Array.from({ length: threads }, () => new Slot());
    this.#queue = new BoundedQueue(threads, maxQueued);
    this.#checkTimeoutMs = checkTimeoutMs;
    this.#startTimeoutMs = startTimeoutMs;
  }

  /**
   * Starts the workers and waits until each answers a ping. Rejects with a
   * clear `Error` when the worker module cannot be loaded (for example a
   * compiled binary built without it as an entry point).
   */
  static async start(options: HashWorkerPoolOptions = {}): Promise<HashWorkerPool> {
    const url = String(options.workerUrl ?? defaultHashWorkerUrl());
    const pool = new HashWorkerPool(
      url,
      options.threads ?? defaultHashThreads(),
      options.maxQueued ?? 64,
      options.checkTimeoutMs ?? 60_000,
      options.startTimeoutMs ?? 30_000,
    );
    const replies = await Promise.all(pool.#slots.map((slot) => pool.#ready(slot)));
    const failed = replies.find((reply) => "error" in reply);
    if (failed !== undefined && "error" in failed) {
      pool.close();
      const detail = failed.error;
      throw new Error(
        `Cannot start the password hash worker (${url}): ${detail}. A binary made with bun build --compile must list src/auth/hash_worker.ts as an entry point`,
      );
    }
    return pool;
  }

  /** Workers. */
  get threads(): number {
    return this.#slots.length;
  }

  /** Checks running and waiting now. */
  get load(): { readonly running: number; readonly queued: number } {
    return { running: this.#queue.running, queued: this.#queue.queued };
  }

  check(password: string, hash: string): Promise<HashCheck> {
    if (this.#closed) return Promise.resolve("error");
    const run = this.#queue.run(async (): Promise<HashCheck> => {
      const slot = this.#slots.find((candidate) => !candidate.busy);
      if (slot === undefined || this.#closed) return "error";
      slot.busy = true;
      try {
        const reply = await this.#request(slot, { id: this.#nextId++, password, hash });
        if ("error" in reply) return "error";
        return reply.match ? "match" : "mismatch";
      } finally {
        slot.busy = false;
      }
    });
    return run ?? Promise.resolve("busy");
  }

  /** Stops every worker; checks still running resolve `error`. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const slot of this.#slots) this.#retire(slot, "the hash workers were stopped");
  }

  /** Starts the slot's worker if there is none; settles with its ping's reply. */
  #ready(slot: Slot): Promise<HashWorkerReply> {
    if (slot.worker === null || slot.ready === null) {
      const worker = this.#spawn(slot);
      slot.ready = this.#post(slot, worker, { id: this.#nextId++, ping: true }, this.#startTimeoutMs);
    }
    return slot.ready;
  }

  /** Sends a check once the worker is loaded; the time limit runs from then. */
  async #request(slot: Slot, request: HashWorkerRequest): Promise<HashWorkerReply> {
    const ready = await this.#ready(slot);
    if ("error" in ready || slot.worker === null) {
      this.#retire(slot, "the worker did not start");
      return { id: request.id, error: "error" in ready ? ready.error : "the worker stopped" };
    }
    return await this.#post(slot, slot.worker, request, this.#checkTimeoutMs);
  }

  #post(slot: Slot, worker: Worker, request: HashWorkerRequest, timeoutMs: number): Promise<HashWorkerReply> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#retire(slot, `no answer within ${timeoutMs / 1000} s`);
      }, timeoutMs);
      slot.pending = { resolve, timer };
      worker.postMessage(request);
    });
  }

  #spawn(slot: Slot): Worker {
    if (slot.worker !== null) return slot.worker;
    const worker = new Worker(this.#url, { type: "module", name: WORKER_NAME });
    (worker as { unref?: () => void }).unref?.();
    worker.onmessage = (event: MessageEvent<HashWorkerReply>) => {
      const pending = slot.pending;
      if (pending === null) return;
      slot.pending = null;
      clearTimeout(pending.timer);
      pending.resolve(event.data);
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault?.();
      this.#retire(slot, event.message || "the worker failed");
    };
    worker.onmessageerror = () => this.#retire(slot, "a message could not be read");
    slot.worker = worker;
    return worker;
  }

  /** Ends the slot's worker (a new one starts with the next request) and fails its request. */
  #retire(slot: Slot, reason: string): void {
    slot.worker?.terminate();
    slot.worker = null;
    slot.ready = null;
    const pending = slot.pending;
    slot.pending = null;
    if (pending === null) return;
    clearTimeout(pending.timer);
    pending.resolve({ id: 0, error: reason });
  }
}
