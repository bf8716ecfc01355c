import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Hop } from "../config/srelay_conf.ts";
import type { Target } from "../protocol/target.ts";
import { nodeRuntime } from "../runtime/node.ts";
import { createResolver } from "../runtime/resolver.ts";
import { collect, text, utf8 } from "../../tests/helpers/connection_io.ts";
import { createConnectionPair } from "../../tests/helpers/memory_connection.ts";
import {
  closedPort,
  type FakeHop,
  type FakeServer,
  startEchoServer,
  startHttpHop,
  startSocks4Hop,
  startSocks5Hop,
} from "../../tests/helpers/fake_hops.ts";
import { createChainDialer, hopTarget } from "./chain_dialer.ts";
import type { Dialer, DialResult } from "./dialer.ts";
import { createDirectDialer } from "./direct_dialer.ts";
import { HopError } from "./hop_error.ts";

const direct = createDirectDialer({ runtime: nodeRuntime, resolver: createResolver() });
const context = () => ({ signal: AbortSignal.timeout(5000) });

let echo: FakeServer;
let ipv6 = true;
const servers: FakeServer[] = [];
before(async () => {
  echo = await startEchoServer();
  const probe = await startEchoServer({ host: "::1" }).catch(() => null);
  ipv6 = probe !== null;
  await probe?.close();
});
after(async () => {
  await echo.close();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

const echoTarget = (): Target => ({ kind: "ipv4", host: "127.0.0.1", port: echo.port });

/** Starts a fake hop that the suite closes at the end. */
async function hop<T extends FakeServer>(started: Promise<T>): Promise<T> {
  const server = await started;
  servers.push(server);
  return server;
}

function as(server: FakeServer, protocol: Hop["protocol"], host = server.host): Hop {
  return { host, port: server.port, protocol };
}

/** Sends "ping" and returns everything received (rest included) once `expected.length` bytes arrived. */
async function roundTrip(result: DialResult, expected = "ping"): Promise<string> {
  const received = collect(result.connection, result.rest);
  result.connection.write(utf8("ping"));
  const bytes = await received.waitForBytes(expected.length);
  result.connection.close();
  return text(bytes);
}

function noViolations(...hops: FakeHop[]): void {
  for (const fake of hops) assert.deepEqual(fake.violations, []);
}

describe("hopTarget()", () => {
  test("classifies hop hosts", () => {
    assert.deepEqual(hopTarget({ host: "10.0.0.1", port: 1, protocol: "socks" }), {
      kind: "ipv4",
      host: "10.0.0.1",
      port: 1,
    });
    assert.deepEqual(hopTarget({ host: "::1", port: 2, protocol: "socks" }), { kind: "ipv6", host: "::1", port: 2 });
    assert.deepEqual(hopTarget({ host: "fw", port: 3, protocol: "http" }), { kind: "domain", host: "fw", port: 3 });
  });
});

describe("createChainDialer()", () => {
  test("dials directly without hops", async () => {
    const dialer = createChainDialer({ direct, hops: [] });
    const result = await dialer.dial(echoTarget(), context());
    assert.equal(result.connection.remote.port, echo.port);
    assert.equal(await roundTrip(result), "ping");
  });

  test("goes through SOCKS5 then HTTP (hops listed farthest first)", async () => {
    const near = await hop(startSocks5Hop());
    const far = await hop(startHttpHop({ earlyData: utf8("hi ") }));
    const dialer = createChainDialer({ direct, hops: [as(far, "http"), as(near, "socks5")] });
    const result = await dialer.dial(echoTarget(), context());
    assert.deepEqual(near.requests, [{ kind: "ipv4", host: "127.0.0.1", port: far.port }]);
    assert.deepEqual(far.requests, [{ kind: "ipv4", host: "127.0.0.1", port: echo.port }]);
    assert.equal(text(result.rest), "hi ");
    assert.deepEqual(result.bound, {
      kind: "ipv4",
      host: result.connection.local.host,
      port: result.connection.local.port,
    });
    assert.equal(await roundTrip(result, "hi ping"), "hi ping");
    noViolations(near, far);
  });

  test("goes through SOCKS4, SOCKS5 and HTTP, sending hop names unresolved", async () => {
    const near = await hop(startSocks4Hop({ expectUserId: "srelay" }));
    const middle = await hop(startSocks5Hop());
    const far = await hop(startHttpHop());
    const dialer = createChainDialer({
      direct,
      hops: [as(far, "http", "localhost"), as(middle, "socks5", "localhost"), as(near, "socks4")],
    });
    const result = await dialer.dial({ kind: "domain", host: "localhost", port: echo.port }, context());
    assert.deepEqual(near.requests, [{ kind: "domain", host: "localhost", port: middle.port }]);
    assert.deepEqual(middle.requests, [{ kind: "domain", host: "localhost", port: far.port }]);
    assert.deepEqual(far.requests, [{ kind: "domain", host: "localhost", port: echo.port }]);
    assert.equal(await roundTrip(result), "ping");
    noViolations(near, middle, far);
  });

  test("reports the farthest SOCKS5 hop's BND", async () => {
    const near = await hop(startSocks4Hop());
    const far = await hop(startSocks5Hop());
    const dialer = createChainDialer({ direct, hops: [as(far, "socks5"), as(near, "socks4")] });
    const result = await dialer.dial(echoTarget(), context());
    assert.equal(result.bound.kind, "ipv4");
    assert.equal(result.bound.host, "127.0.0.1");
    assert.notEqual(result.bound.port, result.connection.local.port);
    assert.equal(await roundTrip(result), "ping");
  });

  test("a /S hop that speaks SOCKS5 is used with one connection", async () => {
    const fake = await hop(startSocks5Hop());
    const result = await createChainDialer({ direct, hops: [as(fake, "socks")] }).dial(echoTarget(), context());
    assert.equal(await roundTrip(result), "ping");
    assert.equal(fake.accepted, 1);
    noViolations(fake);
  });

  test("a /S nearest hop that rejects SOCKS5 is redialled with SOCKS4", async () => {
    const fake = await hop(startSocks4Hop({ onSocks5: "reject" }));
    const result = await createChainDialer({ direct, hops: [as(fake, "socks")] }).dial(echoTarget(), context());
    assert.equal(await roundTrip(result), "ping");
    assert.equal(fake.accepted, 2);
    assert.equal(fake.requests.length, 1);
    noViolations(fake);
  });

  test("a /S hop behind another hop that closes on SOCKS5 is reached again with SOCKS4", async () => {
    const near = await hop(startSocks5Hop());
    const far = await hop(startSocks4Hop({ onSocks5: "close" }));
    const dialer = createChainDialer({ direct, hops: [as(far, "socks"), as(near, "socks5")] });
    const result = await dialer.dial(echoTarget(), context());
    assert.equal(await roundTrip(result), "ping");
    assert.equal(near.accepted, 2);
    assert.equal(far.accepted, 2);
    assert.equal(far.requests.length, 1);
    noViolations(near, far);
  });

  test("an explicit SOCKS5 hop that is not SOCKS5 fails without a retry", async () => {
    const fake = await hop(startSocks4Hop({ onSocks5: "reject" }));
    await assert.rejects(
      createChainDialer({ direct, hops: [as(fake, "socks5")] }).dial(echoTarget(), context()),
      (error: unknown) =>
        error instanceof HopError && error.reason === "general_failure" &&
        /did not answer the SOCKS5 greeting as a SOCKS5 server/.test(error.message),
    );
    assert.equal(fake.accepted, 1);
  });

  test("names the first hop that failed and never reaches the hops behind it", async () => {
    const near = await hop(startSocks5Hop());
    const middle = await hop(startSocks5Hop({ replyCode: 0x05 }));
    const far = await hop(startSocks5Hop());
    const dialer = createChainDialer({ direct, hops: [as(far, "socks5"), as(middle, "socks5"), as(near, "socks5")] });
    await assert.rejects(dialer.dial(echoTarget(), context()), (error: unknown) => {
      assert.ok(error instanceof HopError);
      assert.equal(error.hop, `127.0.0.1:${middle.port}`);
      assert.equal(error.reason, "connection_refused");
      assert.match(error.message, new RegExp(`refused CONNECT to 127\\.0\\.0\\.1:${far.port}: connection refused`));
      return true;
    });
    assert.equal(far.accepted, 0);
  });

  test("an unreachable nearest hop keeps the network reason", async () => {
    const port = await closedPort();
    const dialer = createChainDialer({ direct, hops: [{ host: "127.0.0.1", port, protocol: "http" }] });
    await assert.rejects(dialer.dial(echoTarget(), context()), (error: unknown) => {
      assert.ok(error instanceof HopError);
      assert.equal(error.hop, `127.0.0.1:${port}`);
      assert.equal(error.reason, "connection_refused");
      assert.match(error.message, new RegExp(`^Next hop 127\\.0\\.0\\.1:${port} \\(http\\) is unreachable: `));
      return true;
    });
  });

  test("a nearest hop whose name does not resolve is host_unreachable", async () => {
    const dialer = createChainDialer({
      direct,
      hops: [{ host: "no-such-hop.invalid", port: 1080, protocol: "socks" }],
    });
    await assert.rejects(dialer.dial(echoTarget(), context()), (error: unknown) => {
      assert.ok(error instanceof HopError);
      assert.equal(error.hop, "no-such-hop.invalid:1080");
      assert.equal(error.reason, "host_unreachable");
      return true;
    });
  });

  test("looks up credentials per hop", async () => {
    const credentials = { username: "u", password: "p" };
    const near = await hop(startSocks5Hop({ expectMethods: [0x00] }));
    const far = await hop(startSocks5Hop({ credentials, expectMethods: [0x00, 0x02] }));
    const asked: Hop[] = [];
    const dialer = createChainDialer({
      direct,
      hops: [as(far, "socks5"), as(near, "socks5")],
      credentials: (which) => {
        asked.push(which);
        return which.port === far.port ? credentials : null;
      },
    });
    const result = await dialer.dial(echoTarget(), context());
    assert.equal(await roundTrip(result), "ping");
    assert.deepEqual(asked.map((which) => which.port), [near.port, far.port]);
    noViolations(near, far);
  });

  test("sends the configured SOCKS4 USERID, else the client's", async () => {
    const configured = await hop(startSocks4Hop({ expectUserId: "relay" }));
    const fromClient = await hop(startSocks4Hop({ expectUserId: "dave" }));
    const first = await createChainDialer({ direct, hops: [as(configured, "socks4")], socks4UserId: "relay" })
      .dial(echoTarget(), { ...context(), userId: "dave" });
    const second = await createChainDialer({ direct, hops: [as(fromClient, "socks4")] })
      .dial(echoTarget(), { ...context(), userId: "dave" });
    assert.equal(await roundTrip(first), "ping");
    assert.equal(await roundTrip(second), "ping");
    noViolations(configured, fromClient);
  });

  test("reaches a hop on an IPv6 address", async (t) => {
    if (!ipv6) return t.skip("IPv6 loopback is not available");
    const fake = await hop(startSocks5Hop({ host: "::1" }));
    const dialer = createChainDialer({ direct, hops: [as(fake, "socks5")] });
    const result = await dialer.dial(echoTarget(), context());
    assert.equal(result.connection.remote.host, "::1");
    assert.equal(await roundTrip(result), "ping");
    noViolations(fake);
  });

  test("fails with a HopError when the handshake times out", async () => {
    const fake = await hop(startSocks5Hop({ silent: true }));
    const dialer = createChainDialer({ direct, hops: [as(fake, "socks5")], handshakeTimeoutMs: 30 });
    await assert.rejects(
      dialer.dial(echoTarget(), context()),
      (error: unknown) => error instanceof HopError && error.reason === "ttl_expired",
    );
  });

  test("passes a direct dial through a Dialer-like first leg", async () => {
    const calls: Target[] = [];
    const recording: Dialer = {
      dial(target, dialContext) {
        calls.push(target);
        return direct.dial(target, dialContext);
      },
    };
    const fake = await hop(startSocks5Hop());
    const result = await createChainDialer({ direct: recording, hops: [as(fake, "socks5", "localhost")] })
      .dial(echoTarget(), context());
    assert.deepEqual(calls, [{ kind: "domain", host: "localhost", port: fake.port }]);
    assert.equal(await roundTrip(result), "ping");
  });

  test("returns the bytes after the last reply and says when the hop's FIN came with them", async () => {
    const [ours, hopSide] = createConnectionPair();
    let received = 0;
    hopSide.setHandlers({
      onData(chunk) {
        received += chunk.length;
        if (received === 3) hopSide.write(Uint8Array.of(5, 0));
        else {
          hopSide.write(Uint8Array.of(5, 0, 0, 1, 192, 0, 2, 1, 0x1f, 0x90, ...utf8("bye")));
          hopSide.closeWrite();
        }
      },
      onEnd() {},
      onClose() {},
    });
    const scripted: Dialer = {
      dial: () => Promise.resolve({ connection: ours, rest: new Uint8Array(0), bound: echoTarget() }),
    };
    const dialer = createChainDialer({
      direct: scripted,
      hops: [{ host: "192.0.2.9", port: 1080, protocol: "socks5" }],
    });
    const result = await dialer.dial(echoTarget(), context());
    assert.deepEqual(result.bound, { kind: "ipv4", host: "192.0.2.1", port: 8080 });
    assert.equal(text(result.rest), "bye");
    assert.equal(result.ended, true);
    result.connection.close();
  });
});
