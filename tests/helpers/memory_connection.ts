/**
 * An in-memory pair of `Connection`s for tests that need no sockets: bytes
 * written to one side arrive at the other on a later microtask, in the same
 * chunks; `closeWrite` arrives as `onEnd`; `close` closes both sides.
 * Events that arrive before handlers are installed, or while paused, are
 * queued and delivered in order; nothing is delivered after `onClose`.
 * As with the runtime adapters, a side closes by itself (`onClose`) once
 * both directions are finished: its FIN was sent and the peer's delivered.
 * `reset(error)` closes both sides abruptly, the peer seeing `error` (an
 * RST); `paused` tells whether the side's reader paused it.
 *
 * @module
 */
import type { Connection, ConnectionHandlers, NetAddress, NetError } from "../../src/runtime/types.ts";

type Event = { kind: "data"; chunk: Uint8Array } | { kind: "end" } | { kind: "close"; error?: NetError };

class MemoryConnection implements Connection {
  readonly local: NetAddress;
  readonly remote: NetAddress;
  readonly reusesChunks = false;
  readonly keepsWrittenChunks = false;
  onDrain: (() => void) | null = null;
  peer: MemoryConnection | null = null;
  /** Every chunk written by this side, copied. */
  readonly written: Uint8Array[] = [];
  #handlers: ConnectionHandlers | null = null;
  #queue: Event[] = [];
  #paused = false;
  #closed = false;
  #wroteEnd = false;
  #flushing = false;
  /** `onClose` was delivered: every later event is dropped. */
  #gone = false;
  /** The peer's FIN was delivered to `onEnd`. */
  #readEnded = false;

  constructor(local: NetAddress, remote: NetAddress) {
    this.local = local;
    this.remote = remote;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while `pause()` holds back `onData`. */
  get paused(): boolean {
    return this.#paused;
  }

  setHandlers(handlers: ConnectionHandlers): void {
    this.#handlers = handlers;
    this.#schedule();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#schedule();
  }

  write(chunk: Uint8Array): boolean {
    if (this.#closed || this.#wroteEnd) return true;
    const copy = chunk.slice();
    this.written.push(copy);
    this.peer?.deliver({ kind: "data", chunk: copy });
    return true;
  }

  closeWrite(): void {
    if (this.#closed || this.#wroteEnd) return;
    this.#wroteEnd = true;
    this.peer?.deliver({ kind: "end" });
    if (this.#readEnded) this.deliver({ kind: "close" });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#wroteEnd) {
      this.#wroteEnd = true;
      this.peer?.deliver({ kind: "end" });
    }
    this.peer?.deliver({ kind: "close" });
    this.#queue = this.#queue.filter((event) => event.kind === "close");
    this.deliver({ kind: "close" });
  }

  /** Closes both sides at once, without FIN: the peer's `onClose` gets `error`. */
  reset(error: NetError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wroteEnd = true;
    this.peer?.deliver({ kind: "close", error }, true);
    this.#queue = [];
    this.deliver({ kind: "close" });
  }

  /** Queues an event from the peer (or from `close`); `urgent` drops what is still queued. */
  deliver(event: Event, urgent = false): void {
    if (this.#gone || this.#queue.some((queued) => queued.kind === "close")) return;
    if (urgent) this.#queue = [];
    this.#queue.push(event);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    queueMicrotask(() => {
      this.#flushing = false;
      this.#flush();
    });
  }

  #flush(): void {
    for (;;) {
      const handlers = this.#handlers;
      const event = this.#queue[0];
      if (handlers === null || event === undefined) return;
      if (event.kind === "data" && this.#paused) return;
      this.#queue.shift();
      if (event.kind === "data") handlers.onData(event.chunk);
      else if (event.kind === "end") {
        this.#readEnded = true;
        handlers.onEnd();
        if (this.#wroteEnd) this.deliver({ kind: "close" });
      } else {
        this.#closed = true;
        this.#gone = true;
        this.#queue = [];
        handlers.onClose(event.error);
        return;
      }
    }
  }
}

/** One end of a memory pair, with the chunks it wrote. */
export type MemoryConnectionEnd = Connection & {
  readonly written: Uint8Array[];
  readonly paused: boolean;
  reset(error: NetError): void;
};

/** Creates two connected in-memory connections: `[client, server]`. */
export function createConnectionPair(
  client: NetAddress = { host: "127.0.0.1", port: 40000, family: 4 },
  server: NetAddress = { host: "127.0.0.1", port: 1080, family: 4 },
): [MemoryConnectionEnd, MemoryConnectionEnd] {
  const a = new MemoryConnection(client, server);
  const b = new MemoryConnection(server, client);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
