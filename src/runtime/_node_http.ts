/**
 * `NetRuntime.serveHttp` over `node:http` (whatever runtime hosts it).
 *
 * @module
 */
import { createServer } from "node:http";
import { toNetAddress } from "./_address.ts";
import { answer, httpListenError, requestPath } from "./_http.ts";
import type { HttpServeOptions, HttpServer } from "./types.ts";

/** Serves `options.handler` with `node:http`. */
export function serveNodeHttp(options: HttpServeOptions): Promise<HttpServer> {
  const { handler, host, port } = options;
  const server = createServer((request, response) => {
    const method = request.method ?? "GET";
    void answer(handler, { method, path: requestPath(request.url ?? "/") }).then((result) => {
      const body = Buffer.from(result.body, "utf8");
      response.writeHead(result.status, { ...result.headers, "content-length": String(body.length) });
      response.end(method === "HEAD" ? undefined : body);
    });
  });
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(httpListenError(error, host, port));
    server.once("error", onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", onError);
      const bound = server.address() as { readonly address: string; readonly port: number };
      let closed: Promise<void> | undefined;
      resolve({
        address: toNetAddress(bound.address, bound.port),
        close: () =>
          closed ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections?.();
          }),
      });
    });
  });
}
