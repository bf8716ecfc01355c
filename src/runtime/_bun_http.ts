/**
 * `NetRuntime.serveHttp` over `Bun.serve`, without development mode (no
 * error pages) and without SO_REUSEPORT (a port in use is an error).
 *
 * @module
 */
import { toNetAddress } from "./_address.ts";
import { bunApi } from "./_bun_api.ts";
import { answer, httpListenError, requestPath } from "./_http.ts";
import type { HttpServeOptions, HttpServer } from "./types.ts";

/** Serves `options.handler` with `Bun.serve`. */
export function serveBunHttp(options: HttpServeOptions): Promise<HttpServer> {
  const { handler } = options;
  let server;
  try {
    server = bunApi().serve({
      hostname: options.host,
      port: options.port,
      development: false,
      // Without this, Bun 1.4 sets SO_REUSEPORT whenever `development` is false:
      // a second server on the same port would then share it instead of failing.
      reusePort: false,
      async fetch(request) {
        const target = request.url;
        // `request.url` is absolute (the path starts after the authority), except for a
        // request without a Host header (HTTP/1.0), where Bun gives the bare path.
        const start = target.startsWith("/") ? 0 : target.indexOf("/", target.indexOf("//") + 2);
        const response = await answer(handler, {
          method: request.method,
          path: start < 0 ? "/" : requestPath(target.slice(start)),
        });
        return new Response(request.method === "HEAD" ? null : response.body, {
          status: response.status,
          headers: response.headers,
        });
      },
      error: () => new Response("internal error\n", { status: 500 }),
    });
  } catch (error) {
    return Promise.reject(httpListenError(error, options.host, options.port));
  }
  const address = toNetAddress(server.hostname ?? options.host, server.port ?? options.port);
  let closed: Promise<void> | undefined;
  const running = server;
  return Promise.resolve({
    address,
    close: () => (closed ??= running.stop(true)),
  });
}
