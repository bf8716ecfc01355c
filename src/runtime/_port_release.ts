/**
 * Ports this process has closed but the runtime has not released yet.
 *
 * Deno frees a socket's descriptor only when the operation pending on it
 * (an `accept`, a datagram `receive`) has been cancelled, a tick after
 * `close()`; node:dgram on Deno frees it when `close` is emitted. Binding the
 * same port in between fails with EADDRINUSE. The adapters record such a
 * close here and a later bind of the same port waits for it, so that
 * "close, then bind the same port" works as it does on Bun and Node.
 *
 * @module
 */

/** Longest a bind waits for a release that never comes. */
const RELEASE_LIMIT_MS = 1_000;

/** Pending port releases of one transport (one instance for TCP, one for UDP). */
export class PortReleases {
  readonly #pending = new Map<number, Promise<void>>();

  /** Records that `port` stays bound until `released` settles (at most 1 s). */
  track(port: number, released: Promise<unknown>): void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<void>((resolve) => timer = setTimeout(resolve, RELEASE_LIMIT_MS));
    const done = Promise.race([released.then(settle, settle), limit]).then(() => {
      clearTimeout(timer);
      if (this.#pending.get(port) === done) this.#pending.delete(port);
    });
    this.#pending.set(port, done);
  }

  /** Resolves once no closed socket of this process still holds `port`. */
  settled(port: number): Promise<void> {
    return this.#pending.get(port) ?? Promise.resolve();
  }
}

function settle(): void {}
