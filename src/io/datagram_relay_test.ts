// The UDP ASSOCIATE pump on the memory runtime: pinning, the header of
// replies, drops and their counts, order, the next-hop path, and lifetime.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeSocks5UdpDatagram, encodeSocks5UdpDatagram } from "../protocol/socks5_udp.ts";
import type { Target } from "../protocol/target.ts";
import type { DatagramSocket, NetAddress } from "../runtime/types.ts";
import { createConnectionPair } from "../../tests/helpers/memory_connection.ts";
import { createMemoryRuntime, type MemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { ScriptPeer } from "../../tests/helpers/script_peer.ts";
import { eventually, sleep } from "../../tests/helpers/server_script.ts";
import {
  type DatagramDecision,
  DatagramRelay,
  type DatagramRelayOptions,
  type DatagramUpstream,
  type DropReason,
  MAX_QUEUED,
} from "./datagram_relay.ts";

const CLIENT_HOST = "192.0.2.7";
const TARGET: Target = { kind: "ipv4", host: "203.0.113.10", port: 53 };

/** A memory UDP socket that keeps what it receives. */
interface Peer {
  readonly socket: DatagramSocket;
  readonly inbox: Array<{ bytes: Uint8Array; from: NetAddress }>;
  next(timeoutMs?: number): Promise<{ bytes: Uint8Array; from: NetAddress }>;
}

async function peer(runtime: MemoryRuntime, host: string, port = 0, echo = false): Promise<Peer> {
  const socket = await runtime.bindDatagram({ host, port });
  const inbox: Peer["inbox"] = [];
  socket.setHandlers({
    onMessage(bytes, from) {
      if (echo) socket.send(bytes, from.host, from.port);
      else inbox.push({ bytes: bytes.slice(), from });
    },
  });
  return {
    socket,
    inbox,
    async next(timeoutMs = 1000) {
      await eventually(() => inbox.length > 0, `a datagram on ${host}`, timeoutMs);
      return inbox.shift()!;
    },
  };
}

interface Setup {
  readonly runtime: MemoryRuntime;
  readonly pump: DatagramRelay;
  readonly client: Peer;
  readonly relay: DatagramSocket;
  readonly controlClient: ReturnType<typeof createConnectionPair>[0];
  /** The client's view of the control connection. */
  readonly controlPeer: ScriptPeer;
  readonly drops: Array<[DropReason, string]>;
  readonly opened: Array<4 | 6>;
}

/** An association for a client on 192.0.2.7 with an echo target at 203.0.113.10:53 and [2001:db8::53]:53. */
async function setup(
  options: Partial<DatagramRelayOptions> & { declaredPort?: number; clientPort?: number } = {},
): Promise<Setup> {
  const runtime = createMemoryRuntime({ sourceHost4: "198.51.100.1", sourceHost6: "2001:db8::1" });
  await peer(runtime, "203.0.113.10", 53, true);
  await peer(runtime, "2001:db8::53", 53, true);
  const client = await peer(runtime, CLIENT_HOST, options.clientPort ?? 5000);
  const relay = await runtime.bindDatagram({ host: "10.0.0.1", port: 0 });
  const [controlClient, control] = createConnectionPair(
    { host: CLIENT_HOST, port: 40000, family: 4 },
    { host: "10.0.0.1", port: 1080, family: 4 },
  );
  const drops: Array<[DropReason, string]> = [];
  const opened: Array<4 | 6> = [];
  const pump = new DatagramRelay({
    control,
    relay,
    client: { host: CLIENT_HOST, port: options.declaredPort ?? client.socket.local.port },
    decide: (target) => ({ kind: "direct", host: target.host, port: target.port }),
    openSocket: (family) => {
      opened.push(family);
      return runtime.bindDatagram({ host: family === 6 ? "::" : "0.0.0.0", port: 0 });
    },
    idleTimeoutMs: 0,
    onDrop: (reason, detail) => drops.push([reason, detail]),
    ...options,
  });
  const controlPeer = new ScriptPeer(controlClient);
  return { runtime, pump, client, relay, controlClient, controlPeer, drops, opened };
}

function send(from: Peer, to: DatagramSocket, target: Target, payload: Uint8Array | string, fragment = 0): void {
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  from.socket.send(encodeSocks5UdpDatagram(target, bytes, fragment), to.local.host, to.local.port);
}

function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

describe("DatagramRelay", () => {
  test("relays a datagram both ways; the reply's header names its real source", async () => {
    const { pump, client, relay, controlClient, opened } = await setup();
    send(client, relay, TARGET, "query");
    const reply = await client.next();
    assert.deepEqual(reply.from, relay.local, "the reply comes from the relay socket");
    const decoded = decodeSocks5UdpDatagram(reply.bytes);
    assert.deepEqual(decoded.target, TARGET);
    assert.equal(decoded.fragment, 0);
    assert.equal(text(decoded.payload), "query");
    assert.deepEqual(opened, [4]);
    controlClient.close();
    const result = await pump.done;
    assert.deepEqual(result, {
      datagramsUp: 1,
      bytesUp: 5,
      datagramsDown: 1,
      bytesDown: 5,
      drops: {},
      outcome: "done",
    });
  });

  test("an IPv4 client reaches an IPv6 target from an IPv6 socket, and back", async () => {
    const { pump, client, relay, controlClient, opened } = await setup();
    const target: Target = { kind: "ipv6", host: "2001:db8::53", port: 53 };
    send(client, relay, target, "six");
    const decoded = decodeSocks5UdpDatagram((await client.next()).bytes);
    assert.deepEqual(decoded.target, target);
    assert.equal(text(decoded.payload), "six");
    assert.deepEqual(opened, [6]);
    controlClient.close();
    await pump.done;
  });

  test("drops datagrams from another address and from an undeclared port; the client keeps working", async () => {
    const { runtime, pump, client, relay, controlClient, drops } = await setup();
    const stranger = await peer(runtime, "192.0.2.8");
    const otherPort = await peer(runtime, CLIENT_HOST);
    send(stranger, relay, TARGET, "spoofed");
    send(otherPort, relay, TARGET, "other port");
    send(stranger, relay, TARGET, "spoofed again");
    send(client, relay, TARGET, "real");
    assert.equal(text(decodeSocks5UdpDatagram((await client.next()).bytes).payload), "real");
    await sleep(5);
    assert.equal(stranger.inbox.length + otherPort.inbox.length, 0);
    controlClient.close();
    const result = await pump.done;
    assert.deepEqual(result.drops, { foreign_source: 2, undeclared_port: 1 });
    assert.deepEqual(drops.map(([reason]) => reason), ["foreign_source", "undeclared_port"], "one report per reason");
    assert.match(drops[0]![1], /from 192\.0\.2\.8:\d+, not from the client/);
    assert.equal(result.datagramsUp, 1);
  });

  test("DST.PORT 0: the port of the client's first datagram is kept", async () => {
    const { runtime, pump, client, relay, controlClient } = await setup({ declaredPort: 0 });
    send(client, relay, TARGET, "first");
    await client.next();
    const later = await peer(runtime, CLIENT_HOST);
    send(later, relay, TARGET, "from another port");
    await sleep(5);
    assert.equal(later.inbox.length, 0);
    controlClient.close();
    assert.deepEqual((await pump.done).drops, { undeclared_port: 1 });
  });

  test("FRAG != 0 and malformed headers are dropped; the association lives on", async () => {
    const { pump, client, relay, controlClient } = await setup();
    send(client, relay, TARGET, "fragment", 1);
    send(client, relay, TARGET, "last fragment", 0x81);
    client.socket.send(Uint8Array.of(0, 0, 0, 1, 1), relay.local.host, relay.local.port);
    client.socket.send(Uint8Array.of(0, 0, 0, 2, 1, 2, 3, 4, 0, 53), relay.local.host, relay.local.port);
    send(client, relay, TARGET, "whole");
    assert.equal(text(decodeSocks5UdpDatagram((await client.next()).bytes).payload), "whole");
    await sleep(5);
    assert.equal(client.inbox.length, 0);
    controlClient.close();
    assert.deepEqual((await pump.done).drops, { fragmented: 2, malformed: 2 });
  });

  test("a reply from a peer the client has not sent to is dropped", async () => {
    const { runtime, pump, client, relay, controlClient, opened } = await setup();
    send(client, relay, TARGET, "hello");
    await client.next();
    assert.deepEqual(opened, [4]);
    // The outbound socket is 0.0.0.0:49154 or so: find it and write to it from elsewhere.
    const outboundPort = relay.local.port + 1;
    assert.ok(runtime.isBound("0.0.0.0", outboundPort));
    const stranger = await peer(runtime, "203.0.113.99");
    stranger.socket.send(Uint8Array.of(1, 2, 3), "198.51.100.1", outboundPort);
    await sleep(5);
    assert.equal(client.inbox.length, 0);
    controlClient.close();
    assert.deepEqual((await pump.done).drops, { unsolicited: 1 });
  });

  test("a reply too large for one datagram with its header is dropped (too_large)", async () => {
    const { runtime, pump, client, relay, controlClient } = await setup();
    const big = await peer(runtime, "203.0.113.20", 9);
    big.socket.setHandlers({
      onMessage: (_bytes, from) => big.socket.send(new Uint8Array(65_500), from.host, from.port),
    });
    send(client, relay, { kind: "ipv4", host: "203.0.113.20", port: 9 }, "x");
    await sleep(10);
    assert.equal(client.inbox.length, 0);
    controlClient.close();
    assert.deepEqual((await pump.done).drops, { too_large: 1 });
  });

  test("datagrams of 65,000 bytes cross whole", async () => {
    const { pump, client, relay, controlClient } = await setup();
    const payload = new Uint8Array(65_000).map((_, i) => i & 0xff);
    send(client, relay, TARGET, payload);
    assert.deepEqual(decodeSocks5UdpDatagram((await client.next()).bytes).payload, payload);
    controlClient.close();
    const result = await pump.done;
    assert.deepEqual([result.bytesUp, result.bytesDown], [65_000, 65_000]);
  });

  test("keeps the client's order while a decision is pending, and drops what does not fit (backlog)", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => release = resolve);
    let first = true;
    const decide = (target: Target): DatagramDecision | Promise<DatagramDecision> => {
      const decision: DatagramDecision = { kind: "direct", host: target.host, port: target.port };
      if (!first) return decision;
      first = false;
      return gate.then(() => decision);
    };
    const { pump, client, relay, controlClient } = await setup({ decide });
    for (let i = 0; i < MAX_QUEUED + 3; i++) send(client, relay, TARGET, String(i));
    await sleep(10);
    assert.equal(client.inbox.length, 0, "nothing overtakes the pending datagram");
    release();
    await eventually(() => client.inbox.length === MAX_QUEUED, `${MAX_QUEUED} replies`);
    const order = client.inbox.map((item) => text(decodeSocks5UdpDatagram(item.bytes).payload));
    assert.deepEqual(order, Array.from({ length: MAX_QUEUED }, (_, i) => String(i)));
    controlClient.close();
    assert.deepEqual((await pump.done).drops, { backlog: 3 });
  });

  test("a drop decision is counted with its reason and reported once", async () => {
    const decide = (): DatagramDecision => ({ kind: "drop", reason: "not_allowed", detail: "rules.txt:3" });
    const { pump, client, relay, controlClient, drops } = await setup({ decide });
    send(client, relay, TARGET, "a");
    send(client, relay, TARGET, "b");
    await sleep(5);
    controlClient.close();
    const result = await pump.done;
    assert.deepEqual(result.drops, { not_allowed: 2 });
    assert.equal(result.datagramsUp, 0);
    assert.deepEqual(drops, [["not_allowed", "rules.txt:3"]]);
  });

  test("through an upstream relay: the client's datagram goes whole, the hop's reply comes back whole", async () => {
    const runtime = createMemoryRuntime();
    const hopRelay = await peer(runtime, "198.51.100.50", 7000);
    const ours = await runtime.bindDatagram({ host: "0.0.0.0", port: 0 });
    const upstream: DatagramUpstream = { socket: ours, relay: hopRelay.socket.local };
    const { pump, client, relay, controlClient } = await setup({
      decide: () => ({ kind: "upstream", upstream }),
    });
    const target: Target = { kind: "domain", host: "dns.example", port: 53 };
    send(client, relay, target, "via hop");
    const atHop = await hopRelay.next();
    assert.deepEqual(decodeSocks5UdpDatagram(atHop.bytes), {
      fragment: 0,
      target,
      payload: new TextEncoder().encode("via hop"),
    });
    const answer = encodeSocks5UdpDatagram({ kind: "ipv4", host: "192.0.2.53", port: 53 }, Uint8Array.of(9, 9));
    hopRelay.socket.send(answer, atHop.from.host, atHop.from.port);
    assert.deepEqual((await client.next()).bytes, answer);
    const stranger = await peer(runtime, "203.0.113.99");
    stranger.socket.send(answer, atHop.from.host, atHop.from.port);
    hopRelay.socket.send(encodeSocks5UdpDatagram(target, Uint8Array.of(1), 1), atHop.from.host, atHop.from.port);
    await sleep(5);
    assert.equal(client.inbox.length, 0);
    controlClient.close();
    const result = await pump.done;
    assert.deepEqual(result, {
      datagramsUp: 1,
      bytesUp: 7,
      datagramsDown: 1,
      bytesDown: 2,
      drops: { unsolicited: 1, fragmented: 1 },
      outcome: "done",
    });
  });
});

describe("DatagramRelay lifetime", () => {
  test("the control connection's FIN ends the association and frees every socket at once", async () => {
    const { runtime, pump, client, relay, controlClient, controlPeer } = await setup();
    send(client, relay, TARGET, "x");
    await client.next();
    const outbound = relay.local.port + 1;
    controlClient.closeWrite();
    assert.equal((await pump.done).outcome, "done");
    assert.equal(runtime.isBound("10.0.0.1", relay.local.port), false, "the relay socket is closed");
    assert.equal(runtime.isBound("0.0.0.0", outbound), false, "the outbound socket is closed");
    await controlPeer.waitForClose();
  });

  test("an idle timeout counts datagrams as activity", async () => {
    const { pump, client, relay, controlPeer } = await setup({ idleTimeoutMs: 80 });
    for (let i = 0; i < 8; i++) {
      send(client, relay, TARGET, "keepalive");
      await client.next();
      await sleep(30);
    }
    assert.equal(pump.over, false, "alive after 3 idle periods of traffic");
    const result = await pump.done;
    assert.equal(result.outcome, "idle_timeout");
    assert.equal(result.datagramsUp, 8);
    await controlPeer.waitForClose();
  });

  test("dropped datagrams are not activity", async () => {
    const { runtime, pump, relay } = await setup({ idleTimeoutMs: 60 });
    const stranger = await peer(runtime, "192.0.2.8");
    const timer = setInterval(() => send(stranger, relay, TARGET, "noise"), 10);
    try {
      assert.equal((await pump.done).outcome, "idle_timeout");
    } finally {
      clearInterval(timer);
    }
  });

  test("the signal aborts the association", async () => {
    const controller = new AbortController();
    const { pump } = await setup({ signal: controller.signal });
    controller.abort();
    assert.equal((await pump.done).outcome, "aborted");
  });

  test("a control connection that already sent FIN ends it at once", async () => {
    const { pump } = await setup({ controlEnded: true });
    assert.equal((await pump.done).outcome, "done");
  });
});
