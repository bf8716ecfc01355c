/**
 * The socket interface the core owns. Each runtime (Deno, Bun, node:net)
 * implements it in one file of this folder; nothing outside `src/runtime/`
 * touches a runtime's socket API.
 *
 * The shape is push-based with explicit flow control, because that is what
 * Bun and node:net deliver natively and it costs Deno nothing extra:
 * a source calls `onData` with a borrowed chunk; a sink's `write` says whether
 * it can take more; the relay pauses the source until the sink drains.
 *
 * @module
 */

/** A socket address as the core sees it: a numeric host (no brackets) and port. */
export interface NetAddress {
  /** Numeric IPv4 or IPv6 address (IPv6 without brackets, no zone for globals). */
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** Callbacks a connection delivers its events to. */
export interface ConnectionHandlers {
  /**
   * Bytes arrived. The chunk is borrowed: it is valid until the callback
   * returns, or, when the callback paused this connection, until it is
   * resumed. When `Connection.reusesChunks` is true it is valid only until
   * the callback returns. Copy it to keep it longer.
   */
  onData(chunk: Uint8Array): void;
  /** The peer sent FIN: no more data will arrive. Writing is still allowed. */
  onEnd(): void;
  /**
   * The connection is fully closed (both directions, or an error, or `close()`).
   * Called exactly once. `error` is set when the close was caused by a failure.
   */
  onClose(error?: NetError): void;
}

/** One TCP connection (accepted or dialled). */
export interface Connection {
  readonly local: NetAddress;
  readonly remote: NetAddress;
  /**
   * True when the chunks passed to `onData` are views into a buffer the
   * runtime reuses for other sockets as soon as the callback returns (Bun).
   * A sink that keeps chunks (`keepsWrittenChunks`) must then receive copies.
   */
  readonly reusesChunks: boolean;
  /**
   * True when `write` may hold on to the chunk it was given until the
   * connection drains (Deno, node:net). False when the adapter copies what it
   * cannot send at once (Bun).
   */
  readonly keepsWrittenChunks: boolean;
  /**
   * Installs the handlers and starts delivering events. Data that arrived
   * before the first call is buffered and delivered first. Calling it again
   * replaces the handlers (used when a handshake hands over to the relay).
   */
  setHandlers(handlers: ConnectionHandlers): void;
  /** Stops delivering `onData` until `resume()`. */
  pause(): void;
  resume(): void;
  /**
   * Queues bytes. Returns true when the connection can take more at once;
   * false when the caller should wait for `onDrain` (and, if it paused a
   * source, keep it paused). Never throws; writes after close are dropped.
   */
  write(chunk: Uint8Array): boolean;
  /** Called when a write that returned false has been flushed. */
  onDrain: (() => void) | null;
  /** Sends FIN once queued writes are flushed; reading goes on. Idempotent. */
  closeWrite(): void;
  /** Closes both directions at once and releases the socket. Idempotent. */
  close(): void;
  /** True once `onClose` has fired or `close()` was called. */
  readonly closed: boolean;
}

/** A listening TCP socket. */
export interface Listener {
  /** The address the kernel actually bound (port 0 resolved). */
  readonly address: NetAddress;
  /** Stops accepting. Accepted connections are not touched. */
  close(): void;
}

/** Options for `NetRuntime.listen`. */
export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  /** SO_REUSEPORT so several processes share one port (where supported). */
  readonly reusePort?: boolean;
  /** Called for every accepted connection. Errors thrown here are the caller's bug. */
  readonly onConnection: (connection: Connection) => void;
  /**
   * Called when accepting fails (EMFILE, ENFILE, ENOMEM...). The adapter
   * backs off and keeps accepting by itself; this is for logging.
   */
  readonly onAcceptError?: (error: NetError) => void;
}

/**
 * Options for `NetRuntime.listenForPeer`: a listening socket that serves one
 * expected peer (SOCKS BIND), not a server.
 */
export interface PeerListenOptions {
  /** Numeric local address to bind (never a name). */
  readonly host: string;
  /** Port to bind; 0 lets the kernel choose. */
  readonly port: number;
}

/**
 * A listening socket waiting for one peer. Connections are queued from the
 * moment it is bound; `accept` hands them out one at a time, so the caller
 * can close one from the wrong address and wait for the next.
 */
export interface PeerListener {
  /** The address the kernel actually bound (port 0 resolved). */
  readonly address: NetAddress;
  /**
   * Resolves with the next incoming connection. Rejects with a `NetError`:
   * `aborted` (or the signal's `NetError` reason) when `signal` aborts,
   * `closed` when the listener is closed while waiting.
   */
  accept(signal?: AbortSignal): Promise<Connection>;
  /** Stops listening and frees the port at once; queued connections are closed. Idempotent. */
  close(): void;
}

/** Options for `NetRuntime.bindDatagram`. */
export interface DatagramOptions {
  /** Numeric local address to bind (`0.0.0.0` / `::` for any). */
  readonly host: string;
  /** Port to bind; 0 lets the kernel choose. */
  readonly port: number;
}

/** Callbacks a datagram socket delivers its events to. */
export interface DatagramHandlers {
  /**
   * One datagram arrived, whole. `bytes` is borrowed: valid until the
   * callback returns; copy it to keep it.
   */
  onMessage(bytes: Uint8Array, from: NetAddress): void;
  /** A send or receive failed; the socket stays open unless `closed` is set. */
  onError?(error: NetError): void;
}

/** One bound UDP socket. */
export interface DatagramSocket {
  /** The address the kernel actually bound (port 0 resolved). */
  readonly local: NetAddress;
  /** Installs the handlers; datagrams that arrived before are delivered first. */
  setHandlers(handlers: DatagramHandlers): void;
  /**
   * Sends one datagram to a numeric `host:port`. Never throws: failures
   * (unreachable, too large, closed) go to `onError` as `NetError`s.
   */
  send(bytes: Uint8Array, host: string, port: number): void;
  /** Releases the socket and frees the port at once. Idempotent. */
  close(): void;
  readonly closed: boolean;
}

/**
 * What cancels an operation: an `AbortSignal`, or anything with the same
 * members (a session's share of the server's shutdown, which makes no
 * AbortController per session: `server/session_shutdown.ts`).
 */
export interface Cancellation {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { readonly once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/**
 * An AbortSignal that aborts with `cancellation`: the cancellation itself
 * when it is one, otherwise a new signal (for `AbortSignal.any` and APIs
 * that take nothing else).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { abortSignalOf } from "./types.ts";
 * const controller = new AbortController();
 * assert.equal(abortSignalOf(controller.signal), controller.signal);
 * ```
 */
export function abortSignalOf(cancellation: Cancellation): AbortSignal {
  if (cancellation instanceof AbortSignal) return cancellation;
  const controller = new AbortController();
  if (cancellation.aborted) controller.abort(cancellation.reason);
  else cancellation.addEventListener("abort", () => controller.abort(cancellation.reason), { once: true });
  return controller.signal;
}

/** Options for `NetRuntime.connect`. */
export interface ConnectOptions {
  /** Numeric address to connect to. */
  readonly host: string;
  readonly port: number;
  /** Numeric local address to bind before connecting (`-g`, `-x`). */
  readonly localHost?: string;
  /** Aborting cancels the attempt with a `NetError` of code `aborted`. */
  readonly signal?: Cancellation;
  /**
   * Gives up after this many milliseconds with a `NetError` of code
   * `timeout`, cancelling the attempt where the runtime can (absent or 0:
   * no limit of its own). Cheaper per connect than a signal for the timeout.
   */
  readonly timeoutMs?: number;
}

/** What a runtime adapter provides. */
export interface NetRuntime {
  /** `deno`, `bun` or `node` (the node:net adapter, whatever runtime hosts it). */
  readonly name: "deno" | "bun" | "node";
  /** True when `connect` honours `localHost`. */
  readonly canBindSource: boolean;
  /** True when `listen` honours `reusePort`. */
  readonly canReusePort: boolean;
  listen(options: ListenOptions): Promise<Listener>;
  connect(options: ConnectOptions): Promise<Connection>;
  /** Binds a listening socket for one expected peer (BIND). */
  listenForPeer(options: PeerListenOptions): Promise<PeerListener>;
  /** Binds a UDP socket (UDP ASSOCIATE). */
  bindDatagram(options: DatagramOptions): Promise<DatagramSocket>;
  /**
   * Serves HTTP/1.1 with the runtime's own server (`--metrics`). Optional:
   * test runtimes may leave it out, and the caller then uses another
   * adapter's.
   */
  serveHttp?(options: HttpServeOptions): Promise<HttpServer>;
  /**
   * The server went idle after a burst: collect garbage now and give freed
   * memory back to the operating system, rather than keep the burst's peak
   * (or wait for the engine's own timers). Optional; it may pause the event
   * loop for some milliseconds, so the server calls it rarely.
   */
  releaseMemory?(): void;
}

/** A request as an `HttpHandler` sees it: only what a metrics endpoint needs. */
export interface HttpRequest {
  /** `GET`, `HEAD`, ... */
  readonly method: string;
  /** The path without the query string (`/metrics`). */
  readonly path: string;
}

/** A complete response: small bodies only (no streaming). */
export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Answers one request; must not throw (an error gives a 500 with no detail). */
export type HttpHandler = (request: HttpRequest) => HttpResponse | Promise<HttpResponse>;

/** Options for `NetRuntime.serveHttp`. */
export interface HttpServeOptions {
  /** Numeric address to listen on. */
  readonly host: string;
  /** Port to listen on; 0 lets the kernel choose. */
  readonly port: number;
  readonly handler: HttpHandler;
}

/** A running HTTP server. */
export interface HttpServer {
  /** The address the kernel actually bound (port 0 resolved). */
  readonly address: NetAddress;
  /** Stops listening and closes idle and open connections; resolves when done. Idempotent. */
  close(): Promise<void>;
}

/** Normalised network failure codes, independent of the runtime. */
export type NetErrorCode =
  | "refused"
  | "host_unreachable"
  | "net_unreachable"
  | "timeout"
  | "reset"
  | "not_found"
  | "address_in_use"
  | "address_not_available"
  | "permission_denied"
  | "aborted"
  | "closed"
  | "other";

/** A network failure with a normalised code; the runtime's error is the `cause`. */
export class NetError extends Error {
  readonly code: NetErrorCode;
  constructor(code: NetErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NetError";
    this.code = code;
  }
}
