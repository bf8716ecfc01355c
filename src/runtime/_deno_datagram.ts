/**
 * `NetRuntime.bindDatagram` over `Deno.listenDatagram` (needs the unstable
 * "net" feature: `"unstable": ["net"]` in deno.json or `--unstable-net`).
 *
 * Receiving is a `receive(buffer)` callback chain into one 64 KiB buffer per
 * socket (the largest datagram fits whole); each datagram is a view into it,
 * valid until `onMessage` returns. A receive error other than the close backs
 * off before the next receive.
 *
 * Sending copies the datagram (Deno reads it after `send` returns) and sends
 * one at a time: concurrent `DatagramConn.send` calls can leave in reverse
 * order. Deno reports neither ICMP errors nor anything else an unconnected
 * Linux socket does not see, so a closed port is silent.
 *
 * Deno frees the descriptor when the pending receive has been cancelled, a
 * tick after `close()`; a bind of the same port waits for that.
 *
 * A socket bound to `::` is dual-stack wherever the system default is
 * (Linux `net.ipv6.bindv6only=0`): IPv4 peers arrive as plain IPv4 and IPv4
 * destinations can be sent to.
 *
 * @module
 */
import { formatHostPort, toNetAddress } from "./_address.ts";
import { Backoff } from "./_backoff.ts";
import { type Outgoing, SerialDatagram } from "./_datagram_base.ts";
import { netErrorCode, toNetError } from "./_errors.ts";
import { PortReleases } from "./_port_release.ts";
import type { DatagramOptions, DatagramSocket } from "./types.ts";

/** Larger than any UDP payload (65,527 bytes over IPv6). */
const RECEIVE_BUFFER = 64 * 1024;

const releases = new PortReleases();

/** Binds a Deno UDP socket. */
export async function bindDenoDatagram(options: DatagramOptions): Promise<DatagramSocket> {
  if (options.port !== 0) await releases.settled(options.port);
  try {
    return new DenoDatagram(
      Deno.listenDatagram({ hostname: options.host, port: options.port, transport: "udp" }),
    );
  } catch (error) {
    throw toNetError(error, `bind a datagram socket to ${formatHostPort(options.host, options.port)}`);
  }
}

class DenoDatagram extends SerialDatagram {
  #conn: Deno.DatagramConn;
  #buffer = new Uint8Array(RECEIVE_BUFFER);
  #receiving: Promise<unknown> | null = null;
  #sending: Promise<unknown> | null = null;
  #backoff = new Backoff();

  constructor(conn: Deno.DatagramConn) {
    const addr = conn.addr as Deno.NetAddr;
    super(toNetAddress(addr.hostname, addr.port));
    this.#conn = conn;
    this.#receiveNext();
  }

  protected release(): void {
    this.dropQueue();
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime: nothing left to release.
    }
    if (this.#receiving !== null || this.#sending !== null) {
      releases.track(this.local.port, Promise.allSettled([this.#receiving, this.#sending]));
    }
  }

  #receiveNext = (): void => {
    if (this.closed) return;
    this.#receiving = this.#conn.receive(this.#buffer).then(this.#onReceive, this.#onReceiveError);
  };

  #onReceive = ([bytes, addr]: [Uint8Array, Deno.Addr]): void => {
    this.#receiving = null;
    this.#backoff.reset();
    const { hostname, port } = addr as Deno.NetAddr;
    this.deliver(bytes, toNetAddress(hostname, port));
    this.#receiveNext();
  };

  #onReceiveError = (error: unknown): void => {
    this.#receiving = null;
    if (this.closed || netErrorCode(error) === "closed") return;
    this.socketFailed(error);
    setTimeout(this.#receiveNext, this.#backoff.next());
  };

  protected sendHead(head: Outgoing): void {
    this.#sending = this.#conn.send(head.bytes, { transport: "udp", hostname: head.host, port: head.port })
      .then(this.#onSent, this.#onSendError);
  }

  #onSent = (): void => {
    this.#sending = null;
    this.sent();
  };

  #onSendError = (error: unknown): void => {
    this.#sending = null;
    this.sent(error);
  };
}
