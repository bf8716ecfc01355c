/**
 * The slice of Bun's socket API the Bun adapter uses, typed here so that the
 * adapter type-checks under `deno check` too. (Referencing `bun-types`
 * instead would replace Node's URL types for every file checked with it.)
 *
 * @module
 */

/** A Bun TCP socket carrying per-socket data `T`. */
export interface BunSocket<T> {
  data: T;
  readonly localAddress: string;
  readonly localPort: number;
  /** Undefined when the peer reset the connection before it was opened. */
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** Returns how many bytes the kernel took; Bun does not buffer the rest. */
  write(data: Uint8Array): number;
  /** Without an argument (or false) sends FIN; `true` shuts the read half. */
  shutdown(halfClose?: boolean): void;
  close(): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay?: boolean): boolean;
}

/** Socket event handlers, shared by all sockets of a listener or dial. */
export interface BunSocketHandler<T> {
  open?(socket: BunSocket<T>): void;
  data?(socket: BunSocket<T>, chunk: Uint8Array): void;
  end?(socket: BunSocket<T>): void;
  drain?(socket: BunSocket<T>): void;
  close?(socket: BunSocket<T>, error?: Error): void;
  connectError?(socket: BunSocket<T>, error: Error): void;
}

/** A listening socket. */
export interface BunListener {
  readonly hostname: string;
  readonly port: number;
  stop(closeActiveConnections?: boolean): void;
}

/** A bound, unconnected Bun UDP socket (`Bun.udpSocket`). */
export interface BunUdpSocket {
  readonly hostname: string;
  readonly port: number;
  /**
   * True when the kernel took the datagram; false when it had no room (the
   * datagram was not sent and `drain` follows). Throws on errors (EMSGSIZE...).
   */
  send(data: Uint8Array, port: number, address: string): boolean;
  close(): void;
}

/** Event handlers of one Bun UDP socket. */
export interface BunUdpHandler {
  data?(
    socket: BunUdpSocket,
    data: Uint8Array,
    port: number,
    address: string,
    flags: { readonly truncated: boolean },
  ): void;
  drain?(socket: BunUdpSocket): void;
  /**
   * An error the kernel queued for the socket (an ICMP error for an earlier
   * datagram). Bun 1.4 passes only the error, not `(socket, error)` as its
   * type declarations say.
   */
  error?(error: Error): void;
}

/** The `Bun` global, as far as sockets and the entry point need it. */
export interface BunApi {
  readonly main: string;
  listen<T>(options: {
    hostname: string;
    port: number;
    allowHalfOpen: boolean;
    reusePort?: boolean;
    socket: BunSocketHandler<T>;
  }): BunListener;
  connect<T>(options: {
    hostname: string;
    port: number;
    allowHalfOpen: boolean;
    socket: BunSocketHandler<T>;
  }): Promise<BunSocket<T>>;
  udpSocket(options: { hostname: string; port: number; socket: BunUdpHandler }): Promise<BunUdpSocket>;
  serve(options: {
    hostname: string;
    port: number;
    development: boolean;
    reusePort: boolean;
    fetch(request: Request): Response | Promise<Response>;
    error(error: Error): Response;
  }): BunHttpServer;
  /** Runs the garbage collector; `true` waits for a full collection. */
  gc(force: boolean): void;
}

/** A running `Bun.serve` server. */
export interface BunHttpServer {
  readonly hostname: string | undefined;
  readonly port: number | undefined;
  stop(closeActiveConnections?: boolean): Promise<void>;
}

/** The `Bun` global; only valid when running on Bun. */
export function bunApi(): BunApi {
  return (globalThis as unknown as { Bun: BunApi }).Bun;
}
