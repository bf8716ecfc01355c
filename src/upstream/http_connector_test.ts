import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Target } from "../protocol/target.ts";
import { nodeRuntime } from "../runtime/node.ts";
import { text, utf8 } from "../../tests/helpers/connection_io.ts";
import { roundTrip, runConnector, withStartedHop } from "../../tests/helpers/connector_harness.ts";
import { type FakeServer, type HttpHopOptions, startEchoServer, startHttpHop } from "../../tests/helpers/fake_hops.ts";
import { HopError } from "./hop_error.ts";
import { failureForHttpStatus, httpConnector } from "./http_connector.ts";

const runtime = nodeRuntime;
const credentials = { username: "carol", password: "pa:ss wörd" };

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

const echoByIp = (): Target => ({ kind: "ipv4", host: "127.0.0.1", port: echo.port });

function withHop<T>(
  options: HttpHopOptions,
  run: (hop: Awaited<ReturnType<typeof startHttpHop>>) => Promise<T>,
): Promise<T> {
  return withStartedHop(startHttpHop, options, run);
}

describe("failureForHttpStatus()", () => {
  test("maps the statuses a proxy uses for refusals", () => {
    assert.equal(failureForHttpStatus(407), "not_allowed");
    assert.equal(failureForHttpStatus(403), "not_allowed");
    assert.equal(failureForHttpStatus(502), "host_unreachable");
    assert.equal(failureForHttpStatus(503), "host_unreachable");
    assert.equal(failureForHttpStatus(504), "ttl_expired");
    assert.equal(failureForHttpStatus(400), "general_failure");
    assert.equal(failureForHttpStatus(500), "general_failure");
  });
});

describe("httpConnector()", () => {
  test("opens a tunnel and reports our local address toward the hop as bound", async () => {
    await withHop({}, async (hop) => {
      const run = await runConnector(runtime, hop, httpConnector({ hop: `127.0.0.1:${hop.port}` }), {
        kind: "domain",
        host: "localhost",
        port: echo.port,
      });
      assert.deepEqual(run.bound, {
        kind: "ipv4",
        host: run.connection.local.host,
        port: run.connection.local.port,
      });
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.requests, [{ kind: "domain", host: "localhost", port: echo.port }]);
      assert.deepEqual(hop.violations, []);
    });
  });

  test("sends Proxy-Authorization: Basic when credentials exist", async () => {
    await withHop({ credentials }, async (hop) => {
      const connector = httpConnector({ hop: `127.0.0.1:${hop.port}`, credentials: () => credentials });
      const run = await runConnector(runtime, hop, connector, echoByIp());
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.violations, []);
    });
  });

  test("accepts any 2xx, bare LF line endings, extra headers and answers split byte by byte", async () => {
    await withHop(
      {
        successStatus: "201 Whatever",
        headers: ["Proxy-Agent: fake", "X-Long:  folded"],
        bareLf: true,
        splitAnswers: true,
        earlyData: utf8("SSH-2.0-x\r\n"),
      },
      async (hop) => {
        const run = await runConnector(runtime, hop, httpConnector({ hop: `127.0.0.1:${hop.port}` }), echoByIp());
        assert.ok("SSH-2.0-x\r\n".startsWith(text(run.rest)), `rest ${JSON.stringify(text(run.rest))}`);
        assert.equal(await roundTrip(run, "SSH-2.0-x\r\nping"), "SSH-2.0-x\r\nping");
        assert.deepEqual(hop.violations, []);
      },
    );
  });

  test("keeps the bytes that follow the response head", async () => {
    await withHop({ earlyData: utf8("SSH-2.0-x\r\n") }, async (hop) => {
      const run = await runConnector(runtime, hop, httpConnector({ hop: `127.0.0.1:${hop.port}` }), echoByIp());
      assert.equal(text(run.rest), "SSH-2.0-x\r\n");
      assert.equal(await roundTrip(run, "SSH-2.0-x\r\nping"), "SSH-2.0-x\r\nping");
    });
  });

  test("brackets IPv6 targets", async (t) => {
    if (echo6 === null) return t.skip("IPv6 loopback is not available");
    const port = echo6.port;
    await withHop({}, async (hop) => {
      const run = await runConnector(runtime, hop, httpConnector({ hop: `127.0.0.1:${hop.port}` }), {
        kind: "ipv6",
        host: "::1",
        port,
      });
      assert.equal(await roundTrip(run), "ping");
      assert.deepEqual(hop.requests, [{ kind: "ipv6", host: "::1", port }]);
      assert.deepEqual(hop.violations, []);
    });
  });

  test("407 without credentials is not_allowed and says to add them", async () => {
    await withHop({ credentials }, async (hop) => {
      await assert.rejects(
        runConnector(runtime, hop, httpConnector({ hop: `fw:${hop.port}` }), {
          kind: "ipv4",
          host: "10.0.0.1",
          port: 22,
        }),
        (error: unknown) => {
          assert.ok(error instanceof HopError);
          assert.equal(error.hop, `fw:${hop.port}`);
          assert.equal(error.reason, "not_allowed");
          assert.equal(
            error.message,
            `Next hop fw:${hop.port} (http) refused CONNECT to 10.0.0.1:22: HTTP 407 Proxy Authentication Required (it needs credentials: add it to srelay.passwd)`,
          );
          return true;
        },
      );
      assert.deepEqual(hop.violations, []);
    });
  });

  test("407 with credentials says they were rejected", async () => {
    await withHop({ credentials }, async (hop) => {
      const connector = httpConnector({
        hop: `127.0.0.1:${hop.port}`,
        credentials: () => ({ username: "carol", password: "nope" }),
      });
      await assert.rejects(
        runConnector(runtime, hop, connector, echoByIp()),
        (error: unknown) =>
          error instanceof HopError && error.reason === "not_allowed" &&
          /credentials for carol were rejected/.test(error.message),
      );
    });
  });

  const statuses: Array<[string, string]> = [
    ["403 Forbidden", "not_allowed"],
    ["502 Bad Gateway", "host_unreachable"],
    ["503 Service Unavailable", "host_unreachable"],
    ["504 Gateway Timeout", "ttl_expired"],
    ["400 Bad Request", "general_failure"],
    ["302 Found", "general_failure"],
  ];
  for (const [status, reason] of statuses) {
    test(`${status} becomes ${reason}`, async () => {
      await withHop({ status }, async (hop) => {
        await assert.rejects(
          runConnector(runtime, hop, httpConnector({ hop: `127.0.0.1:${hop.port}` }), echoByIp()),
          (error: unknown) => {
            assert.ok(error instanceof HopError);
            assert.equal(error.reason, reason);
            assert.match(error.message, new RegExp(`: HTTP ${status}$`));
            return true;
          },
        );
      });
    });
  }

  test("a hop that answers with garbage is a general failure", async () => {
    await withHop({ garbage: utf8("\x05\x00garbage\r\n\r\n") }, async (hop) => {
      await assert.rejects(
        runConnector(runtime, hop, httpConnector({ hop: `127.0.0.1:${hop.port}` }), echoByIp()),
        (error: unknown) =>
          error instanceof HopError && error.reason === "general_failure" &&
          /sent a malformed answer to the HTTP CONNECT request/.test(error.message),
      );
    });
  });

  test("a hop that closes without answering is a general failure", async () => {
    await withHop({ garbage: new Uint8Array(0) }, async (hop) => {
      await assert.rejects(
        runConnector(runtime, hop, httpConnector({ hop: `127.0.0.1:${hop.port}` }), echoByIp()),
        (error: unknown) =>
          error instanceof HopError && error.reason === "general_failure" &&
          /closed the connection during the HTTP CONNECT request$/.test(error.message),
      );
    });
  });
});
