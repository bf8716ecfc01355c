/**
 * The UDP ASSOCIATE pump (RFC 1928 §7): one association, from the reply to
 * the end of its control connection. It is runtime-agnostic (only
 * `Connection` and `DatagramSocket` are used) and knows nothing of routes or
 * rules: `decide` says, per datagram destination, where it goes.
 *
 * - **Pinned to its client.** The relay socket faces one client: a datagram
 *   is accepted only from the control connection's client address, and only
 *   from the port the client declared in DST.PORT; when it declared 0, the
 *   port of its first datagram is kept. Anything else is dropped and counted
 *   (`foreign_source`, `undeclared_port`). Replies go to that address and
 *   port only.
 * - **Outbound.** A direct destination gets the payload alone, from a socket
 *   of the destination's family (opened on first use, at most one per
 *   family), so an IPv4 client reaches IPv6 targets and back. A destination
 *   behind a SOCKS5 next hop gets the client's whole datagram, header
 *   included, sent to that hop's UDP relay.
 * - **Replies.** A direct reply is accepted only from an address and port the
 *   client has sent to in this association (`unsolicited` otherwise), and is
 *   prefixed with a header naming its real source. A reply from a hop's relay
 *   already carries the hop's header and is passed on whole.
 * - **Order.** While a datagram waits for its decision (DNS, rules, a hop
 *   being set up) or for its socket, later datagrams queue behind it, so
 *   the client's order is kept; at most `MAX_QUEUED` datagrams and
 *   `MAX_QUEUED_BYTES` wait, later ones are dropped (`backlog`).
 * - **Lifetime.** The association ends when the control connection ends
 *   (FIN, close or error), when nothing moved for `idleTimeoutMs` (accepted
 *   datagrams either way count as activity; dropped ones do not), when the
 *   signal aborts, or when `end` is called. Then the relay socket, the
 *   outbound sockets and the control connection are closed at once; the
 *   caller closes any hop associations. The server never closes the control
 *   connection otherwise.
 *
 * FRAG ≠ 0 is dropped (`fragmented`): RFC 1928 allows a relay without
 * reassembly to do so, and the association lives on.
 *
 * @module
 */
import { ipFamily } from "../net/address.ts";
import { decodeSocks5UdpDatagram, encodeSocks5UdpDatagram, type Socks5UdpDatagram } from "../protocol/socks5_udp.ts";
import type { Target } from "../protocol/target.ts";
import type { Connection, DatagramSocket, NetAddress, NetError } from "../runtime/types.ts";

/** Why a datagram was dropped (the keys of `DatagramRelayResult.drops`). */
export type DropReason =
  /** Sent to the relay socket from another address than the client's. */
  | "foreign_source"
  /** From the client's address, but not from its declared (or first) port. */
  | "undeclared_port"
  /** The SOCKS5 UDP header cannot be decoded. */
  | "malformed"
  /** FRAG ≠ 0: fragments are not reassembled. */
  | "fragmented"
  /** The destination rules refuse the destination. */
  | "not_allowed"
  /** The destination's route cannot carry UDP, or its next hop failed. */
  | "no_route"
  /** The destination's name does not resolve. */
  | "unresolved"
  /** A reply from a peer the client has not sent to. */
  | "unsolicited"
  /** A reply that no longer fits in one datagram once the header is added. */
  | "too_large"
  /** Too many datagrams waiting for a decision. */
  | "backlog"
  /** The kernel refused a datagram, or reported an error for an earlier one. */
  | "send_error";

/** A SOCKS5 UDP relay further on (a next hop's association). */
export interface DatagramUpstream {
  /** Our socket toward the hop's relay; the pump sets its handlers on first use. */
  readonly socket: DatagramSocket;
  /** The hop's UDP relay: where datagrams go, the only source accepted. */
  readonly relay: NetAddress;
}

/** Where one datagram goes. */
export type DatagramDecision =
  /** Straight to a numeric address. */
  | { readonly kind: "direct"; readonly host: string; readonly port: number }
  /** Whole (header included) to a next hop's relay. */
  | { readonly kind: "upstream"; readonly upstream: DatagramUpstream }
  | { readonly kind: "drop"; readonly reason: DropReason; readonly detail: string };

/** Options for `DatagramRelay`. */
export interface DatagramRelayOptions {
  /** The TCP connection the ASSOCIATE request came on: the association lives as long as it. */
  readonly control: Connection;
  /** The control connection already sent FIN during the handshake. */
  readonly controlEnded?: boolean;
  /** The socket facing the client (its BND). */
  readonly relay: DatagramSocket;
  /** The client: its address, and the port it declared (0: the port of its first datagram). */
  readonly client: { readonly host: string; readonly port: number };
  /**
   * Decides where a datagram for `target` goes. Never rejects (a failure is
   * a `drop` decision); a plain value keeps the path free of promises.
   */
  readonly decide: (target: Target) => DatagramDecision | Promise<DatagramDecision>;
  /** Binds an outbound socket of a family. */
  readonly openSocket: (family: 4 | 6) => Promise<DatagramSocket>;
  /** Ends the association after this long without a datagram; 0 disables it. */
  readonly idleTimeoutMs: number;
  /** Aborting ends the association (`aborted`). */
  readonly signal?: AbortSignal;
  /** Called for the first drop of each reason (for one log line per reason). */
  readonly onDrop?: (reason: DropReason, detail: string) => void;
}

/** Why an association ended. */
export type DatagramOutcome = "done" | "idle_timeout" | "aborted" | "client_error" | "upstream_closed";

/** What a finished association reports. */
export interface DatagramRelayResult {
  /** Datagrams relayed from the client, and their payload bytes. */
  datagramsUp: number;
  bytesUp: number;
  /** Datagrams relayed to the client, and their payload bytes. */
  datagramsDown: number;
  bytesDown: number;
  /** Dropped datagrams by reason (reasons that never happened are absent). */
  drops: Partial<Record<DropReason, number>>;
  outcome: DatagramOutcome;
  error?: Error;
}

/** Most datagrams waiting for a decision or a socket. */
export const MAX_QUEUED = 256;
/** Most bytes waiting for a decision or a socket. */
export const MAX_QUEUED_BYTES = 4 << 20;
/** Most peers remembered for reply filtering; the oldest is forgotten first. */
export const MAX_PEERS = 4096;
/** Largest UDP payload over IPv4 (65,535 − 20 − 8) and over IPv6 (65,535 − 8). */
const MAX_PAYLOAD = { 4: 65_507, 6: 65_527 } as const;
/** Samples per idle period: the timeout fires after 1 to 1.25 periods of silence. */
const IDLE_SAMPLES = 4;

interface Queued {
  readonly target: Target;
  /** A copy of the client's whole datagram. */
  readonly whole: Uint8Array;
  readonly payloadStart: number;
  decision: DatagramDecision | Promise<DatagramDecision> | undefined;
}

type Outbound = DatagramSocket | Promise<DatagramSocket | null> | null;

/** One UDP association's datagram pump. */
export class DatagramRelay {
  /** Resolves once the association is over and its sockets are closed. */
  readonly done: Promise<DatagramRelayResult>;
  readonly #options: DatagramRelayOptions;
  readonly #clientHost: string;
  readonly #clientMax: number;
  #clientPort: number;
  #resolve!: (result: DatagramRelayResult) => void;
  #over = false;
  #datagramsUp = 0;
  #bytesUp = 0;
  #datagramsDown = 0;
  #bytesDown = 0;
  readonly #drops = new Map<DropReason, number>();
  #activity = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #outbound: { 4: Outbound; 6: Outbound } = { 4: null, 6: null };
  readonly #attached = new Set<DatagramUpstream>();
  readonly #peers = new Set<string>();
  readonly #queue: Queued[] = [];
  #queuedBytes = 0;
  #draining = false;

  constructor(options: DatagramRelayOptions) {
    this.#options = options;
    this.#clientHost = options.client.host;
    this.#clientPort = options.client.port;
    this.#clientMax = MAX_PAYLOAD[ipFamily(options.client.host) === 6 ? 6 : 4];
    this.done = new Promise((resolve) => this.#resolve = resolve);
    const { control, relay, signal } = options;
    relay.setHandlers({ onMessage: this.#fromClient, onError: this.#sendFailed });
    control.setHandlers({
      onData: () => {},
      onEnd: () => this.end("done"),
      onClose: (error) => this.end(error === undefined ? "done" : "client_error", error),
    });
    control.resume();
    if (options.idleTimeoutMs > 0) this.#startIdleTimer(options.idleTimeoutMs);
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    if (signal?.aborted) this.end("aborted");
    else if (options.controlEnded || control.closed) this.end("done");
  }

  /** Ends the association now (idempotent): closes its sockets and the control connection. */
  end(outcome: DatagramOutcome, error?: Error): void {
    if (this.#over) return;
    this.#over = true;
    clearInterval(this.#timer);
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    this.#options.relay.close();
    for (const family of [4, 6] as const) {
      const outbound = this.#outbound[family];
      if (outbound !== null && !(outbound instanceof Promise)) outbound.close();
    }
    this.#options.control.close();
    this.#queue.length = 0;
    const drops: Partial<Record<DropReason, number>> = {};
    for (const [reason, count] of this.#drops) drops[reason] = count;
    this.#resolve({
      datagramsUp: this.#datagramsUp,
      bytesUp: this.#bytesUp,
      datagramsDown: this.#datagramsDown,
      bytesDown: this.#bytesDown,
      drops,
      outcome,
      ...(error === undefined ? {} : { error }),
    });
  }

  /** True once the association is over. */
  get over(): boolean {
    return this.#over;
  }

  #onAbort = (): void => this.end("aborted");

  #fromClient = (bytes: Uint8Array, from: NetAddress): void => {
    if (this.#over) return;
    if (from.host !== this.#clientHost) {
      this.#drop("foreign_source", `a datagram from ${describe(from)}, not from the client`);
      return;
    }
    if (from.port !== this.#clientPort) {
      if (this.#clientPort !== 0) {
        this.#drop("undeclared_port", `a datagram from ${describe(from)}, not from port ${this.#clientPort}`);
        return;
      }
      this.#clientPort = from.port;
    }
    let datagram: Socks5UdpDatagram;
    try {
      datagram = decodeSocks5UdpDatagram(bytes);
    } catch (error) {
      this.#drop("malformed", (error as Error).message);
      return;
    }
    if (datagram.fragment !== 0) {
      this.#drop("fragmented", `FRAG ${datagram.fragment}: fragments are not reassembled`);
      return;
    }
    this.#activity++;
    if (this.#queue.length === 0) {
      const decision = this.#options.decide(datagram.target);
      if (!(decision instanceof Promise) && this.#sendUp(decision, datagram.payload, bytes)) return;
      this.#enqueue(datagram, bytes, decision);
    } else {
      this.#enqueue(datagram, bytes, undefined);
    }
  };

  #enqueue(
    datagram: Socks5UdpDatagram,
    bytes: Uint8Array,
    decision: DatagramDecision | Promise<DatagramDecision> | undefined,
  ): void {
    if (this.#queue.length >= MAX_QUEUED || this.#queuedBytes + bytes.length > MAX_QUEUED_BYTES) {
      this.#drop("backlog", `${this.#queue.length} datagrams are already waiting for DNS, rules or a next hop`);
      return;
    }
    this.#queue.push({
      target: datagram.target,
      whole: bytes.slice(),
      payloadStart: bytes.length - datagram.payload.length,
      decision,
    });
    this.#queuedBytes += bytes.length;
    if (!this.#draining) void this.#drain();
  }

  /** Sends the queued datagrams in order, waiting for each one's decision and socket. */
  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (!this.#over) {
        const item = this.#queue[0];
        if (item === undefined) break;
        let decision: DatagramDecision;
        try {
          decision = await (item.decision ?? this.#options.decide(item.target));
        } catch (error) {
          decision = { kind: "drop", reason: "no_route", detail: (error as Error).message };
        }
        if (this.#over) break;
        const payload = item.whole.subarray(item.payloadStart);
        if (!this.#sendUp(decision, payload, item.whole) && decision.kind === "direct") {
          const socket = await this.#outboundFor(familyOf(decision.host));
          if (this.#over) break;
          if (socket !== null) this.#sendUp(decision, payload, item.whole);
        }
        this.#queue.shift();
        this.#queuedBytes -= item.whole.length;
      }
    } finally {
      this.#draining = false;
    }
  }

  /** Sends one datagram as decided; false when its outbound socket is not open yet (it is being opened). */
  #sendUp(decision: DatagramDecision, payload: Uint8Array, whole: Uint8Array): boolean {
    switch (decision.kind) {
      case "drop":
        this.#drop(decision.reason, decision.detail);
        return true;
      case "direct": {
        const family = familyOf(decision.host);
        const outbound = this.#outbound[family];
        if (outbound === null || outbound instanceof Promise) {
          void this.#outboundFor(family);
          return false;
        }
        const key = peerKey(decision.host, decision.port);
        if (!this.#peers.has(key)) {
          if (this.#peers.size >= MAX_PEERS) this.#peers.delete(this.#peers.values().next().value as string);
          this.#peers.add(key);
        }
        outbound.send(payload, decision.host, decision.port);
        break;
      }
      case "upstream": {
        const { upstream } = decision;
        if (!this.#attached.has(upstream)) this.#attach(upstream);
        upstream.socket.send(whole, upstream.relay.host, upstream.relay.port);
        break;
      }
    }
    this.#datagramsUp++;
    this.#bytesUp += payload.length;
    return true;
  }

  /** The outbound socket of a family, opening it on first use; null when it cannot be opened. */
  #outboundFor(family: 4 | 6): DatagramSocket | Promise<DatagramSocket | null> | null {
    const current = this.#outbound[family];
    if (current !== null) return current;
    const opening = this.#options.openSocket(family).then(
      (socket) => {
        if (this.#over) {
          socket.close();
          return null;
        }
        socket.setHandlers({ onMessage: this.#fromTarget, onError: this.#sendFailed });
        this.#outbound[family] = socket;
        return socket;
      },
      (error: NetError) => {
        this.#outbound[family] = null;
        this.#drop("send_error", `cannot open an IPv${family} socket: ${error.message}`);
        return null;
      },
    );
    this.#outbound[family] = opening;
    return opening;
  }

  #attach(upstream: DatagramUpstream): void {
    this.#attached.add(upstream);
    const { relay } = upstream;
    upstream.socket.setHandlers({
      onMessage: (bytes, from) => {
        if (this.#over) return;
        if (from.host !== relay.host || from.port !== relay.port) {
          this.#drop("unsolicited", `a datagram from ${describe(from)}, not from the next hop's relay`);
          return;
        }
        let datagram: Socks5UdpDatagram;
        try {
          datagram = decodeSocks5UdpDatagram(bytes);
        } catch (error) {
          this.#drop("malformed", `from the next hop: ${(error as Error).message}`);
          return;
        }
        if (datagram.fragment !== 0) {
          this.#drop("fragmented", `FRAG ${datagram.fragment} from the next hop`);
          return;
        }
        this.#sendDown(bytes, datagram.payload.length);
      },
      onError: this.#sendFailed,
    });
  }

  #fromTarget = (bytes: Uint8Array, from: NetAddress): void => {
    if (this.#over) return;
    if (!this.#peers.has(peerKey(from.host, from.port))) {
      this.#drop("unsolicited", `a datagram from ${describe(from)}, which the client has not sent to`);
      return;
    }
    const source: Target = from.family === 6
      ? { kind: "ipv6", host: from.host, port: from.port }
      : { kind: "ipv4", host: from.host, port: from.port };
    if ((from.family === 6 ? 22 : 10) + bytes.length > this.#clientMax) {
      this.#drop(
        "too_large",
        `${bytes.length} bytes from ${describe(from)} do not fit in one datagram with the header`,
      );
      return;
    }
    this.#sendDown(encodeSocks5UdpDatagram(source, bytes), bytes.length);
  };

  #sendDown(datagram: Uint8Array, payloadLength: number): void {
    if (datagram.length > this.#clientMax) {
      this.#drop("too_large", `${datagram.length} bytes do not fit in one datagram to the client`);
      return;
    }
    this.#activity++;
    this.#options.relay.send(datagram, this.#clientHost, this.#clientPort);
    this.#datagramsDown++;
    this.#bytesDown += payloadLength;
  }

  #sendFailed = (error: NetError): void => {
    if (this.#over) return;
    this.#drop("send_error", error.message);
  };

  #drop(reason: DropReason, detail: string): void {
    const count = this.#drops.get(reason) ?? 0;
    this.#drops.set(reason, count + 1);
    if (count === 0) this.#options.onDrop?.(reason, detail);
  }

  #startIdleTimer(idleTimeoutMs: number): void {
    let seen = this.#activity;
    let quiet = 0;
    this.#timer = setInterval(() => {
      if (this.#activity !== seen) {
        seen = this.#activity;
        quiet = 0;
        return;
      }
      if (++quiet >= IDLE_SAMPLES) this.end("idle_timeout");
    }, Math.max(1, Math.floor(idleTimeoutMs / IDLE_SAMPLES)));
  }
}

function familyOf(host: string): 4 | 6 {
  return ipFamily(host) === 6 ? 6 : 4;
}

function peerKey(host: string, port: number): string {
  return `${host}|${port}`;
}

function describe(address: NetAddress): string {
  return address.family === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
