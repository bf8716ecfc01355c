/**
 * Conformance cases for `NetRuntime.bindDatagram` (UDP ASSOCIATE),
 * registered inside an adapter's `describe` by `runConformance`. Datagrams
 * travel between two sockets of the adapter, or between one and a
 * node:dgram peer, on loopback.
 *
 * What `::` means: every adapter leaves the system default alone, so on
 * Linux with `net.ipv6.bindv6only=0` (the default, and this machine) a
 * socket bound to `::` is dual-stack: IPv4 peers arrive as plain IPv4
 * addresses and IPv4 destinations can be sent to. With `bindv6only=1` it is
 * IPv6-only, and the case checks that instead.
 *
 * @module
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { type DatagramSocket, type NetAddress, NetError, type NetRuntime } from "../../src/runtime/types.ts";
import type { ConformanceOptions } from "./conformance.ts";
import { rejection, sleep, until, within } from "./async_helpers.ts";

/** Largest UDP payloads: 65,535 minus the IPv4 and UDP headers; minus the UDP header (IPv6). */
const MAX_IPV4 = 65_507;
const MAX_IPV6 = 65_527;
/** How many datagrams the in-order case sends, and how many per round trip. */
const IN_ORDER = 1_000;
const WINDOW = 50;
/** How many datagrams an adapter keeps for a consumer that has not set handlers. */
const EARLY_LIMIT = 64;
/** Long enough for loopback datagrams (and ICMP errors) to arrive. */
const SETTLE_MS = 300;

/** Registers the datagram cases of one adapter. */
export function datagramConformance(name: string, runtime: NetRuntime, options: ConformanceOptions): void {
  for (const host of ["127.0.0.1", "::1"]) {
    test(`${name}: datagrams to and from a peer over ${host}`, { timeout: 10_000 }, async () => {
      const family = host.includes(":") ? 6 : 4;
      const socket = await runtime.bindDatagram({ host, port: 0 });
      const peer = await bindPeer(family === 6 ? "udp6" : "udp4", host);
      try {
        assert.equal(socket.local.host, host);
        assert.equal(socket.local.family, family);
        assert.ok(socket.local.port > 0, "port 0 is resolved");
        const inbox = new Inbox(socket);
        peer.socket.send(bytesOf("ping"), socket.local.port, host);
        await inbox.count(1, "the peer's datagram");
        assert.equal(inbox.text(0), "ping");
        assert.deepEqual(inbox.messages[0]?.from, { host, port: peer.port, family });
        socket.send(bytesOf("pong"), host, peer.port);
        const reply = await within(peer.next(), 5_000, "the reply");
        assert.equal(reply.text, "pong");
        assert.equal(reply.port, socket.local.port);
        assert.deepEqual(inbox.errors, []);
      } finally {
        socket.close();
        peer.socket.close();
      }
    });
  }

  for (const [host, largest] of [["127.0.0.1", MAX_IPV4], ["::1", MAX_IPV6]] as const) {
    test(
      `${name}: a ${largest}-byte datagram crosses ${host} whole, one byte more fails`,
      { timeout: 10_000 },
      async () => {
        const [sender, receiver] = await pair(runtime, host);
        try {
          const inbox = new Inbox(receiver);
          const sent = new Inbox(sender);
          const big = pattern(largest);
          sender.send(big, host, receiver.local.port);
          await inbox.count(1, "the largest datagram");
          assert.equal(inbox.messages[0]?.bytes.length, largest);
          assert.ok(equalBytes(inbox.messages[0]?.bytes, big), "the datagram arrived intact");
          assert.doesNotThrow(() => sender.send(pattern(largest + 1), host, receiver.local.port));
          await until(() => sent.errors.length > 0, 5_000, "the oversize send to fail");
          const [error] = sent.errors;
          assert.ok(error instanceof NetError);
          assert.equal(error.code, "other");
          assert.match(error.message, /datagram too large/);
          sender.send(bytesOf("after"), host, receiver.local.port);
          await inbox.count(2, "a datagram after the failure");
          assert.equal(inbox.text(1), "after");
        } finally {
          sender.close();
          receiver.close();
        }
      },
    );
  }

  test(`${name}: ${IN_ORDER} small datagrams arrive in order`, { timeout: 30_000 }, async () => {
    const [sender, receiver] = await pair(runtime, "127.0.0.1");
    try {
      const inbox = new Inbox(receiver);
      for (let start = 0; start < IN_ORDER; start += WINDOW) {
        for (let i = start; i < start + WINDOW; i++) sender.send(numbered(i), "127.0.0.1", receiver.local.port);
        await inbox.count(start + WINDOW, `datagrams up to #${start + WINDOW - 1}`);
      }
      const order = inbox.messages.map((message) => numberOf(message.bytes));
      assert.deepEqual(order, Array.from({ length: IN_ORDER }, (_, i) => i));
    } finally {
      sender.close();
      receiver.close();
    }
  });

  test(
    `${name}: datagrams before setHandlers are kept (at most ${EARLY_LIMIT}) and come first`,
    { timeout: 10_000 },
    async () => {
      const [sender, receiver] = await pair(runtime, "127.0.0.1");
      try {
        const early = EARLY_LIMIT + 16;
        for (let i = 0; i < early; i++) sender.send(numbered(i), "127.0.0.1", receiver.local.port);
        await sleep(SETTLE_MS);
        const inbox = new Inbox(receiver);
        sender.send(numbered(early), "127.0.0.1", receiver.local.port);
        await inbox.count(EARLY_LIMIT + 1, "the kept datagrams and a later one");
        await sleep(50);
        const order = inbox.messages.map((message) => numberOf(message.bytes));
        assert.deepEqual(order, [...Array.from({ length: EARLY_LIMIT }, (_, i) => i), early]);
      } finally {
        sender.close();
        receiver.close();
      }
    },
  );

  test(
    `${name}: a datagram to a closed port ${
      options.datagramIcmpErrors ? "reports refused" : "is silent"
    } and the socket goes on`,
    { timeout: 10_000 },
    async () => {
      const [sender, receiver] = await pair(runtime, "127.0.0.1");
      const dead = await closedUdpPort(runtime);
      try {
        const inbox = new Inbox(receiver);
        const sent = new Inbox(sender);
        sender.send(bytesOf("lost"), "127.0.0.1", dead);
        sender.send(numbered(0), "127.0.0.1", receiver.local.port);
        await new Promise((resolve) => setImmediate(resolve));
        sender.send(numbered(1), "127.0.0.1", receiver.local.port);
        await sleep(20);
        sender.send(numbered(2), "127.0.0.1", receiver.local.port);
        await inbox.count(3, "the datagrams sent after the lost one");
        await sleep(SETTLE_MS);
        assert.deepEqual(inbox.messages.map((message) => numberOf(message.bytes)), [0, 1, 2]);
        if (options.datagramIcmpErrors) {
          assert.ok(sent.errors.length >= 1, "the ICMP error was reported");
          for (const error of sent.errors) {
            assert.ok(error instanceof NetError);
            assert.equal(error.code, "refused");
          }
        } else {
          // Linux reports ICMP errors only to connected UDP sockets (or with IP_RECVERR).
          assert.deepEqual(sent.errors, []);
        }
        assert.equal(sender.closed, false);
      } finally {
        sender.close();
        receiver.close();
      }
    },
  );

  test(`${name}: close() frees the port at once; send after close is a no-op`, { timeout: 10_000 }, async () => {
    const socket = await runtime.bindDatagram({ host: "127.0.0.1", port: 0 });
    const inbox = new Inbox(socket);
    const { port } = socket.local;
    socket.close();
    socket.close();
    assert.equal(socket.closed, true);
    assert.doesNotThrow(() => socket.send(bytesOf("dropped"), "127.0.0.1", port));
    const again = await runtime.bindDatagram({ host: "127.0.0.1", port });
    try {
      assert.equal(again.local.port, port);
      const sender = await runtime.bindDatagram({ host: "127.0.0.1", port: 0 });
      const received = new Inbox(again);
      sender.send(bytesOf("again"), "127.0.0.1", port);
      await received.count(1, "a datagram on the rebound port");
      sender.close();
      await sleep(50);
      assert.deepEqual(inbox.errors, []);
      assert.deepEqual(inbox.messages, []);
    } finally {
      again.close();
    }
  });

  test(`${name}: bind errors and bad destinations are NetErrors`, { timeout: 10_000 }, async () => {
    const socket = await runtime.bindDatagram({ host: "127.0.0.1", port: 0 });
    try {
      const busy = await rejection(runtime.bindDatagram({ host: "127.0.0.1", port: socket.local.port }));
      assert.equal(busy.code, "address_in_use");
      assert.equal(
        busy.message,
        `Cannot bind a datagram socket to 127.0.0.1:${socket.local.port}: address already in use`,
      );
      const inbox = new Inbox(socket);
      assert.doesNotThrow(() => socket.send(bytesOf("x"), "localhost", 9));
      assert.doesNotThrow(() => socket.send(bytesOf("x"), "127.0.0.1", 0));
      assert.doesNotThrow(() => socket.send(bytesOf("x"), "::1", 9));
      await until(() => inbox.errors.length >= 3, 5_000, "three send errors");
      for (const error of inbox.errors) assert.ok(error instanceof NetError, String(error));
      assert.match(inbox.errors[0]?.message ?? "", /localhost:9: not a numeric address/);
      assert.match(inbox.errors[1]?.message ?? "", /127\.0\.0\.1:0: not a numeric address/);
      assert.match(inbox.errors[2]?.message ?? "", /^Cannot send 1 bytes to \[::1\]:9: /);
      assert.equal(socket.closed, false);
    } finally {
      socket.close();
    }
  });

  test(
    `${name}: a socket bound to :: ${v6Only() ? "is IPv6-only" : "is dual-stack"}`,
    { timeout: 10_000 },
    async () => {
      const socket = await runtime.bindDatagram({ host: "::", port: 0 });
      const peer4 = await bindPeer("udp4", "127.0.0.1");
      const peer6 = await bindPeer("udp6", "::1");
      try {
        assert.deepEqual({ host: socket.local.host, family: socket.local.family }, { host: "::", family: 6 });
        const inbox = new Inbox(socket);
        peer6.socket.send(bytesOf("six"), socket.local.port, "::1");
        await inbox.count(1, "the IPv6 datagram");
        assert.deepEqual(inbox.messages[0]?.from, { host: "::1", port: peer6.port, family: 6 });
        peer4.socket.send(bytesOf("four"), socket.local.port, "127.0.0.1");
        if (v6Only()) {
          await sleep(SETTLE_MS);
          assert.equal(inbox.messages.length, 1, "an IPv6-only socket got an IPv4 datagram");
          return;
        }
        await inbox.count(2, "the IPv4 datagram");
        assert.deepEqual(inbox.messages[1]?.from, { host: "127.0.0.1", port: peer4.port, family: 4 });
        socket.send(bytesOf("to four"), "127.0.0.1", peer4.port);
        assert.equal((await within(peer4.next(), 5_000, "the reply over IPv4")).text, "to four");
        assert.deepEqual(inbox.errors, []);
      } finally {
        socket.close();
        peer4.socket.close();
        peer6.socket.close();
      }
    },
  );
}

// ------------------------------------------------------------------ sockets

interface Received {
  readonly bytes: Uint8Array;
  readonly from: NetAddress;
}

/** Installs handlers on an adapter socket and keeps what they receive. */
class Inbox {
  readonly messages: Received[] = [];
  readonly errors: NetError[] = [];

  constructor(socket: DatagramSocket) {
    socket.setHandlers({
      onMessage: (bytes, from) => this.messages.push({ bytes: bytes.slice(), from }),
      onError: (error) => this.errors.push(error),
    });
  }

  count(count: number, what: string): Promise<void> {
    return until(() => this.messages.length >= count, 5_000, what);
  }

  text(index: number): string {
    return new TextDecoder().decode(this.messages[index]?.bytes);
  }
}

/** Two adapter sockets bound to `host`. */
async function pair(runtime: NetRuntime, host: string): Promise<[DatagramSocket, DatagramSocket]> {
  const first = await runtime.bindDatagram({ host, port: 0 });
  try {
    return [first, await runtime.bindDatagram({ host, port: 0 })];
  } catch (error) {
    first.close();
    throw error;
  }
}

/** A UDP port nothing listens on (bound by the adapter, then closed). */
async function closedUdpPort(runtime: NetRuntime): Promise<number> {
  const socket = await runtime.bindDatagram({ host: "127.0.0.1", port: 0 });
  socket.close();
  await sleep(20);
  return socket.local.port;
}

interface Peer {
  readonly socket: dgram.Socket;
  readonly port: number;
  /** Resolves with the next datagram the peer receives. */
  next(): Promise<{ text: string; port: number }>;
}

async function bindPeer(type: "udp4" | "udp6", host: string): Promise<Peer> {
  const socket = dgram.createSocket(type);
  const queue: { text: string; port: number }[] = [];
  socket.on("message", (bytes: Uint8Array, from: dgram.RemoteInfo) => {
    queue.push({ text: new TextDecoder().decode(bytes), port: from.port });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, host, () => resolve());
  });
  return {
    socket,
    port: socket.address().port,
    async next() {
      await until(() => queue.length > 0, 5_000, "a datagram at the peer");
      return queue.shift() as { text: string; port: number };
    },
  };
}

/** True when this system binds `::` IPv6-only (Linux `net.ipv6.bindv6only=1`). */
function v6Only(): boolean {
  try {
    return readFileSync("/proc/sys/net/ipv6/bindv6only", "utf8").trim() === "1";
  } catch {
    return false;
  }
}

// --------------------------------------------------------------------- data

function bytesOf(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

/** A 4-byte datagram carrying `n`. */
function numbered(n: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, n);
  return bytes;
}

function numberOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
}

/** `size` bytes that differ from their neighbours. */
function pattern(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
  return bytes;
}

function equalBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
