/**
 * The part of `connect` the Bun and Deno adapters share: refuse a source
 * address (neither can bind one), honour the abort signal, and map errors.
 *
 * @module
 */
import { formatHostPort } from "./_address.ts";
import { abortError, toNetError } from "./_errors.ts";
import { type Connection, type ConnectOptions, NetError } from "./types.ts";

/**
 * Runs `open()` and adopts its socket as a `Connection`. When `signal` aborts
 * first the promise rejects at once and the socket, should it still connect,
 * is discarded.
 */
export function dialCancellable<T>(
  options: ConnectOptions,
  runtimeName: string,
  open: () => Promise<T>,
  adopt: (socket: T) => Connection,
  discard: (socket: T) => void,
): Promise<Connection> {
  const { host, port, signal } = options;
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
    const onAbort = () => {
      settled = true;
      reject(abortError(signal as AbortSignal, action()));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    open().then(
      (socket) => {
        signal?.removeEventListener("abort", onAbort);
        if (settled) discard(socket);
        else resolve(adopt(socket));
        settled = true;
      },
      (error: unknown) => {
        signal?.removeEventListener("abort", onAbort);
        if (!settled) reject(toNetError(error, action()));
        settled = true;
      },
    );
  });
}
