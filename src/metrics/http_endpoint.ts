/**
 * The `--metrics` HTTP endpoint: `/metrics` in the Prometheus text format,
 * `/healthz` (200 while the server accepts, 503 while it drains), 404 for
 * every other path. Served by the runtime adapter's `serveHttp`.
 *
 * A `--workers` worker serves the same handler privately on loopback, with
 * `/metrics.json` too: the families as JSON, which the supervisor adds up.
 *
 * @module
 */
import { type HttpHandler, type HttpResponse, type HttpServer, NetError, type NetRuntime } from "../runtime/types.ts";
import { CONTENT_TYPE, renderText } from "./exposition.ts";
import type { MetricFamily } from "./registry.ts";

/** The Prometheus scrape path. */
export const METRICS_PATH = "/metrics";
/** The health check path. */
export const HEALTH_PATH = "/healthz";
/** A worker's families as JSON, for its supervisor. */
export const FAMILIES_PATH = "/metrics.json";

/** What the endpoint serves. */
export interface EndpointOptions {
  /** The metrics, collected now. */
  readonly families: () => readonly MetricFamily[] | Promise<readonly MetricFamily[]>;
  /** True while the server accepts new sessions; false once it drains (SIGTERM). */
  readonly accepting: () => boolean;
  /** Also serve `FAMILIES_PATH` (a worker's private endpoint). */
  readonly json?: boolean;
}

const TEXT = "text/plain; charset=utf-8";

function plain(status: number, body: string, extra: Record<string, string> = {}): HttpResponse {
  return { status, headers: { "content-type": TEXT, "cache-control": "no-store", ...extra }, body };
}

/**
 * The request handler.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const handler = metricsHandler({ families: () => [], accepting: () => false });
 * assert.equal((await handler({ method: "GET", path: "/healthz" })).status, 503);
 * assert.equal((await handler({ method: "GET", path: "/" })).status, 404);
 * ```
 */
export function metricsHandler(options: EndpointOptions): HttpHandler {
  return async ({ method, path }) => {
    const known = path === METRICS_PATH || path === HEALTH_PATH || (options.json === true && path === FAMILIES_PATH);
    if (!known) return plain(404, "not found: try /metrics or /healthz\n");
    if (method !== "GET" && method !== "HEAD") return plain(405, "method not allowed\n", { allow: "GET, HEAD" });
    if (path === HEALTH_PATH) return options.accepting() ? plain(200, "ok\n") : plain(503, "draining\n");
    const families = await options.families();
    if (path === FAMILIES_PATH) {
      return {
        status: 200,
        headers: { "content-type": "application/json", "cache-control": "no-store" },
        body: JSON.stringify(families),
      };
    }
    return {
      status: 200,
      headers: { "content-type": CONTENT_TYPE, "cache-control": "no-store" },
      body: renderText(families),
    };
  };
}

/** A runtime that can serve HTTP. */
export type HttpRuntime = Required<Pick<NetRuntime, "serveHttp">>;

/**
 * Serves `handler` on `host:port`; a null host means every address (IPv6
 * and IPv4, or IPv4 alone where IPv6 is unavailable), as `-i :PORT` does.
 */
export async function serveMetrics(
  runtime: HttpRuntime,
  host: string | null,
  port: number,
  handler: HttpHandler,
): Promise<HttpServer> {
  if (host !== null) return await runtime.serveHttp({ host, port, handler });
  try {
    return await runtime.serveHttp({ host: "::", port, handler });
  } catch (error) {
    if (!(error instanceof NetError) || error.code === "address_in_use") throw error;
    return await runtime.serveHttp({ host: "0.0.0.0", port, handler });
  }
}
