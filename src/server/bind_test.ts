// BIND through SocksServer on the memory runtime: both replies byte by byte,
// the peer check, the wait timeout, a client that leaves, the port choice,
// the listening address, and BIND at the farthest hop of a chain.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Hop } from "../config/srelay_conf.ts";
import { Inbox } from "../io/inbox.ts";
import type { NetAddress } from "../runtime/types.ts";
import type { DialContext, Dialer, FarthestHop } from "../upstream/dialer.ts";
import { fixedRouter, runtimeDialer } from "../../tests/helpers/fake_dialer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createConnectionPair } from "../../tests/helpers/memory_connection.ts";
import { createMemoryRuntime, type MemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { ScriptPeer } from "../../tests/helpers/script_peer.ts";
import {
  eventually,
  type HarnessOptions,
  type ServerHarness,
  testResolver,
  withServer,
} from "../../tests/helpers/server_script.ts";
import {
  socks4Reply,
  socks4Request,
  SOCKS5_GREETING,
  SOCKS5_NO_AUTH_SELECTED,
  socks5Reply,
  socks5Request,
} from "../../tests/helpers/socks_bytes.ts";
import { chooseListenHost } from "./bind.ts";

const CLIENT: NetAddress = { host: "192.0.2.7", port: 40000, family: 4 };
/** The address the client reaches the server on. */
const SERVER_HOST = "198.51.100.1";
const PEER: NetAddress = { host: "203.0.113.10", port: 20, family: 4 };
const INTERFACES = ["127.0.0.1/8", "198.51.100.1/24", "10.0.0.5/8", "::1/128", "2001:db8::1/64"];
const TIME = String.raw`time=\d+\.\d{3}s`;

before(installLogCapture);
after(removeLogCapture);

function list(bytes: Uint8Array): number[] {
  return [...bytes];
}

function portOf(reply: Uint8Array | number[]): number {
  const bytes = [...reply];
  return ((bytes.at(-2) ?? 0) << 8) | (bytes.at(-1) ?? 0);
}

/** Runs `body` against a server on SERVER_HOST:1080 with the test interfaces and a direct route. */
function withBindServer(
  options: Partial<HarnessOptions> & { runtime?: MemoryRuntime },
  body: (h: ServerHarness, runtime: MemoryRuntime) => Promise<void>,
): Promise<void> {
  const runtime = options.runtime ?? createMemoryRuntime();
  return withServer(
    {
      router: fixedRouter(runtimeDialer(runtime)),
      host: SERVER_HOST,
      interfaces: INTERFACES,
      ...options,
      runtime,
    },
    (h) => body(h, runtime),
  );
}

/** Sends a SOCKS5 greeting and BIND; returns the first reply (10 bytes). */
async function socks5Bind(client: ScriptPeer, host: string, port: number): Promise<Uint8Array> {
  client.send([...SOCKS5_GREETING, ...socks5Request(2, host, port)]);
  assert.deepEqual(list(await client.read(2)), SOCKS5_NO_AUTH_SELECTED);
  return await client.read(10);
}

/** Connects a peer from `from` to the listener a first reply named. */
function dialPeer(runtime: MemoryRuntime, host: string, port: number, from: NetAddress = PEER): ScriptPeer {
  return new ScriptPeer(runtime.dial({ host, port }, from));
}

/** Data both ways, then the client ends, then the peer: returns when the client saw the end. */
async function exchange(client: ScriptPeer, peer: ScriptPeer, up: string, down: string): Promise<void> {
  client.send(up);
  assert.equal(new TextDecoder().decode(await peer.read(up.length)), up);
  peer.send(down);
  assert.equal(new TextDecoder().decode(await client.read(down.length)), down);
  client.end();
  assert.deepEqual(list(await peer.readToEnd()), []);
  peer.end();
  assert.deepEqual(list(await client.readToEnd()), []);
}

describe("BIND on this host", () => {
  test("SOCKS5: first reply names the listener, second the peer; early data, relay, record and log line", async () => {
    await withBindServer({}, async (h, runtime) => {
      const client = h.client(CLIENT);
      const first = await socks5Bind(client, PEER.host, 0);
      // DST.PORT 0: the client's own source port, on the address the client reached us on.
      assert.deepEqual(list(first), socks5Reply(0, SERVER_HOST, CLIENT.port));
      assert.equal(runtime.isListening(SERVER_HOST, CLIENT.port), true);
      client.send("early");
      const peer = dialPeer(runtime, SERVER_HOST, CLIENT.port);
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, PEER.host, PEER.port));
      assert.equal(runtime.isListening(SERVER_HOST, CLIENT.port), false, "the listener is closed after the peer");
      assert.equal(new TextDecoder().decode(await peer.read(5)), "early");
      await exchange(client, peer, "hello", "world!");
      const [record] = await h.waitForRecords(1);
      assert.deepEqual({ ...record, seconds: 0, handshakeSeconds: 0 }, {
        id: 1,
        client: CLIENT,
        version: "5",
        command: "bind",
        target: "203.0.113.10:0",
        user: "",
        route: "direct",
        bytesUp: 10,
        bytesDown: 6,
        seconds: 0,
        outcome: "done",
        listen: "198.51.100.1:40000",
        peer: "203.0.113.10:20",
        authMethod: "none",
        handshakeSeconds: 0,
      });
      const lines = h.log.lines();
      assert.equal(lines.length, 2, lines.join("\n"));
      assert.equal(lines[0], "192.0.2.7:40000 5-BND 203.0.113.10:0(ipv4) - direct");
      assert.match(
        lines[1] ?? "",
        new RegExp(
          String.raw`^192\.0\.2\.7:40000 5-BND 203\.0\.113\.10:0 direct listen=198\.51\.100\.1:40000 ` +
            String.raw`peer=203\.0\.113\.10:20 up=10 down=6 ${TIME} done$`,
        ),
      );
    });
  });

  test("SOCKS4: VN 0 / CD 5A twice; a port below 1024 is replaced; USERID is the user", async () => {
    await withBindServer({}, async (h, runtime) => {
      const client = h.client(CLIENT);
      client.send(socks4Request(2, PEER.host, 21, "ftpuser"));
      assert.deepEqual(list(await client.read(8)), socks4Reply(0x5a, SERVER_HOST, CLIENT.port));
      const peer = dialPeer(runtime, SERVER_HOST, CLIENT.port);
      assert.deepEqual(list(await client.read(8)), socks4Reply(0x5a, PEER.host, PEER.port));
      await exchange(client, peer, "up", "down");
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.version, "4");
      assert.equal(record?.user, "ftpuser");
      assert.equal(record?.outcome, "done");
    });
  });

  test("IPv6: both replies with ATYP 04; the listener on the IPv6 address the client reached", async () => {
    const client6: NetAddress = { host: "2001:db8::7", port: 50000, family: 6 };
    const peer6: NetAddress = { host: "2001:db8:ffff::10", port: 2020, family: 6 };
    const v6 = (host: string, port: number) => {
      const groups = host === "2001:db8::1"
        ? [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        : [0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
      return [5, 0, 0, 4, ...groups, port >> 8, port & 0xff];
    };
    await withBindServer({ host: "2001:db8::1" }, async (h, runtime) => {
      const client = h.client(client6);
      client.send([...SOCKS5_GREETING, 5, 2, 0, 4, ...v6("2001:db8:ffff::10", 0).slice(4)]);
      assert.deepEqual(list(await client.read(2)), SOCKS5_NO_AUTH_SELECTED);
      assert.deepEqual(list(await client.read(22)), v6("2001:db8::1", client6.port));
      const peer = dialPeer(runtime, "2001:db8::1", client6.port, peer6);
      assert.deepEqual(list(await client.read(22)), v6("2001:db8:ffff::10", peer6.port));
      await exchange(client, peer, "six", "6");
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.listen, "[2001:db8::1]:50000");
      assert.equal(record?.peer, "[2001:db8:ffff::10]:2020");
    });
  });

  test("a connection from another address is closed at once and logged; the right peer still gets through", async () => {
    await withBindServer({}, async (h, runtime) => {
      const client = h.client(CLIENT);
      const port = portOf(await socks5Bind(client, PEER.host, 0));
      const intruder = dialPeer(runtime, SERVER_HOST, port, { host: "203.0.113.66", port: 4444, family: 4 });
      await intruder.waitForClose();
      assert.equal(intruder.receivedLength, 0);
      assert.equal(client.receivedLength, 12, "no second reply for the wrong peer");
      await eventually(() => h.log.lines().length === 2, "the refusal line");
      assert.equal(
        h.log.lines()[1],
        "192.0.2.7:40000 5-BND 203.0.113.10:0 direct: refused a connection from 203.0.113.66:4444 to " +
          "198.51.100.1:40000: not the expected peer; still waiting",
      );
      assert.equal(h.log.entries()[1]?.level, "warning");
      const peer = dialPeer(runtime, SERVER_HOST, port);
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, PEER.host, PEER.port));
      await exchange(client, peer, "a", "b");
      assert.equal((await h.waitForRecords(1))[0]?.outcome, "done");
    });
  });

  test("DST.ADDR 0.0.0.0 lets any peer in", async () => {
    await withBindServer({}, async (h, runtime) => {
      const client = h.client(CLIENT);
      const first = await socks5Bind(client, "0.0.0.0", 0);
      assert.deepEqual(list(first), socks5Reply(0, SERVER_HOST, CLIENT.port));
      const peer = dialPeer(runtime, SERVER_HOST, CLIENT.port, { host: "192.0.2.200", port: 6000, family: 4 });
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, "192.0.2.200", 6000));
      await exchange(client, peer, "x", "y");
    });
  });

  test("a name is resolved: any of its addresses is the expected peer", async () => {
    const resolver = testResolver({ "peer.example": ["203.0.113.10"] });
    await withBindServer({ resolver }, async (h, runtime) => {
      const client = h.client(CLIENT);
      const name = new TextEncoder().encode("peer.example");
      client.send([...SOCKS5_GREETING, 5, 2, 0, 3, name.length, ...name, 0, 0]);
      assert.deepEqual(list(await client.read(2)), SOCKS5_NO_AUTH_SELECTED);
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, SERVER_HOST, CLIENT.port));
      const peer = dialPeer(runtime, SERVER_HOST, CLIENT.port);
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, PEER.host, PEER.port));
      await exchange(client, peer, "n", "m");
    });
  });

  test("the wait timeout: REP 01 as the second reply, the listener closed, the session over", async () => {
    await withBindServer({ settings: { bindTimeoutMs: 50 } }, async (h, runtime) => {
      const client = h.client(CLIENT);
      const port = portOf(await socks5Bind(client, PEER.host, 0));
      assert.deepEqual(list(await client.readToEnd()), socks5Reply(1));
      assert.equal(runtime.isListening(SERVER_HOST, port), false);
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "failed");
      assert.equal(record?.reason, "general_failure");
      assert.match(
        h.log.lines()[1] ?? "",
        /5-BND 203\.0\.113\.10:0 direct failed: general_failure: No peer connected to 198\.51\.100\.1:40000 within 0\.05 s /,
      );
    });
  });

  test("the wait timeout, SOCKS4: CD 5B", async () => {
    await withBindServer({ settings: { bindTimeoutMs: 50 } }, async (h) => {
      const client = h.client(CLIENT);
      client.send(socks4Request(2, PEER.host, 0));
      assert.deepEqual(list(await client.read(8)), socks4Reply(0x5a, SERVER_HOST, CLIENT.port));
      assert.deepEqual(list(await client.readToEnd()), socks4Reply(0x5b));
      await h.waitForRecords(1);
    });
  });

  test("a client that leaves while waiting frees the port at once; no second reply", async () => {
    await withBindServer({}, async (h, runtime) => {
      const client = h.client(CLIENT);
      const port = portOf(await socks5Bind(client, PEER.host, 0));
      client.close();
      await eventually(() => !runtime.isListening(SERVER_HOST, port), "the listener to close");
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "client_gone");
      assert.equal(
        h.log.lines()[1],
        "192.0.2.7:40000 5-BND 203.0.113.10:0 direct: client left while waiting for the peer",
      );
      await h.waitForIdle();
    });
  });

  test("a shutdown while waiting: REP 01 at once, the listener closed", async () => {
    await withBindServer({}, async (h, runtime) => {
      const client = h.client(CLIENT);
      const port = portOf(await socks5Bind(client, PEER.host, 0));
      await h.server.shutdown(0);
      assert.deepEqual(list(await client.readToEnd()), socks5Reply(1));
      assert.equal(runtime.isListening(SERVER_HOST, port), false);
      assert.equal((await h.waitForRecords(1))[0]?.outcome, "failed");
    });
  });

  test("a client that sends more than 64 KiB before the peer connects gets REP 01", async () => {
    await withBindServer({}, async (h, runtime) => {
      const client = h.client(CLIENT);
      const port = portOf(await socks5Bind(client, PEER.host, 0));
      client.send(new Uint8Array(65 * 1024));
      assert.deepEqual(list(await client.readToEnd()), socks5Reply(1));
      assert.equal(runtime.isListening(SERVER_HOST, port), false);
      assert.match(h.log.lines()[1] ?? "", /failed: general_failure: Cannot wait for the peer: the client sent more/);
    });
  });
});

describe("BIND port choice", () => {
  async function firstPort(
    request: number,
    options: { anyPort?: boolean; taken?: number[] } = {},
  ): Promise<number> {
    const runtime = createMemoryRuntime();
    for (const port of options.taken ?? []) {
      await runtime.listen({ host: SERVER_HOST, port, onConnection: (connection) => connection.close() });
    }
    let port = -1;
    await withBindServer({ runtime, settings: { bindAnyPort: options.anyPort ?? false } }, async (h) => {
      const client = h.client(CLIENT);
      port = portOf(await socks5Bind(client, PEER.host, request));
      client.close();
      await h.waitForRecords(1);
    });
    return port;
  }

  test("the requested DST.PORT where free", async () => {
    assert.equal(await firstPort(5000), 5000);
  });
  test("else the client's source port where free", async () => {
    assert.equal(await firstPort(5000, { taken: [5000] }), CLIENT.port);
  });
  test("else any free port", async () => {
    const port = await firstPort(5000, { taken: [5000, CLIENT.port] });
    assert.ok(port >= 1024 && port !== 5000 && port !== CLIENT.port, String(port));
  });
  test("a port below 1024 is replaced without -b", async () => {
    assert.equal(await firstPort(1000), CLIENT.port);
  });
  test("a port below 1024 is used with -b", async () => {
    assert.equal(await firstPort(1000, { anyPort: true }), 1000);
  });
});

describe("BIND listening address", () => {
  test("-x/-J: the configured address, for peers of its family", async () => {
    await withBindServer({ settings: { sourceAddress: "10.9.9.9" } }, async (h) => {
      const client = h.client(CLIENT);
      assert.deepEqual(list(await socks5Bind(client, PEER.host, 0)), socks5Reply(0, "10.9.9.9", CLIENT.port));
      client.close();
      await h.waitForRecords(1);
    });
  });

  test("-g: the address the client reached us on, even with an interface on the peer's network", async () => {
    await withBindServer({ settings: { sameInterface: true } }, async (h) => {
      const client = h.client(CLIENT);
      assert.deepEqual(list(await socks5Bind(client, "10.1.2.3", 0)), socks5Reply(0, SERVER_HOST, CLIENT.port));
      client.close();
      await h.waitForRecords(1);
    });
  });

  test("chooseListenHost: on-link interface (longest prefix), client address, global address, loopback, never a wildcard", () => {
    const peer = (addresses: string[], family: 4 | 6 = 4, any = false) => ({ any, family, addresses });
    const ask = (p: ReturnType<typeof peer>, clientLocal: string, configured: string | null = null) =>
      chooseListenHost({ peer: p, clientLocal, configured, interfaces: ["10.0.0.5/8", "10.1.0.5/16", ...INTERFACES] });
    assert.equal(ask(peer(["10.1.2.3"]), SERVER_HOST), "10.1.0.5");
    assert.equal(ask(peer(["10.200.0.1"]), SERVER_HOST), "10.0.0.5");
    assert.equal(ask(peer(["203.0.113.1"]), "::ffff:198.51.100.1"), SERVER_HOST);
    assert.equal(
      ask(peer(["203.0.113.1"]), "127.0.0.1"),
      "10.0.0.5",
      "a loopback client address is not for a remote peer",
    );
    assert.equal(ask(peer(["127.0.0.2"]), SERVER_HOST), "127.0.0.1");
    assert.equal(ask(peer(["0.0.0.0"], 4, true), "127.0.0.1"), "10.0.0.5");
    assert.equal(ask(peer(["::"], 6, true), "127.0.0.1"), "2001:db8::1");
    assert.equal(ask(peer(["::1"], 6), "127.0.0.1"), "::1");
    assert.equal(ask(peer(["203.0.113.1"]), SERVER_HOST, "0.0.0.0"), SERVER_HOST, "a wildcard -x is not used");
    assert.equal(ask(peer(["2001:db8:9::1"], 6), SERVER_HOST, "10.9.9.9"), "2001:db8::1");
    assert.equal(
      chooseListenHost({ peer: peer(["::"], 6, true), clientLocal: "127.0.0.1", configured: null, interfaces: [] }),
      "::1",
    );
    assert.equal(
      chooseListenHost({ peer: peer(["2001:db8::9"], 6), clientLocal: "127.0.0.1", configured: null, interfaces: [] }),
      null,
    );
  });
});

/** A scripted farthest hop reached through a chain. */
interface ChainHarness {
  readonly router: ReturnType<typeof fixedRouter>;
  /** The hop's side of each stream `reachFarthest` opened, in order. */
  readonly hops: ScriptPeer[];
  /** Resolves with the `index`-th hop stream. */
  hop(index?: number): Promise<ScriptPeer>;
  /** The server's side of each stream, to check it was closed. */
  readonly streams: Array<{ closed: boolean }>;
}

function chain(hop: Hop, credentials: { username: string; password: string } | null = null): ChainHarness {
  const hops: ScriptPeer[] = [];
  const streams: Array<{ closed: boolean }> = [];
  const dialer: Dialer = {
    dial: () => Promise.reject(new Error("BIND must not dial")),
    reachFarthest(_context: DialContext): Promise<FarthestHop> {
      const [near, far] = createConnectionPair(
        { host: "10.0.0.5", port: 41000 + hops.length, family: 4 },
        { host: "192.0.2.50", port: hop.port, family: 4 },
      );
      hops.push(new ScriptPeer(far));
      streams.push(near);
      return Promise.resolve({
        connection: near,
        inbox: new Inbox(near),
        early: new Uint8Array(0),
        hop,
        name: `${hop.host}:${hop.port}`,
        credentials,
      });
    },
  };
  return {
    router: fixedRouter(dialer, `relay=${hop.host}:${hop.port}`),
    hops,
    streams,
    async hop(index = 0) {
      await eventually(() => hops[index] !== undefined, `hop stream #${index}`);
      return hops[index] as ScriptPeer;
    },
  };
}

describe("BIND through a chain", () => {
  test("SOCKS5 farthest hop: BIND goes to it, both of its replies come back, then the stream is relayed", async () => {
    const c = chain({ host: "192.0.2.50", port: 1080, protocol: "socks5" });
    await withBindServer({ router: c.router }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Request(2, PEER.host, 0)]);
      assert.deepEqual(list(await client.read(2)), SOCKS5_NO_AUTH_SELECTED);
      const hop = await c.hop();
      assert.deepEqual(list(await hop.read(3)), [5, 1, 0]);
      hop.send([5, 0]);
      assert.deepEqual(list(await hop.read(10)), socks5Request(2, PEER.host, 0));
      hop.send(socks5Reply(0, "192.0.2.50", 6000));
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, "192.0.2.50", 6000));
      hop.send([...socks5Reply(0, PEER.host, 20), ...new TextEncoder().encode("from peer")]);
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, PEER.host, 20));
      assert.equal(new TextDecoder().decode(await client.read(9)), "from peer");
      await exchange(client, hop, "to peer", "bye");
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.route, "relay=192.0.2.50:1080");
      assert.equal(record?.listen, "192.0.2.50:6000");
      assert.equal(record?.peer, "203.0.113.10:20");
      assert.equal(record?.bytesDown, 12);
      assert.match(
        h.log.lines()[1] ?? "",
        /5-BND 203\.0\.113\.10:0 relay=192\.0\.2\.50:1080 listen=192\.0\.2\.50:6000 peer=203\.0\.113\.10:20 up=7 down=12 /,
      );
    });
  });

  test("a SOCKS4 client through a SOCKS5 hop with RFC 1929: replies translated to SOCKS4; 0.0.0.0 becomes the hop", async () => {
    const c = chain({ host: "192.0.2.50", port: 1080, protocol: "socks5" }, { username: "u", password: "p" });
    await withBindServer({ router: c.router }, async (h) => {
      const client = h.client(CLIENT);
      client.send(socks4Request(2, PEER.host, 21, "me"));
      const hop = await c.hop();
      assert.deepEqual(list(await hop.read(4)), [5, 2, 0, 2]);
      hop.send([5, 2]);
      assert.deepEqual(list(await hop.read(5)), [1, 1, 0x75, 1, 0x70]);
      hop.send([1, 0]);
      assert.deepEqual(list(await hop.read(10)), socks5Request(2, PEER.host, 21));
      hop.send(socks5Reply(0, "0.0.0.0", 6001));
      assert.deepEqual(list(await client.read(8)), socks4Reply(0x5a, "192.0.2.50", 6001));
      hop.send(socks5Reply(0, PEER.host, 20));
      assert.deepEqual(list(await client.read(8)), socks4Reply(0x5a, PEER.host, 20));
      await exchange(client, hop, "q", "r");
    });
  });

  test("a SOCKS4 farthest hop gets SOCKS4 BIND", async () => {
    const c = chain({ host: "192.0.2.50", port: 1080, protocol: "socks4" });
    await withBindServer({ router: c.router }, async (h) => {
      const client = h.client(CLIENT);
      await socks5BindNoReply(client);
      const hop = await c.hop();
      assert.deepEqual(list(await hop.read(15)), socks4Request(2, PEER.host, 0, "srelay"));
      hop.send(socks4Reply(0x5a, "192.0.2.50", 6002));
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, "192.0.2.50", 6002));
      hop.send(socks4Reply(0x5a, PEER.host, 20));
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, PEER.host, 20));
      await exchange(client, hop, "s", "t");
    });
  });

  test("a /S hop that is not a SOCKS5 server is asked again with SOCKS4 on a new stream", async () => {
    const c = chain({ host: "192.0.2.50", port: 1080, protocol: "socks" });
    await withBindServer({ router: c.router }, async (h) => {
      const client = h.client(CLIENT);
      await socks5BindNoReply(client);
      const first = await c.hop(0);
      assert.deepEqual(list(await first.read(3)), [5, 1, 0]);
      first.send([0, 0x5b]);
      const second = await c.hop(1);
      assert.deepEqual(list(await second.read(15)), socks4Request(2, PEER.host, 0, "srelay"));
      assert.equal(c.streams[0]?.closed, true);
      second.send(socks4Reply(0x5a, "192.0.2.50", 6003));
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, "192.0.2.50", 6003));
      second.send(socks4Reply(0x5a, PEER.host, 20));
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, PEER.host, 20));
      await exchange(client, second, "u", "v");
    });
  });

  test("an HTTP farthest hop cannot BIND: REP 07, the stream closed, a line that says why", async () => {
    const c = chain({ host: "192.0.2.80", port: 8080, protocol: "http" });
    await withBindServer({ router: c.router }, async (h) => {
      const client = h.client(CLIENT);
      await socks5BindNoReply(client);
      assert.deepEqual(list(await client.readToEnd()), socks5Reply(7));
      assert.equal(c.streams[0]?.closed, true);
      assert.match(
        h.log.lines()[1] ?? "",
        /failed: command_not_supported: Next hop 192\.0\.2\.80:8080 \(http\) cannot BIND: HTTP CONNECT cannot accept a connection/,
      );
    });
  });

  test("the hop's second reply naming another peer ends the session with REP 02", async () => {
    const c = chain({ host: "192.0.2.50", port: 1080, protocol: "socks5" });
    await withBindServer({ router: c.router }, async (h) => {
      const client = h.client(CLIENT);
      await socks5BindNoReply(client);
      const hop = await c.hop();
      await hop.read(3);
      hop.send([5, 0]);
      await hop.read(10);
      hop.send(socks5Reply(0, "192.0.2.50", 6004));
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, "192.0.2.50", 6004));
      hop.send(socks5Reply(0, "203.0.113.66", 20));
      assert.deepEqual(list(await client.readToEnd()), socks5Reply(2));
      await hop.waitForClose();
      assert.match(h.log.lines()[1] ?? "", /not from the expected peer 203\.0\.113\.10/);
    });
  });

  test("the hop's refusal of the second step is passed on; the wait timeout applies to the hop too", async () => {
    const c = chain({ host: "192.0.2.50", port: 1080, protocol: "socks5" });
    await withBindServer({ router: c.router, settings: { bindTimeoutMs: 50 } }, async (h) => {
      const refused = h.client(CLIENT);
      await socks5BindNoReply(refused);
      const hop = await c.hop(0);
      await hop.read(3);
      hop.send([5, 0]);
      await hop.read(10);
      hop.send(socks5Reply(5));
      assert.deepEqual(list(await refused.readToEnd()), socks5Reply(5));
      const waiting = h.client({ ...CLIENT, port: 40001 });
      await socks5BindNoReply(waiting);
      const second = await c.hop(1);
      await second.read(3);
      second.send([5, 0]);
      await second.read(10);
      second.send(socks5Reply(0, "192.0.2.50", 6005));
      assert.deepEqual(list(await waiting.read(10)), socks5Reply(0, "192.0.2.50", 6005));
      assert.deepEqual(list(await waiting.readToEnd()), socks5Reply(1));
      await second.waitForClose();
      await h.waitForRecords(2);
    });
  });

  test("a client that leaves while the hop waits: the hop stream is closed", async () => {
    const c = chain({ host: "192.0.2.50", port: 1080, protocol: "socks5" });
    await withBindServer({ router: c.router }, async (h) => {
      const client = h.client(CLIENT);
      await socks5BindNoReply(client);
      const hop = await c.hop();
      await hop.read(3);
      hop.send([5, 0]);
      await hop.read(10);
      hop.send(socks5Reply(0, "192.0.2.50", 6006));
      await client.read(10);
      client.close();
      await hop.waitForClose();
      assert.equal((await h.waitForRecords(1))[0]?.outcome, "client_gone");
    });
  });
});

describe("BIND limits (--max-binds-per-client, --max-binds)", () => {
  const LIMITS = { bind: { perClient: 2, total: 3 }, udp: { perClient: 0, total: 0 } };
  const from = (host: string, port: number): NetAddress => ({ host, port, family: 4 });

  test("a client at its limit gets REP 01 (SOCKS4: CD 5B) and a line naming it; others still BIND", async () => {
    await withBindServer({ commandLimits: LIMITS }, async (h, runtime) => {
      const first = h.client(CLIENT);
      const port = portOf(await socks5Bind(first, PEER.host, 0));
      const second = h.client({ ...CLIENT, port: 40001 });
      await socks5Bind(second, PEER.host, 0);
      const refused = h.client({ ...CLIENT, port: 40002 });
      refused.send([...SOCKS5_GREETING, ...socks5Request(2, PEER.host, 0)]);
      assert.deepEqual(list(await refused.readToEnd()), [...SOCKS5_NO_AUTH_SELECTED, ...socks5Reply(1)]);
      const socks4 = h.client({ ...CLIENT, port: 40003 });
      socks4.send(socks4Request(2, PEER.host, 0));
      assert.deepEqual(list(await socks4.readToEnd()), socks4Reply(0x5b));
      const records = await h.waitForRecords(2);
      assert.deepEqual(records.map((record) => [record.outcome, record.version]), [
        ["too_many_binds", "5"],
        ["too_many_binds", "4"],
      ]);
      assert.deepEqual(h.log.entries().slice(-2).map((line) => [line.level, line.text]), [
        ["warning", "192.0.2.7:40002 5-BND: 192.0.2.7 already holds 2 BIND listeners (--max-binds-per-client 2)"],
        ["warning", "192.0.2.7:40003 4-BND: 192.0.2.7 already holds 2 BIND listeners (--max-binds-per-client 2)"],
      ]);
      // Another client: its BIND is served, the third in all.
      const other = h.client(from("192.0.2.8", 40000));
      assert.equal((await socks5Bind(other, PEER.host, 0))[1], 0);
      // The fourth in all is over --max-binds, whoever asks.
      const fourth = h.client(from("192.0.2.9", 40000));
      fourth.send([...SOCKS5_GREETING, ...socks5Request(2, PEER.host, 0)]);
      assert.deepEqual(list(await fourth.readToEnd()), [...SOCKS5_NO_AUTH_SELECTED, ...socks5Reply(1)]);
      await h.waitForRecords(3);
      assert.equal(
        h.log.lines().at(-1),
        "192.0.2.9:40000 5-BND: 3 BIND listeners already open in all (--max-binds 3)",
      );
      // The first BIND's peer connects: its listener is gone, and so is its slot, while it relays.
      const peer = dialPeer(runtime, SERVER_HOST, port);
      assert.equal((await first.read(10))[1], 0);
      const again = h.client({ ...CLIENT, port: 40004 });
      assert.equal((await socks5Bind(again, PEER.host, 0))[1], 0, "the slot came back once the peer was in");
      // A client that leaves while waiting gives its slot back too.
      again.close();
      await h.waitForRecords(4);
      const last = h.client({ ...CLIENT, port: 40005 });
      assert.equal((await socks5Bind(last, PEER.host, 0))[1], 0);
      await exchange(first, peer, "up", "down");
    });
  });

  test("a failed BIND gives its slot back (the wait timeout)", async () => {
    await withBindServer({ commandLimits: LIMITS, settings: { bindTimeoutMs: 50 } }, async (h) => {
      for (let round = 0; round < 3; round++) {
        const client = h.client({ ...CLIENT, port: 40000 + round });
        const first = h.client({ ...CLIENT, port: 40100 + round });
        assert.equal((await socks5Bind(client, PEER.host, 0))[1], 0, `round ${round}`);
        assert.equal((await socks5Bind(first, PEER.host, 0))[1], 0, `round ${round}`);
        assert.deepEqual(list(await client.readToEnd()), socks5Reply(1));
        assert.deepEqual(list(await first.readToEnd()), socks5Reply(1));
        client.close();
        first.close();
        await h.waitForIdle();
      }
      assert.equal(h.records.filter((record) => record.outcome === "too_many_binds").length, 0);
    });
  });

  test("through a chain, the wait at the hop holds the slot", async () => {
    const c = chain({ host: "192.0.2.50", port: 1080, protocol: "socks5" });
    await withBindServer(
      { router: c.router, commandLimits: { ...LIMITS, bind: { perClient: 1, total: 1 } } },
      async (h) => {
        const client = h.client(CLIENT);
        await socks5BindNoReply(client);
        const hop = await c.hop();
        await hop.read(3);
        hop.send([5, 0]);
        await hop.read(10);
        hop.send(socks5Reply(0, "192.0.2.50", 6007));
        await client.read(10);
        const refused = h.client(from("192.0.2.8", 40000));
        refused.send([...SOCKS5_GREETING, ...socks5Request(2, PEER.host, 0)]);
        assert.deepEqual(list(await refused.readToEnd()), [...SOCKS5_NO_AUTH_SELECTED, ...socks5Reply(1)]);
        assert.equal(c.hops.length, 1, "the refused request never reached the hop");
        hop.send(socks5Reply(0, PEER.host, 20));
        assert.deepEqual(list(await client.read(10)), socks5Reply(0, PEER.host, 20));
        const next = h.client(from("192.0.2.8", 40001));
        await socks5BindNoReply(next);
        await c.hop(1);
        await exchange(client, hop, "a", "b");
      },
    );
  });
});

describe("BIND when the next hop dies", () => {
  test("while the hop waits for the peer: REP 01, the hop stream closed, one line naming the hop", async () => {
    const c = chain({ host: "192.0.2.50", port: 1080, protocol: "socks5" });
    await withBindServer({ router: c.router }, async (h) => {
      const client = h.client(CLIENT);
      await socks5BindNoReply(client);
      const hop = await c.hop();
      await hop.read(3);
      hop.send([5, 0]);
      await hop.read(10);
      hop.send(socks5Reply(0, "192.0.2.50", 6008));
      assert.equal((await client.read(10))[1], 0);
      hop.close();
      assert.deepEqual(list(await client.readToEnd()), socks5Reply(1));
      assert.equal(c.streams[0]?.closed, true);
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "failed");
      assert.deepEqual(h.log.entries().slice(1).map((line) => [line.level, line.text.replace(/ time=.*$/, "")]), [[
        "warning",
        "192.0.2.7:40000 5-BND 203.0.113.10:0 relay=192.0.2.50:1080 failed: general_failure: " +
        "Next hop 192.0.2.50:1080 (socks5) closed the connection during the wait for the second SOCKS5 BIND reply",
      ]]);
      // After its FIN the server lingers (up to 2 s) for the client to close: the session ends once it does.
      client.close();
      await h.waitForIdle();
    });
  });
});

/** Sends a SOCKS5 greeting and BIND to PEER:0 and reads the method selection only. */
async function socks5BindNoReply(client: ScriptPeer): Promise<void> {
  client.send([...SOCKS5_GREETING, ...socks5Request(2, PEER.host, 0)]);
  assert.deepEqual(list(await client.read(2)), SOCKS5_NO_AUTH_SELECTED);
}
