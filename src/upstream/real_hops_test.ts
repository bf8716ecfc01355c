/**
 * The connectors and the chain dialer against real next hops from Debian:
 * microsocks (SOCKS5, with and without RFC 1929), Dante (SOCKS5 and SOCKS4)
 * and tinyproxy (HTTP CONNECT, with and without Basic auth), each started
 * on loopback with a port picked at run time, reaching a local echo server.
 * A suite whose daemon is not installed is skipped with the reason.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Hop } from "../config/srelay_conf.ts";
import type { Target } from "../protocol/target.ts";
import { nodeRuntime } from "../runtime/node.ts";
import { createResolver } from "../runtime/resolver.ts";
import { collect, text, utf8 } from "../../tests/helpers/connection_io.ts";
import { type ConnectorRun, runConnector } from "../../tests/helpers/connector_harness.ts";
import { closedPort, type FakeServer, startEchoServer } from "../../tests/helpers/fake_hops.ts";
import {
  NO_DANTE,
  NO_MICROSOCKS,
  NO_TINYPROXY,
  startDante,
  startMicrosocks,
  startTinyproxy,
  withPeer,
} from "../../tests/helpers/next_hops.ts";
import type { PeerProcess } from "../../tests/helpers/peer_process.ts";
import { createChainDialer } from "./chain_dialer.ts";
import type { DialResult } from "./dialer.ts";
import { createDirectDialer } from "./direct_dialer.ts";
import { HopError } from "./hop_error.ts";
import { httpConnector } from "./http_connector.ts";
import { socks4Connector } from "./socks4_connector.ts";
import { socks5Connector } from "./socks5_connector.ts";

const runtime = nodeRuntime;
const HOST = "127.0.0.1";
const credentials = { username: "relayuser", password: "relaypass" };
const direct = createDirectDialer({ runtime, resolver: createResolver() });

let echo: FakeServer;
before(async () => {
  echo = await startEchoServer();
});
after(async () => {
  await echo.close();
});

const echoByIp = (): Target => ({ kind: "ipv4", host: HOST, port: echo.port });
const echoByName = (): Target => ({ kind: "domain", host: "localhost", port: echo.port });

async function roundTrip(run: ConnectorRun | DialResult): Promise<string> {
  const received = collect(run.connection, run.rest);
  run.connection.write(utf8("ping through a real hop"));
  const bytes = await received.waitForBytes("ping through a real hop".length);
  run.connection.close();
  return text(bytes);
}

const startMicrosocksHop = (auth: boolean) => () => startMicrosocks(auth ? { credentials } : {});
const startTinyproxyHop = (auth: boolean) => () =>
  startTinyproxy({ connectPorts: [echo.port], allow: HOST, ...(auth ? { credentials } : {}) });

const hopName = (peer: PeerProcess) => `${peer.host}:${peer.port}`;
const hopOf = (peer: PeerProcess, protocol: Hop["protocol"]): Hop => ({
  host: peer.host,
  port: peer.port,
  protocol,
});

describe("microsocks as a SOCKS5 hop", { skip: NO_MICROSOCKS }, () => {
  test("connects to an IP target and to a name it resolves itself", async () => {
    await withPeer(startMicrosocksHop(false), async (peer) => {
      const connector = socks5Connector({ hop: hopName(peer) });
      assert.equal(
        await roundTrip(await runConnector(runtime, peer, connector, echoByIp())),
        "ping through a real hop",
      );
      assert.equal(
        await roundTrip(await runConnector(runtime, peer, connector, echoByName())),
        "ping through a real hop",
      );
    });
  });

  test("a /S hop is spoken to with SOCKS5 through the chain dialer", async () => {
    await withPeer(startMicrosocksHop(false), async (peer) => {
      const dialer = createChainDialer({ direct, hops: [hopOf(peer, "socks")] });
      assert.equal(
        await roundTrip(await dialer.dial(echoByIp(), { signal: AbortSignal.timeout(5000) })),
        "ping through a real hop",
      );
    });
  });

  test("a refused destination comes back as connection_refused", async () => {
    const port = await closedPort();
    await withPeer(startMicrosocksHop(false), async (peer) => {
      await assert.rejects(
        runConnector(runtime, peer, socks5Connector({ hop: hopName(peer) }), { kind: "ipv4", host: HOST, port }),
        (error: unknown) =>
          error instanceof HopError && error.reason === "connection_refused" && error.hop === hopName(peer),
      );
    });
  });

  test("username/password authentication succeeds with the right credentials", async () => {
    await withPeer(startMicrosocksHop(true), async (peer) => {
      const connector = socks5Connector({ hop: hopName(peer), credentials: () => credentials });
      assert.equal(
        await roundTrip(await runConnector(runtime, peer, connector, echoByIp())),
        "ping through a real hop",
      );
    });
  });

  test("without credentials the hop is not_allowed with a hint", async () => {
    await withPeer(startMicrosocksHop(true), async (peer) => {
      await assert.rejects(
        runConnector(runtime, peer, socks5Connector({ hop: hopName(peer) }), echoByIp()),
        (error: unknown) =>
          error instanceof HopError && error.reason === "not_allowed" && /srelay\.passwd/.test(error.message),
      );
    });
  });

  test("wrong credentials are not_allowed", async () => {
    await withPeer(startMicrosocksHop(true), async (peer) => {
      const connector = socks5Connector({
        hop: hopName(peer),
        credentials: () => ({ username: credentials.username, password: "wrong" }),
      });
      await assert.rejects(
        runConnector(runtime, peer, connector, echoByIp()),
        (error: unknown) =>
          error instanceof HopError && error.reason === "not_allowed" &&
          /rejected username\/password authentication/.test(error.message),
      );
    });
  });
});

describe("Dante as a SOCKS5 and SOCKS4 hop", { skip: NO_DANTE }, () => {
  test("speaks SOCKS5 (IP and name targets) and SOCKS4", async () => {
    await withPeer(startDante, async (peer) => {
      const v5 = socks5Connector({ hop: hopName(peer) });
      assert.equal(await roundTrip(await runConnector(runtime, peer, v5, echoByIp())), "ping through a real hop");
      assert.equal(await roundTrip(await runConnector(runtime, peer, v5, echoByName())), "ping through a real hop");
      const v4 = socks4Connector({ hop: hopName(peer) });
      assert.equal(await roundTrip(await runConnector(runtime, peer, v4, echoByIp())), "ping through a real hop");
    });
  });

  test("a refused destination is a HopError naming Dante", async () => {
    const port = await closedPort();
    await withPeer(startDante, async (peer) => {
      await assert.rejects(
        runConnector(runtime, peer, socks5Connector({ hop: hopName(peer) }), { kind: "ipv4", host: HOST, port }),
        (error: unknown) =>
          error instanceof HopError && error.reason === "connection_refused" && error.hop === hopName(peer),
      );
    });
  });
});

describe("tinyproxy as an HTTP CONNECT hop", { skip: NO_TINYPROXY }, () => {
  test("opens a tunnel", async () => {
    await withPeer(startTinyproxyHop(false), async (peer) => {
      const run = await runConnector(runtime, peer, httpConnector({ hop: hopName(peer) }), echoByIp());
      assert.equal(run.bound.host, run.connection.local.host);
      assert.equal(await roundTrip(run), "ping through a real hop");
    });
  });

  test("a port outside ConnectPort is not_allowed (403)", async () => {
    const port = await closedPort();
    await withPeer(startTinyproxyHop(false), async (peer) => {
      await assert.rejects(
        runConnector(runtime, peer, httpConnector({ hop: hopName(peer) }), { kind: "ipv4", host: HOST, port }),
        (error: unknown) =>
          error instanceof HopError && error.reason === "not_allowed" && /HTTP 403/.test(error.message),
      );
    });
  });

  test("Basic auth: works with credentials, 407 without", async () => {
    await withPeer(startTinyproxyHop(true), async (peer) => {
      const withCredentials = httpConnector({ hop: hopName(peer), credentials: () => credentials });
      assert.equal(
        await roundTrip(await runConnector(runtime, peer, withCredentials, echoByIp())),
        "ping through a real hop",
      );
      await assert.rejects(
        runConnector(runtime, peer, httpConnector({ hop: hopName(peer) }), echoByIp()),
        (error: unknown) =>
          error instanceof HopError && error.reason === "not_allowed" &&
          /HTTP 407 .*add it to srelay\.passwd/.test(error.message),
      );
    });
  });
});

describe("a chain of real hops", { skip: NO_MICROSOCKS || NO_DANTE || NO_TINYPROXY }, () => {
  test("microsocks (SOCKS5, auth) -> Dante (SOCKS4) -> tinyproxy (HTTP) -> echo", async () => {
    await withPeer(startMicrosocksHop(true), async (near) => {
      await withPeer(startDante, async (middle) => {
        await withPeer(startTinyproxyHop(false), async (far) => {
          const dialer = createChainDialer({
            direct,
            hops: [hopOf(far, "http"), hopOf(middle, "socks4"), hopOf(near, "socks5")],
            credentials: (hop) => (hop.port === near.port ? credentials : null),
          });
          const result = await dialer.dial(echoByIp(), { signal: AbortSignal.timeout(5000) });
          assert.equal(await roundTrip(result), "ping through a real hop");
        });
      });
    });
  });
});
