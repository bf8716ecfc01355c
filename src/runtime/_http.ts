/**
 * What the HTTP adapters of this folder share: running a handler so that it
 * never throws, answering a fetch-style `Request` (Bun.serve, Deno.serve),
 * and the error for a port that cannot be bound.
 *
 * @module
 */
import { formatHostPort } from "./_address.ts";
import { toNetError } from "./_errors.ts";
import type { HttpHandler, HttpRequest, HttpResponse, NetError } from "./types.ts";

/** The answer when a handler throws: no detail leaks to the client. */
const FAILED: HttpResponse = {
  status: 500,
  headers: { "content-type": "text/plain; charset=utf-8" },
  body: "internal error\n",
};

/** The path of a request target without its query string (`/metrics?x=1` → `/metrics`). */
export function requestPath(target: string): string {
  const query = target.search(/[?#]/);
  return query < 0 ? target : target.slice(0, query);
}

/** Runs `handler`; a throw or a rejection becomes a 500. */
export async function answer(handler: HttpHandler, request: HttpRequest): Promise<HttpResponse> {
  try {
    return await handler(request);
  } catch {
    return FAILED;
  }
}

/**
 * Answers a fetch-style request with `handler`. `request.url` is absolute (the
 * path starts after the authority), except on Bun for a request without a
 * Host header (HTTP/1.0), which gives the bare path. HEAD gets no body.
 */
export async function answerFetch(handler: HttpHandler, request: Request): Promise<Response> {
  const target = request.url;
  const start = target.startsWith("/") ? 0 : target.indexOf("/", target.indexOf("//") + 2);
  const response = await answer(handler, {
    method: request.method,
    path: start < 0 ? "/" : requestPath(target.slice(start)),
  });
  return new Response(request.method === "HEAD" ? null : response.body, {
    status: response.status,
    headers: response.headers,
  });
}

/** The `NetError` for an HTTP server that cannot listen on `host:port`. */
export function httpListenError(error: unknown, host: string, port: number): NetError {
  return toNetError(error, `serve HTTP on ${formatHostPort(host, port)}`);
}
