/**
 * An in-memory `NetRuntime` for tests that need no sockets: listeners,
 * outbound connections, BIND-style peer listeners and UDP sockets all live
 * in one `MemoryRuntime` object, keyed by `host:port`.
 *
 * - `listen` registers a listener (port 0 takes a fresh port); the test's
 *   `dial` (and the server's `connect`) makes a memory connection pair whose
 *   far end goes to the listener's `onConnection`.
 * - `connect` reaches a memory listener (or a `listenForPeer` listener) and
 *   rejects with `NetError("refused")` when nothing listens there.
 * - `failAccept` makes a listener's `onAcceptError` fire.
 * - `listenForPeer` queues incoming connections from the moment it is bound;
 *   `bindDatagram` delivers whole datagrams between memory UDP sockets
 *   (a datagram to a port nothing is bound to is dropped, as UDP does).
 * - Closing a listener or a socket frees its port at once.
 *
 * A wildcard address (`0.0.0.0`, `::`) matches every host of its family.
 * Connections are the pairs of `memory_connection.ts`: bytes arrive on a
 * later microtask, `write` never applies back-pressure.
 *
 * @module
 */
import { isIP } from "node:net";
import {
  type Connection,
  type ConnectOptions,
  type DatagramHandlers,
  type DatagramOptions,
  type DatagramSocket,
  type Listener,
  type ListenOptions,
  type NetAddress,
  NetError,
  type NetRuntime,
  type PeerListener,
  type PeerListenOptions,
} from "../../src/runtime/types.ts";
import { createConnectionPair, type MemoryConnectionEnd } from "./memory_connection.ts";

/** Largest UDP payload over IPv4. */
const MAX_DATAGRAM = 65507;

/** First port handed out for port 0 and for outbound connections. */
const FIRST_EPHEMERAL_PORT = 49152;

/** Options for `createMemoryRuntime`. */
export interface MemoryRuntimeOptions {
  /** Local address of outbound connections and of test clients without `from`, per family. */
  readonly sourceHost4?: string;
  readonly sourceHost6?: string;
  /** The runtime's name as the server sees it. */
  readonly name?: NetRuntime["name"];
}

/** One call of `connect`, as the test sees it afterwards. */
export interface ConnectCall {
  readonly options: ConnectOptions;
  /** The outcome: the dialled connection's local address, or the error. */
  result?: NetAddress | NetError;
}

/** The in-memory runtime, with the test-side controls. */
export interface MemoryRuntime extends NetRuntime {
  /**
   * Test side of a TCP connect: opens a connection to the listener at
   * `to` (from `from`, or a fresh port of the source host) and returns the
   * client end; the other end has been given to `onConnection` (or queued
   * on a peer listener). Throws `NetError("refused")` when nothing listens.
   */
  dial(to: { host: string; port: number }, from?: NetAddress): MemoryConnectionEnd;
  /**
   * Makes the listener at `at` report an accept failure to its
   * `onAcceptError`. Returns false when there is no such listener (or it has
   * no handler).
   */
  failAccept(at: { host: string; port: number }, error?: NetError): boolean;
  /** True while a TCP listener or peer listener holds `host:port`. */
  isListening(host: string, port: number): boolean;
  /** True while a UDP socket holds `host:port`. */
  isBound(host: string, port: number): boolean;
  /** Every `connect` call so far, in order. */
  readonly connects: readonly ConnectCall[];
  /** Every connection `connect` returned (the outbound ends), in order. */
  readonly outbound: readonly MemoryConnectionEnd[];
}

type Accept = (server: MemoryConnectionEnd) => void;

interface TcpEntry {
  readonly accept: Accept;
  readonly onAcceptError: ((error: NetError) => void) | undefined;
}

interface UdpEntry {
  receive(bytes: Uint8Array, from: NetAddress): void;
}

function familyOf(host: string): 4 | 6 {
  return isIP(host) === 6 ? 6 : 4;
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}

function key(host: string, port: number): string {
  return `${host}|${port}`;
}

/** Creates an empty in-memory network with its runtime. */
export function createMemoryRuntime(options: MemoryRuntimeOptions = {}): MemoryRuntime {
  const sourceHost4 = options.sourceHost4 ?? "127.0.0.1";
  const sourceHost6 = options.sourceHost6 ?? "::1";
  const tcp = new Map<string, TcpEntry>();
  const udp = new Map<string, UdpEntry>();
  const connects: ConnectCall[] = [];
  const outbound: MemoryConnectionEnd[] = [];
  let nextPort = FIRST_EPHEMERAL_PORT;

  const sourceHost = (family: 4 | 6) => family === 6 ? sourceHost6 : sourceHost4;

  /** A port free in `table` on `host` (and on its wildcard). */
  const freshPort = (table: Map<string, unknown>, host: string): number => {
    for (;;) {
      const port = nextPort++;
      if (nextPort > 65535) nextPort = FIRST_EPHEMERAL_PORT;
      const wildcard = familyOf(host) === 6 ? "::" : "0.0.0.0";
      if (!table.has(key(host, port)) && !table.has(key(wildcard, port))) return port;
    }
  };

  /** The entry that serves `host:port`: the exact address first, then the wildcard of its family. */
  const lookup = <T>(table: Map<string, T>, host: string, port: number): T | undefined =>
    table.get(key(host, port)) ?? table.get(key(familyOf(host) === 6 ? "::" : "0.0.0.0", port));

  /** Binds `host:port` (port 0: a fresh one) in `table`; throws like a kernel would. */
  const bind = <T>(table: Map<string, T>, host: string, port: number, entry: T): NetAddress => {
    if (isIP(host) === 0) {
      throw new NetError("address_not_available", `Cannot bind ${host}:${port}: not a numeric address`);
    }
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new NetError("other", `Cannot bind ${host}:${port}: port out of range`);
    }
    const chosen = port === 0 ? freshPort(table, host) : port;
    if (table.has(key(host, chosen))) {
      throw new NetError("address_in_use", `Cannot bind ${host}:${chosen}: address already in use`);
    }
    table.set(key(host, chosen), entry);
    return { host, port: chosen, family: familyOf(host) };
  };

  /** Opens a pair from `from` to the listener at `to`; returns the near end, gives the far end away. */
  const open = (to: { host: string; port: number }, from: NetAddress): MemoryConnectionEnd => {
    const entry = isIP(to.host) === 0 ? undefined : lookup(tcp, to.host, to.port);
    if (entry === undefined) {
      throw new NetError("refused", `connect ECONNREFUSED ${to.host}:${to.port}`);
    }
    const remote: NetAddress = { host: to.host, port: to.port, family: familyOf(to.host) };
    const [near, far] = createConnectionPair(from, remote);
    entry.accept(far);
    return near;
  };

  const runtime: MemoryRuntime = {
    name: options.name ?? "node",
    canBindSource: true,
    canReusePort: false,
    connects,
    outbound,

    listen(listenOptions: ListenOptions): Promise<Listener> {
      try {
        const entry: TcpEntry = {
          accept: (server) => listenOptions.onConnection(server),
          onAcceptError: listenOptions.onAcceptError,
        };
        const address = bind(tcp, listenOptions.host, listenOptions.port, entry);
        const listener: Listener = {
          address,
          close() {
            if (tcp.get(key(address.host, address.port)) === entry) tcp.delete(key(address.host, address.port));
          },
        };
        return Promise.resolve(listener);
      } catch (error) {
        return Promise.reject(error);
      }
    },

    connect(connectOptions: ConnectOptions): Promise<Connection> {
      const call: ConnectCall = { options: connectOptions };
      connects.push(call);
      const fail = (error: NetError) => {
        call.result = error;
        return Promise.reject(error);
      };
      if (connectOptions.signal?.aborted) return fail(new NetError("aborted", "Connect aborted"));
      if (isIP(connectOptions.host) === 0) {
        return fail(new NetError("not_found", `Cannot connect to ${connectOptions.host}: not a numeric address`));
      }
      const family = familyOf(connectOptions.host);
      const localHost = connectOptions.localHost ?? sourceHost(family);
      const from: NetAddress = { host: localHost, port: freshPort(tcp, localHost), family };
      try {
        const connection = open(connectOptions, from);
        call.result = connection.local;
        outbound.push(connection);
        return Promise.resolve(connection);
      } catch (error) {
        return fail(error as NetError);
      }
    },

    listenForPeer(peerOptions: PeerListenOptions): Promise<PeerListener> {
      const queue: MemoryConnectionEnd[] = [];
      const waiters = new Set<{ resolve: (connection: Connection) => void; reject: (error: NetError) => void }>();
      let closed = false;
      const entry: TcpEntry = {
        accept(server) {
          const waiter = waiters.values().next().value;
          if (waiter === undefined) {
            queue.push(server);
            return;
          }
          waiters.delete(waiter);
          waiter.resolve(server);
        },
        onAcceptError: undefined,
      };
      let address: NetAddress;
      try {
        address = bind(tcp, peerOptions.host, peerOptions.port, entry);
      } catch (error) {
        return Promise.reject(error);
      }
      const listener: PeerListener = {
        address,
        accept(signal?: AbortSignal): Promise<Connection> {
          const queued = queue.shift();
          if (queued !== undefined) return Promise.resolve(queued);
          if (closed) return Promise.reject(new NetError("closed", "Peer listener is closed"));
          const reason = () =>
            signal?.reason instanceof NetError ? signal.reason : new NetError("aborted", "Accept aborted");
          if (signal?.aborted) return Promise.reject(reason());
          return new Promise<Connection>((resolve, reject) => {
            const onAbort = () => {
              waiters.delete(waiter);
              reject(reason());
            };
            const waiter = {
              resolve(connection: Connection) {
                signal?.removeEventListener("abort", onAbort);
                resolve(connection);
              },
              reject(error: NetError) {
                signal?.removeEventListener("abort", onAbort);
                reject(error);
              },
            };
            waiters.add(waiter);
            signal?.addEventListener("abort", onAbort, { once: true });
          });
        },
        close() {
          if (closed) return;
          closed = true;
          if (tcp.get(key(address.host, address.port)) === entry) tcp.delete(key(address.host, address.port));
          for (const connection of queue.splice(0)) connection.close();
          for (const waiter of [...waiters]) waiter.reject(new NetError("closed", "Peer listener is closed"));
          waiters.clear();
        },
      };
      return Promise.resolve(listener);
    },

    bindDatagram(datagramOptions: DatagramOptions): Promise<DatagramSocket> {
      let handlers: DatagramHandlers | null = null;
      let closed = false;
      const inbox: Array<{ bytes: Uint8Array; from: NetAddress }> = [];
      const entry: UdpEntry = {
        receive(bytes, from) {
          if (closed) return;
          if (handlers === null) inbox.push({ bytes, from });
          else handlers.onMessage(bytes, from);
        },
      };
      let local: NetAddress;
      try {
        local = bind(udp, datagramOptions.host, datagramOptions.port, entry);
      } catch (error) {
        return Promise.reject(error);
      }
      const socket: DatagramSocket = {
        local,
        get closed() {
          return closed;
        },
        setHandlers(next) {
          handlers = next;
          for (const datagram of inbox.splice(0)) {
            if (closed || handlers !== next) return;
            next.onMessage(datagram.bytes, datagram.from);
          }
        },
        send(bytes, host, port) {
          const report = (error: NetError) => queueMicrotask(() => handlers?.onError?.(error));
          if (closed) return report(new NetError("closed", "Datagram socket is closed"));
          if (bytes.length > MAX_DATAGRAM) {
            return report(new NetError("other", `send EMSGSIZE: ${bytes.length} bytes is too large`));
          }
          if (isIP(host) === 0) return report(new NetError("other", `send EINVAL: ${host} is not numeric`));
          const copy = bytes.slice();
          const from: NetAddress = {
            host: isWildcard(local.host) ? sourceHost(local.family) : local.host,
            port: local.port,
            family: local.family,
          };
          queueMicrotask(() => lookup(udp, host, port)?.receive(copy, from));
        },
        close() {
          if (closed) return;
          closed = true;
          inbox.length = 0;
          if (udp.get(key(local.host, local.port)) === entry) udp.delete(key(local.host, local.port));
        },
      };
      return Promise.resolve(socket);
    },

    dial(to, from) {
      const family = familyOf(to.host);
      const source = from ?? { host: sourceHost(family), port: freshPort(tcp, sourceHost(family)), family };
      return open(to, source);
    },

    failAccept(at, error = new NetError("other", "accept EMFILE: too many open files")) {
      const entry = tcp.get(key(at.host, at.port));
      if (entry?.onAcceptError === undefined) return false;
      entry.onAcceptError(error);
      return true;
    },

    isListening: (host, port) => tcp.has(key(host, port)),
    isBound: (host, port) => udp.has(key(host, port)),
  };
  return runtime;
}
