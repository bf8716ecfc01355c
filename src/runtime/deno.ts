/**
 * The `NetRuntime` over Deno's native sockets (`Deno.listen`, `Deno.connect`).
 *
 * Reading is a callback chain (`conn.read(buffer).then(onRead)`), not
 * `conn.readable`: the stream closes the whole connection at EOF, so it
 * cannot half-close, and it is slower. A pending read pins its whole buffer
 * (Deno writes into it when data arrives, so buffers cannot be shared between
 * connections), and an idle session has two reads pending. So each
 * connection reads into a 512-byte buffer of its own; a read that fills it
 * switches the connection to a 64 KiB buffer, and a read that returns no
 * more than 512 bytes switches it back and lets the large buffer go. Idle
 * sessions stay cheap, even after a burst of traffic, and busy ones read in
 * large chunks. A chunk is a view into the buffer: the next read only starts
 * after `onData` returns and the connection is not paused, so a consumer
 * that pauses keeps its chunk valid until it resumes (`reusesChunks` is
 * false).
 *
 * Writing hands the caller's chunk to `conn.write` without copying (looping
 * over partial writes) and returns false while it is in flight
 * (`keepsWrittenChunks`). `closeWrite()` calls `conn.closeWrite()` once the
 * queued writes are done. When both directions are finished (EOF read, FIN
 * sent) the connection closes itself and fires `onClose`.
 *
 * Accepting: a failed `accept()` (EMFILE, ENFILE, ENOMEM...; the connection
 * stays in the kernel's backlog) goes to `onAcceptError` and the next
 * attempt waits 10 ms, doubling to 1 s, back to 10 ms after a success.
 * Deno frees a listener's port when its pending `accept()` has been
 * cancelled, a tick after `close()`; a `listen` on the same port waits for it.
 *
 * `releaseMemory` runs a memory-reducing GC and glibc's `malloc_trim`
 * (`_deno_memory.ts`).
 *
 * Limits: `Deno.connect` cannot bind a local address (`canBindSource` is
 * false). `reusePort` needs the unstable "net" feature (`"unstable": ["net"]`
 * in deno.json or `--unstable-net`); without it Deno exits the process.
 * Deno 2.9 panics when it runs out of descriptors while registering its first
 * signal handler: a server must install its signal handlers at start-up.
 *
 * @module
 */
import { formatHostPort, toNetAddress } from "./_address.ts";
import { Backoff } from "./_backoff.ts";
import { bindDenoDatagram } from "./_deno_datagram.ts";
import { serveDenoHttp } from "./_deno_http.ts";
import { releaseDenoMemory } from "./_deno_memory.ts";
import { dialCancellable } from "./_dial.ts";
import { toNetError } from "./_errors.ts";
import { listenForPeer } from "./_peer_listener.ts";
import { PortReleases } from "./_port_release.ts";
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

/** Read buffer of a connection whose last read was small (idle, handshakes, interactive traffic). */
const SMALL_BUFFER = 512;
/** Read buffer of a connection whose last read filled its buffer (bulk). */
const LARGE_BUFFER = 64 * 1024;

const releases = new PortReleases();

/** One `Deno.TcpConn` behind the `Connection` interface. */
class DenoConnection implements Connection {
  readonly local: NetAddress;
  readonly remote: NetAddress;
  onDrain: (() => void) | null = null;

  #conn: Deno.TcpConn;
  #handlers: ConnectionHandlers | null = null;
  /** The buffer of the next read: `#small`, or a large one while reads are large. */
  #buffer: Uint8Array | null = null;
  #small: Uint8Array | null = null;
  #reading = false;
  #paused = false;
  /** A chunk that was read while paused, delivered on resume. */
  #held: Uint8Array | null = null;
  #eof = false;
  #endDelivered = false;
  /** The chunk being written, and the ones queued behind it (an array only while there are any). */
  #head: Uint8Array | null = null;
  #queue: Uint8Array[] | null = null;
  #writeOffset = 0;
  #writing = false;
  #needDrain = false;
  #writeClosed = false;
  #finSent = false;
  #closed = false;
  #closeFired = false;
  #closeError: NetError | undefined;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    const local = conn.localAddr;
    const remote = conn.remoteAddr;
    this.local = toNetAddress(local.hostname, local.port);
    this.remote = toNetAddress(remote.hostname, remote.port);
    conn.setNoDelay(true);
  }

  // Getters rather than fields: constants cost every connection two slots.
  get reusesChunks(): boolean {
    return false;
  }

  get keepsWrittenChunks(): boolean {
    return true;
  }

  get closed(): boolean {
    return this.#closed;
  }

  setHandlers(handlers: ConnectionHandlers): void {
    this.#handlers = handlers;
    if (this.#closed) {
      this.#fireClose();
      return;
    }
    this.#deliverHeld();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#deliverHeld();
  }

  write(chunk: Uint8Array): boolean {
    if (this.#closed || this.#writeClosed || chunk.length === 0) return true;
    if (this.#head === null) this.#head = chunk;
    else (this.#queue ??= []).push(chunk);
    this.#needDrain = true;
    if (!this.#writing) this.#writeNext();
    return false;
  }

  closeWrite(): void {
    if (this.#writeClosed || this.#closed) return;
    this.#writeClosed = true;
    if (!this.#writing) this.#sendFin();
  }

  close(): void {
    if (this.#closed) return;
    this.#shut(undefined);
  }

  #deliverHeld(): void {
    const held = this.#held;
    if (held !== null && this.#handlers !== null && !this.#paused) {
      this.#held = null;
      this.#handlers.onData(held);
    }
    this.#readNext();
  }

  #readNext(): void {
    if (
      this.#reading || this.#eof || this.#closed || this.#paused || this.#handlers === null ||
      this.#held !== null
    ) return;
    this.#reading = true;
    this.#small ??= new Uint8Array(SMALL_BUFFER);
    this.#buffer ??= this.#small;
    this.#conn.read(this.#buffer).then(this.#onRead, this.#onRead);
  }

  /**
   * A read settled: bytes, EOF (null) or a failure. One callback for both
   * outcomes (and one for writes and the FIN): each callback is a closure
   * that every connection carries for its whole life.
   */
  #onRead = (size: unknown): void => {
    this.#reading = false;
    if (this.#closed) return;
    if (size !== null && typeof size !== "number") {
      this.#shut(toNetError(size, `read from ${this.#peer()}`));
      return;
    }
    if (size === null) {
      this.#onEof();
      return;
    }
    const buffer = this.#buffer as Uint8Array;
    const chunk = buffer.subarray(0, size);
    // The chunk stays a view into `buffer`, so switching only picks the
    // buffer of the next read; a large one left behind goes with the chunk.
    if (size === buffer.length) {
      if (size < LARGE_BUFFER) this.#buffer = new Uint8Array(LARGE_BUFFER);
    } else if (size <= SMALL_BUFFER) {
      this.#buffer = this.#small;
    }
    const handlers = this.#handlers;
    if (handlers === null || this.#paused) {
      this.#held = chunk;
      return;
    }
    handlers.onData(chunk);
    this.#readNext();
  };

  #onEof(): void {
    this.#eof = true;
    this.#buffer = null;
    this.#small = null;
    if (!this.#endDelivered && this.#handlers !== null) {
      this.#endDelivered = true;
      this.#handlers.onEnd();
    }
    if (this.#finSent && !this.#closed) this.#shut(undefined);
  }

  #writeNext(): void {
    const head = this.#head;
    if (head === null) {
      this.#writing = false;
      if (this.#writeClosed) this.#sendFin();
      if (this.#needDrain) {
        this.#needDrain = false;
        this.onDrain?.();
      }
      return;
    }
    this.#writing = true;
    const pending = this.#writeOffset === 0 ? head : head.subarray(this.#writeOffset);
    this.#conn.write(pending).then(this.#onWritten, this.#onWritten);
  }

  /** A write (bytes written) or the FIN (no value) settled, or either failed. */
  #onWritten = (size: unknown): void => {
    if (this.#closed) return;
    if (size === undefined || size === null) {
      if (this.#eof) this.#shut(undefined);
      return;
    }
    if (typeof size !== "number") {
      this.#shut(toNetError(size, `write to ${this.#peer()}`));
      return;
    }
    const head = this.#head as Uint8Array;
    this.#writeOffset += size;
    if (this.#writeOffset >= head.length) {
      this.#head = this.#queue?.shift() ?? null;
      if (this.#queue?.length === 0) this.#queue = null;
      this.#writeOffset = 0;
    }
    this.#writeNext();
  };

  #sendFin(): void {
    if (this.#finSent || this.#closed) return;
    this.#finSent = true;
    this.#conn.closeWrite().then(this.#onWritten, this.#onWritten);
  }

  /** Releases the socket and fires `onClose` (now, or once handlers are set). */
  #shut(error: NetError | undefined): void {
    this.#closed = true;
    this.#closeError = error;
    this.#head = null;
    this.#queue = null;
    this.#held = null;
    this.#buffer = null;
    this.#small = null;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime: nothing left to release.
    }
    this.#fireClose();
  }

  #fireClose(): void {
    const handlers = this.#handlers;
    if (handlers === null || this.#closeFired) return;
    this.#closeFired = true;
    this.onDrain = null;
    handlers.onClose(this.#closeError);
  }

  #peer(): string {
    return formatHostPort(this.remote.host, this.remote.port);
  }
}

/** A `Deno.TcpListener` with an accept loop behind the `Listener` interface. */
class DenoListener implements Listener {
  readonly address: NetAddress;
  #listener: Deno.TcpListener;
  #onConnection: (connection: Connection) => void;
  #onAcceptError: ((error: NetError) => void) | undefined;
  #backoff = new Backoff();
  #accepting: Promise<void> | null = null;
  #closed = false;

  constructor(listener: Deno.TcpListener, options: ListenOptions) {
    this.#listener = listener;
    this.#onConnection = options.onConnection;
    this.#onAcceptError = options.onAcceptError;
    this.address = toNetAddress(listener.addr.hostname, listener.addr.port);
    this.#acceptNext();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed by the runtime: nothing left to release.
    }
    if (this.#accepting !== null) releases.track(this.address.port, this.#accepting);
  }

  #acceptNext = (): void => {
    if (this.#closed) return;
    this.#accepting = this.#listener.accept().then(this.#onAccept, this.#onAcceptFailure);
  };

  #onAccept = (conn: Deno.TcpConn): void => {
    this.#accepting = null;
    if (this.#closed) {
      conn.close();
      return;
    }
    this.#backoff.reset();
    this.#onConnection(new DenoConnection(conn));
    this.#acceptNext();
  };

  #onAcceptFailure = (error: unknown): void => {
    this.#accepting = null;
    if (this.#closed) return;
    const failure = toNetError(error, `accept on ${formatHostPort(this.address.host, this.address.port)}`);
    // A peer that reset its connection while it was being accepted (a load
    // balancer's health check) is that peer's business, not the listener's.
    if (failure.code === "reset" || failure.code === "closed") {
      this.#acceptNext();
      return;
    }
    setTimeout(this.#acceptNext, this.#backoff.next());
    this.#onAcceptError?.(failure);
  };
}

async function listen(options: ListenOptions): Promise<Listener> {
  const listenOptions: Deno.TcpListenOptions & { transport: "tcp" } = {
    hostname: options.host,
    port: options.port,
    transport: "tcp",
  };
  if (options.reusePort) listenOptions.reusePort = true;
  if (options.port !== 0) await releases.settled(options.port);
  try {
    return new DenoListener(Deno.listen(listenOptions), options);
  } catch (error) {
    throw toNetError(error, `listen on ${formatHostPort(options.host, options.port)}`);
  }
}

function connect(options: ConnectOptions): Promise<Connection> {
  const { host, port } = options;
  return dialCancellable(
    options,
    "deno",
    (signal) => Deno.connect({ hostname: host, port, transport: "tcp", ...(signal ? { signal } : {}) }),
    (conn) => new DenoConnection(conn),
    (conn) => conn.close(),
    true,
  );
}

/** The Deno native socket runtime. */
export const denoRuntime: NetRuntime = {
  name: "deno",
  canBindSource: false,
  canReusePort: Deno.build.os === "linux",
  listen,
  connect,
  listenForPeer: (options) => listenForPeer(listen, options),
  bindDatagram: bindDenoDatagram,
  serveHttp: serveDenoHttp,
  releaseMemory: () => void releaseDenoMemory(),
};
