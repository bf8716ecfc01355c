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
  readonly remoteAddress: string;
  readonly remotePort: number;
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
}

/** The `Bun` global; only valid when running on Bun. */
export function bunApi(): BunApi {
  return (globalThis as unknown as { Bun: BunApi }).Bun;
}
