/**
 * The part of `connect` the Bun and Deno adapters share: refuse a source
 * address (neither can bind one), honour the abort signal and the timeout,
 * and map errors.
 *
 * @module
 */
import { deadlineQueue } from "../io/deadline_queue.ts";
import { formatHostPort } from "./_address.ts";
import { abortError, connectTimeoutError, toNetError } from "./_errors.ts";
import { type Cancellation, type Connection, type ConnectOptions, NetError } from "./types.ts";

/**
 * Runs `open()` and adopts its socket as a `Connection`. When `signal`
 * aborts or `timeoutMs` passes first, the promise rejects at once. A runtime
 * that can cancel an attempt (`cancels`) gets a signal in `open` that aborts
 * then; otherwise the socket, should it still connect, is discarded. The
 * timeout is an entry of a deadline queue shared by every connect with the
 * same timeout (no timer or AbortController per connect).
 */
export function dialCancellable<T>(
  options: ConnectOptions,
  runtimeName: string,
  open: (signal: AbortSignal | undefined) => Promise<T>,
  adopt: (socket: T) => Connection,
  discard: (socket: T) => void,
  cancels = false,
): Promise<Connection> {
  const { host, port, signal } = options;
  const timeoutMs = options.timeoutMs ?? 0;
  const action = () => `connect to ${formatHostPort(host, port)}`;
  if (options.localHost !== undefined) {
    return Promise.reject(
      new NetError(
        "other",
        `Cannot ${action()} from ${options.localHost}: the ${runtimeName} runtime cannot bind a source address`,
      ),
    );
  }
  if (signal?.aborted) return Promise.reject(abortError(signal, action()));
  return new Promise<Connection>((resolve, reject) => {
    let settled = false;
    const attempt = cancels && (signal !== undefined || timeoutMs > 0) ? new AbortController() : undefined;
    const deadlines = timeoutMs > 0 ? deadlineQueue(timeoutMs) : undefined;
    const finish = () => {
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      deadlines?.delete(deadline);
    };
    const fail = (error: NetError) => {
      if (settled) return;
      finish();
      attempt?.abort(error);
      reject(error);
    };
    const onAbort = () => fail(abortError(signal as Cancellation, action()));
    const deadline = {
      expire: () => fail(connectTimeoutError(action(), timeoutMs)),
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    deadlines?.add(deadline);
    open(attempt?.signal).then(
      (socket) => {
        if (settled) {
          discard(socket);
          return;
        }
        finish();
        resolve(adopt(socket));
      },
      (error: unknown) => {
        if (settled) return;
        finish();
        reject(toNetError(error, action()));
      },
    );
  });
}
