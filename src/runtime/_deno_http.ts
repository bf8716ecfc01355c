/**
 * `NetRuntime.serveHttp` over `Deno.serve`.
 *
 * @module
 */
import { toNetAddress } from "./_address.ts";
import { answerFetch, httpListenError } from "./_http.ts";
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
    }, (request) => answerFetch(handler, request));
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
