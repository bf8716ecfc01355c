/**
 * The password hash worker: a Web Worker (Deno and Bun) that checks
 * passwords against user-file hashes (bcrypt, SHA-crypt) so that the
 * milliseconds of CPU each check takes are spent off the event loop.
 * `hash_queue.ts` starts and feeds it.
 *
 * Messages in: `{ id, password, hash }`, or `{ id, ping: true }` (the
 * start-up check). Messages out: `{ id, match }` or `{ id, error }`.
 *
 * In a binary made with `bun build --compile` this file must be one of the
 * build's entry points (Bun bundles workers only when told to), and
 * `deno compile` needs `--include src/auth/hash_worker.ts`. Import only its
 * types elsewhere: importing the module installs the message handler.
 *
 * @module
 */
import { checkUserHash } from "./user_hash.ts";

/** A request to the worker. */
export type HashWorkerRequest =
  | { readonly id: number; readonly password: string; readonly hash: string }
  | { readonly id: number; readonly ping: true };

/** The worker's answer. */
export type HashWorkerReply =
  | { readonly id: number; readonly match: boolean }
  | { readonly id: number; readonly error: string };

/** The slice of a worker's global scope used here. */
interface WorkerScope {
  onmessage: ((event: MessageEvent<HashWorkerRequest>) => void) | null;
  postMessage(message: HashWorkerReply): void;
}

function answer(request: HashWorkerRequest): HashWorkerReply {
  if ("ping" in request) return { id: request.id, match: true };
  try {
    return { id: request.id, match: checkUserHash(request.password, request.hash) };
  } catch (error) {
    return { id: request.id, error: error instanceof Error ? error.message : String(error) };
  }
}

const scope = globalThis as unknown as WorkerScope;
scope.onmessage = (event) => scope.postMessage(answer(event.data));
