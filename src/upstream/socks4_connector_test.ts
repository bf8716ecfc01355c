import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Target } from "../protocol/target.ts";
import { nodeRuntime } from "../runtime/node.ts";
import { text, utf8 } from "../../tests/helpers/connection_io.ts";
import { roundTrip, runConnector, withStartedHop } from "../../tests/helpers/connector_harness.ts";
import {
  type FakeServer,
  type Socks4HopOptions,
  startEchoServer,
  startSocks4Hop,
} from "../../tests/helpers/fake_hops.ts";
import { HopError } from "./hop_error.ts";
import { socks4Connector } from "./socks4_connector.ts";

const runtime = nodeRuntime;

let echo: FakeServer;
before(async () => {
  echo = await startEchoServer();
});
after(async () => {
  await echo.close();
});

const echoByIp = (): Target => ({ kind: "ipv4", host: "127.0.0.1", port: echo.port });

function withHop<T>(
  options: Socks4HopOptions,
  run: (hop: Awaited<ReturnType<typeof startSocks4Hop>>) => Promise<T>,
): Promise<T> {
  return withStartedHop(startSocks4Hop, options, run);
}

describe("socks4Connector()", () => {
  test("connects to an IPv4 target with the default USERID and reports the bound IPv4 address", async () => {
    await withHop({ expectUserId: "srelay" }, async (hop) => {
      const run = await runConnector(runtime, hop, socks4Connector({ hop: `127.0.0.1:${hop.port}` }), echoByIp());
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.requests, [{ kind: "ipv4", host: "127.0.0.1", port: echo.port }]);
      assert.equal(run.bound.kind, "ipv4");
      assert.equal(run.bound.host, "127.0.0.1");
      assert.notEqual(run.bound.port, 0);
      assert.deepEqual(hop.violations, []);
    });
  });

  test("sends names as SOCKS4A with the configured USERID", async () => {
    await withHop({ expectUserId: "bob" }, async (hop) => {
      const connector = socks4Connector({ hop: `127.0.0.1:${hop.port}`, userId: "bob" });
      const run = await runConnector(runtime, hop, connector, { kind: "domain", host: "localhost", port: echo.port });
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.requests, [{ kind: "domain", host: "localhost", port: echo.port }]);
      assert.deepEqual(hop.violations, []);
    });
  });

  test("reads a reply written one byte at a time", async () => {
    await withHop({ splitAnswers: true }, async (hop) => {
      const run = await runConnector(runtime, hop, socks4Connector({ hop: `127.0.0.1:${hop.port}` }), echoByIp());
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.violations, []);
    });
  });

  test("keeps the bytes that follow the reply", async () => {
    await withHop({ earlyData: utf8("hello") }, async (hop) => {
      const run = await runConnector(runtime, hop, socks4Connector({ hop: `127.0.0.1:${hop.port}` }), echoByIp());
      assert.equal(text(run.rest), "hello");
      assert.equal(await roundTrip(run, "helloping"), "helloping");
    });
  });

  test("refuses IPv6 targets before sending anything", async () => {
    await withHop({}, async (hop) => {
      const connector = socks4Connector({ hop: `127.0.0.1:${hop.port}` });
      await assert.rejects(
        runConnector(runtime, hop, connector, { kind: "ipv6", host: "2001:db8::1", port: 22 }),
        (error: unknown) => {
          assert.ok(error instanceof HopError);
          assert.equal(error.hop, `127.0.0.1:${hop.port}`);
          assert.equal(error.reason, "address_type_not_supported");
          assert.match(
            error.message,
            /cannot be asked for \[2001:db8::1\]:22: SOCKS4 carries IPv4 addresses and names only/,
          );
          return true;
        },
      );
      assert.deepEqual(hop.requests, []);
    });
  });

  const refusals: Array<[number, string, RegExp]> = [
    [91, "general_failure", /request rejected or failed \(CD 91\)$/],
    [92, "not_allowed", /identd \(CD 92\)$/],
    [93, "not_allowed", /different user ID \(CD 93\)$/],
    [17, "general_failure", /unknown reply code \(CD 17\)$/],
  ];
  for (const [code, reason, message] of refusals) {
    test(`CD ${code} becomes ${reason}`, async () => {
      await withHop({ replyCode: code }, async (hop) => {
        const connector = socks4Connector({ hop: `127.0.0.1:${hop.port}` });
        await assert.rejects(runConnector(runtime, hop, connector, echoByIp()), (error: unknown) => {
          assert.ok(error instanceof HopError);
          assert.equal(error.hop, `127.0.0.1:${hop.port}`);
          assert.equal(error.reason, reason);
          assert.match(error.message, /^Next hop 127\.0\.0\.1:\d+ \(socks4\) refused CONNECT to 127\.0\.0\.1:\d+: /);
          assert.match(error.message, message);
          return true;
        });
      });
    });
  }

  test("a hop that answers with garbage is a general failure", async () => {
    await withHop({ garbage: utf8("500 nope\r\n") }, async (hop) => {
      const connector = socks4Connector({ hop: `127.0.0.1:${hop.port}` });
      await assert.rejects(runConnector(runtime, hop, connector, echoByIp()), (error: unknown) => {
        assert.ok(error instanceof HopError);
        assert.equal(error.reason, "general_failure");
        assert.match(error.message, /sent a malformed answer to the SOCKS4 CONNECT request/);
        return true;
      });
    });
  });

  test("a hop that closes before replying is a general failure", async () => {
    await withHop({ garbage: new Uint8Array(0) }, async (hop) => {
      const connector = socks4Connector({ hop: `127.0.0.1:${hop.port}` });
      await assert.rejects(runConnector(runtime, hop, connector, echoByIp()), (error: unknown) => {
        assert.ok(error instanceof HopError);
        assert.equal(error.reason, "general_failure");
        assert.match(error.message, /closed the connection during the SOCKS4 CONNECT request$/);
        return true;
      });
    });
  });
});
