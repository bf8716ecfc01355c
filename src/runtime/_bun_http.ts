/**
 * `NetRuntime.serveHttp` over `Bun.serve`, without development mode (no
 * error pages) and without SO_REUSEPORT (a port in use is an error).
 *
 * @module
 */
import { toNetAddress } from "./_address.ts";
import { bunApi } from "./_bun_api.ts";
import { answerFetch, httpListenError } from "./_http.ts";
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
      fetch: (request) => answerFetch(handler, request),
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
