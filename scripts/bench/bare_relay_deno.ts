/**
 * The least code that relays SOCKS5 on Deno's own sockets (`Deno.listen`,
 * `Deno.connect`): method 00 (no authentication), CONNECT to an IPv4
 * address, a domain name or an IPv6 address, then bytes both ways until
 * either side closes. No logging, routing, limits or checks beyond the
 * protocol's shape. The benchmark runs it beside srelay on Deno to show what
 * the runtime itself allows.
 *
 *     deno run --allow-net scripts/bench/bare_relay_deno.ts [IPV4:PORT]    (default 127.0.0.1:0)
 *
 * Prints `listening on IPV4:PORT` once it accepts connections.
 *
 * Each direction is a loop of `read` then `write` until every byte is
 * written, so a slow reader holds back its writer (backpressure). A pending
 * read holds its buffer, so each direction starts with 1 KiB and doubles it,
 * up to 64 KiB, whenever a read fills it.
 *
 * @module
 */

const FIRST_BUFFER = 1024;
const LARGEST_BUFFER = 64 * 1024;
const METHOD_NONE = Uint8Array.of(5, 0);
const NO_METHOD = Uint8Array.of(5, 0xff);
const SUCCEEDED = Uint8Array.of(5, 0, 0, 1, 0, 0, 0, 0, 0, 0);
const REFUSED = Uint8Array.of(5, 5, 0, 1, 0, 0, 0, 0, 0, 0);
const NOT_SUPPORTED = Uint8Array.of(5, 7, 0, 1, 0, 0, 0, 0, 0, 0);

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}

/** Handshake bytes read from the client: `need(n)` waits until `n` are there. */
class Head {
  bytes = new Uint8Array(1024);
  length = 0;
  constructor(readonly conn: Deno.Conn) {}

  async need(count: number): Promise<boolean> {
    while (this.length < count) {
      const read = await this.conn.read(this.bytes.subarray(this.length));
      if (read === null) return false;
      this.length += read;
    }
    return true;
  }

  /** Drops the first `count` bytes. */
  consume(count: number): void {
    this.bytes.copyWithin(0, count, this.length);
    this.length -= count;
  }
}

function hostOf(atyp: number, bytes: Uint8Array): string {
  if (atyp === 1) return bytes.join(".");
  if (atyp === 3) return new TextDecoder().decode(bytes);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":");
}

/** Copies `from` to `to` until end of stream or an error. */
async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  let buffer = new Uint8Array(FIRST_BUFFER);
  try {
    for (;;) {
      const read = await from.read(buffer);
      if (read === null) return;
      await writeAll(to, buffer.subarray(0, read));
      if (read === buffer.length && buffer.length < LARGEST_BUFFER) buffer = new Uint8Array(buffer.length * 2);
    }
  } catch {
    // Reset, or closed by the other direction: the pair ends either way.
  }
}

function close(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // Already closed.
  }
}

/**
 * Answers the method selection and the request, and dials the target.
 * Returns the target once the client has its success reply (with any bytes
 * the client sent early already forwarded), or undefined once it has been
 * refused or went away.
 */
async function handshake(client: Deno.TcpConn): Promise<Deno.TcpConn | undefined> {
  const head = new Head(client);
  if (!await head.need(2) || !await head.need(2 + head.bytes[1]!)) return undefined;
  if (head.bytes[0] !== 5 || !head.bytes.subarray(2, 2 + head.bytes[1]!).includes(0)) {
    await writeAll(client, NO_METHOD);
    return undefined;
  }
  head.consume(2 + head.bytes[1]!);
  await writeAll(client, METHOD_NONE);
  if (!await head.need(5)) return undefined;
  const atyp = head.bytes[3]!;
  const addressLength = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? 1 + head.bytes[4]! : 0;
  if (head.bytes[0] !== 5 || head.bytes[1] !== 1 || addressLength === 0) {
    await writeAll(client, NOT_SUPPORTED);
    return undefined;
  }
  const end = 4 + addressLength + 2;
  if (!await head.need(end)) return undefined;
  const hostname = hostOf(atyp, head.bytes.subarray(atyp === 3 ? 5 : 4, end - 2));
  const port = (head.bytes[end - 2]! << 8) | head.bytes[end - 1]!;
  let target: Deno.TcpConn;
  try {
    target = await Deno.connect({ hostname, port });
  } catch {
    await writeAll(client, REFUSED);
    return undefined;
  }
  try {
    target.setNoDelay(true);
    await writeAll(client, SUCCEEDED);
    if (head.length > end) await writeAll(target, head.bytes.subarray(end, head.length));
  } catch (error) {
    close(target);
    throw error;
  }
  return target;
}

/** Serves one client until both of its connections are closed. */
async function serve(client: Deno.TcpConn): Promise<void> {
  let target: Deno.TcpConn | undefined;
  try {
    client.setNoDelay(true);
    target = await handshake(client);
    if (target === undefined) return;
    const up = pipe(client, target);
    const down = pipe(target, client);
    await Promise.race([up, down]);
    close(client);
    close(target);
    await Promise.all([up, down]);
  } catch {
    // A reset during the handshake: nothing to answer.
  } finally {
    close(client);
    close(target);
  }
}

const [hostname = "127.0.0.1", port = "0"] = (Deno.args[0] ?? "127.0.0.1:0").split(":");
const listener = Deno.listen({ hostname, port: Number(port) });
console.log(`listening on ${hostname}:${listener.addr.port}`);
for await (const conn of listener) void serve(conn);
