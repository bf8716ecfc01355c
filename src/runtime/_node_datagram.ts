/**
 * `NetRuntime.bindDatagram` over node:dgram (Node, Deno, Bun).
 *
 * Sending copies the datagram (node:dgram keeps it until its callback) and
 * sends one at a time: node:dgram on Deno 2.9 sends concurrent datagrams in
 * reverse order. A send that fails with an ICMP-derived errno is retried
 * once, since on Bun (`IP_RECVERR`) that error belongs to an earlier
 * datagram. Errors the socket emits go to `onError`.
 *
 * `::` binds a `udp6` socket without `ipv6Only`, so, as on Bun and Deno, it
 * is dual-stack wherever the system default is (Linux
 * `net.ipv6.bindv6only=0`); IPv4 destinations are sent to as `::ffff:a.b.c.d`
 * (Node refuses plain IPv4 on a `udp6` socket) and IPv4 peers arrive as plain
 * IPv4. node:dgram on Deno frees the port only when it emits `close`, a tick
 * after `close()`; a bind of the same port waits for that.
 *
 * @module
 */
import dgram from "node:dgram";
import { isIPv4 } from "node:net";
import { formatHostPort, toNetAddress } from "./_address.ts";
import { isStaleSendError, type Outgoing, SerialDatagram } from "./_datagram_base.ts";
import { toNetError } from "./_errors.ts";
import { PortReleases } from "./_port_release.ts";
import type { DatagramOptions, DatagramSocket } from "./types.ts";

const releases = new PortReleases();

/** Binds a node:dgram socket. */
export async function bindNodeDatagram(options: DatagramOptions): Promise<DatagramSocket> {
  const { host, port } = options;
  if (port !== 0) await releases.settled(port);
  const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ address: host, port }, () => {
        socket.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    socket.close();
    throw toNetError(error, `bind a datagram socket to ${formatHostPort(host, port)}`);
  }
  return new NodeDatagram(socket);
}

class NodeDatagram extends SerialDatagram {
  #socket: dgram.Socket;
  #mapIPv4: boolean;
  /** The datagram in flight was already retried once. */
  #retried = false;

  constructor(socket: dgram.Socket) {
    const bound = socket.address();
    super(toNetAddress(bound.address, bound.port));
    this.#socket = socket;
    this.#mapIPv4 = bound.family === "IPv6";
    socket.on("message", (bytes: Uint8Array, from: dgram.RemoteInfo) => {
      this.deliver(bytes, toNetAddress(from.address, from.port));
    });
    socket.on("error", (error: Error) => this.socketFailed(error));
  }

  protected release(): void {
    this.dropQueue();
    const closed = new Promise<void>((resolve) => this.#socket.once("close", resolve));
    this.#socket.close();
    releases.track(this.local.port, closed);
  }

  protected sendHead(head: Outgoing): void {
    const host = this.#mapIPv4 && isIPv4(head.host) ? `::ffff:${head.host}` : head.host;
    try {
      this.#socket.send(head.bytes, head.port, host, this.#onSent);
    } catch (error) {
      this.#onSent(error as Error);
    }
  }

  #onSent = (error: Error | null): void => {
    if (this.closed) return;
    if (error && !this.#retried && isStaleSendError(error)) {
      this.#retried = true;
      this.resend();
      return;
    }
    this.#retried = false;
    this.sent(error ?? undefined);
  };
}
