/**
 * BIND, shared by SOCKS4/4a and SOCKS5 (RFC 1928 §4, SOCKS4.protocol): the
 * client asks the server to accept one connection from a peer (the data
 * connection of active FTP), and gets two replies: the first once the
 * server listens, naming where the peer must connect; the second once the
 * peer has connected, naming the peer. Then the two are relayed like CONNECT.
 *
 * Direct BIND:
 *
 * - The expected peer is DST.ADDR (a name is resolved, or the addresses
 *   the destination rules vetted are used); only a connection from one of
 *   its addresses is served. Another is closed at once, logged, and the
 *   listener goes on waiting. DST.ADDR 0.0.0.0 or :: lets any peer in.
 * - The listening address is one the peer can reach, never a wildcard:
 *   `-g`'s or `-x`/`-J`'s address when it has the peer's family; else the
 *   interface address on the peer's network (longest prefix); else the
 *   address the client reached us on (a loopback one only for a loopback
 *   peer); else the host's first global address of that family; else, for
 *   a loopback or any peer, loopback.
 * - The port is the requested DST.PORT where free, else the client's own
 *   source port where free, else any free port. A port below 1024 is
 *   skipped unless `-b` is given (srelay's BIND port restriction).
 * - The wait for the peer is bounded by `--bind-timeout`; on expiry the
 *   client gets REP 01 / CD 5B. A client that leaves while waiting (or
 *   half-closes) ends the session and frees the port at once.
 *
 * BIND through a chain: the farthest hop does the listening. The stream to
 * it comes from `Dialer.reachFarthest`; it is asked for BIND in its own
 * protocol (a `/S` hop SOCKS5 first, then SOCKS4 on a new stream), and its
 * two replies are passed back in the client's protocol. An HTTP farthest
 * hop cannot BIND: REP 07 / CD 5B. A peer the hop reports that is not the
 * numeric DST.ADDR ends the session (REP 02): the hop's listener cannot be
 * asked to wait for another.
 *
 * Every socket of the session (listener, wrong peers, peer, hop stream) is
 * closed on every way out.
 *
 * Limits: `--max-binds-per-client` and `--max-binds` count the BIND
 * requests waiting for their peer (`command_limits.ts`); over a limit the
 * client gets REP 01 / CD 5B and one log line naming it.
 *
 * @module
 */
import { networkInterfaces } from "node:os";
import type { Inbox } from "../io/inbox.ts";
import { relay } from "../io/relay.ts";
import { sendAndClose } from "../io/send_and_close.ts";
import { formatIp, type IpAddress, type IpFamily, ipFamily, normalizeHost, parseHost, toCidr } from "../net/address.ts";
import { type Decoded, needBytes, ProtocolError } from "../protocol/decoded.ts";
import type { FailureReason } from "../protocol/reply.ts";
import { SOCKS4_COMMAND } from "../protocol/socks4.ts";
import { SOCKS5_COMMAND } from "../protocol/socks5.ts";
import { formatTarget, type Target } from "../protocol/target.ts";
import { type Connection, NetError, type NetRuntime, type PeerListener } from "../runtime/types.ts";
import { type DialContext, type FarthestHop, targetFromAddress } from "../upstream/dialer.ts";
import { describeHop, HopError } from "../upstream/hop_error.ts";
import { DEFAULT_SOCKS4_USER_ID, readSocks4HopReply, socks4Connector } from "../upstream/socks4_connector.ts";
import { NotSocks5Error, readSocks5HopReply, socks5Connector } from "../upstream/socks5_connector.ts";
import type { CommandSession } from "./commands.ts";
import { failureReasonFor } from "./reply_codes.ts";

/** Most bytes a client may send between its BIND request and the second reply. */
const EARLY_DATA_LIMIT = 64 * 1024;

/** Ports below this need `-b` to be listened on. */
const FIRST_UNRESTRICTED_PORT = 1024;

/** The peer a BIND waits for. */
export interface ExpectedPeer {
  /** DST.ADDR was 0.0.0.0 or ::: any peer may connect. */
  readonly any: boolean;
  /** The family the listener is opened in. */
  readonly family: IpFamily;
  /** The peer's addresses, normalised (`normalizeHost`). */
  readonly addresses: readonly string[];
}

/** What `chooseListenHost` decides from. */
export interface ListenHostQuestion {
  readonly peer: ExpectedPeer;
  /** The address the client reached us on. */
  readonly clientLocal: string;
  /** `-g`'s or `-x`/`-J`'s address, or null. */
  readonly configured: string | null;
  /** This host's interface addresses as `address/prefix`. */
  readonly interfaces: readonly string[];
}

/** The wait for the peer is over without one: REP 01 / CD 5B, not REP 06. */
class BindTimeout extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BindTimeout";
  }
}

/**
 * Serves one BIND request until the session ends, unless the client or the
 * server is at its limit of BIND listeners (`command_limits.ts`; the slot is
 * held until the wait for the peer is over). Throws only that `Refusal`.
 */
export async function serveBind(session: CommandSession): Promise<void> {
  const { connection: client, handshake, request, context, account } = session;
  const release = context.scope.commandSlots.take("bind", session.client.address.host, request);
  const watch = new ClientWatch(handshake.inbox, release);
  const signal = AbortSignal.any([context.shutdown.signal, watch.signal]);
  const open = new Set<{ close(): void }>();
  try {
    const route = await untilAborted(
      Promise.resolve(
        context.policy.router.choose({ target: request.target, command: "bind", client: session.client.address }),
      ),
      signal,
    );
    account.requested(route.description);
    const reachFarthest = route.dialer.reachFarthest?.bind(route.dialer);
    if (reachFarthest === undefined) await bindDirect(session, watch, open, signal);
    else await bindThroughChain(session, reachFarthest, watch, open, signal);
  } catch (error) {
    for (const socket of open) socket.close();
    watch.stop();
    const replied = !handshake.armed;
    handshake.finish();
    if (watch.left) {
      account.clientGone(replied ? "while waiting for the peer" : "before the reply");
      client.close();
      return;
    }
    const reason: FailureReason = error instanceof BindTimeout ? "general_failure" : failureReasonFor(error);
    account.failed(reason, watch.misbehaviour ?? error);
    await sendAndClose(client, request.responder.fail(reason), context.shutdown);
  } finally {
    for (const socket of open) socket.close();
    watch.stop();
  }
}

/** BIND on this host: listen, first reply, wait for the right peer, second reply, relay. */
async function bindDirect(
  session: CommandSession,
  watch: ClientWatch,
  open: Set<{ close(): void }>,
  signal: AbortSignal,
): Promise<void> {
  const { connection: client, handshake, request, context, account } = session;
  const { scope } = context;
  const peer = await expectedPeer(session, signal);
  const configured = scope.settings.sameInterface ? session.connection.local.host : scope.settings.sourceAddress;
  const host = chooseListenHost({
    peer,
    clientLocal: session.connection.local.host,
    configured,
    interfaces: (scope.interfaces ?? hostInterfaces)(),
  });
  if (host === null) {
    throw new NetError(
      "address_not_available",
      `Cannot listen for ${formatTarget(request.target)}: this host has no IPv${peer.family} address`,
    );
  }
  const listener = await listenOnPort(scope.runtime, host, [request.target.port, session.client.address.port], {
    anyPort: scope.settings.bindAnyPort,
    signal,
  });
  open.add(listener);
  const listen = targetFromAddress(listener.address);
  client.write(request.responder.succeed(listen));
  handshake.finish();
  const deadline = new Deadline(
    scope.settings.bindTimeoutMs,
    () => `No peer connected to ${formatTarget(listen)} within ${scope.settings.bindTimeoutMs / 1000} s`,
  );
  const waiting = AbortSignal.any([signal, deadline.signal]);
  let accepted: Connection;
  try {
    for (;;) {
      const candidate = await listener.accept(waiting);
      if (allows(peer, candidate.remote.host)) {
        accepted = candidate;
        break;
      }
      candidate.close();
      account.peerRefused(candidate.remote, listen);
    }
  } catch (error) {
    throw deadline.expired ? deadline.error() : error;
  } finally {
    deadline.clear();
  }
  open.add(accepted);
  listener.close();
  open.delete(listener);
  await relayToPeer(session, watch, open, {
    far: accepted,
    listen,
    peer: targetFromAddress(accepted.remote),
    rest: new Uint8Array(0),
    ended: false,
  });
}

/** BIND at the farthest hop of a chain: both of its replies are passed back, then the stream is relayed. */
async function bindThroughChain(
  session: CommandSession,
  reachFarthest: (context: DialContext) => Promise<FarthestHop>,
  watch: ClientWatch,
  open: Set<{ close(): void }>,
  signal: AbortSignal,
): Promise<void> {
  const { connection: client, handshake, request, context, identity } = session;
  const { settings } = context.scope;
  const localHost = settings.sameInterface ? client.local.host : settings.sourceAddress ?? undefined;
  const dialContext: DialContext = {
    signal,
    userId: identity.user,
    ...(localHost === undefined ? {} : { localHost }),
  };
  const reach = async () => {
    const hop = await reachFarthest(dialContext);
    open.add(hop.connection);
    if (hop.hop.protocol === "http") {
      throw new HopError(
        hop.name,
        "command_not_supported",
        `${
          describeHop({ name: hop.name, protocol: "http" })
        } cannot BIND: HTTP CONNECT cannot accept a connection, so BIND needs a SOCKS farthest hop`,
      );
    }
    if (hop.early.length > 0) {
      throw new HopError(
        hop.name,
        "general_failure",
        `${
          describeHop({ name: hop.name, protocol: hop.hop.protocol })
        } sent ${hop.early.length} bytes before it was asked anything`,
      );
    }
    return hop;
  };
  const userId = identity.user !== "" ? identity.user : request.userId !== "" ? request.userId : DEFAULT_SOCKS4_USER_ID;
  let farthest = await reach();
  let protocol: "socks5" | "socks4" = farthest.hop.protocol === "socks4" ? "socks4" : "socks5";
  let listen: Target;
  try {
    listen = await askBind(farthest, protocol, request.target, userId, settings.handshakeTimeoutMs, signal);
  } catch (error) {
    if (!(farthest.hop.protocol === "socks" && error instanceof NotSocks5Error)) throw error;
    farthest.connection.close();
    open.delete(farthest.connection);
    farthest = await reach();
    protocol = "socks4";
    listen = await askBind(farthest, protocol, request.target, userId, settings.handshakeTimeoutMs, signal);
  }
  listen = await announceable(listen, farthest, context.scope.resolver, signal);
  const label = { name: farthest.name, protocol };
  if (request.version !== "5" && listen.kind !== "ipv4") {
    throw new HopError(
      farthest.name,
      "address_type_not_supported",
      `${describeHop(label)} listens on ${formatTarget(listen)}, which a SOCKS4 reply cannot carry`,
    );
  }
  client.write(request.responder.succeed(listen));
  handshake.finish();
  const deadline = new Deadline(
    settings.bindTimeoutMs,
    () =>
      `No peer connected to ${formatTarget(listen)} (at ${farthest.name}) within ${settings.bindTimeoutMs / 1000} s`,
  );
  let peer: Target;
  try {
    const waiting = AbortSignal.any([signal, deadline.signal]);
    peer = protocol === "socks5"
      ? await readSocks5HopReply(
        farthest.name,
        farthest.inbox,
        SOCKS5_COMMAND.BIND,
        request.target,
        waiting,
        "the wait for the second SOCKS5 BIND reply",
      )
      : await readSocks4HopReply(
        farthest.name,
        farthest.inbox,
        SOCKS4_COMMAND.BIND,
        request.target,
        waiting,
        "the wait for the second SOCKS4 BIND reply",
      );
  } catch (error) {
    throw deadline.expired ? deadline.error() : error;
  } finally {
    deadline.clear();
  }
  const wanted = request.target;
  if (
    wanted.kind !== "domain" && !isUnspecified(wanted.host) && peer.kind !== "domain" &&
    normalizeHost(peer.host) !== normalizeHost(wanted.host)
  ) {
    throw new HopError(
      farthest.name,
      "not_allowed",
      `${describeHop(label)} reports a connection from ${
        formatTarget(peer)
      }, not from the expected peer ${wanted.host}`,
    );
  }
  await relayToPeer(session, watch, open, {
    far: farthest.connection,
    listen,
    peer,
    rest: farthest.inbox.takeRest(),
    ended: farthest.inbox.ended,
  });
}

/** Greets the farthest hop (SOCKS5 with RFC 1929 if it asks) and sends BIND; returns its first reply's address. */
async function askBind(
  farthest: FarthestHop,
  protocol: "socks5" | "socks4",
  target: Target,
  userId: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Target> {
  const deadline = new Deadline(timeoutMs, () => `No answer within ${timeoutMs} ms`, "timeout");
  try {
    const stepSignal = AbortSignal.any([signal, deadline.signal]);
    const connector = protocol === "socks5"
      ? socks5Connector({
        hop: farthest.name,
        credentials: () => farthest.credentials,
        command: SOCKS5_COMMAND.BIND,
      })
      : socks4Connector({ hop: farthest.name, userId, command: SOCKS4_COMMAND.BIND });
    return (await connector.connect(farthest.connection, farthest.inbox, target, stepSignal)).bound;
  } finally {
    deadline.clear();
  }
}

/**
 * A hop's listening address as the client must be told it: an unspecified
 * address (0.0.0.0, ::) stands for the hop itself (SOCKS4.protocol), so it
 * becomes the hop's address, resolved here when the hop is a name.
 */
async function announceable(
  listen: Target,
  farthest: FarthestHop,
  resolver: { resolve(name: string, signal?: AbortSignal): Promise<string[]> },
  signal: AbortSignal,
): Promise<Target> {
  if (listen.kind === "domain" || !isUnspecified(listen.host)) return listen;
  const family = listen.kind === "ipv6" ? 6 : 4;
  const hopHost = normalizeHost(farthest.hop.host);
  const candidates = ipFamily(hopHost) === 0 ? await resolver.resolve(hopHost, signal) : [hopHost];
  const host = candidates.map(normalizeHost).find((address) => ipFamily(address) === family);
  if (host === undefined) {
    throw new HopError(
      farthest.name,
      "general_failure",
      `${describeHop({ name: farthest.name, protocol: farthest.hop.protocol })} listens on ${
        formatTarget(listen)
      } and has no IPv${family} address to stand for it`,
    );
  }
  return { kind: family === 6 ? "ipv6" : "ipv4", host, port: listen.port };
}

/** The second reply, then the relay between the client and the peer (or the hop stream), and the log line. */
async function relayToPeer(
  session: CommandSession,
  watch: ClientWatch,
  open: Set<{ close(): void }>,
  far: { far: Connection; listen: Target; peer: Target; rest: Uint8Array; ended: boolean },
): Promise<void> {
  const { connection: client, handshake, request, context, account } = session;
  watch.stop();
  if (watch.signal.aborted) throw watch.signal.reason;
  if (request.version !== "5" && far.peer.kind !== "ipv4") {
    throw new NetError(
      "other",
      `The peer ${formatTarget(far.peer)} cannot be named in a SOCKS4 reply (IPv4 only)`,
    );
  }
  client.write(request.responder.succeed(far.peer));
  open.clear();
  const { inbox } = handshake;
  const { settings } = context.scope;
  const result = await relay(client, far.far, {
    idleTimeoutMs: settings.idleTimeoutMs,
    finWaitMs: settings.finWaitMs,
    clientRest: inbox.takeRest(),
    ...(inbox.ended ? { clientEnded: true } : {}),
    targetRest: far.rest,
    ...(far.ended ? { targetEnded: true } : {}),
    signal: context.shutdown,
  });
  account.bindFinished(far.listen, far.peer, result);
}

/** The expected peer of a request: DST.ADDR, its name resolved (IPv4 only for SOCKS4). */
async function expectedPeer(session: CommandSession, signal: AbortSignal): Promise<ExpectedPeer> {
  const { request, authorization, context } = session;
  const { target } = request;
  let addresses: string[];
  if (target.kind !== "domain") {
    addresses = [normalizeHost(target.host)];
  } else {
    const found = authorization.addresses ??
      await untilAborted(context.scope.resolver.resolve(target.host, signal), signal);
    addresses = [...new Set(found.map(normalizeHost))];
  }
  if (request.version !== "5") addresses = addresses.filter((address) => ipFamily(address) === 4);
  addresses = addresses.filter((address) => ipFamily(address) !== 0);
  const first = addresses[0];
  if (first === undefined) {
    throw new NetError(
      "not_found",
      `Cannot wait for ${target.host}: it has no ${request.version === "5" ? "" : "IPv4 "}address`,
    );
  }
  const localFamily = ipFamily(normalizeHost(session.connection.local.host));
  const family = addresses.some((address) => ipFamily(address) === localFamily)
    ? localFamily as IpFamily
    : ipFamily(first) as IpFamily;
  return { any: target.kind !== "domain" && isUnspecified(first), family, addresses };
}

/** True when a connection from `host` is the expected peer. */
function allows(peer: ExpectedPeer, host: string): boolean {
  return peer.any || peer.addresses.includes(normalizeHost(host));
}

/**
 * Where a BIND listens: an address of the peer's family the peer can reach,
 * never a wildcard; `null` when this host has none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const interfaces = ["127.0.0.1/8", "10.0.0.5/24", "192.0.2.10/24", "::1/128"];
 * const peer = (address: string) => ({ any: false, family: 4 as const, addresses: [address] });
 * // The interface on the peer's network
 * assert.equal(chooseListenHost({ peer: peer("10.0.0.7"), clientLocal: "192.0.2.10", configured: null, interfaces }), "10.0.0.5");
 * // Otherwise the address the client reached us on
 * assert.equal(chooseListenHost({ peer: peer("198.51.100.1"), clientLocal: "192.0.2.10", configured: null, interfaces }), "192.0.2.10");
 * // A loopback peer gets loopback
 * assert.equal(chooseListenHost({ peer: peer("127.0.0.2"), clientLocal: "192.0.2.10", configured: null, interfaces }), "127.0.0.1");
 * ```
 */
export function chooseListenHost(question: ListenHostQuestion): string | null {
  const { peer } = question;
  const configured = question.configured === null ? null : normalizeHost(question.configured);
  if (configured !== null && ipFamily(configured) === peer.family && !isUnspecified(configured)) return configured;
  const interfaces = question.interfaces.flatMap((text) => {
    const parsed = parseInterface(text);
    return parsed === null || parsed.address.family !== peer.family ? [] : [parsed];
  });
  if (!peer.any) {
    let best: { host: string; prefix: number } | null = null;
    for (const text of peer.addresses) {
      const address = parseHost(text);
      if (address === null || address.family !== peer.family) continue;
      for (const own of interfaces) {
        if (isLinkLocal(own.address) || (best !== null && best.prefix >= own.prefix)) continue;
        if (toCidr(address, own.prefix).network.value === toCidr(own.address, own.prefix).network.value) {
          best = { host: formatIp(own.address), prefix: own.prefix };
        }
      }
    }
    if (best !== null) return best.host;
  }
  const peerIsLoopback = !peer.any && peer.addresses.every(isLoopbackText);
  const local = normalizeHost(question.clientLocal);
  const localAddress = parseHost(local);
  if (
    localAddress !== null && localAddress.family === peer.family && localAddress.value !== 0n &&
    !isLinkLocal(localAddress) && isLoopback(localAddress) === peerIsLoopback
  ) {
    return local;
  }
  if (!peerIsLoopback) {
    const global = interfaces.find((own) => !isLoopback(own.address) && !isLinkLocal(own.address));
    if (global !== undefined) return formatIp(global.address);
  }
  if (peer.any || peerIsLoopback) {
    const loopback = interfaces.find((own) => isLoopback(own.address));
    return loopback === undefined ? (peer.family === 6 ? "::1" : "127.0.0.1") : formatIp(loopback.address);
  }
  return null;
}

/**
 * Listens on the first usable port of `wanted` (0 and, without `anyPort`,
 * ports below 1024 are skipped; a port in use or not permitted is passed
 * over), else on a free port.
 */
async function listenOnPort(
  runtime: NetRuntime,
  host: string,
  wanted: readonly number[],
  options: { anyPort: boolean; signal: AbortSignal },
): Promise<PeerListener> {
  const tried = new Set<number>();
  for (const port of wanted) {
    if (port === 0 || (port < FIRST_UNRESTRICTED_PORT && !options.anyPort) || tried.has(port)) continue;
    tried.add(port);
    try {
      return await opened(runtime.listenForPeer({ host, port }), options.signal);
    } catch (error) {
      if (error instanceof NetError && (error.code === "address_in_use" || error.code === "permission_denied")) {
        continue;
      }
      throw error;
    }
  }
  return opened(runtime.listenForPeer({ host, port: 0 }), options.signal);
}

/** A listener, unless `signal` aborted while it was being opened (then it is closed at once). */
async function opened(pending: Promise<PeerListener>, signal: AbortSignal): Promise<PeerListener> {
  const listener = await pending;
  if (signal.aborted) {
    listener.close();
    throw signal.reason instanceof Error ? signal.reason : new NetError("aborted", "Aborted");
  }
  return listener;
}

/** This host's interface addresses as `address/prefix`, from node:os. */
function hostInterfaces(): string[] {
  const found: string[] = [];
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.cidr !== null) found.push(entry.cidr);
    }
  }
  return found;
}

function parseInterface(text: string): { address: IpAddress; prefix: number } | null {
  const slash = text.lastIndexOf("/");
  const address = parseHost(slash < 0 ? text : text.slice(0, slash));
  if (address === null) return null;
  const bits = address.family === 4 ? 32 : 128;
  const prefix = slash < 0 ? bits : Number(text.slice(slash + 1));
  return Number.isInteger(prefix) && prefix >= 0 && prefix <= bits ? { address, prefix } : null;
}

function isUnspecified(text: string): boolean {
  return parseHost(text)?.value === 0n;
}

function isLoopback(address: IpAddress): boolean {
  return address.family === 4 ? address.value >> 24n === 127n : address.value === 1n;
}

function isLoopbackText(text: string): boolean {
  const address = parseHost(text);
  return address !== null && isLoopback(address);
}

function isLinkLocal(address: IpAddress): boolean {
  return address.family === 4 ? address.value >> 16n === 0xa9fen : address.value >> 118n === 0x3fan;
}

/** A timer as an abort signal; `expired` tells its abort from others. */
class Deadline {
  readonly #controller = new AbortController();
  readonly #timer: ReturnType<typeof setTimeout>;
  readonly #message: () => string;
  #expired = false;

  constructor(ms: number, message: () => string, code?: "timeout") {
    this.#message = message;
    this.#timer = setTimeout(() => {
      this.#expired = true;
      this.#controller.abort(
        code === undefined ? new BindTimeout(message()) : new NetError(code, message()),
      );
    }, ms);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get expired(): boolean {
    return this.#expired;
  }

  error(): BindTimeout {
    return new BindTimeout(this.#message());
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

/**
 * Watches the client while it waits for its replies: `signal` aborts when
 * it closes or half-closes (it left), or sends more than it may before the
 * second reply. Bytes it sends stay in the inbox for the relay. `onStop`
 * runs when the wait is over (it gives the BIND slot back).
 */
class ClientWatch {
  readonly #stop = new AbortController();
  readonly #gone = new AbortController();
  readonly #onStop: () => void;
  #misbehaviour: Error | null = null;

  constructor(inbox: Inbox, onStop: () => void) {
    this.#onStop = onStop;
    inbox.read(waitForever, this.#stop.signal).then(
      () => {},
      (error: unknown) => {
        if (this.#stop.signal.aborted) return;
        if (error instanceof ProtocolError) this.#misbehaviour = error;
        this.#gone.abort(
          error instanceof ProtocolError ? error : new NetError("closed", "The client left", { cause: error }),
        );
      },
    );
  }

  /** Aborts when the client left or misbehaved. */
  get signal(): AbortSignal {
    return this.#gone.signal;
  }

  /** True when the client closed or half-closed its connection. */
  get left(): boolean {
    return this.#gone.signal.aborted && this.#misbehaviour === null;
  }

  /** What the client did wrong (sent too much before the second reply), to log instead of the error it caused. */
  get misbehaviour(): Error | null {
    return this.#misbehaviour;
  }

  /** Stops watching (the relay takes over the client) and runs `onStop` once. Idempotent. */
  stop(): void {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    this.#onStop();
  }
}

function waitForever(bytes: Uint8Array): Decoded<never> {
  if (bytes.length > EARLY_DATA_LIMIT) {
    throw new ProtocolError(`Cannot wait for the peer: the client sent more than ${EARLY_DATA_LIMIT} bytes first`);
  }
  return needBytes(bytes.length + 1);
}

/** Resolves as `promise` does, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  const reason = () => signal.reason instanceof Error ? signal.reason : new NetError("aborted", "Aborted");
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reason());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
