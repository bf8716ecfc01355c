/**
 * `NetRuntime.bindDatagram` over `Bun.udpSocket`.
 *
 * `send` is synchronous: the kernel takes the datagram (no copy is made),
 * throws (EMSGSIZE, EAFNOSUPPORT...), or has no room, and then a copy waits
 * for `drain`. Bun turns on `IP_RECVERR`, so an ICMP error for an earlier
 * datagram (a closed port answers "port unreachable") reaches the `error`
 * handler, and Linux also fails the next `sendto` with it, whatever that
 * datagram's destination (oven-sh/bun#36249): such a send is retried once.
 *
 * A socket bound to `::` is dual-stack wherever the system default is
 * (Linux `net.ipv6.bindv6only=0`): IPv4 peers arrive as plain IPv4 and IPv4
 * destinations can be sent to. Closing frees the port at once.
 *
 * @module
 */
import { formatHostPort, toNetAddress } from "./_address.ts";
import { bunApi, type BunUdpSocket } from "./_bun_api.ts";
import { DatagramBase, isStaleSendError, type Outgoing, SEND_QUEUE_LIMIT } from "./_datagram_base.ts";
import { toNetError } from "./_errors.ts";
import { type DatagramOptions, type DatagramSocket, NetError } from "./types.ts";

/** Binds a Bun UDP socket. */
export async function bindBunDatagram(options: DatagramOptions): Promise<DatagramSocket> {
  let datagram: BunDatagram | null = null;
  let socket: BunUdpSocket;
  try {
    socket = await bunApi().udpSocket({
      hostname: options.host,
      port: options.port,
      socket: {
        data: (bound, bytes, port, address, flags) =>
          (datagram ??= new BunDatagram(bound)).received(bytes, port, address, flags.truncated),
        drain: () => datagram?.drained(),
        error: (error) => datagram?.failed(error),
      },
    });
  } catch (error) {
    throw toNetError(error, `bind a datagram socket to ${formatHostPort(options.host, options.port)}`);
  }
  return datagram ??= new BunDatagram(socket);
}

class BunDatagram extends DatagramBase {
  #socket: BunUdpSocket;
  /** Copies of datagrams the kernel had no room for, sent on `drain`. */
  #queue: Outgoing[] = [];

  constructor(socket: BunUdpSocket) {
    super(toNetAddress(socket.hostname, socket.port));
    this.#socket = socket;
  }

  received(bytes: Uint8Array, port: number, address: string, truncated: boolean): void {
    if (truncated) {
      this.fail(
        new NetError("other", `Cannot receive a datagram from ${formatHostPort(address, port)}: it was truncated`),
      );
    } else {
      this.deliver(bytes, toNetAddress(address, port));
    }
  }

  drained(): void {
    const queue = this.#queue;
    while (queue.length > 0 && !this.closed) {
      if (!this.#write(queue[0] as Outgoing)) return;
      queue.shift();
    }
  }

  failed(error: Error): void {
    this.socketFailed(error);
  }

  protected transmit(bytes: Uint8Array, host: string, port: number): void {
    const datagram = { bytes, host, port };
    if (this.#queue.length === 0 && this.#write(datagram)) return;
    if (this.#queue.length >= SEND_QUEUE_LIMIT) this.queueFull(datagram);
    else this.#queue.push({ bytes: bytes.slice(), host, port });
  }

  protected release(): void {
    this.#queue = [];
    this.#socket.close();
  }

  /** Sends one datagram; false when the kernel had no room for it. */
  #write(datagram: Outgoing): boolean {
    const { bytes, host, port } = datagram;
    try {
      return this.#socket.send(bytes, port, host);
    } catch (error) {
      if (!isStaleSendError(error)) {
        this.sendFailed(error, datagram);
        return true;
      }
    }
    try {
      return this.#socket.send(bytes, port, host);
    } catch (error) {
      this.sendFailed(error, datagram);
      return true;
    }
  }
}
