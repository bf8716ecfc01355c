/**
 * Reads whole protocol messages from a `Connection` during a handshake.
 *
 * The inbox collects incoming bytes, runs a sans-I/O decoder over them and
 * resolves once the decoder has a complete message, so messages split across
 * TCP segments (or sent one byte at a time) and messages pipelined together
 * both work. Bytes past the last message are kept and handed over with
 * `takeRest()` so the relay forwards them: early data is never dropped.
 *
 * @module
 */
import { type Decoded, ProtocolError } from "../protocol/decoded.ts";
import { type Connection, type ConnectionHandlers, NetError } from "../runtime/types.ts";

/** Most bytes held while waiting for a message before the socket is paused. */
const HIGH_WATER = 64 * 1024;

/** What an inbox holds once its rest was taken: nothing (a session's relay keeps no handshake buffer). */
const NOTHING = new Uint8Array(0);

/**
 * Handshake-phase reader over one connection, and that connection's handlers
 * until the relay installs its own.
 */
export class Inbox implements ConnectionHandlers {
  #conn: Connection;
  #buffer = new Uint8Array(512);
  #start = 0;
  #end = 0;
  #ended = false;
  #closeError: NetError | undefined;
  #closed = false;
  #wake: (() => void) | null = null;
  /** Set by `abort`: the error every wait fails with from then on. */
  #failure: NetError | undefined;
  #fail: ((error: NetError) => void) | null = null;

  constructor(connection: Connection) {
    this.#conn = connection;
    connection.setHandlers(this);
  }

  /** The connection delivered bytes (a handler: not for callers). */
  onData(chunk: Uint8Array): void {
    this.#append(chunk);
  }

  /** The peer sent FIN (a handler: not for callers). */
  onEnd(): void {
    this.#ended = true;
    this.#notify();
  }

  /** The connection closed (a handler: not for callers). */
  onClose(error: NetError | undefined): void {
    this.#closed = true;
    this.#closeError = error;
    this.#notify();
  }

  /** Number of bytes received and not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Waits until `decode` accepts the buffered bytes, consumes them and returns
   * the value. Throws the decoder's `ProtocolError`, a `NetError("closed")`
   * when the peer ends first, a `NetError("timeout")` when `signal` aborts,
   * or the error given to `abort`.
   */
  async read<T>(decode: (bytes: Uint8Array) => Decoded<T>, signal?: AbortSignal): Promise<T> {
    for (;;) {
      const result = decode(this.#buffer.subarray(this.#start, this.#end));
      if (result.ok) {
        this.#start += result.size;
        if (this.#start === this.#end) this.#start = this.#end = 0;
        if (this.buffered < HIGH_WATER) this.#conn.resume();
        return result.value;
      }
      if (this.#ended || this.#closed) {
        if (this.buffered > 0) {
          throw new ProtocolError(
            `Cannot decode message: connection ended after ${this.buffered} of ${result.need} bytes`,
          );
        }
        throw this.#closeError ?? new NetError("closed", "Connection closed by peer");
      }
      this.#conn.resume();
      await this.#waitForData(signal);
    }
  }

  /**
   * Makes a read that waits for bytes, and every later one, fail with
   * `error` (a deadline without an `AbortSignal`). Idempotent: the first
   * error stays.
   */
  abort(error: NetError): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    const fail = this.#fail;
    this.#wake = this.#fail = null;
    fail?.(error);
  }

  /** The error given to `abort`, if any. */
  get failure(): NetError | undefined {
    return this.#failure;
  }

  /** Returns a copy of the unconsumed bytes and empties the inbox, letting its buffer go. */
  takeRest(): Uint8Array {
    const rest = this.#start === this.#end ? NOTHING : this.#buffer.slice(this.#start, this.#end);
    this.#buffer = NOTHING;
    this.#start = this.#end = 0;
    return rest;
  }

  /** True once the peer has sent FIN (with or without bytes still buffered). */
  get ended(): boolean {
    return this.#ended;
  }

  #append(chunk: Uint8Array): void {
    const length = this.#end - this.#start;
    if (this.#end + chunk.length > this.#buffer.length) {
      if (length + chunk.length <= this.#buffer.length) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      } else {
        const bigger = new Uint8Array(Math.max(this.#buffer.length * 2, length + chunk.length));
        bigger.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = bigger;
      }
      this.#start = 0;
      this.#end = length;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
    if (this.buffered >= HIGH_WATER) this.#conn.pause();
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = this.#fail = null;
    wake?.();
  }

  #waitForData(signal: AbortSignal | undefined): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (signal === undefined) {
      return new Promise<void>((resolve, reject) => {
        this.#wake = resolve;
        this.#fail = reject;
      });
    }
    if (signal.aborted) return Promise.reject(timeoutError(signal));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#wake = null;
        reject(timeoutError(signal));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#wake = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
    });
  }
}

function timeoutError(signal: AbortSignal): NetError {
  return signal.reason instanceof NetError
    ? signal.reason
    : new NetError("timeout", "Timed out waiting for the peer", { cause: signal.reason });
}
