/**
 * End to end: UDP ASSOCIATE (RFC 1928 §7) of the real CLI under Bun, Deno,
 * the compiled binary and the node:net adapter, driven by the npm `socks`
 * client and by raw-byte clients on node:dgram: echo servers on 127.0.0.1
 * and ::1, an IPv4 client to an IPv6 target, a domain target, datagrams up
 * to 65,000 bytes, a DNS query, the drops (spoofed source, undeclared port,
 * FRAG ≠ 0), the association's lifetime, `-o`, `-a p`, and next hops:
 * Dante as a SOCKS5 hop (per datagram and for the whole association) and an
 * HTTP hop that cannot carry UDP.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, isIPv4, isIPv6, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import ipaddr from "ipaddr.js";
import { SocksClient } from "socks";
import { closedPort } from "../helpers/fake_hops.ts";
import { NO_DANTE } from "../helpers/next_hops.ts";
import { type PeerProcess, startPeer } from "../helpers/peer_process.ts";
import { which } from "../helpers/peers.ts";
import { openClient, type ScriptedClient } from "../helpers/socks_client.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";

/** What the npm `socks` client's "established" event carries. */
type Established = { socket: Socket; remoteHost?: { host: string; port: number } };

// --- UDP sockets for tests ---

interface Received {
  readonly bytes: Buffer;
  readonly from: { readonly address: string; readonly port: number };
}

/** A bound node:dgram socket with a queue of what it received. */
interface UdpPeer {
  readonly socket: dgram.Socket;
  readonly host: string;
  readonly port: number;
  readonly received: Received[];
  send(bytes: Uint8Array, port: number, host: string): void;
  /** The next datagram, or an error after `timeoutMs`. */
  next(timeoutMs?: number): Promise<Received>;
  /** True when nothing arrives within `ms`. */
  silentFor(ms: number): Promise<boolean>;
  close(): void;
}

async function openUdp(host: string, onMessage?: (peer: UdpPeer, received: Received) => void): Promise<UdpPeer> {
  const socket = dgram.createSocket({ type: isIPv6(host) ? "udp6" : "udp4", ipv6Only: false });
  const queue: Received[] = [];
  const received: Received[] = [];
  let wake: (() => void) | null = null;
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, host, () => resolve());
  });
  const peer: UdpPeer = {
    socket,
    host,
    port: socket.address().port,
    received,
    send: (bytes, port, to) => socket.send(bytes, port, to),
    async next(timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      while (queue.length === 0) {
        if (Date.now() > deadline) throw new Error(`No datagram on ${host}:${peer.port} within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 20);
        });
      }
      return queue.shift()!;
    },
    async silentFor(ms) {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return queue.length === 0;
    },
    close: () => socket.close(),
  };
  socket.on("message", (bytes, rinfo) => {
    const item = { bytes, from: { address: rinfo.address, port: rinfo.port } };
    received.push(item);
    if (onMessage !== undefined) onMessage(peer, item);
    else queue.push(item);
    wake?.();
  });
  return peer;
}

/** Echoes every datagram back to its sender. */
function startUdpEcho(host: string): Promise<UdpPeer> {
  return openUdp(host, (peer, { bytes, from }) => peer.send(bytes, from.port, from.address));
}

/** Answers every datagram with the sender's address as text. */
function startUdpWhoami(host: string): Promise<UdpPeer> {
  return openUdp(host, (peer, { from }) => peer.send(Buffer.from(from.address), from.port, from.address));
}

const DNS_NAME = "srelay.test";
const DNS_ANSWER = [192, 0, 2, 55];

/** A DNS responder: every A query is answered with 192.0.2.55. */
function startDnsResponder(host: string): Promise<UdpPeer> {
  return openUdp(host, (peer, { bytes, from }) => {
    let at = 12;
    while (bytes[at] !== 0) at += bytes[at]! + 1;
    const question = bytes.subarray(12, at + 5);
    const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...DNS_ANSWER]);
    const header = Buffer.from([bytes[0]!, bytes[1]!, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    peer.send(Buffer.concat([header, question, answer]), from.port, from.address);
  });
}

/** A DNS query for `name` (type A, class IN, recursion desired). */
function dnsQuery(id: number, name: string): Buffer {
  const labels = name.split(".").flatMap((label) => [label.length, ...Buffer.from(label)]);
  return Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
}

// --- SOCKS5 UDP bytes, written by hand ---

function addressBlock(host: string, port: number): number[] {
  const portBytes = [port >> 8, port & 0xff];
  if (isIPv4(host)) return [1, ...host.split(".").map(Number), ...portBytes];
  if (isIPv6(host)) return [4, ...ipaddr.parse(host).toByteArray(), ...portBytes];
  return [3, host.length, ...Buffer.from(host, "latin1"), ...portBytes];
}

/** A SOCKS5 UDP datagram: RSV RSV FRAG ATYP DST.ADDR DST.PORT DATA. */
function frame(host: string, port: number, payload: Uint8Array, fragment = 0): Buffer {
  return Buffer.concat([Buffer.from([0, 0, fragment, ...addressBlock(host, port)]), payload]);
}

/** Splits a SOCKS5 UDP datagram into its source and payload. */
function unframe(bytes: Buffer): { host: string; port: number; fragment: number; payload: Buffer } {
  const atyp = bytes[3];
  let host: string;
  let at: number;
  if (atyp === 1) {
    host = [...bytes.subarray(4, 8)].join(".");
    at = 8;
  } else if (atyp === 4) {
    host = ipaddr.fromByteArray([...bytes.subarray(4, 20)]).toString();
    at = 20;
  } else {
    host = bytes.subarray(5, 5 + bytes[4]!).toString("latin1");
    at = 5 + bytes[4]!;
  }
  return { host, port: bytes.readUInt16BE(at), fragment: bytes[2]!, payload: bytes.subarray(at + 2) };
}

/** Bytes 0..n-1 of a repeating pattern. */
function pattern(length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + 3) & 0xff;
  return bytes;
}

interface Association {
  readonly control: ScriptedClient;
  /** The relay address from the reply. */
  readonly relay: { readonly host: string; readonly port: number };
}

/** Opens a control connection, greets (no auth, or `login`), asks UDP ASSOCIATE declaring `declared`. */
async function associate(
  proxyHost: string,
  proxyPort: number,
  declared: { host: string; port: number },
  login?: { user: string; password: string },
): Promise<Association> {
  const control = await openClient(proxyHost, proxyPort);
  if (login === undefined) {
    control.send([5, 1, 0]);
    assert.deepEqual([...await control.read(2)], [5, 0]);
  } else {
    control.send([5, 1, 2]);
    assert.deepEqual([...await control.read(2)], [5, 2]);
    control.send([
      1,
      login.user.length,
      ...Buffer.from(login.user),
      login.password.length,
      ...Buffer.from(login.password),
    ]);
    assert.deepEqual([...await control.read(2)], [1, 0]);
  }
  control.send([5, 3, 0, ...addressBlock(declared.host, declared.port)]);
  const head = await control.read(4);
  assert.equal(head[1], 0, `UDP ASSOCIATE succeeded (REP ${head[1]})`);
  const rest = await control.read(head[3] === 4 ? 18 : 6);
  const bytes = Buffer.concat([Buffer.from([0, 0, 0]), Buffer.from(head.subarray(3)), Buffer.from(rest)]);
  const { host, port } = unframe(bytes);
  return { control, relay: { host, port } };
}

/** Sends `payload` to `target` through the association and returns the reply. */
async function roundTrip(
  client: UdpPeer,
  association: Association,
  target: { host: string; port: number },
  payload: Uint8Array,
): Promise<ReturnType<typeof unframe>> {
  client.send(frame(target.host, target.port, payload), association.relay.port, association.relay.host);
  return unframe((await client.next(5000)).bytes);
}

/** Binds a UDP socket to `host:port`, retrying until `timeoutMs`; true when it could. */
async function canBind(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const socket = dgram.createSocket(isIPv6(host) ? "udp6" : "udp4");
    const bound = await new Promise<boolean>((resolve) => {
      socket.once("error", () => resolve(false));
      socket.bind(port, host, () => resolve(true));
    });
    socket.close();
    if (bound || Date.now() > deadline) return bound;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Escapes text for use in a RegExp. */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// --- shared peers ---

const USER = { user: "udpuser", password: "udp-Secret9" };
const DANTE_OUT = "127.0.0.2";
let dir: string;
let echo4: UdpPeer;
let echo6: UdpPeer;
let echoAny: UdpPeer;
let dns: UdpPeer;
let whoami: UdpPeer;
let whoamiViaDante: UdpPeer;
let dante: PeerProcess | undefined;
let httpHop: Server;
let httpHopPort: number;

/** Starts Dante on 127.0.0.1 (out through 127.0.0.2) with UDP ASSOCIATE and UDP replies permitted. */
async function startUdpDante(): Promise<PeerProcess> {
  const port = await closedPort("127.0.0.1");
  const config = join(dir, "sockd.conf");
  writeFileSync(
    config,
    [
      "logoutput: stderr",
      `internal: 127.0.0.1 port = ${port}`,
      `external: ${DANTE_OUT}`,
      "socksmethod: none",
      "clientmethod: none",
      "user.privileged: root",
      "user.unprivileged: nobody",
      "client pass {",
      "  from: 0.0.0.0/0 to: 0.0.0.0/0",
      "}",
      "socks pass {",
      "  from: 0.0.0.0/0 to: 0.0.0.0/0",
      "  command: connect udpassociate",
      "}",
      "socks pass {",
      "  from: 0.0.0.0/0 to: 0.0.0.0/0",
      "  command: udpreply",
      "}",
      "",
    ].join("\n"),
  );
  return startPeer({
    command: [which("danted") ?? "danted", "-f", config, "-N", "1", "-p", join(dir, "sockd.pid")],
    host: "127.0.0.1",
    port,
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "srelay-udp-"));
  [echo4, echo6, echoAny, dns, whoami, whoamiViaDante] = await Promise.all([
    startUdpEcho("127.0.0.1"),
    startUdpEcho("::1"),
    startUdpEcho("::"),
    startDnsResponder("127.0.0.1"),
    startUdpWhoami("127.0.0.1"),
    startUdpWhoami("127.0.0.1"),
  ]);
  if (NO_DANTE === false) dante = await startUdpDante();
  httpHop = createServer((socket) => socket.on("error", () => {}));
  await new Promise<void>((resolve) => httpHop.listen(0, "127.0.0.1", resolve));
  httpHopPort = (httpHop.address() as { port: number }).port;
  writeFileSync(join(dir, "users"), `${USER.user}:${bcrypt.hashSync(USER.password, 4)}\n`);
  // Per datagram: only whoamiViaDante's port goes through Dante (when it runs).
  writeFileSync(
    join(dir, "per-datagram.conf"),
    dante === undefined ? "" : `127.0.0.1 ${whoamiViaDante.port} 127.0.0.1 ${dante.port}/5\n`,
  );
  writeFileSync(join(dir, "all-dante.conf"), dante === undefined ? "" : `* any 127.0.0.1 ${dante.port}/5\n`);
  writeFileSync(join(dir, "all-http.conf"), `* any 127.0.0.1 ${httpHopPort}/H\n`);
});

after(async () => {
  for (const peer of [echo4, echo6, echoAny, dns, whoami, whoamiViaDante]) peer?.close();
  await dante?.stop();
  await new Promise((resolve) => httpHop?.close(resolve));
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) UDP ASSOCIATE end to end`, () => {
    /** Direct, routing per datagram (whoamiViaDante's port through Dante). */
    let server: RunningServer;
    /** Every UDP destination through Dante. */
    let chained: RunningServer;
    /** Every UDP destination through an HTTP hop. */
    let httpChained: RunningServer;
    /** -a p -U users -o 0.01 (0.6 s idle timeout). */
    let strict: RunningServer;
    const clients: UdpPeer[] = [];
    /** The main server's route in log lines: per datagram when its srelay.conf has a rule. */
    const mainRoute = () => (dante === undefined ? "direct" : "per-datagram");
    const client = async (host = "127.0.0.1") => {
      const peer = await openUdp(host);
      clients.push(peer);
      return peer;
    };

    before(async () => {
      if (skip) return;
      const common = ["--handshake-timeout", "5"];
      [server, chained, httpChained, strict] = await Promise.all([
        startServer(mode, ["-i", "127.0.0.1:0", "-i", "[::1]:0", "-c", join(dir, "per-datagram.conf"), ...common], {
          listeners: 2,
        }),
        startServer(mode, ["-i", "127.0.0.1:0", "-c", join(dir, "all-dante.conf"), ...common]),
        startServer(mode, ["-i", "127.0.0.1:0", "-c", join(dir, "all-http.conf"), ...common]),
        startServer(mode, ["-i", "127.0.0.1:0", "-a", "p", "-U", join(dir, "users"), "-o", "0.01", ...common]),
      ]);
    });

    after(async () => {
      for (const peer of clients.splice(0)) peer.close();
      if (skip) return;
      await Promise.all([server, chained, httpChained, strict].map((s) => s?.stop()));
    });

    test("npm socks client: ASSOCIATE, then a datagram to an IPv4 echo server", { skip }, async () => {
      const udp = await client();
      const socksClient = new SocksClient({
        proxy: { host: "127.0.0.1", port: server.port, type: 5 },
        command: "associate",
        destination: { host: "0.0.0.0", port: 0 },
        timeout: 5000,
      });
      const established = new Promise<Established>((resolve, reject) => {
        socksClient.once("established", resolve);
        socksClient.once("error", reject);
      });
      socksClient.connect();
      const { socket, remoteHost } = await established;
      try {
        assert.equal(remoteHost?.host, "127.0.0.1", "BND names the address the client reached, not 0.0.0.0");
        const data = Buffer.from("hello over udp");
        udp.send(
          SocksClient.createUDPFrame({ remoteHost: { host: "127.0.0.1", port: echo4.port }, data }),
          remoteHost!.port,
          remoteHost!.host,
        );
        const reply = SocksClient.parseUDPFrame((await udp.next()).bytes);
        assert.deepEqual(reply.remoteHost, { host: "127.0.0.1", port: echo4.port });
        assert.equal(reply.data.toString(), "hello over udp");
      } finally {
        socket.destroy();
      }
    });

    test("datagrams of 1, 1,400, 16,000 and 65,000 bytes cross whole, both ways", { skip }, async () => {
      const udp = await client();
      const association = await associate("127.0.0.1", server.port, { host: "0.0.0.0", port: udp.port });
      for (const size of [1, 1400, 16_000, 65_000]) {
        const payload = pattern(size);
        const reply = await roundTrip(udp, association, { host: "127.0.0.1", port: echo4.port }, payload);
        assert.equal(reply.host, "127.0.0.1");
        assert.equal(reply.port, echo4.port);
        assert.equal(reply.fragment, 0);
        assert.equal(reply.payload.length, size);
        assert.ok(reply.payload.equals(payload), `${size} bytes came back intact`);
      }
      association.control.close();
      await server.waitForOutput(
        new RegExp(
          `5-UDP 0\\.0\\.0\\.0:${udp.port} ${mainRoute()} bound=127\\.0\\.0\\.1:${association.relay.port} up=82401 down=82401 datagrams=4/4 drops=0 `,
        ),
      );
    });

    test("IPv6 client to an echo server on ::1: the relay is on ::1", { skip }, async () => {
      const udp = await client("::1");
      const association = await associate("::1", Number(server.addresses[1]!.split(":").pop()), {
        host: "::",
        port: udp.port,
      });
      assert.equal(association.relay.host, "::1");
      const reply = await roundTrip(udp, association, { host: "::1", port: echo6.port }, Buffer.from("six"));
      assert.deepEqual([reply.host, reply.port, reply.payload.toString()], ["::1", echo6.port, "six"]);
      association.control.close();
    });

    test("IPv4 client to an IPv6 target and back", { skip }, async () => {
      const udp = await client();
      const association = await associate("127.0.0.1", server.port, { host: "0.0.0.0", port: udp.port });
      const reply = await roundTrip(udp, association, { host: "::1", port: echo6.port }, Buffer.from("gateway"));
      assert.deepEqual([reply.host, reply.port, reply.payload.toString()], ["::1", echo6.port, "gateway"]);
      association.control.close();
    });

    test(
      "a domain target (localhost) is resolved by the proxy; the reply names the real source",
      { skip },
      async () => {
        const udp = await client();
        const association = await associate("127.0.0.1", server.port, { host: "0.0.0.0", port: udp.port });
        const reply = await roundTrip(udp, association, { host: "localhost", port: echoAny.port }, Buffer.from("name"));
        assert.ok(reply.host === "127.0.0.1" || reply.host === "::1", `source ${reply.host} is an address`);
        assert.deepEqual([reply.port, reply.payload.toString()], [echoAny.port, "name"]);
        association.control.close();
      },
    );

    test("a DNS query through the association is answered correctly", { skip }, async () => {
      const udp = await client();
      const association = await associate("127.0.0.1", server.port, { host: "0.0.0.0", port: 0 });
      const reply = await roundTrip(
        udp,
        association,
        { host: "127.0.0.1", port: dns.port },
        dnsQuery(0x5a17, DNS_NAME),
      );
      const answer = reply.payload;
      assert.equal(answer.readUInt16BE(0), 0x5a17, "ID");
      assert.equal(answer[2]! & 0x80, 0x80, "QR: a response");
      assert.equal(answer[3]! & 0x0f, 0, "RCODE NOERROR");
      assert.equal(answer.readUInt16BE(6), 1, "ANCOUNT");
      assert.deepEqual([...answer.subarray(answer.length - 4)], DNS_ANSWER);
      association.control.close();
    });

    test(
      "drops: a spoofed source, an undeclared port and FRAG != 0; the real client keeps working",
      { skip },
      async () => {
        const udp = await client();
        const spoofer = await client("127.0.0.2");
        const otherPort = await client();
        const association = await associate("127.0.0.1", server.port, { host: "127.0.0.1", port: udp.port });
        const { relay } = association;
        const echoTarget = { host: "127.0.0.1", port: echo4.port };
        const before = echo4.received.length;
        spoofer.send(frame(echoTarget.host, echoTarget.port, Buffer.from("spoofed")), relay.port, relay.host);
        otherPort.send(frame(echoTarget.host, echoTarget.port, Buffer.from("other port")), relay.port, relay.host);
        udp.send(frame(echoTarget.host, echoTarget.port, Buffer.from("fragment"), 1), relay.port, relay.host);
        assert.ok(await udp.silentFor(300), "no reply to the fragment");
        assert.ok(await spoofer.silentFor(0), "no reply to the spoofer");
        assert.ok(await otherPort.silentFor(0), "no reply to the undeclared port");
        assert.equal(echo4.received.length, before, "the echo server received none of them");
        const reply = await roundTrip(udp, association, echoTarget, Buffer.from("real"));
        assert.equal(reply.payload.toString(), "real");
        association.control.close();
        await server.waitForOutput(
          new RegExp(
            `5-UDP 127\\.0\\.0\\.1:${udp.port} ${mainRoute()} bound=\\S+ up=4 down=4 datagrams=1/1 drops=foreign_source:1,fragmented:1,undeclared_port:1 `,
          ),
        );
        await server.waitForOutput(
          new RegExp(
            `5-UDP 127\\.0\\.0\\.1:${udp.port} ${mainRoute()}: dropped a datagram \\(foreign_source\\): .*127\\.0\\.0\\.2`,
          ),
        );
      },
    );

    test("closing the control connection releases the relay port at once", { skip }, async () => {
      const udp = await client();
      const association = await associate("127.0.0.1", server.port, { host: "0.0.0.0", port: udp.port });
      const reply = await roundTrip(udp, association, { host: "127.0.0.1", port: echo4.port }, Buffer.from("x"));
      assert.equal(reply.payload.toString(), "x");
      association.control.close();
      assert.ok(await canBind("127.0.0.1", association.relay.port, 2000), "the relay port can be bound again");
    });

    test("per datagram: one destination through Dante, another directly, in one association", {
      skip: skip || NO_DANTE,
    }, async () => {
      const udp = await client();
      const association = await associate("127.0.0.1", server.port, { host: "0.0.0.0", port: udp.port });
      const viaDante = await roundTrip(
        udp,
        association,
        { host: "127.0.0.1", port: whoamiViaDante.port },
        Buffer.from("?"),
      );
      assert.equal(viaDante.payload.toString(), DANTE_OUT, "Dante sent it from its external address");
      assert.deepEqual([viaDante.host, viaDante.port], ["127.0.0.1", whoamiViaDante.port]);
      const direct = await roundTrip(udp, association, { host: "127.0.0.1", port: whoami.port }, Buffer.from("?"));
      assert.equal(direct.payload.toString(), "127.0.0.1", "srelay sent it itself");
      association.control.close();
      await server.waitForOutput(
        new RegExp(`5-UDP 0\\.0\\.0\\.0:${udp.port} per-datagram bound=\\S+ up=2 down=\\d+ datagrams=2/2 drops=0 `),
      );
    });

    test("through Dante as the SOCKS5 next hop for every destination", { skip: skip || NO_DANTE }, async () => {
      const udp = await client();
      const association = await associate("127.0.0.1", chained.port, { host: "0.0.0.0", port: udp.port });
      assert.equal(association.relay.host, "127.0.0.1", "the client talks to srelay's relay, not Dante's");
      const reply = await roundTrip(udp, association, { host: "127.0.0.1", port: whoami.port }, Buffer.from("?"));
      assert.equal(reply.payload.toString(), DANTE_OUT);
      assert.deepEqual([reply.host, reply.port], ["127.0.0.1", whoami.port]);
      const echoed = await roundTrip(udp, association, { host: "127.0.0.1", port: echo4.port }, pattern(1400));
      assert.ok(echoed.payload.equals(pattern(1400)));
      association.control.close();
      await chained.waitForOutput(
        new RegExp(
          `5-UDP 0\\.0\\.0\\.0:${udp.port} ${
            literal(`relay=127.0.0.1:${dante!.port}`)
          } bound=\\S+ up=1401 down=\\d+ datagrams=2/2 drops=0 time=\\S+ done`,
        ),
      );
    });

    test("a route through an HTTP hop cannot carry UDP: REP 07 and a log line saying why", { skip }, async () => {
      const control = await openClient("127.0.0.1", httpChained.port);
      control.send([5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
      assert.deepEqual([...await control.read(2)], [5, 0]);
      assert.deepEqual([...await control.read(10)], [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
      assert.ok(await control.closedWithin(3000));
      await httpChained.waitForOutput(
        /5-UDP 0\.0\.0\.0:0 relay=\S+ failed: command_not_supported: .*HTTP CONNECT proxy, which cannot carry UDP/,
      );
    });

    test("-a p: no association before login", { skip }, async () => {
      const control = await openClient("127.0.0.1", strict.port);
      control.send([5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
      assert.deepEqual([...await control.read(2)], [5, 0xff]);
      assert.ok(await control.closedWithin(3000));
      assert.doesNotMatch(strict.output(), /5-UDP/);
    });

    test(
      "-o: the control connection stays open while datagrams flow, and closes once they stop",
      { skip },
      async () => {
        const udp = await client();
        const association = await associate("127.0.0.1", strict.port, { host: "0.0.0.0", port: udp.port }, USER);
        const started = Date.now();
        let round = 0;
        while (Date.now() - started < 1500) {
          const reply = await roundTrip(
            udp,
            association,
            { host: "127.0.0.1", port: echo4.port },
            Buffer.from(`${round++}`),
          );
          assert.equal(reply.payload.toString(), `${round - 1}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.equal(await association.control.closedWithin(0), false, "still open after 2.5 idle timeouts of traffic");
        assert.ok(await association.control.closedWithin(4000), "closed once the datagrams stopped");
        await strict.waitForOutput(new RegExp(`5-UDP 0\\.0\\.0\\.0:${udp.port} direct bound=\\S+ .* idle_timeout`));
      },
    );
  });
}
