/**
 * `NetRuntime.listenForPeer` built on an adapter's own `listen`: the
 * listener's connections go to a bounded queue from the moment it is bound,
 * and `accept` hands them out one at a time, so a SOCKS BIND can close a
 * connection from the wrong address and wait for the next.
 *
 * @module
 */
import { formatHostPort } from "./_address.ts";
import { abortError } from "./_errors.ts";
import {
  type Connection,
  type Listener,
  type ListenOptions,
  type NetAddress,
  NetError,
  type PeerListener,
  type PeerListenOptions,
} from "./types.ts";

/** Most connections kept waiting for `accept`; later ones are closed at once. */
const QUEUE_LIMIT = 16;

interface Waiter {
  resolve(connection: Connection): void;
  reject(error: NetError): void;
  /** Detaches the waiter from its abort signal. */
  detach(): void;
}

/** Binds a peer listener through `listen` (an adapter's `NetRuntime.listen`). */
export async function listenForPeer(
  listen: (options: ListenOptions) => Promise<Listener>,
  options: PeerListenOptions,
): Promise<PeerListener> {
  const peer = new QueuedPeerListener();
  const listener = await listen({
    host: options.host,
    port: options.port,
    onConnection: (connection) => peer.offer(connection),
  });
  peer.attach(listener);
  return peer;
}

class QueuedPeerListener implements PeerListener {
  #listener: Listener | null = null;
  #queue: Connection[] = [];
  #waiters: Waiter[] = [];
  #closed = false;

  get address(): NetAddress {
    return (this.#listener as Listener).address;
  }

  attach(listener: Listener): void {
    this.#listener = listener;
  }

  offer(connection: Connection): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter.detach();
      waiter.resolve(connection);
    } else if (this.#closed || this.#queue.length >= QUEUE_LIMIT) {
      connection.close();
    } else {
      this.#queue.push(connection);
    }
  }

  accept(signal?: AbortSignal): Promise<Connection> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (signal?.aborted) return Promise.reject(abortError(signal, this.#action()));
    for (let queued = this.#queue.shift(); queued !== undefined; queued = this.#queue.shift()) {
      if (!queued.closed) return Promise.resolve(queued);
    }
    return new Promise<Connection>((resolve, reject) => {
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((other) => other !== waiter);
        reject(abortError(signal as AbortSignal, this.#action()));
      };
      const waiter: Waiter = {
        resolve,
        reject,
        detach: () => signal?.removeEventListener("abort", onAbort),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener?.close();
    for (const connection of this.#queue.splice(0)) connection.close();
    for (const waiter of this.#waiters.splice(0)) {
      waiter.detach();
      waiter.reject(this.#closedError());
    }
  }

  #closedError(): NetError {
    return new NetError("closed", `Cannot ${this.#action()}: the listener is closed`);
  }

  #action(): string {
    const { host, port } = this.address;
    return `accept a connection on ${formatHostPort(host, port)}`;
  }
}
