// The endpoint's answers (/metrics, /healthz, 404, 405) and where it listens.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type HttpServeOptions, type HttpServer, NetError } from "../runtime/types.ts";
import { CONTENT_TYPE } from "./exposition.ts";
import { FAMILIES_PATH, HEALTH_PATH, METRICS_PATH, metricsHandler, serveMetrics } from "./http_endpoint.ts";
import { Registry } from "./registry.ts";

function registry(): Registry {
  const r = new Registry();
  r.counter("demo_total", "Demo.").inc(4);
  return r;
}

describe("metricsHandler()", () => {
  test("/metrics: the text format with its content type", async () => {
    const handler = metricsHandler({ families: () => registry().collect(), accepting: () => true });
    const response = await handler({ method: "GET", path: METRICS_PATH });
    assert.equal(response.status, 200);
    assert.equal(response.headers["content-type"], CONTENT_TYPE);
    assert.match(response.body, /^demo_total 4$/m);
  });

  test("/healthz: 200 while accepting, 503 while draining", async () => {
    let accepting = true;
    const handler = metricsHandler({ families: () => [], accepting: () => accepting });
    assert.equal((await handler({ method: "GET", path: HEALTH_PATH })).status, 200);
    accepting = false;
    const draining = await handler({ method: "GET", path: HEALTH_PATH });
    assert.equal(draining.status, 503);
    assert.equal(draining.body, "draining\n");
    assert.equal((await handler({ method: "GET", path: METRICS_PATH })).status, 200, "metrics still answer");
  });

  test("other paths are 404, other methods 405; HEAD is allowed", async () => {
    const handler = metricsHandler({ families: () => [], accepting: () => true });
    assert.equal((await handler({ method: "GET", path: "/" })).status, 404);
    assert.equal((await handler({ method: "GET", path: "/metrics/" })).status, 404);
    assert.equal((await handler({ method: "GET", path: FAMILIES_PATH })).status, 404, "only for workers");
    const post = await handler({ method: "POST", path: METRICS_PATH });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, "GET, HEAD");
    assert.equal((await handler({ method: "HEAD", path: HEALTH_PATH })).status, 200);
  });

  test("a worker's endpoint also serves the families as JSON", async () => {
    const handler = metricsHandler({ families: () => registry().collect(), accepting: () => true, json: true });
    const response = await handler({ method: "GET", path: FAMILIES_PATH });
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(response.body), registry().collect());
  });
});

describe("serveMetrics()", () => {
  function fakeRuntime(fail: (host: string) => NetError | null) {
    const asked: string[] = [];
    return {
      asked,
      runtime: {
        serveHttp(options: HttpServeOptions): Promise<HttpServer> {
          asked.push(options.host);
          const error = fail(options.host);
          if (error !== null) return Promise.reject(error);
          return Promise.resolve({
            address: { host: options.host, port: options.port, family: options.host.includes(":") ? 6 : 4 },
            close: () => Promise.resolve(),
          });
        },
      },
    };
  }
  const handler = metricsHandler({ families: () => [], accepting: () => true });

  test("a host is used as given", async () => {
    const fake = fakeRuntime(() => null);
    const server = await serveMetrics(fake.runtime, "127.0.0.1", 9100, handler);
    assert.deepEqual(fake.asked, ["127.0.0.1"]);
    assert.equal(server.address.port, 9100);
  });

  test(":PORT serves every address: IPv6 and IPv4, or IPv4 where IPv6 is unavailable", async () => {
    const both = fakeRuntime(() => null);
    await serveMetrics(both.runtime, null, 9100, handler);
    assert.deepEqual(both.asked, ["::"]);
    const v4 = fakeRuntime((host) => host === "::" ? new NetError("address_not_available", "no IPv6") : null);
    await serveMetrics(v4.runtime, null, 9100, handler);
    assert.deepEqual(v4.asked, ["::", "0.0.0.0"]);
  });

  test("a port in use is an error, not a retry on IPv4", async () => {
    const busy = fakeRuntime(() => new NetError("address_in_use", "in use"));
    await assert.rejects(serveMetrics(busy.runtime, null, 9100, handler), /in use/);
    assert.deepEqual(busy.asked, ["::"]);
  });
});
