/**
 * "whoami" targets for routing tests: each tells its client which address it
 * was reached on and which peer address it sees, so a test can tell which
 * path (direct, or which next hop's outgoing address) a connection took.
 *
 * - `startWhoamiServer` answers every HTTP request (curl, proxychains) with
 *   one line `peer=PEER at=HOST:PORT path=PATH`, then closes.
 * - `startWhoamiEcho` sends `peer=PEER at=HOST:PORT\n` on connect, then
 *   echoes every byte, for long transfers that check integrity.
 *
 * Both listen on one loopback address with a port picked at run time
 * (or the given one) and work under node:net on Deno and Bun.
 *
 * @module
 */
import { createServer, type Server, type Socket } from "node:net";

/** A started whoami server. */
export interface WhoamiServer {
  readonly host: string;
  readonly port: number;
  /** `http://HOST:PORT/PATH`, IPv6 hosts bracketed. */
  url(path?: string): string;
  close(): Promise<void>;
}

/** What a whoami answer says. */
export interface WhoamiAnswer {
  /** The peer address the target saw (IPv4-mapped IPv6 reported as IPv4). */
  readonly peer: string;
  /** `HOST:PORT` the target was reached on. */
  readonly at: string;
  /** The HTTP request path (HTTP server only). */
  readonly path?: string;
}

const MAX_REQUEST_HEAD = 16 * 1024;

/** Starts an HTTP whoami server on `host` (loopback only). */
export function startWhoamiServer(host: string, port = 0): Promise<WhoamiServer> {
  return listen(host, port, (socket, at) => {
    let head = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      if (head.includes("\r\n\r\n")) return;
      head += chunk;
      if (head.length > MAX_REQUEST_HEAD) {
        socket.destroy();
        return;
      }
      if (!head.includes("\r\n\r\n")) return;
      const path = /^[A-Z]+ (\S+)/.exec(head)?.[1] ?? "?";
      const body = `peer=${peerOf(socket)} at=${at} path=${path}\n`;
      socket.end(
        `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
  });
}

/** Starts a whoami echo server on `host` (loopback only): one whoami line, then an echo. */
export function startWhoamiEcho(host: string, port = 0): Promise<WhoamiServer> {
  return listen(host, port, (socket, at) => {
    socket.write(`peer=${peerOf(socket)} at=${at}\n`);
    socket.on("data", (chunk: Uint8Array) => socket.write(chunk));
    socket.on("end", () => socket.end());
  });
}

/**
 * Parses a whoami line (`peer=... at=... [path=...]`), or throws naming the
 * text when it is not one.
 */
export function parseWhoami(text: string): WhoamiAnswer {
  const match = /peer=(\S+) at=(\S+)(?: path=(\S+))?/.exec(text);
  if (match === null) throw new Error(`Cannot parse whoami answer: ${JSON.stringify(text)}`);
  const [, peer = "", at = "", path] = match;
  return path === undefined ? { peer, at } : { peer, at, path };
}

function peerOf(socket: Socket): string {
  return (socket.remoteAddress ?? "?").replace(/^::ffff:(?=\d+\.)/, "");
}

async function listen(
  host: string,
  port: number,
  serve: (socket: Socket, at: string) => void,
): Promise<WhoamiServer> {
  if (!host.startsWith("127.") && host !== "::1") {
    throw new Error(`Cannot start a whoami server on ${host}: only loopback addresses are allowed`);
  }
  const sockets = new Set<Socket>();
  let at = "";
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    serve(socket, at);
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port, ipv6Only: host === "::1" }, () => {
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : 0);
    });
  });
  const hostPort = host.includes(":") ? `[${host}]:${bound}` : `${host}:${bound}`;
  at = hostPort;
  return {
    host,
    port: bound,
    url: (path = "/") => `http://${hostPort}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
