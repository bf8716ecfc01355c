/**
 * The `NetRuntime` over Bun's native sockets (`Bun.listen`, `Bun.connect`).
 *
 * Each socket carries its `Connection` in `socket.data`; one set of event
 * handlers per listener (and one for all dialled sockets) dispatches to it.
 * Bun's `write()` is unbuffered: it returns how many bytes the kernel took,
 * so the adapter copies the unsent remainder into a queue (the only
 * allocation, and only under backpressure), flushes it on `drain` and then
 * fires `onDrain`. Chunks passed to `onData` are views into a buffer Bun
 * reuses for every socket (`reusesChunks`).
 *
 * Half-close: `shutdown()` without argument sends FIN (`shutdown(true)` would
 * shut the read half). Once our FIN is out, Bun reports the peer's FIN as
 * `close` instead of `end`; the adapter then delivers `onEnd` before
 * `onClose`, as the other adapters do.
 *
 * Limits: `Bun.connect` cannot bind a local address (`canBindSource` is
 * false), cannot be cancelled while the kernel is still connecting (an
 * aborted attempt is closed as soon as it completes), and Bun reports every
 * failed connect as `ECONNREFUSED`, even an unreachable host
 * (oven-sh/bun#37093).
 *
 * Accept errors: `Bun.listen` has no hook for them, so `onAcceptError` is
 * never called. On EMFILE Bun (1.4) retries `accept()` at once in a busy loop
 * (a core at 100 %, nothing reported; oven-sh/bun#32705) and serves the
 * waiting connections by itself once descriptors free up.
 *
 * @module
 */
import { formatHostPort, toNetAddress } from "./_address.ts";
import { bindBunDatagram } from "./_bun_datagram.ts";
import { serveBunHttp } from "./_bun_http.ts";
import {
  bunApi,
  type BunListener as BunListenerHandle,
  type BunSocket as BunSocketOf,
  type BunSocketHandler,
} from "./_bun_api.ts";
import { dialCancellable } from "./_dial.ts";
import { toNetError } from "./_errors.ts";
import { listenForPeer } from "./_peer_listener.ts";
import type {
  Connection,
  ConnectionHandlers,
  ConnectOptions,
  Listener,
  ListenOptions,
  NetAddress,
  NetError,
  NetRuntime,
} from "./types.ts";

/** Most bytes kept for a socket whose consumer has not installed handlers yet. */
const EARLY_LIMIT = 64 * 1024;

type BunSocket = BunSocketOf<BunConnection>;
type BunSocketEvents = BunSocketHandler<BunConnection>;

/** One Bun socket behind the `Connection` interface. */
class BunConnection implements Connection {
  /** Handlers shared by every socket; `open` is added per listener or dial. */
  static readonly events: Omit<BunSocketEvents, "open"> = {
    data(socket, chunk) {
      socket.data.#onSocketData(chunk);
    },
    end(socket) {
      socket.data.#endPending = true;
      socket.data.#deliver();
    },
    drain(socket) {
      socket.data.#flush();
    },
    close(socket, error) {
      // A dial that failed before `open` has no connection to notify.
      const connection: BunConnection | undefined = socket.data;
      if (connection !== undefined) connection.#onSocketClose(error);
    },
  };

  readonly reusesChunks = true;
  readonly keepsWrittenChunks = false;
  onDrain: (() => void) | null = null;

  #socket: BunSocket;
  #handlers: ConnectionHandlers | null = null;
  /** Paused by the consumer. */
  #paused = false;
  /** The socket's own read state. */
  #socketPaused = false;
  /** Copies of chunks that arrived with no handlers or while paused. */
  #early: Uint8Array[] | null = null;
  /** Bytes held in `#early`. */
  #earlyBytes = 0;
  #endPending = false;
  #endDelivered = false;
  #closePending = false;
  #closeError: NetError | undefined;
  #closeFired = false;
  #closed = false;
  /** Bytes the kernel did not take yet (our own copies). */
  #queue: Uint8Array[] = [];
  #needDrain = false;
  #writeClosed = false;
  #finSent = false;
  #local: NetAddress | undefined;
  #remote: NetAddress | undefined;

  constructor(socket: BunSocket) {
    this.#socket = socket;
    socket.setNoDelay(true);
  }

  /** Read when first asked for: each of Bun's address getters is a system call. */
  get local(): NetAddress {
    return this.#local ??= toNetAddress(this.#socket.localAddress ?? "", this.#socket.localPort ?? 0);
  }

  /**
   * Read when first asked for (sessions ask at once, while the socket is open).
   * A peer that reset the connection before Bun opened it has no address left
   * (HAProxy's health checks do that): "" lets the session close it quietly.
   */
  get remote(): NetAddress {
    return this.#remote ??= toNetAddress(this.#socket.remoteAddress ?? "", this.#socket.remotePort ?? 0);
  }

  /**
   * Adopts a dialled socket: its remote address is the one dialled (read
   * from the socket it would cost two system calls, and after a reset it
   * is gone).
   */
  dialedTo(host: string, port: number): this {
    this.#remote ??= toNetAddress(host, port);
    return this;
  }

  get closed(): boolean {
    return this.#closed;
  }

  setHandlers(handlers: ConnectionHandlers): void {
    this.#handlers = handlers;
    this.#deliver();
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#syncPause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#deliver();
  }

  write(chunk: Uint8Array): boolean {
    if (this.#closed || this.#writeClosed || chunk.length === 0) return true;
    if (this.#queue.length > 0) {
      this.#queue.push(chunk.slice());
      return false;
    }
    const written = this.#socket.write(chunk);
    if (written === chunk.length || written < 0) return true;
    this.#queue.push(chunk.slice(written));
    this.#needDrain = true;
    return false;
  }

  closeWrite(): void {
    if (this.#writeClosed || this.#closed) return;
    this.#writeClosed = true;
    if (this.#queue.length === 0) this.#sendFin();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#early = null;
    this.#earlyBytes = 0;
    this.#endPending = false;
    this.#closePending = true;
    this.#socket.close();
    this.#deliver();
  }

  #onSocketData(chunk: Uint8Array): void {
    if (this.#closed) return;
    const handlers = this.#handlers;
    if (handlers !== null && !this.#paused && this.#early === null) {
      handlers.onData(chunk);
      return;
    }
    (this.#early ??= []).push(chunk.slice());
    this.#earlyBytes += chunk.length;
    this.#syncPause();
  }

  #onSocketClose(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    // A close without error that we did not ask for is the peer's FIN
    // arriving after ours (Bun reports it as `close`, not `end`).
    if (error === undefined) this.#endPending = true;
    else this.#closeError = toNetError(error, `exchange data with ${this.#peer()}`);
    this.#closePending = true;
    this.#deliver();
  }

  /** Delivers buffered chunks, then a pending end, then a pending close. */
  #deliver(): void {
    while (this.#early !== null && this.#handlers !== null && !this.#paused) {
      const chunk = this.#early.shift();
      if (this.#early.length === 0) this.#early = null;
      if (chunk !== undefined) {
        this.#earlyBytes -= chunk.length;
        this.#handlers.onData(chunk);
      }
    }
    if (this.#handlers === null || (this.#early !== null && !this.#closePending)) {
      this.#syncPause();
      return;
    }
    this.#early = null;
    this.#earlyBytes = 0;
    if (this.#endPending && !this.#endDelivered) {
      this.#endDelivered = true;
      this.#handlers.onEnd();
    }
    if (this.#closePending && !this.#closeFired) {
      this.#closeFired = true;
      this.onDrain = null;
      this.#handlers.onClose(this.#closeError);
      return;
    }
    this.#syncPause();
  }

  #flush(): void {
    const queue = this.#queue;
    while (queue.length > 0) {
      const head = queue[0] as Uint8Array;
      const written = this.#socket.write(head);
      if (written < 0) {
        queue.length = 0;
        break;
      }
      if (written < head.length) {
        queue[0] = head.subarray(written);
        return;
      }
      queue.shift();
    }
    if (this.#writeClosed) this.#sendFin();
    if (this.#needDrain) {
      this.#needDrain = false;
      this.onDrain?.();
    }
  }

  #sendFin(): void {
    if (this.#finSent || this.#closed) return;
    this.#finSent = true;
    this.#socket.shutdown();
  }

  #syncPause(): void {
    if (this.#closed) return;
    // Until handlers are installed, data is kept (copied) rather than the
    // socket paused: a pause/resume pair per connection costs more than the
    // copy of a handshake. A peer that sends a lot before then is paused.
    const paused = this.#paused || this.#earlyBytes >= EARLY_LIMIT;
    if (paused === this.#socketPaused) return;
    this.#socketPaused = paused;
    if (paused) this.#socket.pause();
    else this.#socket.resume();
  }

  #peer(): string {
    return formatHostPort(this.remote.host, this.remote.port);
  }
}

/** A `Bun.listen` socket behind the `Listener` interface. */
class BunListener implements Listener {
  readonly address: NetAddress;
  #server: BunListenerHandle;

  constructor(server: BunListenerHandle) {
    this.#server = server;
    this.address = toNetAddress(server.hostname, server.port);
  }

  close(): void {
    this.#server.stop(false);
  }
}

const DIAL_EVENTS: BunSocketEvents = {
  ...BunConnection.events,
  open(socket) {
    socket.data = new BunConnection(socket);
  },
  connectError() {
    // The promise returned by Bun.connect rejects with the same error.
  },
};

function listen(options: ListenOptions): Promise<Listener> {
  const { onConnection } = options;
  const events: BunSocketEvents = {
    ...BunConnection.events,
    open(socket) {
      socket.data = new BunConnection(socket);
      onConnection(socket.data);
    },
  };
  const listenOptions = {
    hostname: options.host,
    port: options.port,
    allowHalfOpen: true,
    reusePort: options.reusePort ?? false,
    socket: events,
  };
  try {
    return Promise.resolve(new BunListener(bunApi().listen<BunConnection>(listenOptions)));
  } catch (error) {
    return Promise.reject(
      toNetError(error, `listen on ${formatHostPort(options.host, options.port)}`),
    );
  }
}

function connect(options: ConnectOptions): Promise<Connection> {
  return dialCancellable(
    options,
    "bun",
    () =>
      bunApi().connect<BunConnection>({
        hostname: options.host,
        port: options.port,
        allowHalfOpen: true,
        socket: DIAL_EVENTS,
      }),
    (socket) => socket.data.dialedTo(options.host, options.port),
    (socket) => socket.data.close(),
  );
}

/** The Bun native socket runtime. */
export const bunRuntime: NetRuntime = {
  name: "bun",
  canBindSource: false,
  canReusePort: process.platform === "linux",
  listen,
  connect,
  listenForPeer: (options) => listenForPeer(listen, options),
  bindDatagram: bindBunDatagram,
  serveHttp: serveBunHttp,
  releaseMemory: () => bunApi().gc(true),
};
