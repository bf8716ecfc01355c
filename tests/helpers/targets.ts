/**
 * Destination servers for end-to-end tests: an HTTP server and a "drain
 * then answer" server for half-close checks, on loopback. (The echo server
 * is `startEchoServer` in fake_hops.ts.)
 *
 * @module
 */
import { createHash } from "node:crypto";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";

/** A started server and how to stop it. */
export interface TestServer {
  readonly port: number;
  close(): Promise<void>;
}

function track(server: Server | HttpServer): { sockets: Set<Socket>; close: () => Promise<void> } {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  return {
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function listen(server: Server | HttpServer, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port: 0, ipv6Only: host === "::1" }, () => {
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : 0);
    });
  });
}

/** Answers every HTTP request with `hello from <host> <path>`. */
export async function startHttpServer(host = "127.0.0.1"): Promise<TestServer> {
  const server = createHttpServer((request, response) => {
    response.setHeader("connection", "close");
    response.end(`hello from ${host} ${request.url}`);
  });
  const tracked = track(server);
  return { port: await listen(server, host), close: tracked.close };
}

/**
 * Reads until the client's FIN, then answers `<bytes> <sha256>\n` followed by
 * `replyBytes` bytes of pattern data, and closes: proves half-close works.
 */
export async function startDrainServer(replyBytes: number, host = "127.0.0.1"): Promise<TestServer> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on("error", () => {});
    const hash = createHash("sha256");
    let count = 0;
    socket.on("data", (chunk: Uint8Array) => {
      hash.update(chunk);
      count += chunk.length;
    });
    socket.on("end", () => {
      socket.write(`${count} ${hash.digest("hex")}\n`);
      socket.end(patternBytes(replyBytes));
    });
  });
  const tracked = track(server);
  return { port: await listen(server, host), close: tracked.close };
}

/** Deterministic test data: byte i is (i * 31 + 7) & 0xff. */
export function patternBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + 7) & 0xff;
  return bytes;
}

/** SHA-256 of bytes, hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
