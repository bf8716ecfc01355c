/**
 * crypt(3) of the host's libcrypt on Bun, through `bun:ffi`. Every scheme
 * the host's libcrypt knows works (on libxcrypt: yescrypt, SHA-crypt,
 * bcrypt, MD5-crypt...).
 *
 * `bun:ffi` calls are synchronous, and a yescrypt or bcrypt hash takes tens
 * of milliseconds, so the calls run in Web Workers. Their code is the short
 * script below, started from a Blob URL: it needs nothing but `bun:ffi`, so
 * it works from source and inside a `bun build --compile` binary alike,
 * with no extra entry point. Each worker calls libxcrypt's `crypt_rn` (or
 * `crypt_r` where there is no `crypt_rn`) with a work area of its own,
 * wiped after each call, since crypt(3) itself is not thread-safe.
 *
 * @module
 */
import type { CryptFunction } from "../auth/verifier.ts";
import { libcryptPaths } from "./_libcrypt_paths.ts";

/** The worker's script (plain JavaScript); each `__LIBRARIES__` becomes a JSON array of library paths. */
const WORKER_SOURCE = `
import { dlopen, CString } from "bun:ffi";
const failures = __LIBRARIES__.length === 0 ? ["libcrypt.so.1 not found"] : [];
let call = null;
let symbol = "";
const read = (pointer) => (pointer ? new CString(pointer).toString() : null);
for (const name of __LIBRARIES__) {
  try {
    const lib = dlopen(name, { crypt_rn: { args: ["ptr", "ptr", "ptr", "i32"], returns: "ptr" } });
    call = (key, setting) => {
      const data = new Uint8Array(32768);
      try { return read(lib.symbols.crypt_rn(key, setting, data, data.length)); } finally { data.fill(0); }
    };
    symbol = "crypt_rn";
    break;
  } catch (error) {
    try {
      const lib = dlopen(name, { crypt_r: { args: ["ptr", "ptr", "ptr"], returns: "ptr" } });
      call = (key, setting) => {
        const data = new Uint8Array(262144);
        try { return read(lib.symbols.crypt_r(key, setting, data)); } finally { data.fill(0); }
      };
      symbol = "crypt_r";
      break;
    } catch {
      failures.push(name + ": " + (error && error.message ? error.message : String(error)));
    }
  }
}
const encoder = new TextEncoder();
const cString = (text) => {
  const bytes = encoder.encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  bytes.fill(0);
  return out;
};
self.onmessage = (event) => {
  const request = event.data;
  if (call === null) {
    self.postMessage({ id: request.id, error: "no usable libcrypt (" + failures.join("; ") + ")" });
    return;
  }
  if (request.ping) {
    self.postMessage({ id: request.id, result: symbol });
    return;
  }
  const key = cString(request.key);
  try {
    const result = call(key, cString(request.setting));
    self.postMessage({ id: request.id, result: result === null || result.startsWith("*") ? null : result });
  } catch (error) {
    self.postMessage({ id: request.id, error: error && error.message ? error.message : String(error) });
  } finally {
    key.fill(0);
  }
};
`;

type Reply = { readonly id: number; readonly result: string | null } | { readonly id: number; readonly error: string };

interface Waiter {
  resolve(value: string | null): void;
  reject(error: Error): void;
}

/** One worker and the calls it has not answered yet. */
class CryptWorker {
  readonly #url: string;
  #worker: Worker | null = null;
  readonly pending = new Map<number, Waiter>();

  constructor(url: string) {
    this.#url = url;
  }

  post(message: { id: number; ping?: true; key?: string; setting?: string }, waiter: Waiter): void {
    this.pending.set(message.id, waiter);
    this.#spawn().postMessage(message);
  }

  terminate(reason: string): void {
    this.#worker?.terminate();
    this.#worker = null;
    const waiters = [...this.pending.values()];
    this.pending.clear();
    for (const waiter of waiters) waiter.reject(new Error(reason));
  }

  #spawn(): Worker {
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(this.#url, { type: "module" });
    (worker as { unref?: () => void }).unref?.();
    worker.onmessage = (event: MessageEvent<Reply>) => {
      const reply = event.data;
      const waiter = this.pending.get(reply.id);
      if (waiter === undefined) return;
      this.pending.delete(reply.id);
      if ("error" in reply) waiter.reject(new Error(reply.error));
      else waiter.resolve(reply.result);
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault?.();
      this.terminate(`the crypt worker failed: ${event.message}`);
    };
    this.#worker = worker;
    return worker;
  }
}

/** Options of `loadBunCrypt`. */
export interface BunCryptOptions {
  /** Library names to try. */
  readonly libraries?: readonly string[];
  /** Worker threads (calls running at once). Default 2. */
  readonly threads?: number;
}

/**
 * Starts the crypt workers and returns crypt(3). Rejects with an `Error`
 * that says what is missing when libcrypt cannot be used (macOS and Windows
 * have none to use).
 */
export async function loadBunCrypt(options: BunCryptOptions = {}): Promise<CryptFunction> {
  const source = WORKER_SOURCE.replaceAll("__LIBRARIES__", JSON.stringify(options.libraries ?? libcryptPaths()));
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const workers = Array.from({ length: Math.max(1, options.threads ?? 2) }, () => new CryptWorker(url));
  let nextId = 1;
  const send = (worker: CryptWorker, message: { ping?: true; key?: string; setting?: string }) =>
    new Promise<string | null>((resolve, reject) => worker.post({ id: nextId++, ...message }, { resolve, reject }));
  try {
    await Promise.all(workers.map((worker) => send(worker, { ping: true })));
  } catch (error) {
    for (const worker of workers) worker.terminate("stopped");
    throw new Error(
      `Cannot use the host's accounts: ${
        error instanceof Error ? error.message : String(error)
      }; host accounts need Linux with libcrypt.so.1 (libxcrypt), or use -U FILE`,
    );
  }
  return (key, setting) => {
    let least = workers[0] as CryptWorker;
    for (const worker of workers) if (worker.pending.size < least.pending.size) least = worker;
    return send(least, { key, setting });
  };
}
