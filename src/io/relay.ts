/**
 * The relay: copies bytes both ways between a client and a target connection
 * until the session is over, with flow control, half-close, an idle timeout
 * and byte counters. It is runtime-agnostic (only `Connection` is used).
 *
 * Per direction, `src.onData` writes the chunk to `dst`; when `dst.write`
 * returns false the source is paused until `dst` drains, so memory stays
 * bounded by one chunk per direction plus what the adapters hold. A chunk is
 * copied only when the source reuses its chunks and the sink keeps what it
 * is given (decided once per direction, never per chunk).
 *
 * Half-close is carried through: a side's FIN becomes `closeWrite()` on the
 * other side once that side's queued bytes are out. The session ends, and
 * both connections are closed, when both directions have ended and been
 * flushed, when a side closes (after the bytes it sent are flushed to the
 * other side), when a side fails, when the idle timeout expires, or when the
 * signal aborts. The returned promise never rejects.
 *
 * Idle timeout precision: one interval timer per session samples the byte
 * counters every `idleTimeoutMs / 4` and closes the session after four
 * samples without progress, that is after between `idleTimeoutMs` and
 * `1.25 × idleTimeoutMs` of silence. A session stalled because a peer stops
 * reading moves no bytes and counts as idle too.
 *
 * @module
 */
import type { Cancellation, Connection, ConnectionHandlers, NetError } from "../runtime/types.ts";

/** Options for `relay`. */
export interface RelayOptions {
  /** Closes a session that moved no byte for this long; 0 disables it. */
  idleTimeoutMs: number;
  /** Bytes already read from the client (early data): written to the target first. */
  clientRest?: Uint8Array;
  /** Bytes already read from the target: written to the client first. */
  targetRest?: Uint8Array;
  /**
   * The client already sent FIN before the relay took over (for example
   * `Inbox.ended` after the handshake): its direction starts ended.
   */
  clientEnded?: boolean;
  /** The target already sent FIN before the relay took over. */
  targetEnded?: boolean;
  /**
   * Once one direction has ended (a FIN went through), the other must end
   * within this long or the session is closed (`fin_wait_timeout`); 0
   * disables it. Bounds half-closed sessions whose peer never finishes.
   */
  finWaitMs?: number;
  /** Aborting closes both sides; the outcome is then `aborted`. */
  signal?: Cancellation;
}

/** Why a relay session ended. */
export type RelayOutcome =
  | "done"
  | "idle_timeout"
  | "fin_wait_timeout"
  | "aborted"
  | "client_error"
  | "target_error";

/** What a finished relay session reports. */
export interface RelayResult {
  /** Bytes from client to target, including `clientRest`. */
  bytesUp: number;
  /** Bytes from target to client, including `targetRest`. */
  bytesDown: number;
  outcome: RelayOutcome;
  /** The failure behind `client_error` / `target_error`. */
  error?: NetError;
}

/** Samples per idle period: the timeout fires after 1 to 1.25 periods of silence. */
const IDLE_SAMPLES = 4;

/**
 * Relays between `client` and `target` until the session ends; resolves with
 * the byte counts and the outcome once both connections are closed. Never
 * rejects.
 */
export function relay(
  client: Connection,
  target: Connection,
  options: RelayOptions,
): Promise<RelayResult> {
  return new Promise<RelayResult>((resolve) => {
    new Session(client, target, options, resolve).start();
  });
}

/**
 * One direction of a session: bytes from `src` to `dst`. It is also the
 * handlers of `src` (methods, not a closure per event per session).
 */
class Pump implements ConnectionHandlers {
  readonly src: Connection;
  readonly dst: Connection;
  bytes = 0;
  /** The source sent FIN (or closed): nothing more will come. */
  ended = false;
  /** `dst.write` returned false and `dst` has not drained yet. */
  waiting = false;
  readonly #copy: boolean;
  readonly #session: Session;
  /** `src` is the client (this pump carries bytes up). */
  readonly #fromClient: boolean;

  constructor(src: Connection, dst: Connection, session: Session, fromClient: boolean) {
    this.src = src;
    this.dst = dst;
    this.#session = session;
    this.#fromClient = fromClient;
    this.#copy = src.reusesChunks && dst.keepsWrittenChunks;
  }

  /** Writes bytes the source already delivered before the relay started. */
  writeRest(rest: Uint8Array | undefined): void {
    if (rest === undefined || rest.length === 0) return;
    this.bytes += rest.length;
    if (!this.dst.write(rest)) {
      this.waiting = true;
      this.src.pause();
    }
  }

  onData(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    if (!this.dst.write(this.#copy ? chunk.slice() : chunk)) {
      this.waiting = true;
      this.src.pause();
    }
  }

  onEnd(): void {
    this.end();
    this.#session.check();
  }

  onClose(error: NetError | undefined): void {
    this.#session.sideClosed(this.#fromClient, error);
  }

  onDrain = (): void => {
    this.waiting = false;
    this.src.resume();
    this.#session.check();
  };

  /**
   * The source is done: pass the FIN on once the queued bytes are out. When
   * that ends the session (the other direction is settled and nothing is
   * queued), closing `dst` sends the FIN: no separate shutdown call.
   */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.waiting && this.#session.settledOtherThan(this)) return;
    this.dst.closeWrite();
    this.#session.halfClosed();
  }
}

/** One relay session: both pumps, the end-of-session rules and the idle timer. */
class Session {
  readonly #client: Connection;
  readonly #target: Connection;
  readonly #up: Pump;
  readonly #down: Pump;
  readonly #resolve: (result: RelayResult) => void;
  #clientClosed = false;
  #targetClosed = false;
  #done = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #finWaitTimer: ReturnType<typeof setTimeout> | undefined;
  #lastTotal = 0;
  #silentSamples = 0;
  readonly #options: RelayOptions;
  readonly #signal: Cancellation | undefined;

  constructor(
    client: Connection,
    target: Connection,
    options: RelayOptions,
    resolve: (result: RelayResult) => void,
  ) {
    this.#client = client;
    this.#target = target;
    this.#resolve = resolve;
    this.#up = new Pump(client, target, this, true);
    this.#down = new Pump(target, client, this, false);
    this.#options = options;
    this.#signal = options.signal;
  }

  start(): void {
    const options = this.#options;
    const client = this.#client;
    const target = this.#target;
    if (this.#signal?.aborted) {
      this.#finish("aborted");
      return;
    }
    target.onDrain = this.#up.onDrain;
    client.onDrain = this.#down.onDrain;
    this.#up.writeRest(options.clientRest);
    this.#down.writeRest(options.targetRest);
    if (options.clientEnded) this.#up.end();
    if (options.targetEnded) this.#down.end();
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    if (options.idleTimeoutMs > 0) {
      this.#timer = setInterval(() => this.#sample(), options.idleTimeoutMs / IDLE_SAMPLES);
    }
    client.setHandlers(this.#up);
    if (this.#done) return;
    target.setHandlers(this.#down);
    if (this.#done) return;
    // The handshake may have paused a side (its inbox was full); flow starts
    // now unless the early data already filled the other side.
    if (!this.#up.waiting) client.resume();
    if (!this.#down.waiting) target.resume();
    if (client.closed) this.sideClosed(true, undefined);
    if (target.closed) this.sideClosed(false, undefined);
    this.check();
  }

  /**
   * Ends the session once both directions are settled: a direction is
   * settled when its source ended and everything was flushed to its sink, or
   * when its sink closed (a closed side takes nothing more).
   */
  check(): void {
    if (this.#done) return;
    const upSettled = this.#targetClosed || (this.#up.ended && !this.#up.waiting);
    const downSettled = this.#clientClosed || (this.#down.ended && !this.#down.waiting);
    if (upSettled && downSettled) this.#finish("done");
  }

  /** True when the direction other than `pump` is settled (see `check`). */
  settledOtherThan(pump: Pump): boolean {
    return pump === this.#up
      ? this.#clientClosed || (this.#down.ended && !this.#down.waiting)
      : this.#targetClosed || (this.#up.ended && !this.#up.waiting);
  }

  /** A direction ended: start the FIN-wait clock for the other one, if set. */
  halfClosed(): void {
    const finWaitMs = this.#options.finWaitMs ?? 0;
    if (this.#done || finWaitMs <= 0 || this.#finWaitTimer !== undefined) return;
    this.#finWaitTimer = setTimeout(() => this.#finish("fin_wait_timeout"), finWaitMs);
  }

  /** A side closed: with an error the session fails, otherwise that side sent all it will. */
  sideClosed(isClient: boolean, error: NetError | undefined): void {
    if (this.#done) return;
    if (error !== undefined) {
      this.#finish(isClient ? "client_error" : "target_error", error);
      return;
    }
    // A side that closed cleanly sent everything it will send.
    if (isClient) {
      this.#clientClosed = true;
      this.#up.end();
    } else {
      this.#targetClosed = true;
      this.#down.end();
    }
    this.check();
  }

  #sample(): void {
    const total = this.#up.bytes + this.#down.bytes;
    if (total !== this.#lastTotal) {
      this.#lastTotal = total;
      this.#silentSamples = 0;
      return;
    }
    this.#silentSamples += 1;
    if (this.#silentSamples >= IDLE_SAMPLES) this.#finish("idle_timeout");
  }

  #onAbort = (): void => {
    this.#finish("aborted");
  };

  #finish(outcome: RelayOutcome, error?: NetError): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    clearTimeout(this.#finWaitTimer);
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#client.onDrain = null;
    this.#target.onDrain = null;
    this.#client.close();
    this.#target.close();
    const result: RelayResult = { bytesUp: this.#up.bytes, bytesDown: this.#down.bytes, outcome };
    if (error !== undefined) result.error = error;
    this.#resolve(result);
  }
}
