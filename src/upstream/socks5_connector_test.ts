import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { failureForSocks5Code } from "../protocol/reply.ts";
import type { Target } from "../protocol/target.ts";
import { nodeRuntime } from "../runtime/node.ts";
import { text, utf8 } from "../../tests/helpers/connection_io.ts";
import { roundTrip, runConnector, withStartedHop } from "../../tests/helpers/connector_harness.ts";
import {
  type FakeServer,
  type Socks5HopOptions,
  startEchoServer,
  startSocks5Hop,
} from "../../tests/helpers/fake_hops.ts";
import { HopError } from "./hop_error.ts";
import { NotSocks5Error, socks5Connector } from "./socks5_connector.ts";

const runtime = nodeRuntime;
const credentials = { username: "alice", password: "s3cret" };

let echo: FakeServer;
let echo6: FakeServer | null = null;
before(async () => {
  echo = await startEchoServer();
  echo6 = await startEchoServer({ host: "::1" }).catch(() => null);
});
after(async () => {
  await echo.close();
  await echo6?.close();
});

const echoByName = (): Target => ({ kind: "domain", host: "localhost", port: echo.port });
const echoByIp = (): Target => ({ kind: "ipv4", host: "127.0.0.1", port: echo.port });

function withHop<T>(
  options: Socks5HopOptions,
  run: (hop: Awaited<ReturnType<typeof startSocks5Hop>>) => Promise<T>,
): Promise<T> {
  return withStartedHop(startSocks5Hop, options, run);
}

function expectHopError(hop: { port: number }, reason: string, message: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof HopError, `expected HopError, got ${String(error)}`);
    assert.equal(error.hop, `127.0.0.1:${hop.port}`);
    assert.equal(error.reason, reason);
    assert.match(error.message, message);
    return true;
  };
}

describe("socks5Connector()", () => {
  test("offers only 'no authentication' without credentials and forwards names unresolved", async () => {
    await withHop({ expectMethods: [0x00] }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}` });
      const run = await runConnector(runtime, hop, connector, echoByName());
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.requests, [{ kind: "domain", host: "localhost", port: echo.port }]);
      assert.equal(run.bound.kind, "ipv4");
      assert.equal(run.bound.host, "127.0.0.1");
      assert.notEqual(run.bound.port, 0);
      assert.deepEqual(hop.violations, []);
    });
  });

  test("offers username/password only when credentials exist and authenticates with VER 1", async () => {
    await withHop({ credentials, expectMethods: [0x00, 0x02] }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}`, credentials: () => credentials });
      const run = await runConnector(runtime, hop, connector, echoByIp());
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.violations, []);
    });
  });

  test("accepts an RFC 1929 reply with VER 5", async () => {
    await withHop({ credentials, authReplyVersion: 5 }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}`, credentials: () => credentials });
      const run = await runConnector(runtime, hop, connector, echoByIp());
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.violations, []);
    });
  });

  test("uses no authentication when the hop picks it although credentials exist", async () => {
    await withHop({ expectMethods: [0x00, 0x02] }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}`, credentials: () => credentials });
      const run = await runConnector(runtime, hop, connector, echoByIp());
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.violations, []);
    });
  });

  test("reads replies written one byte at a time", async () => {
    await withHop({ credentials, splitAnswers: true }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}`, credentials: () => credentials });
      const run = await runConnector(runtime, hop, connector, echoByIp());
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.violations, []);
    });
  });

  test("keeps bytes that follow the reply", async () => {
    await withHop({ earlyData: utf8("banner\n") }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}` });
      const run = await runConnector(runtime, hop, connector, echoByIp());
      assert.equal(text(run.rest), "banner\n");
      assert.equal(await roundTrip(run, "banner\nping"), "banner\nping");
    });
  });

  test("sends IPv6 targets as ATYP 4", async (t) => {
    if (echo6 === null) return t.skip("IPv6 loopback is not available");
    const port = echo6.port;
    await withHop({}, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}` });
      const run = await runConnector(runtime, hop, connector, { kind: "ipv6", host: "::1", port });
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.requests, [{ kind: "ipv6", host: "::1", port }]);
      assert.deepEqual(hop.violations, []);
    });
  });

  test("speaks to a hop on an IPv6 address", async (t) => {
    if (echo6 === null) return t.skip("IPv6 loopback is not available");
    await withHop({ host: "::1" }, async (hop) => {
      const connector = socks5Connector({ hop: `[::1]:${hop.port}` });
      const run = await runConnector(runtime, hop, connector, echoByIp());
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.violations, []);
    });
  });

  test("a hop that wants credentials we lack is not_allowed with a hint", async () => {
    await withHop({ credentials, expectMethods: [0x00] }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}` });
      await assert.rejects(
        runConnector(runtime, hop, connector, echoByIp()),
        expectHopError(hop, "not_allowed", /accepts none of the offered authentication methods: .*srelay\.passwd/),
      );
      assert.deepEqual(hop.violations, []);
    });
  });

  test("a hop that picks username/password without the offer is not_allowed", async () => {
    await withHop({ forceMethod: 0x02 }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}` });
      await assert.rejects(
        runConnector(runtime, hop, connector, echoByIp()),
        expectHopError(hop, "not_allowed", /asks for username\/password authentication: .*srelay\.passwd/),
      );
    });
  });

  test("a hop that picks a method never offered is a general failure", async () => {
    await withHop({ forceMethod: 0x01 }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}` });
      await assert.rejects(
        runConnector(runtime, hop, connector, echoByIp()),
        expectHopError(hop, "general_failure", /chose authentication method 0x01, which was not offered/),
      );
    });
  });

  test("rejected credentials are not_allowed", async () => {
    await withHop({ credentials }, async (hop) => {
      const connector = socks5Connector({
        hop: `127.0.0.1:${hop.port}`,
        credentials: () => ({ username: "alice", password: "wrong" }),
      });
      await assert.rejects(
        runConnector(runtime, hop, connector, echoByIp()),
        expectHopError(hop, "not_allowed", /rejected username\/password authentication as alice$/),
      );
      assert.deepEqual(hop.violations, []);
    });
  });

  for (const code of [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x42]) {
    const reason = failureForSocks5Code(code);
    test(`REP 0x${code.toString(16).padStart(2, "0")} becomes ${reason}`, async () => {
      await withHop({ replyCode: code }, async (hop) => {
        const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}` });
        await assert.rejects(
          runConnector(runtime, hop, connector, { kind: "domain", host: "db.internal", port: 5432 }),
          expectHopError(
            hop,
            reason,
            new RegExp(`^Next hop 127\\.0\\.0\\.1:${hop.port} \\(socks5\\) refused CONNECT to db\\.internal:5432: `),
          ),
        );
      });
    });
  }

  test("an answer to the greeting that is not SOCKS5 is a NotSocks5Error", async () => {
    await withHop({ greetingAnswer: utf8("HTTP/1.0 400 Bad Request\r\n\r\n") }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}` });
      await assert.rejects(runConnector(runtime, hop, connector, echoByIp()), (error: unknown) => {
        assert.ok(error instanceof NotSocks5Error);
        assert.ok(error instanceof HopError);
        assert.equal(error.reason, "general_failure");
        assert.match(error.message, /did not answer the SOCKS5 greeting as a SOCKS5 server/);
        return true;
      });
    });
  });

  test("a hop that closes at the greeting is a NotSocks5Error", async () => {
    await withHop({ closeAt: "greeting" }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}` });
      await assert.rejects(runConnector(runtime, hop, connector, echoByIp()), NotSocks5Error);
    });
  });

  test("a hop that closes at the request is a general failure", async () => {
    await withHop({ closeAt: "request" }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}` });
      await assert.rejects(runConnector(runtime, hop, connector, echoByIp()), (error: unknown) => {
        assert.ok(error instanceof HopError && !(error instanceof NotSocks5Error));
        assert.equal(error.reason, "general_failure");
        assert.match(error.message, /during the SOCKS5 CONNECT request$/);
        return true;
      });
    });
  });

  test("a hop that does not answer in time is ttl_expired", async () => {
    await withHop({ silent: true }, async (hop) => {
      const connector = socks5Connector({ hop: `127.0.0.1:${hop.port}` });
      await assert.rejects(
        runConnector(runtime, hop, connector, echoByIp(), 50),
        expectHopError(hop, "ttl_expired", /did not answer in time during the SOCKS5 greeting$/),
      );
    });
  });
});
