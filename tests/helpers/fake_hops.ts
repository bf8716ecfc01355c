/**
 * Strict in-process next hops for tests: a SOCKS5, a SOCKS4/4A and an HTTP
 * CONNECT proxy on plain node:net listeners bound to loopback, plus an echo
 * server to reach through them.
 *
 * Every byte a hop receives is checked against the protocol (versions,
 * lengths, reserved bytes, exact headers, no bytes sent before the hop has
 * answered); a violation is recorded in `violations` and the connection is
 * closed, so tests assert `violations` is empty. A lenient fake would hide
 * client bugs.
 *
 * Hops can be told to refuse, ask for credentials, answer with garbage,
 * close at a given stage, write their answers one byte at a time, or append
 * early data after the reply. Unless told to refuse, a hop connects to the
 * requested destination for real and pipes bytes both ways, so chains of
 * fake hops reach a real echo server.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import ipaddr from "ipaddr.js";
import { connect as netConnect, createServer, isIP, type Server, type Socket } from "node:net";

/** A destination as a hop saw it in a request. */
export interface SeenTarget {
  readonly kind: "ipv4" | "ipv6" | "domain";
  readonly host: string;
  readonly port: number;
}

/** What every fake server exposes. */
export interface FakeServer {
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Closes the listener and every connection it accepted or opened. */
  close(): Promise<void>;
}

/** A fake hop: what it saw and which rules the client broke. */
export interface FakeHop extends FakeServer {
  /** Protocol violations by clients, one line each; empty when every client behaved. */
  readonly violations: string[];
  /** Destinations requested, in order. */
  readonly requests: SeenTarget[];
}

/** Behaviour common to all fake hops. */
export interface FakeHopOptions {
  /** Listen address (default 127.0.0.1). */
  readonly host?: string;
  /** Write each answer one byte at a time, in separate segments. */
  readonly splitAnswers?: boolean;
  /** Bytes sent right after a successful reply, in the same write, as if the destination spoke first. */
  readonly earlyData?: Uint8Array;
}

/** SOCKS5 hop behaviour. */
export interface Socks5HopOptions extends FakeHopOptions {
  /** Require RFC 1929 username/password authentication with these credentials. */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** VER of the RFC 1929 reply (default 1). */
  readonly authReplyVersion?: number;
  /** Methods the client must offer, exactly and in order (checked when given). */
  readonly expectMethods?: readonly number[];
  /** Answer the greeting with this method whatever was offered. */
  readonly forceMethod?: number;
  /** Answer the request with this REP code instead of connecting. */
  readonly replyCode?: number;
  /** Answer the greeting with these bytes instead of a method selection. */
  readonly greetingAnswer?: Uint8Array;
  /** Close without answering when this message arrives. */
  readonly closeAt?: "greeting" | "auth" | "request";
  /** Never answer the greeting (the connection stays open until the hop is closed). */
  readonly silent?: boolean;
}

/** SOCKS4 hop behaviour. */
export interface Socks4HopOptions extends FakeHopOptions {
  /** Answer with this CD code instead of connecting. */
  readonly replyCode?: number;
  /** What to do with a SOCKS5 greeting (VN 5): reject with CD 5B (default) or close. */
  readonly onSocks5?: "reject" | "close";
  /** USERID the client must send (checked when given). */
  readonly expectUserId?: string;
  /** Answer the request with these bytes instead of a reply. */
  readonly garbage?: Uint8Array;
}

/** HTTP CONNECT hop behaviour. */
export interface HttpHopOptions extends FakeHopOptions {
  /** Require `Proxy-Authorization: Basic` with these credentials; else 407. */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Answer with this status line instead of connecting, e.g. "502 Bad Gateway". */
  readonly status?: string;
  /** Status line of a successful answer (default "200 Connection established"). */
  readonly successStatus?: string;
  /** Extra header lines for successful answers. */
  readonly headers?: readonly string[];
  /** End answer lines with a bare LF. */
  readonly bareLf?: boolean;
  /** Answer with these bytes instead of a response head. */
  readonly garbage?: Uint8Array;
}

/** Reads whole messages from a socket in a fake server. */
class Reader {
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: (() => void) | null = null;
  #ended = false;

  constructor(socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wake();
    });
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  /** Waits for `n` bytes; null if the peer ended first. */
  async take(n: number): Promise<Buffer | null> {
    for (let i = 0; this.#buffer.length < n; i++) {
      if (this.#ended || i > 10_000) return null;
      await new Promise<void>((resolve) => this.#waiting = resolve);
    }
    const bytes = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return bytes;
  }

  /** Waits for bytes up to and including `delimiter`; null if the peer ended first or 16 KiB passed. */
  async takeUntil(delimiter: string): Promise<Buffer | null> {
    for (let i = 0;; i++) {
      const at = this.#buffer.indexOf(delimiter);
      if (at >= 0) return this.take(at + delimiter.length);
      if (this.#ended || i > 10_000 || this.#buffer.length > 16 * 1024) return null;
      await new Promise<void>((resolve) => this.#waiting = resolve);
    }
  }

  /** Bytes received and not yet taken (handed to the tunnel). */
  drain(): Buffer {
    const bytes = this.#buffer;
    this.#buffer = Buffer.alloc(0);
    return bytes;
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.();
  }
}

type Session = (socket: Socket, reader: Reader, hop: HopState) => Promise<void>;

interface HopState {
  readonly violations: string[];
  readonly requests: SeenTarget[];
  readonly sockets: Set<Socket>;
  readonly options: FakeHopOptions;
}

async function startServer(host: string, session: Session, options: FakeHopOptions): Promise<FakeHop> {
  const state: HopState = { violations: [], requests: [], sockets: new Set(), options };
  let accepted = 0;
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted++;
    track(state, socket);
    const reader = new Reader(socket);
    session(socket, reader, state).catch((error: unknown) => {
      state.violations.push(`session crashed: ${String(error)}`);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port: 0 }, resolve);
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("Cannot start fake hop: no address");
  return {
    host,
    port: address.port,
    get accepted() {
      return accepted;
    },
    violations: state.violations,
    requests: state.requests,
    close: () => closeServer(server, state.sockets),
  };
}

function track(state: HopState, socket: Socket): void {
  state.sockets.add(socket);
  socket.on("error", () => {});
  socket.on("close", () => state.sockets.delete(socket));
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

async function answer(socket: Socket, bytes: Uint8Array, options: FakeHopOptions): Promise<void> {
  if (options.splitAnswers !== true) {
    socket.write(bytes);
    return;
  }
  for (const byte of bytes) {
    socket.write(Uint8Array.of(byte));
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Checks the client sent nothing beyond the message the hop has not answered yet. */
function checkNothingPipelined(reader: Reader, state: HopState, stage: string): void {
  if (reader.buffered > 0) {
    state.violations.push(`client sent ${reader.buffered} bytes after the ${stage} before the answer`);
  }
}

/** Connects to a destination for real; resolves with the socket or null. */
function openTunnel(state: HopState, target: SeenTarget): Promise<Socket | null> {
  return new Promise((resolve) => {
    const upstream = netConnect({ host: target.host, port: target.port, allowHalfOpen: true });
    track(state, upstream);
    upstream.once("connect", () => resolve(upstream));
    upstream.once("error", () => resolve(null));
  });
}

function pipeBoth(client: Socket, reader: Reader, upstream: Socket): void {
  const pending = reader.drain();
  if (pending.length > 0) upstream.write(pending);
  client.removeAllListeners("data");
  client.removeAllListeners("end");
  client.on("data", (chunk: Buffer) => upstream.write(chunk));
  client.on("end", () => upstream.end());
  upstream.on("data", (chunk: Buffer) => client.write(chunk));
  upstream.on("end", () => client.end());
  client.on("close", () => upstream.destroy());
  upstream.on("close", () => client.destroy());
}

function ipv4Bytes(host: string): number[] {
  return host.split(".").map(Number);
}

function ipv6Text(bytes: Buffer): string {
  return ipaddr.fromByteArray([...bytes]).toString();
}

function boundOf(socket: Socket): { host: string; port: number } {
  const host = socket.localAddress ?? "0.0.0.0";
  return { host: host.startsWith("::ffff:") ? host.slice(7) : host, port: socket.localPort ?? 0 };
}

/** Starts a strict SOCKS5 hop. */
export function startSocks5Hop(options: Socks5HopOptions = {}): Promise<FakeHop> {
  return startServer(options.host ?? "127.0.0.1", async (socket, reader, state) => {
    const violation = (text: string) => {
      state.violations.push(text);
      socket.destroy();
    };
    const head = await reader.take(2);
    if (head === null) return violation("client closed before the greeting");
    if (head[0] !== 5) return violation(`greeting VER ${head[0]} is not 5`);
    const count = head[1] ?? 0;
    if (count === 0) return violation("greeting offers no methods");
    const methodBytes = await reader.take(count);
    if (methodBytes === null) return violation("client closed inside the greeting");
    const methods = [...methodBytes];
    if (new Set(methods).size !== methods.length) return violation(`greeting repeats methods: ${methods}`);
    if (options.expectMethods !== undefined && methods.join(",") !== options.expectMethods.join(",")) {
      return violation(`greeting offers methods ${methods} instead of ${options.expectMethods}`);
    }
    checkNothingPipelined(reader, state, "greeting");
    if (options.closeAt === "greeting") return void socket.destroy();
    if (options.silent === true) return;
    if (options.greetingAnswer !== undefined) {
      await answer(socket, options.greetingAnswer, options);
      socket.end();
      return;
    }
    const wanted = options.credentials === undefined ? 0x00 : 0x02;
    const method = options.forceMethod ?? (methods.includes(wanted) ? wanted : 0xff);
    await answer(socket, Uint8Array.of(5, method), options);
    if (method === 0xff) return void socket.end();
    if (method === 0x02) {
      const version = await reader.take(1);
      if (version === null) return;
      if (version[0] !== 1) return violation(`RFC 1929 request VER ${version[0]} is not 1`);
      const user = await readField(reader);
      if (user === null) return violation("client closed inside the username");
      const pass = await readField(reader);
      if (pass === null) return violation("client closed inside the password");
      if (user.length === 0 || pass.length === 0) return violation("RFC 1929 field of length 0");
      checkNothingPipelined(reader, state, "RFC 1929 request");
      if (options.closeAt === "auth") return void socket.destroy();
      const ok = options.credentials !== undefined && user.toString() === options.credentials.username &&
        pass.toString() === options.credentials.password;
      await answer(socket, Uint8Array.of(options.authReplyVersion ?? 1, ok ? 0 : 1), options);
      if (!ok) return void socket.end();
    }
    const request = await reader.take(4);
    if (request === null) return;
    if (request[0] !== 5) return violation(`request VER ${request[0]} is not 5`);
    if (request[1] !== 1) return violation(`request CMD ${request[1]} is not CONNECT`);
    if (request[2] !== 0) return violation(`request RSV ${request[2]} is not 0`);
    let target: SeenTarget;
    if (request[3] === 1) {
      const body = await reader.take(6);
      if (body === null) return violation("client closed inside the request");
      target = { kind: "ipv4", host: [...body.subarray(0, 4)].join("."), port: body.readUInt16BE(4) };
    } else if (request[3] === 4) {
      const body = await reader.take(18);
      if (body === null) return violation("client closed inside the request");
      target = { kind: "ipv6", host: ipv6Text(body.subarray(0, 16)), port: body.readUInt16BE(16) };
    } else if (request[3] === 3) {
      const name = await readField(reader);
      const port = await reader.take(2);
      if (name === null || port === null) return violation("client closed inside the request");
      if (name.length === 0) return violation("request has an empty domain name");
      const host = name.toString("latin1");
      if (isIP(host) !== 0) return violation(`request sends the IP literal ${host} as a domain name`);
      target = { kind: "domain", host, port: port.readUInt16BE(0) };
    } else {
      return violation(`request ATYP ${request[3]} is unknown`);
    }
    state.requests.push(target);
    checkNothingPipelined(reader, state, "request");
    if (options.closeAt === "request") return void socket.destroy();
    if (options.replyCode !== undefined) {
      await answer(socket, Uint8Array.of(5, options.replyCode, 0, 1, 0, 0, 0, 0, 0, 0), options);
      socket.end();
      return;
    }
    const upstream = await openTunnel(state, target);
    if (upstream === null) {
      await answer(socket, Uint8Array.of(5, 5, 0, 1, 0, 0, 0, 0, 0, 0), options);
      socket.end();
      return;
    }
    const bound = boundOf(upstream);
    const address = isIP(bound.host) === 4 ? [1, ...ipv4Bytes(bound.host)] : [1, 0, 0, 0, 0];
    const reply = Buffer.concat([
      Buffer.from([5, 0, 0, ...address, bound.port >> 8, bound.port & 0xff]),
      Buffer.from(options.earlyData ?? []),
    ]);
    await answer(socket, reply, options);
    pipeBoth(socket, reader, upstream);
  }, options);
}

async function readField(reader: Reader): Promise<Buffer | null> {
  const length = await reader.take(1);
  if (length === null) return null;
  return reader.take(length[0] ?? 0);
}

/** Starts a strict SOCKS4/4A hop. */
export function startSocks4Hop(options: Socks4HopOptions = {}): Promise<FakeHop> {
  return startServer(options.host ?? "127.0.0.1", async (socket, reader, state) => {
    const violation = (text: string) => {
      state.violations.push(text);
      socket.destroy();
    };
    const first = await reader.take(1);
    if (first === null) return violation("client closed before the request");
    if (first[0] === 5) {
      if (options.onSocks5 === "close") return void socket.destroy();
      await answer(socket, Uint8Array.of(0, 91, 0, 0, 0, 0, 0, 0), options);
      socket.end();
      return;
    }
    if (first[0] !== 4) return violation(`request VN ${first[0]} is not 4`);
    const head = await reader.take(7);
    if (head === null) return violation("client closed inside the request");
    if (head[0] !== 1) return violation(`request CD ${head[0]} is not CONNECT`);
    const port = head.readUInt16BE(1);
    const ip = [...head.subarray(3, 7)];
    const userId = await reader.takeUntil("\0");
    if (userId === null) return violation("USERID is not NUL-terminated");
    const user = userId.subarray(0, -1).toString();
    if (options.expectUserId !== undefined && user !== options.expectUserId) {
      return violation(`USERID ${JSON.stringify(user)} is not ${JSON.stringify(options.expectUserId)}`);
    }
    let target: SeenTarget;
    if (ip[0] === 0 && ip[1] === 0 && ip[2] === 0) {
      if (ip[3] === 0) return violation("DSTIP 0.0.0.0 is not a SOCKS4A marker");
      const name = await reader.takeUntil("\0");
      if (name === null) return violation("SOCKS4A host name is not NUL-terminated");
      const host = name.subarray(0, -1).toString("latin1");
      if (host.length === 0) return violation("SOCKS4A host name is empty");
      target = { kind: "domain", host, port };
    } else {
      target = { kind: "ipv4", host: ip.join("."), port };
    }
    state.requests.push(target);
    checkNothingPipelined(reader, state, "request");
    if (options.garbage !== undefined) {
      await answer(socket, options.garbage, options);
      socket.end();
      return;
    }
    if (options.replyCode !== undefined) {
      await answer(socket, Uint8Array.of(0, options.replyCode, 0, 0, 0, 0, 0, 0), options);
      socket.end();
      return;
    }
    const upstream = await openTunnel(state, target);
    if (upstream === null) {
      await answer(socket, Uint8Array.of(0, 91, 0, 0, 0, 0, 0, 0), options);
      socket.end();
      return;
    }
    const bound = boundOf(upstream);
    const address = isIP(bound.host) === 4 ? ipv4Bytes(bound.host) : [0, 0, 0, 0];
    const reply = Buffer.concat([
      Buffer.from([0, 90, bound.port >> 8, bound.port & 0xff, ...address]),
      Buffer.from(options.earlyData ?? []),
    ]);
    await answer(socket, reply, options);
    pipeBoth(socket, reader, upstream);
  }, options);
}

/** Starts a strict HTTP CONNECT hop. */
export function startHttpHop(options: HttpHopOptions = {}): Promise<FakeHop> {
  return startServer(options.host ?? "127.0.0.1", async (socket, reader, state) => {
    const violation = (text: string) => {
      state.violations.push(text);
      socket.destroy();
    };
    const eol = options.bareLf === true ? "\n" : "\r\n";
    const headBytes = await reader.takeUntil("\r\n\r\n");
    if (headBytes === null) return violation("request head is not ended by CRLF CRLF");
    const lines = headBytes.toString("latin1").split("\r\n").slice(0, -2);
    const match = /^CONNECT (\S+) HTTP\/1\.1$/.exec(lines[0] ?? "");
    if (match?.[1] === undefined) return violation(`request line ${JSON.stringify(lines[0])} is malformed`);
    const authority = match[1];
    const parsed = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(authority);
    if (parsed === null) return violation(`authority ${authority} is malformed`);
    const host = parsed[1] ?? parsed[2] ?? "";
    if (parsed[2] !== undefined && isIP(host) === 6) return violation(`IPv6 host ${host} is not bracketed`);
    const kind = isIP(host) === 4 ? "ipv4" : isIP(host) === 6 ? "ipv6" : "domain";
    const target: SeenTarget = { kind, host, port: Number(parsed[3]) };
    let hostHeader: string | undefined;
    let authorization: string | undefined;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0) return violation(`header line ${JSON.stringify(line)} is malformed`);
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "host" && hostHeader === undefined) hostHeader = value;
      else if (name === "proxy-authorization" && authorization === undefined) authorization = value;
      else return violation(`unexpected header ${JSON.stringify(line)}`);
    }
    if (hostHeader !== authority) return violation(`Host ${hostHeader} does not match ${authority}`);
    if (authorization !== undefined && options.credentials === undefined) {
      return violation("client sent Proxy-Authorization to a hop that asked for none");
    }
    state.requests.push(target);
    checkNothingPipelined(reader, state, "request head");
    const respond = async (status: string, extra: readonly string[] = [], tail?: Uint8Array) => {
      const head = [`HTTP/1.1 ${status}`, ...extra, "", ""].join(eol);
      await answer(socket, Buffer.concat([Buffer.from(head, "latin1"), Buffer.from(tail ?? [])]), options);
    };
    if (options.garbage !== undefined) {
      await answer(socket, options.garbage, options);
      socket.end();
      return;
    }
    if (options.credentials !== undefined) {
      const expected = `Basic ${
        Buffer.from(`${options.credentials.username}:${options.credentials.password}`).toString("base64")
      }`;
      if (authorization !== expected) {
        await respond("407 Proxy Authentication Required", ['Proxy-Authenticate: Basic realm="fake"']);
        socket.end();
        return;
      }
    }
    if (options.status !== undefined) {
      await respond(options.status, ["Content-Length: 0"]);
      socket.end();
      return;
    }
    const upstream = await openTunnel(state, target);
    if (upstream === null) {
      await respond("502 Bad Gateway", ["Content-Length: 0"]);
      socket.end();
      return;
    }
    await respond(options.successStatus ?? "200 Connection established", options.headers ?? [], options.earlyData);
    pipeBoth(socket, reader, upstream);
  }, options);
}

/** Starts an echo server; with `greeting`, it sends those bytes first on every connection. */
export async function startEchoServer(
  options: { readonly host?: string; readonly greeting?: Uint8Array } = {},
): Promise<FakeServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const host = options.host ?? "127.0.0.1";
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    if (options.greeting !== undefined) socket.write(options.greeting);
    socket.on("data", (chunk: Buffer) => socket.write(chunk));
    socket.on("end", () => socket.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port: 0 }, resolve);
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("Cannot start echo server: no address");
  return {
    host,
    port: address.port,
    get accepted() {
      return accepted;
    },
    close: () => closeServer(server, sockets),
  };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(host = "127.0.0.1"): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port: 0 }, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("Cannot pick a closed port");
  return address.port;
}
