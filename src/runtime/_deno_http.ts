/**
 * `NetRuntime.serveHttp` over `Deno.serve`.
 *
 * @module
 */
import { toNetAddress } from "./_address.ts";
import { answer, httpListenError, requestPath } from "./_http.ts";
import type { HttpServeOptions, HttpServer } from "./types.ts";

/** Serves `options.handler` with `Deno.serve` (quietly: no "Listening on" line). */
export function serveDenoHttp(options: HttpServeOptions): Promise<HttpServer> {
  const { handler } = options;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.host,
      port: options.port,
      onListen: () => {},
      onError: () => new Response("internal error\n", { status: 500 }),
    }, async (request) => {
      const target = request.url;
      const start = target.indexOf("/", target.indexOf("//") + 2);
      const response = await answer(handler, {
        method: request.method,
        path: start < 0 ? "/" : requestPath(target.slice(start)),
      });
      return new Response(request.method === "HEAD" ? null : response.body, {
        status: response.status,
        headers: response.headers,
      });
    });
  } catch (error) {
    return Promise.reject(httpListenError(error, options.host, options.port));
  }
  const address = toNetAddress(server.addr.hostname, server.addr.port);
  let closed: Promise<void> | undefined;
  return Promise.resolve({
    address,
    close: () => (closed ??= server.shutdown()),
  });
}
