// UDP ASSOCIATE through SocksServer on the memory runtime: the reply, the
// rules and routes per datagram, names, next hops (per datagram and for the
// whole association), the session record and the log lines.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseSrelayConf } from "../config/srelay_conf.ts";
import { decodeSocks5UdpDatagram, encodeSocks5UdpDatagram } from "../protocol/socks5_udp.ts";
import type { Target } from "../protocol/target.ts";
import type { Connection, DatagramSocket, NetAddress } from "../runtime/types.ts";
import { runtimeDialer } from "../../tests/helpers/fake_dialer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createMemoryRuntime, type MemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { ScriptPeer } from "../../tests/helpers/script_peer.ts";
import {
  eventually,
  type ServerHarness,
  sleep,
  testPolicy,
  testResolver,
  withServer,
} from "../../tests/helpers/server_script.ts";
import { SOCKS5_GREETING, SOCKS5_NO_AUTH_SELECTED, socks5Request } from "../../tests/helpers/socks_bytes.ts";
import type { Authorization, AuthorizeQuestion, Authorizer } from "./authorize.ts";
import type { Router } from "./router.ts";
import { createSrelayConfRouter } from "./srelay_conf_router.ts";
import { PER_DATAGRAM_ROUTE } from "./udp_associate.ts";

const TIME = String.raw`time=\d+\.\d{3}s`;
const ECHO: Target = { kind: "ipv4", host: "203.0.113.10", port: 7 };
const HOP = { host: "198.51.100.50", port: 1080 };
const HOP_RELAY = { host: "198.51.100.50", port: 7000 };

before(installLogCapture);
after(removeLogCapture);

/** A UDP socket of the test that keeps what it receives. */
interface Udp {
  readonly socket: DatagramSocket;
  readonly inbox: Array<{ bytes: Uint8Array; from: NetAddress }>;
  next(timeoutMs?: number): Promise<{ target: Target; payload: string; from: NetAddress }>;
}

async function udp(runtime: MemoryRuntime, host = "127.0.0.1", port = 0): Promise<Udp> {
  const socket = await runtime.bindDatagram({ host, port });
  const inbox: Udp["inbox"] = [];
  socket.setHandlers({ onMessage: (bytes, from) => inbox.push({ bytes: bytes.slice(), from }) });
  return {
    socket,
    inbox,
    async next(timeoutMs = 1000) {
      await eventually(() => inbox.length > 0, `a datagram on ${host}:${socket.local.port}`, timeoutMs);
      const { bytes, from } = inbox.shift()!;
      const decoded = decodeSocks5UdpDatagram(bytes);
      return { target: decoded.target, payload: new TextDecoder().decode(decoded.payload), from };
    },
  };
}

/** A UDP echo server; it prefixes its answers with `tag`. */
async function echoServer(runtime: MemoryRuntime, host: string, port: number, tag = ""): Promise<DatagramSocket> {
  const socket = await runtime.bindDatagram({ host, port });
  socket.setHandlers({
    onMessage: (bytes, from) =>
      socket.send(new TextEncoder().encode(tag + new TextDecoder().decode(bytes)), from.host, from.port),
  });
  return socket;
}

/** A SOCKS5 next hop on the memory runtime that grants UDP ASSOCIATE (or answers `rep`); its relay answers "hop:". */
async function memoryHop(runtime: MemoryRuntime, options: { rep?: number } = {}) {
  const controls: ScriptPeer[] = [];
  const requests: Uint8Array[] = [];
  await runtime.listen({
    host: HOP.host,
    port: HOP.port,
    onConnection: (connection: Connection) => {
      const peer = new ScriptPeer(connection);
      controls.push(peer);
      void (async () => {
        assert.deepEqual([...await peer.read(3)], [5, 1, 0]);
        peer.send([5, 0]);
        requests.push(await peer.read(10));
        peer.send([5, options.rep ?? 0, 0, 1, 198, 51, 100, 50, HOP_RELAY.port >> 8, HOP_RELAY.port & 0xff]);
      })();
    },
  });
  const relay = await runtime.bindDatagram(HOP_RELAY);
  const seen: Target[] = [];
  relay.setHandlers({
    onMessage(bytes, from) {
      const { target, payload } = decodeSocks5UdpDatagram(bytes);
      seen.push(target);
      const answer = new TextEncoder().encode(`hop:${new TextDecoder().decode(payload)}`);
      const source: Target = target.kind === "domain"
        ? { kind: "ipv4", host: "192.0.2.99", port: target.port }
        : target;
      relay.send(encodeSocks5UdpDatagram(source, answer), from.host, from.port);
    },
  });
  return { controls, requests, seen };
}

/** Greets, asks UDP ASSOCIATE declaring `port`, and returns the relay address from the reply. */
async function associate(harness: ServerHarness, port: number): Promise<{ control: ScriptPeer; relay: NetAddress }> {
  const control = harness.client();
  control.send([...SOCKS5_GREETING, ...socks5Request(3, "0.0.0.0", port)]);
  assert.deepEqual([...await control.read(2)], SOCKS5_NO_AUTH_SELECTED);
  const reply = await control.read(10);
  assert.deepEqual([...reply.subarray(0, 4)], [5, 0, 0, 1], `UDP ASSOCIATE granted: ${[...reply]}`);
  const host = [...reply.subarray(4, 8)].join(".");
  return { control, relay: { host, port: (reply[8]! << 8) | reply[9]!, family: 4 } };
}

function send(from: Udp, relay: NetAddress, target: Target, text: string): void {
  from.socket.send(encodeSocks5UdpDatagram(target, new TextEncoder().encode(text)), relay.host, relay.port);
}

/** A router: srelay.conf `text` over a dialer that reaches the memory runtime. */
function confRouter(runtime: MemoryRuntime, text: string): Router {
  const { rules, issues } = parseSrelayConf(text, "srelay.conf");
  assert.deepEqual(issues, []);
  return createSrelayConfRouter({
    rules,
    direct: runtimeDialer(runtime),
    passwd: null,
    resolver: null,
    handshakeTimeoutMs: 2000,
  });
}

/** Records every question; refuses destinations in `refused` (plain objects, no promise). */
function recordingAuthorizer(refused: string[] = [], addresses?: readonly string[]) {
  const questions: AuthorizeQuestion[] = [];
  const authorizer: Authorizer = {
    authorize(question): Authorization {
      questions.push(question);
      if (refused.includes(question.request.target.host)) return { allowed: false, reason: "rules.txt:2" };
      return addresses === undefined ? { allowed: true } : { allowed: true, addresses };
    },
  };
  return { authorizer, questions };
}

describe("UDP ASSOCIATE", () => {
  test("answers with the relay socket on the address the client reached, and relays both ways", async () => {
    const runtime = createMemoryRuntime();
    await echoServer(runtime, ECHO.host, ECHO.port);
    await withServer({ runtime, router: confRouter(runtime, "") }, async (harness) => {
      const client = await udp(runtime);
      const { control, relay } = await associate(harness, client.socket.local.port);
      assert.equal(relay.host, "127.0.0.1", "never 0.0.0.0");
      assert.ok(runtime.isBound("127.0.0.1", relay.port), "the relay socket is bound there");
      send(client, relay, ECHO, "ping");
      const reply = await client.next();
      assert.deepEqual(reply.target, ECHO, "the header names the reply's real source");
      assert.equal(reply.payload, "ping");
      assert.deepEqual(reply.from, relay);
      control.close();
      const [record] = await harness.waitForRecords(1);
      assert.equal(runtime.isBound("127.0.0.1", relay.port), false, "closing the control connection frees it");
      assert.deepEqual(
        [
          record!.command,
          record!.route,
          record!.bytesUp,
          record!.bytesDown,
          record!.datagramsUp,
          record!.datagramsDown,
        ],
        ["udp", "direct", 4, 4, 1, 1],
      );
      assert.deepEqual(record!.drops, {});
      const clientPort = client.socket.local.port;
      assert.match(harness.log.lines().join("\n"), new RegExp(`5-UDP 0\\.0\\.0\\.0:${clientPort}\\(ipv4\\) - direct`));
      await harness.log.waitFor(
        new RegExp(
          `5-UDP 0\\.0\\.0\\.0:${clientPort} direct bound=127\\.0\\.0\\.1:${relay.port} up=4 down=4 datagrams=1/1 drops=0 ${TIME} done$`,
        ),
      );
    });
  });

  test("a listener on 0.0.0.0: the reply names the address the client connected to", async () => {
    const runtime = createMemoryRuntime();
    await withServer({ runtime, router: confRouter(runtime, ""), host: "0.0.0.0" }, async (harness) => {
      const control = new ScriptPeer(runtime.dial({ host: "10.0.0.1", port: 1080 }));
      control.send([...SOCKS5_GREETING, ...socks5Request(3, "0.0.0.0", 0)]);
      await control.read(2);
      assert.deepEqual([...(await control.read(10)).subarray(0, 8)], [5, 0, 0, 1, 10, 0, 0, 1]);
      control.close();
      await harness.waitForRecords(1);
    });
  });

  test("destination rules are asked about every datagram's destination (command udp)", async () => {
    const runtime = createMemoryRuntime();
    await echoServer(runtime, ECHO.host, ECHO.port);
    const { authorizer, questions } = recordingAuthorizer(["203.0.113.66"]);
    const policy = testPolicy(confRouter(runtime, ""), { authorizer });
    await withServer({ runtime, policy }, async (harness) => {
      const client = await udp(runtime);
      const { control, relay } = await associate(harness, client.socket.local.port);
      assert.equal(questions.length, 0, "the request itself names no destination");
      send(client, relay, { kind: "ipv4", host: "203.0.113.66", port: 7 }, "refused");
      send(client, relay, { kind: "ipv4", host: "203.0.113.66", port: 7 }, "refused again");
      send(client, relay, ECHO, "allowed");
      assert.equal((await client.next()).payload, "allowed");
      assert.deepEqual(questions.map((q) => [q.request.command, q.request.target.host]), [
        ["udp", "203.0.113.66"],
        ["udp", "203.0.113.66"],
        ["udp", ECHO.host],
      ]);
      control.close();
      const [record] = await harness.waitForRecords(1);
      assert.deepEqual(record!.drops, { not_allowed: 2 });
      const warnings = harness.log.entries().filter((entry) => entry.level === "warning").map((entry) => entry.text);
      assert.equal(warnings.length, 1, "one line per reason");
      assert.match(
        warnings[0]!,
        /5-UDP \S+ direct: dropped a datagram \(not_allowed\): 203\.0\.113\.66:7: not allowed by rules\.txt:2/,
      );
    });
  });

  test("a domain destination goes to the first address the rules vetted, or the resolver's first", async () => {
    const runtime = createMemoryRuntime();
    await echoServer(runtime, ECHO.host, ECHO.port, "resolved:");
    await echoServer(runtime, "203.0.113.11", ECHO.port, "vetted:");
    const resolver = testResolver({ "echo.test": [ECHO.host, "203.0.113.12"] });
    const router = confRouter(runtime, "");
    await withServer({ runtime, router, resolver }, async (harness) => {
      const client = await udp(runtime);
      const { control, relay } = await associate(harness, client.socket.local.port);
      send(client, relay, { kind: "domain", host: "echo.test", port: ECHO.port }, "a");
      const reply = await client.next();
      assert.equal(reply.payload, "resolved:a");
      assert.deepEqual(reply.target, ECHO, "the source is the address that answered");
      send(client, relay, { kind: "domain", host: "nowhere.test", port: 7 }, "b");
      await sleep(10);
      control.close();
      assert.deepEqual((await harness.waitForRecords(1))[0]!.drops, { unresolved: 1 });
    });
    const { authorizer } = recordingAuthorizer([], ["203.0.113.11"]);
    await withServer({ runtime, policy: testPolicy(router, { authorizer }), resolver }, async (harness) => {
      const client = await udp(runtime);
      const { control, relay } = await associate(harness, client.socket.local.port);
      send(client, relay, { kind: "domain", host: "echo.test", port: ECHO.port }, "c");
      assert.equal((await client.next()).payload, "vetted:c");
      control.close();
      await harness.waitForRecords(1);
    });
  });

  test("--max-udp-per-client and --max-udp: REP 01 and a line naming the limit; slots come back", async () => {
    const runtime = createMemoryRuntime();
    const commandLimits = { bind: { perClient: 0, total: 0 }, udp: { perClient: 2, total: 3 } };
    await withServer({ runtime, router: confRouter(runtime, ""), commandLimits }, async (harness) => {
      const refusedFrom = async (host: string, port: number) => {
        const client = harness.client({ host, port, family: 4 });
        client.send([...SOCKS5_GREETING, ...socks5Request(3, "0.0.0.0", 0)]);
        assert.deepEqual([...await client.readToEnd()], [...SOCKS5_NO_AUTH_SELECTED, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        client.close();
      };
      const first = await associate(harness, 0);
      const second = await associate(harness, 0);
      await refusedFrom("127.0.0.1", 40100);
      const records = await harness.waitForRecords(1);
      assert.equal(records[0]?.outcome, "too_many_associations");
      assert.deepEqual(harness.log.entries().filter((line) => line.level === "warning").map((line) => line.text), [
        "127.0.0.1:40100 5-UDP: 127.0.0.1 already holds 2 UDP associations (--max-udp-per-client 2)",
      ]);
      // Another client gets the third association in all; a fourth is over --max-udp.
      const other = harness.client({ host: "127.0.0.9", port: 40009, family: 4 });
      other.send([...SOCKS5_GREETING, ...socks5Request(3, "0.0.0.0", 0)]);
      assert.deepEqual([...await other.read(2)], SOCKS5_NO_AUTH_SELECTED);
      assert.deepEqual([...await other.read(4)], [5, 0, 0, 1], "another client still gets its association");
      await refusedFrom("127.0.0.10", 40010);
      await harness.waitForRecords(2);
      assert.equal(
        harness.log.lines().at(-1),
        "127.0.0.10:40010 5-UDP: 3 UDP associations already open in all (--max-udp 3)",
      );
      // An association that ends gives its slot back, to its client and to the total.
      first.control.close();
      await harness.waitForRecords(3);
      const again = await associate(harness, 0);
      await refusedFrom("127.0.0.1", 40101);
      for (const control of [second.control, again.control, other]) control.close();
      await harness.waitForRecords(6);
      await harness.waitForIdle();
      for (let i = 0; i < 2; i++) await associate(harness, 0);
    });
  });

  test("the idle timeout (-o) closes an association without datagrams", async () => {
    const runtime = createMemoryRuntime();
    await withServer({ runtime, router: confRouter(runtime, ""), settings: { idleTimeoutMs: 60 } }, async (harness) => {
      const client = await udp(runtime);
      const { control } = await associate(harness, client.socket.local.port);
      await control.waitForClose();
      assert.equal((await harness.waitForRecords(1))[0]!.outcome, "idle_timeout");
    });
  });
});

describe("UDP ASSOCIATE through next hops", () => {
  test("per datagram: port 53 through a SOCKS5 hop's own association, the rest directly", async () => {
    const runtime = createMemoryRuntime();
    await echoServer(runtime, ECHO.host, ECHO.port);
    const hop = await memoryHop(runtime);
    const router = confRouter(runtime, `* 53 ${HOP.host} ${HOP.port}/5\n`);
    assert.equal(router.udpRouteForAll?.(), null);
    await withServer({ runtime, router }, async (harness) => {
      const client = await udp(runtime);
      const { control, relay } = await associate(harness, client.socket.local.port);
      assert.equal(hop.controls.length, 0, "no hop is asked before a datagram needs it");
      const dns: Target = { kind: "domain", host: "dns.test", port: 53 };
      send(client, relay, dns, "q1");
      send(client, relay, dns, "q2");
      send(client, relay, ECHO, "direct");
      assert.deepEqual([await client.next(), await client.next(), await client.next()].map((r) => r.payload), [
        "hop:q1",
        "hop:q2",
        "direct",
      ]);
      assert.equal(hop.controls.length, 1, "one hop association for the route");
      assert.deepEqual([...hop.requests[0]!.subarray(0, 8)], [5, 3, 0, 1, 0, 0, 0, 0], "UDP ASSOCIATE, DST 0.0.0.0");
      assert.deepEqual(hop.seen, [dns, dns], "the name goes to the hop unresolved");
      control.close();
      const [record] = await harness.waitForRecords(1);
      assert.equal(record!.route, PER_DATAGRAM_ROUTE);
      assert.deepEqual([record!.datagramsUp, record!.datagramsDown], [3, 3]);
      await hop.controls[0]!.waitForClose();
    });
  });

  test("a route for every destination: the hop's association is asked for before the reply", async () => {
    const runtime = createMemoryRuntime();
    const hop = await memoryHop(runtime);
    const router = confRouter(runtime, `* any ${HOP.host} ${HOP.port}/5\n`);
    assert.equal(router.udpRouteForAll?.()?.description, `relay=${HOP.host}:${HOP.port}`);
    await withServer({ runtime, router }, async (harness) => {
      const client = await udp(runtime);
      const { control, relay } = await associate(harness, client.socket.local.port);
      assert.equal(hop.controls.length, 1);
      send(client, relay, ECHO, "x");
      const reply = await client.next();
      assert.deepEqual([reply.target, reply.payload], [ECHO, "hop:x"]);
      hop.controls[0]!.close();
      await control.waitForClose();
      const [record] = await harness.waitForRecords(1);
      assert.equal(record!.outcome, "upstream_closed", "the hop ending its association ends ours");
      await harness.log.waitFor(
        /up=1 down=5 datagrams=1\/1 drops=0 time=\S+ upstream_closed \(next hop 198\.51\.100\.50:1080 ended its UDP association\)/,
      );
    });
  });

  test("a hop that refuses UDP ASSOCIATE: its reason is the reply", async () => {
    const runtime = createMemoryRuntime();
    await memoryHop(runtime, { rep: 7 });
    await withServer({ runtime, router: confRouter(runtime, `* any ${HOP.host} ${HOP.port}/5\n`) }, async (harness) => {
      const client = await udp(runtime);
      const control = harness.client();
      control.send([...SOCKS5_GREETING, ...socks5Request(3, "0.0.0.0", client.socket.local.port)]);
      await control.read(2);
      assert.deepEqual([...await control.read(10)], [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
      assert.equal((await harness.waitForRecords(1))[0]!.reason, "command_not_supported");
    });
  });

  for (const [suffix, what] of [["H", "an HTTP CONNECT proxy"], ["4", "a SOCKS4 server"]] as const) {
    test(`a /${suffix} farthest hop cannot carry UDP: REP 07 and a line saying why`, async () => {
      const runtime = createMemoryRuntime();
      await runtime.listen({ host: HOP.host, port: HOP.port, onConnection: () => {} });
      const router = confRouter(runtime, `* any ${HOP.host} ${HOP.port}/${suffix}\n`);
      await withServer({ runtime, router }, async (harness) => {
        const control = harness.client();
        control.send([...SOCKS5_GREETING, ...socks5Request(3, "0.0.0.0", 0)]);
        await control.read(2);
        assert.deepEqual([...await control.read(10)], [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
        await harness.log.waitFor(
          new RegExp(
            `5-UDP 0\\.0\\.0\\.0:0 relay=\\S+ failed: command_not_supported: .* is ${what}, which cannot carry UDP`,
          ),
        );
      });
    });
  }

  test("per datagram, a route that cannot carry UDP drops its datagrams (no_route) with one line", async () => {
    const runtime = createMemoryRuntime();
    await echoServer(runtime, ECHO.host, ECHO.port);
    await runtime.listen({ host: HOP.host, port: HOP.port, onConnection: () => {} });
    const router = confRouter(runtime, `* 53 ${HOP.host} ${HOP.port}/H\n`);
    await withServer({ runtime, router }, async (harness) => {
      const client = await udp(runtime);
      const { control, relay } = await associate(harness, client.socket.local.port);
      send(client, relay, { kind: "ipv4", host: "192.0.2.53", port: 53 }, "a");
      send(client, relay, { kind: "ipv4", host: "192.0.2.53", port: 53 }, "b");
      send(client, relay, ECHO, "still works");
      assert.equal((await client.next()).payload, "still works");
      control.close();
      assert.deepEqual((await harness.waitForRecords(1))[0]!.drops, { no_route: 2 });
      const warnings = harness.log.entries().filter((entry) => entry.level === "warning").map((entry) => entry.text);
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0]!,
        /dropped a datagram \(no_route\): Next hop \S+ \(http\) is an HTTP CONNECT proxy, which cannot carry UDP/,
      );
    });
  });
});

describe("Router.udpRouteForAll (srelay.conf)", () => {
  const runtime = createMemoryRuntime();
  const cases: Array<[string, string | null]> = [
    ["", "direct"],
    ["* any hop 1080\n", "relay=hop:1080"],
    ["* any/T hop 1080\n", "direct"],
    ["* any/T hop 1080\n* any/U udphop 1080\n", "relay=udphop:1080"],
    ["* any\n* any hop 1080\n", "direct"],
    ["10.0.0.0/8 any hop 1080\n* any\n", null],
    ["* 53 hop 1080\n", null],
    ["example.com any hop 1080\n", null],
  ];
  for (const [text, expected] of cases) {
    test(`${JSON.stringify(text)}: ${expected ?? "per datagram"}`, () => {
      assert.equal(confRouter(runtime, text).udpRouteForAll?.()?.description ?? null, expected);
    });
  }
});
