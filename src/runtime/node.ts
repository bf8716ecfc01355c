/**
 * The `NetRuntime` over node:net, usable under Node, Deno and Bun. It is the
 * adapter that can bind a source address before connecting (`-g`, `-x`).
 *
 * Sockets are created with `allowHalfOpen: true` on both ends (otherwise a
 * peer's FIN closes the whole socket and a pending reply is lost) and start
 * paused, so bytes that arrive before `setHandlers` stay in the socket.
 * Chunks are fresh buffers (`reusesChunks` is false). `write` hands the chunk
 * to `socket.write` with one flush callback per connection and returns false
 * whenever the socket still holds data afterwards (`keepsWrittenChunks`);
 * `onDrain` fires when it has all been flushed to the kernel.
 *
 * Accepting is node:net's own loop, which the adapter cannot pause or back
 * off: it reports the server's `error` events (failed accepts) to
 * `onAcceptError`. What happens on EMFILE depends on the host (measured):
 * Node 20 (libuv) accepts and closes the waiting connections with a reserved
 * descriptor, reports nothing and goes on; Bun (uSockets, as `Bun.listen`)
 * retries at once in a busy loop, reports nothing and serves them once
 * descriptors free up; Deno 2.9 stops accepting for good and reports
 * nothing. On Bun and Deno the native adapters are the ones to listen with.
 *
 * @module
 */
import net from "node:net";
import process from "node:process";
import { deadlineQueue } from "../io/deadline_queue.ts";
import { formatHostPort, toNetAddress } from "./_address.ts";
import { abortError, connectTimeoutError, toNetError } from "./_errors.ts";
import { bindNodeDatagram } from "./_node_datagram.ts";
import { serveNodeHttp } from "./_node_http.ts";
import { listenForPeer } from "./_peer_listener.ts";
import type {
  Cancellation,
  Connection,
  ConnectionHandlers,
  ConnectOptions,
  Listener,
  ListenOptions,
  NetAddress,
  NetError,
  NetRuntime,
} from "./types.ts";

/** One `net.Socket` behind the `Connection` interface. */
class NodeConnection implements Connection {
  readonly local: NetAddress;
  readonly remote: NetAddress;
  readonly reusesChunks = false;
  readonly keepsWrittenChunks = true;
  onDrain: (() => void) | null = null;

  #socket: net.Socket;
  #handlers: ConnectionHandlers | null = null;
  #paused = false;
  #needDrain = false;
  #writeClosed = false;
  #closed = false;
  #closeFired = false;
  #error: Error | undefined;
  #closeError: NetError | undefined;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    this.local = toNetAddress(socket.localAddress ?? "", socket.localPort ?? 0);
    this.remote = toNetAddress(socket.remoteAddress ?? "", socket.remotePort ?? 0);
    socket.setNoDelay(true);
    socket.pause();
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
  }

  get closed(): boolean {
    return this.#closed;
  }

  setHandlers(handlers: ConnectionHandlers): void {
    this.#handlers = handlers;
    if (this.#closed) this.#fireClose();
    else if (!this.#paused) this.#socket.resume();
  }

  pause(): void {
    this.#paused = true;
    this.#socket.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#handlers !== null && !this.#closed) this.#socket.resume();
  }

  write(chunk: Uint8Array): boolean {
    if (this.#closed || this.#writeClosed || chunk.length === 0) return true;
    this.#socket.write(chunk, this.#flushed);
    if (this.#socket.writableLength === 0) return true;
    this.#needDrain = true;
    return false;
  }

  closeWrite(): void {
    if (this.#writeClosed || this.#closed) return;
    this.#writeClosed = true;
    this.#socket.end();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#fireClose();
  }

  #flushed = (): void => {
    if (!this.#needDrain || this.#closed || this.#socket.writableLength > 0) return;
    this.#needDrain = false;
    this.onDrain?.();
  };

  #onData = (chunk: Uint8Array): void => {
    if (this.#closed) return;
    this.#handlers?.onData(chunk);
  };

  #onEnd = (): void => {
    if (this.#closed) return;
    this.#handlers?.onEnd();
  };

  #onError = (error: Error): void => {
    this.#error ??= error;
  };

  #onClose = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#error !== undefined) {
      this.#closeError = toNetError(
        this.#error,
        `exchange data with ${formatHostPort(this.remote.host, this.remote.port)}`,
      );
    }
    this.#fireClose();
  };

  #fireClose(): void {
    const handlers = this.#handlers;
    if (handlers === null || this.#closeFired) return;
    this.#closeFired = true;
    this.onDrain = null;
    handlers.onClose(this.#closeError);
  }
}

/** A `net.Server` behind the `Listener` interface. */
class NodeListener implements Listener {
  readonly address: NetAddress;
  #server: net.Server;

  constructor(server: net.Server) {
    this.#server = server;
    const bound = server.address() as net.AddressInfo;
    this.address = toNetAddress(bound.address, bound.port);
  }

  close(): void {
    this.#server.close();
  }
}

function listen(options: ListenOptions): Promise<Listener> {
  const { onConnection, onAcceptError } = options;
  const action = `listen on ${formatHostPort(options.host, options.port)}`;
  return new Promise<Listener>((resolve, reject) => {
    const server = net.createServer(
      { allowHalfOpen: true, pauseOnConnect: true },
      (socket) => onConnection(new NodeConnection(socket)),
    );
    const onError = (error: Error) => {
      server.close();
      reject(toNetError(error, action));
    };
    server.once("error", onError);
    server.listen(
      { host: options.host, port: options.port, reusePort: options.reusePort ?? false },
      () => {
        server.off("error", onError);
        const listener = new NodeListener(server);
        const { host, port } = listener.address;
        // After listening, errors are failed accepts: the server goes on.
        server.on("error", (error: Error) => {
          onAcceptError?.(toNetError(error, `accept on ${formatHostPort(host, port)}`));
        });
        resolve(listener);
      },
    );
  });
}

function connect(options: ConnectOptions): Promise<Connection> {
  const { host, port, signal } = options;
  const timeoutMs = options.timeoutMs ?? 0;
  const deadlines = timeoutMs > 0 ? deadlineQueue(timeoutMs) : undefined;
  const action = `connect to ${formatHostPort(host, port)}`;
  if (signal?.aborted) return Promise.reject(abortError(signal, action));
  return new Promise<Connection>((resolve, reject) => {
    const socket = net.connect({
      host,
      port,
      localAddress: options.localHost,
      allowHalfOpen: true,
    });
    socket.pause();
    const cleanup = () => {
      socket.off("connect", onConnect);
      socket.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
      deadlines?.delete(deadline);
    };
    const onConnect = () => {
      cleanup();
      resolve(new NodeConnection(socket));
    };
    const onError = (error: Error) => {
      cleanup();
      socket.destroy();
      reject(toNetError(error, action));
    };
    const onAbort = () => {
      cleanup();
      socket.destroy();
      reject(abortError(signal as Cancellation, action));
    };
    const deadline = {
      expire: () => {
        cleanup();
        socket.destroy();
        reject(connectTimeoutError(action, timeoutMs));
      },
    };
    socket.once("connect", onConnect);
    socket.once("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
    deadlines?.add(deadline);
  });
}

/** True when this host's node:net honours `reusePort` (Bun, Deno, Node ≥ 22.12 on Linux). */
function hostSupportsReusePort(): boolean {
  if (process.platform !== "linux") return false;
  const versions: Readonly<Record<string, string | undefined>> = process.versions;
  if (versions.bun !== undefined || versions.deno !== undefined) return true;
  const [major = 0, minor = 0] = (versions.node ?? "0.0").split(".").map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** The node:net socket runtime (whatever runtime hosts it). */
export const nodeRuntime: NetRuntime = {
  name: "node",
  canBindSource: true,
  canReusePort: hostSupportsReusePort(),
  listen,
  connect,
  listenForPeer: (options) => listenForPeer(listen, options),
  bindDatagram: bindNodeDatagram,
  serveHttp: serveNodeHttp,
};
