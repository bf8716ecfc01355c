// UDP ASSOCIATE toward a SOCKS5 next hop, on the memory runtime: the
// request, the relay address, credentials, hops that cannot carry UDP, and
// the end of the hop's association.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Hop } from "../config/srelay_conf.ts";
import { Inbox } from "../io/inbox.ts";
import type { Connection } from "../runtime/types.ts";
import { createMemoryRuntime, type MemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { ScriptPeer } from "../../tests/helpers/script_peer.ts";
import { testResolver } from "../../tests/helpers/server_script.ts";
import type { Credentials, FarthestHop } from "./dialer.ts";
import { HopError } from "./hop_error.ts";
import { associateThroughHop, type HopAssociateOptions } from "./socks5_associate.ts";

const HOP_ADDRESS = "198.51.100.50";

/** A hop listening on 198.51.100.50:1080 whose side of each connection is `script`. */
async function network(script: (peer: ScriptPeer) => Promise<void>) {
  const runtime = createMemoryRuntime();
  const peers: ScriptPeer[] = [];
  const failures: unknown[] = [];
  await runtime.listen({
    host: HOP_ADDRESS,
    port: 1080,
    onConnection: (connection: Connection) => {
      const peer = new ScriptPeer(connection);
      peers.push(peer);
      script(peer).catch((error) => failures.push(error));
    },
  });
  return { runtime, peers, failures };
}

async function farthest(
  runtime: MemoryRuntime,
  hop: Partial<Hop> = {},
  credentials: Credentials | null = null,
): Promise<FarthestHop> {
  const connection = await runtime.connect({ host: HOP_ADDRESS, port: 1080 });
  const full: Hop = { host: HOP_ADDRESS, port: 1080, protocol: "socks5", ...hop };
  return {
    connection,
    inbox: new Inbox(connection),
    early: new Uint8Array(0),
    hop: full,
    name: `${full.host}:${full.port}`,
    credentials,
  };
}

function options(runtime: MemoryRuntime, overrides: Partial<HopAssociateOptions> = {}): HopAssociateOptions {
  return {
    runtime,
    signal: new AbortController().signal,
    timeoutMs: 1000,
    resolve: testResolver({ "hop.test": ["203.0.113.1", HOP_ADDRESS] }).resolve,
    ...overrides,
  };
}

/** Answers the greeting with no authentication and the request with `reply`. */
function grant(reply: number[]) {
  return async (peer: ScriptPeer) => {
    assert.deepEqual([...await peer.read(3)], [5, 1, 0]);
    peer.send([5, 0]);
    await peer.read(10);
    peer.send(reply);
  };
}

describe("associateThroughHop()", () => {
  test("declares our socket's port and returns the relay the hop names", async () => {
    const requests: number[][] = [];
    const { runtime } = await network(async (peer) => {
      await peer.read(3);
      peer.send([5, 0]);
      requests.push([...await peer.read(10)]);
      peer.send([5, 0, 0, 1, 198, 51, 100, 51, 0x1b, 0x58]);
    });
    const association = await associateThroughHop(await farthest(runtime), options(runtime));
    assert.deepEqual(association.relay, { host: "198.51.100.51", port: 7000, family: 4 });
    const port = association.socket.local.port;
    assert.deepEqual(requests, [[5, 3, 0, 1, 0, 0, 0, 0, port >> 8, port & 0xff]]);
    assert.equal(association.socket.local.host, "0.0.0.0");
    association.close();
    assert.equal(association.socket.closed, true);
  });

  test("a reply naming 0.0.0.0 means the hop's own address; a name prefers the address reached", async () => {
    const { runtime } = await network(grant([5, 0, 0, 1, 0, 0, 0, 0, 0x1b, 0x58]));
    const byAddress = await associateThroughHop(await farthest(runtime), options(runtime));
    assert.deepEqual(byAddress.relay, { host: HOP_ADDRESS, port: 7000, family: 4 });
    byAddress.close();
    const byName = await associateThroughHop(await farthest(runtime, { host: "hop.test" }), options(runtime));
    assert.deepEqual(byName.relay, { host: HOP_ADDRESS, port: 7000, family: 4 });
    byName.close();
  });

  test("authenticates with the hop's credentials (RFC 1929)", async () => {
    const { runtime, failures } = await network(async (peer) => {
      assert.deepEqual([...await peer.read(4)], [5, 2, 0, 2]);
      peer.send([5, 2]);
      assert.deepEqual([...await peer.read(9)], [1, 3, ...Buffer.from("bob"), 3, ...Buffer.from("pw1")]);
      peer.send([1, 0]);
      await peer.read(10);
      peer.send([5, 0, 0, 1, 198, 51, 100, 50, 0x1b, 0x58]);
    });
    const hop = await farthest(runtime, {}, { username: "bob", password: "pw1" });
    const association = await associateThroughHop(hop, options(runtime));
    assert.deepEqual(failures, []);
    association.close();
  });

  test("the hop's refusal becomes a HopError with its reason; the control connection is closed", async () => {
    const { runtime, peers } = await network(grant([5, 7, 0, 1, 0, 0, 0, 0, 0, 0]));
    await assert.rejects(associateThroughHop(await farthest(runtime), options(runtime)), (error: unknown) => {
      assert.ok(error instanceof HopError);
      assert.equal(error.reason, "command_not_supported");
      assert.match(error.message, /refused UDP ASSOCIATE .*REP 0x07/);
      return true;
    });
    await peers[0]!.waitForClose();
  });

  test("a /S hop that speaks only SOCKS4, an HTTP hop and a SOCKS4 hop cannot carry UDP", async () => {
    const { runtime } = await network(async (peer) => {
      await peer.read(3);
      peer.send([0, 0x5b, 0, 0, 0, 0, 0, 0]);
      peer.close();
    });
    const expect = (pattern: RegExp) => (error: unknown) => {
      assert.ok(error instanceof HopError);
      assert.equal(error.reason, "command_not_supported");
      assert.match(error.message, pattern);
      return true;
    };
    await assert.rejects(
      associateThroughHop(await farthest(runtime, { protocol: "socks" }), options(runtime)),
      expect(/speaks only SOCKS4, which cannot carry UDP/),
    );
    await assert.rejects(
      associateThroughHop(await farthest(runtime, { protocol: "http" }), options(runtime)),
      expect(/\(http\) is an HTTP CONNECT proxy, which cannot carry UDP/),
    );
    await assert.rejects(
      associateThroughHop(await farthest(runtime, { protocol: "socks4" }), options(runtime)),
      expect(/\(socks4\) is a SOCKS4 server, which cannot carry UDP/),
    );
  });

  test("a hop that does not answer in time: ttl_expired", async () => {
    const { runtime } = await network(async () => {});
    await assert.rejects(
      associateThroughHop(await farthest(runtime), options(runtime, { timeoutMs: 30 })),
      (error: unknown) => error instanceof HopError && error.reason === "ttl_expired",
    );
  });

  test("the hop closing its control connection ends the association once", async () => {
    const { runtime, peers } = await network(grant([5, 0, 0, 1, 198, 51, 100, 50, 0x1b, 0x58]));
    const association = await associateThroughHop(await farthest(runtime), options(runtime));
    const ends: unknown[] = [];
    association.onEnd = (error) => ends.push(error);
    peers[0]!.end();
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(ends, [undefined]);
    assert.equal(association.socket.closed, true);
    association.close();
    assert.equal(ends.length, 1);
  });
});
