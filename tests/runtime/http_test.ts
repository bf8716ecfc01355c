/**
 * `NetRuntime.serveHttp` of the adapters of the current runtime (under Bun:
 * bun and node; under Deno: deno and node): what the handler sees, what the
 * client gets, a handler that throws, a port in use, IPv6, and close.
 *
 * @module
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { describe, test } from "node:test";
import { type HttpRequest, NetError, type NetRuntime } from "../../src/runtime/types.ts";

declare const Bun: unknown;

const onBun = typeof Bun !== "undefined";
const native: NetRuntime = onBun
  ? (await import("../../src/runtime/bun.ts")).bunRuntime
  : (await import("../../src/runtime/deno.ts")).denoRuntime;
const { nodeRuntime } = await import("../../src/runtime/node.ts");

/** One raw HTTP/1.1 exchange with node:http's client (independent of the server under test). */
function get(
  host: string,
  port: number,
  path: string,
  method = "GET",
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port, path, method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Sends `text` on a plain TCP connection and returns everything the server answers until it closes. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = "";
    const socket = connect({ host: "127.0.0.1", port }, () => socket.write(text));
    socket.setEncoding("utf8").on("data", (chunk: string) => (answer += chunk));
    socket.on("end", () => {
      socket.destroy();
      resolve(answer);
    });
    socket.on("error", reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve(answer);
    });
  });
}

for (const runtime of [native, nodeRuntime]) {
  describe(`${runtime.name}: serveHttp`, () => {
    const serveHttp = runtime.serveHttp!.bind(runtime);

    test("the handler sees method and path (without the query); the client gets status, headers and body", async () => {
      const seen: HttpRequest[] = [];
      const server = await serveHttp({
        host: "127.0.0.1",
        port: 0,
        handler: (request) => {
          seen.push(request);
          return {
            status: 203,
            headers: { "content-type": "text/plain; version=0.0.4", "x-demo": "1" },
            body: "héllo\n",
          };
        },
      });
      try {
        assert.equal(server.address.host, "127.0.0.1");
        assert.ok(server.address.port > 0);
        const response = await get("127.0.0.1", server.address.port, "/metrics?x=1&y=2");
        assert.equal(response.status, 203);
        assert.equal(response.body, "héllo\n");
        assert.equal(response.headers["content-type"], "text/plain; version=0.0.4");
        assert.equal(response.headers["x-demo"], "1");
        assert.deepEqual(seen, [{ method: "GET", path: "/metrics" }]);
        const head = await get("127.0.0.1", server.address.port, "/healthz", "HEAD");
        assert.equal(head.status, 203);
        assert.equal(head.body, "");
        assert.deepEqual(seen[1], { method: "HEAD", path: "/healthz" });
      } finally {
        await server.close();
      }
    });

    test("an HTTP/1.0 request without a Host header (a plain health check) sees its path", async () => {
      const seen: HttpRequest[] = [];
      const server = await serveHttp({
        host: "127.0.0.1",
        port: 0,
        handler: (request) => {
          seen.push(request);
          return { status: 200, headers: {}, body: "ok\n" };
        },
      });
      try {
        const reply = await rawExchange(server.address.port, "GET /healthz HTTP/1.0\r\n\r\n");
        assert.match(reply, /^HTTP\/1\.[01] 200 /);
        assert.deepEqual(seen, [{ method: "GET", path: "/healthz" }]);
      } finally {
        await server.close();
      }
    });

    test("an async handler that throws gives a 500 without detail", async () => {
      const server = await serveHttp({
        host: "127.0.0.1",
        port: 0,
        handler: () => Promise.reject(new Error("secret detail")),
      });
      try {
        const response = await get("127.0.0.1", server.address.port, "/");
        assert.equal(response.status, 500);
        assert.doesNotMatch(response.body, /secret/);
      } finally {
        await server.close();
      }
    });

    test("a port in use is a NetError address_in_use", async () => {
      const first = await serveHttp({
        host: "127.0.0.1",
        port: 0,
        handler: () => ({ status: 200, headers: {}, body: "" }),
      });
      try {
        await assert.rejects(
          serveHttp({
            host: "127.0.0.1",
            port: first.address.port,
            handler: () => ({ status: 200, headers: {}, body: "" }),
          }),
          (error: unknown) => error instanceof NetError && error.code === "address_in_use",
        );
      } finally {
        await first.close();
      }
    });

    test("IPv6 loopback, and close stops it (twice is fine)", async () => {
      const server = await serveHttp({
        host: "::1",
        port: 0,
        handler: () => ({ status: 200, headers: {}, body: "ok" }),
      });
      assert.equal(server.address.host, "::1");
      assert.equal(server.address.family, 6);
      assert.equal((await get("::1", server.address.port, "/")).body, "ok");
      await server.close();
      await server.close();
      await assert.rejects(get("::1", server.address.port, "/"));
    });
  });
}
