/**
 * The least code that relays SOCKS5 on Bun's own sockets (`Bun.listen`,
 * `Bun.connect`): method 00 (no authentication), CONNECT to an IPv4
 * address, a domain name or an IPv6 address, then bytes both ways until
 * either side closes. No logging, routing, limits or checks beyond the
 * protocol's shape. The benchmark runs it beside srelay on Bun to show what
 * the runtime itself allows.
 *
 *     bun scripts/bench/bare_relay_bun.ts [IPV4:PORT]    (default 127.0.0.1:0)
 *
 * Prints `listening on IPV4:PORT` once it accepts connections.
 *
 * Bun's `write()` is unbuffered: it returns how many bytes the kernel took.
 * The rest is copied into the socket's queue, the other socket is paused
 * until `drain` has flushed the queue, and a close waits for it too.
 *
 * @module
 */
import process from "node:process";

/** Per-socket state (`socket.data`). */
interface Side {
  /** The other socket of the pair, once both exist; null after either closed. */
  peer: BunSocket | null;
  /** Handshake bytes not parsed yet (client side, until the target is connected); null once relaying. */
  head: Uint8Array | null;
  /** 0: method selection, 1: request, 2: connecting, 3: relaying, 4: closed. */
  stage: number;
  /** Bytes the kernel did not take yet. */
  queue: Uint8Array[];
  /** End the socket once the queue is flushed. */
  closing: boolean;
}

/** The parts of a Bun socket this relay uses. */
interface BunSocket {
  data: Side;
  write(bytes: Uint8Array): number;
  end(): void;
  pause(): void;
  resume(): void;
  setNoDelay(on: boolean): void;
}

interface Handlers {
  open(socket: BunSocket): void;
  data(socket: BunSocket, chunk: Uint8Array): void;
  drain(socket: BunSocket): void;
  end(socket: BunSocket): void;
  close(socket: BunSocket): void;
  error(socket: BunSocket): void;
}

interface BunGlobal {
  listen(options: { hostname: string; port: number; socket: Handlers }): { port: number };
  connect(options: { hostname: string; port: number; data: Side; socket: Handlers }): Promise<BunSocket>;
}

const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;

const NO_METHOD = Uint8Array.of(5, 0xff);
const METHOD_NONE = Uint8Array.of(5, 0);
const SUCCEEDED = Uint8Array.of(5, 0, 0, 1, 0, 0, 0, 0, 0, 0);
const REFUSED = Uint8Array.of(5, 5, 0, 1, 0, 0, 0, 0, 0, 0);
const NOT_SUPPORTED = Uint8Array.of(5, 7, 0, 1, 0, 0, 0, 0, 0, 0);

function side(peer: BunSocket | null): Side {
  return { peer, head: null, stage: 3, queue: [], closing: false };
}

/** Writes `chunk` to `to`; what the kernel does not take is queued and `from` paused until it drains. */
function send(from: BunSocket | null, to: BunSocket, chunk: Uint8Array): void {
  const queue = to.data.queue;
  if (queue.length > 0) {
    queue.push(chunk.slice());
    return;
  }
  const written = to.write(chunk);
  if (written < 0 || written === chunk.length) return;
  queue.push(chunk.slice(written));
  from?.pause();
}

function drain(socket: BunSocket): void {
  const state = socket.data;
  const queue = state.queue;
  while (queue.length > 0) {
    const head = queue[0] as Uint8Array;
    const written = socket.write(head);
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
  if (state.closing) socket.end();
  else state.peer?.resume();
}

/**
 * Ends `socket`'s pair: the peer once its queue is flushed. A client still
 * waiting for its target is answered by the failed dial instead.
 */
function finish(socket: BunSocket): void {
  const state = socket.data;
  state.stage = 4;
  const peer = state.peer;
  state.peer = null;
  if (peer === null || peer.data.stage === 2 || peer.data.stage === 4) return;
  peer.data.peer = null;
  if (peer.data.queue.length > 0) peer.data.closing = true;
  else peer.end();
}

function concat(a: Uint8Array | null, b: Uint8Array): Uint8Array {
  if (a === null || a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The host of a SOCKS5 address of type `atyp` in `bytes`. */
function hostOf(atyp: number, bytes: Uint8Array): string {
  if (atyp === 1) return bytes.join(".");
  if (atyp === 3) return new TextDecoder().decode(bytes);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":");
}

const targetEvents: Handlers = {
  open(target) {
    target.setNoDelay(true);
    const client = target.data.peer;
    if (client === null || client.data.stage !== 2) {
      target.data.peer = null;
      target.end();
      return;
    }
    client.data.peer = target;
    client.data.stage = 3;
    send(null, client, SUCCEEDED);
    const early = client.data.head;
    client.data.head = null;
    if (early !== null && early.length > 0) send(client, target, early);
  },
  data(target, chunk) {
    const client = target.data.peer;
    if (client !== null) send(target, client, chunk);
  },
  drain,
  end: finish,
  close: finish,
  error: finish,
};

/** Parses what the client sent so far and acts on each complete message. */
function handshake(client: BunSocket): void {
  const state = client.data;
  const head = state.head as Uint8Array;
  if (state.stage === 0) {
    if (head.length < 2 || head.length < 2 + head[1]!) return;
    if (head[0] !== 5 || !head.subarray(2, 2 + head[1]!).includes(0)) {
      client.write(NO_METHOD);
      client.end();
      return;
    }
    client.write(METHOD_NONE);
    state.head = head.subarray(2 + head[1]!);
    state.stage = 1;
  }
  const request = state.head as Uint8Array;
  if (state.stage !== 1 || request.length < 5) return;
  const atyp = request[3]!;
  const addressLength = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? 1 + request[4]! : 0;
  if (request[0] !== 5 || request[1] !== 1 || addressLength === 0) {
    client.write(NOT_SUPPORTED);
    client.end();
    return;
  }
  const end = 4 + addressLength + 2;
  if (request.length < end) return;
  const host = hostOf(atyp, request.subarray(atyp === 3 ? 5 : 4, end - 2));
  const port = (request[end - 2]! << 8) | request[end - 1]!;
  state.head = request.subarray(end);
  state.stage = 2;
  bun.connect({ hostname: host, port, data: side(client), socket: targetEvents }).catch(() => {
    if (state.stage !== 2) return;
    client.write(REFUSED);
    client.end();
  });
}

const clientEvents: Handlers = {
  open(client) {
    client.setNoDelay(true);
    client.data = { peer: null, head: null, stage: 0, queue: [], closing: false };
  },
  data(client, chunk) {
    const state = client.data;
    if (state.stage === 3) {
      if (state.peer !== null) send(client, state.peer, chunk);
      return;
    }
    // Bun reuses the chunk's memory: keep a copy until the handshake is done.
    state.head = concat(state.head, chunk);
    handshake(client);
  },
  drain,
  end: finish,
  close: finish,
  error: finish,
};

const [hostname, port] = (process.argv[2] ?? "127.0.0.1:0").split(":");
const server = bun.listen({ hostname: hostname ?? "127.0.0.1", port: Number(port ?? 0), socket: clientEvents });
console.log(`listening on ${hostname}:${server.port}`);
