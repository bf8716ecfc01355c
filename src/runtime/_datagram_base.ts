/**
 * What the UDP sockets of the three adapters share: the handlers and the
 * queue of events that arrive before `setHandlers`, the check that a
 * destination is a numeric `host:port` (no runtime gets to resolve a name),
 * the closed state, and the wording of errors.
 *
 * @module
 */
import { isIP } from "node:net";
import { formatHostPort } from "./_address.ts";
import { toNetError } from "./_errors.ts";
import { type DatagramHandlers, type DatagramSocket, type NetAddress, NetError } from "./types.ts";

/** Most events (datagrams and errors) kept until `setHandlers`; later ones are dropped. */
const EARLY_LIMIT = 64;

/** Most datagrams an adapter holds while the kernel cannot take them; later ones fail. */
export const SEND_QUEUE_LIMIT = 256;

/** A datagram waiting to be sent (a copy the adapter owns). */
export interface Outgoing {
  readonly bytes: Uint8Array;
  readonly host: string;
  readonly port: number;
}

type EarlyEvent = { readonly bytes: Uint8Array; readonly from: NetAddress } | NetError;

/**
 * Errors a failed `sendto` on an unconnected socket reports for an earlier
 * datagram (Linux keeps an ICMP error in the socket when `IP_RECVERR` is on,
 * as Bun sets it). The send that hit it never left, so it is worth one retry.
 */
const STALE_ERRNOS: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
]);

/** True when a failed send may have failed for an earlier datagram's ICMP error. */
export function isStaleSendError(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" && STALE_ERRNOS.has(code);
}

/** A UDP socket; subclasses provide `transmit` and `release` for their runtime. */
export abstract class DatagramBase implements DatagramSocket {
  readonly local: NetAddress;
  #handlers: DatagramHandlers | null = null;
  #early: EarlyEvent[] | null = [];
  #closed = false;

  constructor(local: NetAddress) {
    this.local = local;
  }

  get closed(): boolean {
    return this.#closed;
  }

  setHandlers(handlers: DatagramHandlers): void {
    this.#handlers = handlers;
    const early = this.#early;
    this.#early = null;
    for (const event of early ?? []) {
      if (this.#closed) return;
      if (event instanceof NetError) this.#handlers.onError?.(event);
      else this.#handlers.onMessage(event.bytes, event.from);
    }
  }

  send(bytes: Uint8Array, host: string, port: number): void {
    if (this.#closed) return;
    if (isIP(host) === 0 || !Number.isInteger(port) || port < 1 || port > 65_535) {
      this.fail(
        new NetError("other", `Cannot ${sendAction(bytes, host, port)}: not a numeric address and port`),
      );
      return;
    }
    this.transmit(bytes, host, port);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#early = null;
    this.release();
  }

  /** Sends (or queues) one validated datagram; failures go to `fail`. */
  protected abstract transmit(bytes: Uint8Array, host: string, port: number): void;

  /** Releases the runtime's socket. Called once, by `close`. */
  protected abstract release(): void;

  /** Hands a received datagram to the consumer, or keeps a copy until `setHandlers`. */
  protected deliver(bytes: Uint8Array, from: NetAddress): void {
    if (this.#closed) return;
    const handlers = this.#handlers;
    if (handlers !== null) handlers.onMessage(bytes, from);
    else this.#keep({ bytes: bytes.slice(), from });
  }

  /** Reports a failure to the consumer (or keeps it until `setHandlers`). */
  protected fail(error: NetError): void {
    if (this.#closed) return;
    const handlers = this.#handlers;
    if (handlers !== null) handlers.onError?.(error);
    else this.#keep(error);
  }

  /** Reports a failed send of `datagram` with the runtime's `error`. */
  protected sendFailed(error: unknown, datagram: Outgoing): void {
    this.fail(toNetError(error, sendAction(datagram.bytes, datagram.host, datagram.port)));
  }

  /** Reports an error the runtime raised for an earlier datagram or a receive. */
  protected socketFailed(error: unknown): void {
    this.fail(toNetError(error, `exchange datagrams on ${formatHostPort(this.local.host, this.local.port)}`));
  }

  /** Reports that the send queue is full and `datagram` was dropped. */
  protected queueFull(datagram: Outgoing): void {
    this.fail(
      new NetError(
        "other",
        `Cannot ${
          sendAction(datagram.bytes, datagram.host, datagram.port)
        }: ${SEND_QUEUE_LIMIT} datagrams are already waiting for the kernel`,
      ),
    );
  }

  #keep(event: EarlyEvent): void {
    const early = this.#early;
    if (early !== null && early.length < EARLY_LIMIT) early.push(event);
  }
}

function sendAction(bytes: Uint8Array, host: string, port: number): string {
  return `send ${bytes.length} bytes to ${formatHostPort(host, port)}`;
}

/**
 * A UDP socket whose runtime must send one datagram at a time (Deno's
 * `DatagramConn` and node:dgram on Deno send concurrent datagrams in reverse
 * order): datagrams are copied into a bounded queue and handed to
 * `sendHead` one by one; the subclass calls `sent` when each is done.
 */
export abstract class SerialDatagram extends DatagramBase {
  /** Datagrams to send; the first one is in flight. */
  #queue: Outgoing[] = [];

  protected transmit(bytes: Uint8Array, host: string, port: number): void {
    const queue = this.#queue;
    if (queue.length >= SEND_QUEUE_LIMIT) {
      this.queueFull({ bytes, host, port });
      return;
    }
    const datagram = { bytes: bytes.slice(), host, port };
    queue.push(datagram);
    if (queue.length === 1) this.sendHead(datagram);
  }

  /** Starts sending `datagram`, the head of the queue. */
  protected abstract sendHead(datagram: Outgoing): void;

  /** The head was sent (or failed with `error`): report a failure, then send the next one. */
  protected sent(error?: unknown): void {
    const head = this.#queue.shift();
    if (error !== undefined && head !== undefined) this.sendFailed(error, head);
    const next = this.#queue[0];
    if (next !== undefined && !this.closed) this.sendHead(next);
  }

  /** Sends the head again (a send that failed for an earlier datagram's error). */
  protected resend(): void {
    const head = this.#queue[0];
    if (head !== undefined && !this.closed) this.sendHead(head);
  }

  /** Drops every queued datagram (on close). */
  protected dropQueue(): void {
    this.#queue = [];
  }
}
