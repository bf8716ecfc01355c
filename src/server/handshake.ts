/**
 * The handshake phase of one session: the client connection, the inbox its
 * messages are read through, and the deadline (the handshake timeout, or
 * the server's shutdown) every read obeys. Stages read through it; once a
 * command handler starts relaying it calls `finish()`, which disarms the
 * deadline so nothing of the handshake stays armed for the relay's lifetime.
 *
 * @module
 */
import type { DeadlineQueue } from "../io/deadline_queue.ts";
import { Inbox } from "../io/inbox.ts";
import { sendAndClose } from "../io/send_and_close.ts";
import { type Decoded, ProtocolError } from "../protocol/decoded.ts";
import { type Cancellation, type Connection, NetError } from "../runtime/types.ts";

/** One session's handshake: reads with a deadline, and polite refusals. */
export class Handshake {
  /** The client connection. */
  readonly connection: Connection;
  /** Bytes received and not yet consumed; the relay takes the rest. */
  readonly inbox: Inbox;
  /** Aborted when the server shuts down and the grace period is over. */
  readonly shutdown: Cancellation;
  #deadlines: DeadlineQueue | undefined;
  #deadline: AbortController | undefined;

  /** The deadline is `deadlines.durationMs` from now (one timer for every session: `deadline_queue.ts`). */
  constructor(connection: Connection, deadlines: DeadlineQueue, shutdown: Cancellation) {
    this.connection = connection;
    this.inbox = new Inbox(connection);
    this.shutdown = shutdown;
    this.#deadlines = deadlines;
    deadlines.add(this);
    shutdown.addEventListener("abort", this.#onShutdown, { once: true });
  }

  /**
   * Aborts when the handshake timeout expires or the server shuts down (for
   * steps that wait on something else than the client: made on first use).
   */
  get signal(): AbortSignal {
    if (this.#deadline === undefined) {
      this.#deadline = new AbortController();
      const failure = this.inbox.failure;
      if (failure !== undefined) this.#deadline.abort(failure);
    }
    return this.#deadline.signal;
  }

  /**
   * Reads one message. When the bytes are malformed, `replyFor(error)` (if
   * given) is sent to the client before the `ProtocolError` is rethrown.
   */
  async read<T>(
    decode: (bytes: Uint8Array) => Decoded<T>,
    replyFor?: (error: ProtocolError) => Uint8Array,
  ): Promise<T> {
    try {
      return await this.inbox.read(decode);
    } catch (error) {
      if (
        replyFor !== undefined && error instanceof ProtocolError && !this.connection.closed && !this.inbox.ended
      ) {
        await this.refuse(replyFor(error));
      }
      throw error;
    }
  }

  /** Sends a last message (if any), FIN, and closes: at once when the server is shutting down. */
  refuse(bytes?: Uint8Array): Promise<void> {
    return sendAndClose(this.connection, bytes, this.shutdown);
  }

  /** Disarms the deadline: the handshake is over. Idempotent. */
  finish(): void {
    const deadlines = this.#deadlines;
    if (deadlines === undefined) return;
    this.#deadlines = undefined;
    deadlines.delete(this);
    this.shutdown.removeEventListener("abort", this.#onShutdown);
  }

  /** True while the deadline is armed. */
  get armed(): boolean {
    return this.#deadlines !== undefined;
  }

  /** The deadline passed (called by the queue). */
  expire(): void {
    const deadlines = this.#deadlines;
    if (deadlines === undefined) return;
    this.#deadlines = undefined;
    this.shutdown.removeEventListener("abort", this.#onShutdown);
    this.#fail(new NetError("timeout", `Handshake not completed within ${deadlines.durationMs / 1000} s`));
  }

  #fail(error: NetError): void {
    this.inbox.abort(error);
    this.#deadline?.abort(error);
  }

  #onShutdown = (): void => {
    this.finish();
    this.#fail(new NetError("aborted", "Server is shutting down"));
  };
}
