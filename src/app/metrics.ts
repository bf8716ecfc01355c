/**
 * `--metrics HOST:PORT`: starts the metrics endpoint once the server
 * listens (and before `--user` takes effect, so a port below 1024 works).
 *
 * - One process: `/metrics` and `/healthz` on HOST:PORT; `/healthz` is 503
 *   once the server drains.
 * - `--workers N`: each worker serves its own figures privately on
 *   127.0.0.1 (a kernel-chosen port it reports to the supervisor); the
 *   supervisor serves HOST:PORT and adds up every worker at each scrape
 *   (`src/metrics/aggregate.ts`). Its `/healthz` is 503 once it has been told
 *   to stop.
 *
 * @module
 */
import type { CliOptions } from "../cli/options.ts";
import type { ProcessRole } from "../cli/process_role.ts";
import { METRICS_PREFIX } from "../cli/ready_lines.ts";
import { WorkerAggregator } from "../metrics/aggregate.ts";
import { type HttpRuntime, metricsHandler, serveMetrics } from "../metrics/http_endpoint.ts";
import { ServerMetrics } from "../metrics/server_metrics.ts";
import type { HttpServer, NetRuntime } from "../runtime/types.ts";
import type { SocksServer } from "../server/server.ts";
import { formatAddress } from "../server/session_context.ts";

/** A running metrics endpoint. */
export interface MetricsService {
  /** The line to report: for the user (`srelay: metrics on ...`), or, in a worker, data for the supervisor. */
  readonly line: string;
  close(): Promise<void>;
}

/** The first of `runtimes` that can serve HTTP. */
function httpRuntime(runtimes: readonly NetRuntime[]): HttpRuntime {
  for (const runtime of runtimes) {
    const serveHttp = runtime.serveHttp;
    if (serveHttp !== undefined) return { serveHttp: (options) => serveHttp.call(runtime, options) };
  }
  throw new Error("no socket layer here can serve HTTP");
}

function userLine(server: HttpServer): string {
  return `srelay: metrics on http://${formatAddress(server.address)}/metrics (health: /healthz)`;
}

/** Serves the metrics of this server process (alone, or as a worker). */
export async function startServerMetrics(
  options: CliOptions,
  role: ProcessRole,
  runtimes: readonly NetRuntime[],
  server: SocksServer,
  metrics: ServerMetrics,
): Promise<MetricsService> {
  const runtime = httpRuntime(runtimes);
  const accepting = () => !server.draining;
  if (role.worker > 0) {
    const handler = metricsHandler({ families: () => metrics.collect(), accepting, json: true });
    const http = await serveMetrics(runtime, "127.0.0.1", 0, handler);
    return { line: METRICS_PREFIX + formatAddress(http.address), close: () => http.close() };
  }
  const where = options.metrics ?? { host: "127.0.0.1", port: 0 };
  const http = await serveMetrics(
    runtime,
    where.host,
    where.port,
    metricsHandler({ families: () => metrics.collect(), accepting }),
  );
  return { line: userLine(http), close: () => http.close() };
}

/** What the supervisor's endpoint reads from its group of workers. */
export interface SupervisedWorkers {
  readonly stopping: boolean;
  readonly metricsEndpoints: ReadonlyMap<number, string>;
}

/** Serves the whole server's metrics from the `--workers` supervisor. */
export async function startSupervisorMetrics(
  options: CliOptions,
  runtimes: readonly NetRuntime[],
  workers: SupervisedWorkers,
): Promise<MetricsService> {
  const own = new ServerMetrics(null);
  const aggregator = new WorkerAggregator(() => own.collect(), () => workers.metricsEndpoints);
  const where = options.metrics ?? { host: "127.0.0.1", port: 0 };
  const http = await serveMetrics(
    httpRuntime(runtimes),
    where.host,
    where.port,
    metricsHandler({ families: () => aggregator.families(), accepting: () => !workers.stopping }),
  );
  return { line: userLine(http), close: () => http.close() };
}
