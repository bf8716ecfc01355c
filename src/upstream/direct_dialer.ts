/**
 * Dials targets directly (no next hop).
 *
 * IP targets are connected as given. A name is resolved and then every
 * address is tried, RFC 8305 style (srelay-reference §3 item 4): addresses are
 * interleaved by family starting with the family the resolver listed first, a
 * new attempt starts 250 ms after the previous one or as soon as it fails,
 * the first connection wins and the others are aborted or closed. srelay and
 * microsocks try the addresses one by one, so an unreachable AAAA stalls them
 * for the whole connect timeout.
 *
 * The connect timeout covers the name's resolution too: when it runs out
 * while the name is still being resolved, the dial fails as a name that
 * does not resolve (`not_found`, "no answer within N ms"), not as a
 * connection that timed out.
 *
 * A local address (`-g`, `-x`) is bound only for destination addresses of its
 * own family: srelay's `-g` restricted the whole lookup to that family, which
 * broke the IPv4↔IPv6 gateway; this dialer does not.
 *
 * @module
 */
import { DeadlineQueue } from "../io/deadline_queue.ts";
import { ipFamily } from "../net/address.ts";
import { formatTarget, type Target } from "../protocol/target.ts";
import type { Resolver } from "../runtime/resolver.ts";
import {
  type Cancellation,
  type Connection,
  type ConnectOptions,
  NetError,
  type NetRuntime,
} from "../runtime/types.ts";
import { type DialContext, type Dialer, type DialResult, targetFromAddress } from "./dialer.ts";

/** Options for `createDirectDialer`. */
export interface DirectDialerOptions {
  /** The runtime that opens outbound sockets. */
  readonly runtime: NetRuntime;
  /**
   * The runtime used for dials that bind a local address when `runtime`
   * cannot (`canBindSource` false): the node:net adapter.
   */
  readonly sourceRuntime?: NetRuntime;
  /** Resolves domain targets. */
  readonly resolver: Resolver;
  /** Longest time for the whole dial, all attempts included, in milliseconds (default 30000). */
  readonly connectTimeoutMs?: number;
  /** Delay before the next address is tried while the previous attempt is pending (default 250). */
  readonly attemptDelayMs?: number;
}

/** Creates a dialer that connects straight to the target. */
export function createDirectDialer(options: DirectDialerOptions): Dialer {
  const connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
  const attemptDelayMs = options.attemptDelayMs ?? 250;
  const deadlines = new DeadlineQueue(connectTimeoutMs);

  function runtimeFor(address: string, localHost: string | undefined): {
    runtime: NetRuntime;
    localHost?: string;
  } {
    if (localHost === undefined || ipFamily(localHost) !== ipFamily(address)) {
      return { runtime: options.runtime };
    }
    if (options.runtime.canBindSource) return { runtime: options.runtime, localHost };
    if (options.sourceRuntime?.canBindSource === true) {
      return { runtime: options.sourceRuntime, localHost };
    }
    throw new NetError(
      "other",
      `Cannot bind the outbound socket to ${localHost}: the ${options.runtime.name} runtime cannot bind a source address and no source runtime was given`,
    );
  }

  /**
   * An IP target: one attempt, whose timeout the runtime keeps (no
   * controller, listener or deadline of the dialer's own on this, the
   * common, path).
   */
  function dialAddress(target: Target, context: DialContext): Promise<DialResult> {
    let connecting: Promise<Connection>;
    try {
      connecting = connectTo(target.host, target.port, context.localHost, context.signal, connectTimeoutMs);
    } catch (error) {
      connecting = Promise.reject(error);
    }
    return connecting.then(directResult, (error: unknown) => {
      throw dialError(target, context.signal, error);
    });
  }

  /** One attempt at `address`, from the local address when it is of the same family. */
  function connectTo(
    address: string,
    port: number,
    localHostOption: string | undefined,
    signal: Cancellation,
    timeoutMs?: number,
  ): Promise<Connection> {
    const { runtime, localHost } = runtimeFor(address, localHostOption);
    const connect: { -readonly [K in keyof ConnectOptions]: ConnectOptions[K] } = { host: address, port, signal };
    if (timeoutMs !== undefined) connect.timeoutMs = timeoutMs;
    if (localHost !== undefined) connect.localHost = localHost;
    return runtime.connect(connect);
  }

  return {
    dial(target: Target, context: DialContext): Promise<DialResult> {
      return target.kind === "domain" ? dialName(target, context) : dialAddress(target, context);
    },
  };

  /** A name: resolved (unless the rules already did), then every address raced. */
  async function dialName(target: Target, context: DialContext): Promise<DialResult> {
    // One controller carries both the connect timeout and the caller's
    // cancellation (cheaper per dial than AbortSignal.any); the timeout is
    // an entry of the dialer's deadline queue, not a timer of its own.
    const deadline = new AbortController();
    let resolving = false;
    const timeout = {
      expire() {
        // Out of time while the name is still being resolved: a name that
        // does not resolve in time (REP 04), as the resolver's own timeout says.
        deadline.abort(
          resolving
            ? new NetError("not_found", `Cannot resolve ${target.host}: no answer within ${connectTimeoutMs} ms`)
            : new NetError(
              "timeout",
              `Cannot connect to ${formatTarget(target)}: no connection within ${connectTimeoutMs} ms`,
            ),
        );
      },
    };
    deadlines.add(timeout);
    const cancel = () => deadline.abort(context.signal.reason);
    if (context.signal.aborted) cancel();
    else context.signal.addEventListener("abort", cancel, { once: true });
    const signal = deadline.signal;
    const attemptAt = (address: string, attempt: AbortSignal) =>
      connectTo(address, target.port, context.localHost, attempt);
    try {
      let addresses: string[];
      if (context.addresses !== undefined) addresses = interleaveFamilies(context.addresses);
      else {
        resolving = true;
        addresses = interleaveFamilies(await resolveTarget(options.resolver, target.host, signal));
        resolving = false;
      }
      const single = addresses.length === 1 ? addresses[0] : undefined;
      const connection = await (single !== undefined
        ? attemptAt(single, signal)
        : raceConnect(addresses, signal, attemptDelayMs, attemptAt)).catch((error: unknown) => {
          throw nameDialError(target, addresses.length, error);
        });
      return directResult(connection);
    } catch (error) {
      throw dialError(target, signal, error);
    } finally {
      deadlines.delete(timeout);
      context.signal.removeEventListener("abort", cancel);
    }
  }
}

/** What a direct connection brings besides the socket: nothing (read-only in practice: it has no bytes). */
const NO_BYTES = new Uint8Array(0);

/** A direct connection as a dial's result: no early bytes; bound is its local address. */
function directResult(connection: Connection): DialResult {
  return { connection, rest: NO_BYTES, bound: targetFromAddress(connection.local) };
}

/**
 * Orders addresses RFC 8305 style: alternate families, starting with the
 * family of the first address, keeping the resolver's order within a family.
 */
export function interleaveFamilies(addresses: readonly string[]): string[] {
  const first = addresses[0];
  if (first === undefined) return [];
  const firstFamily = ipFamily(first);
  const preferred = addresses.filter((address) => ipFamily(address) === firstFamily);
  const other = addresses.filter((address) => ipFamily(address) !== firstFamily);
  const ordered: string[] = [];
  for (let i = 0; i < Math.max(preferred.length, other.length); i++) {
    const a = preferred[i];
    const b = other[i];
    if (a !== undefined) ordered.push(a);
    if (b !== undefined) ordered.push(b);
  }
  return ordered;
}

async function resolveTarget(resolver: Resolver, host: string, signal: AbortSignal): Promise<string[]> {
  const addresses = await resolver.resolve(host, signal);
  if (addresses.length === 0) throw new NetError("not_found", `Cannot resolve ${host}: no addresses`);
  return addresses;
}

/**
 * Starts one attempt per address, the next after `delayMs` or when the
 * previous fails; resolves with the first connection and aborts or closes
 * the rest. Rejects with the most telling error when all fail.
 */
function raceConnect(
  addresses: readonly string[],
  signal: AbortSignal,
  delayMs: number,
  connect: (address: string, signal: AbortSignal) => Promise<Connection>,
): Promise<Connection> {
  return new Promise<Connection>((resolve, reject) => {
    const attempts: AbortController[] = [];
    const errors: unknown[] = [];
    let next = 0;
    let pending = 0;
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;

    function settle(): void {
      done = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      for (const attempt of attempts) attempt.abort();
    }
    function onAbort(): void {
      if (done) return;
      settle();
      reject(signal.reason);
    }
    function launch(): void {
      clearTimeout(timer);
      const address = addresses[next++];
      if (done || address === undefined) return;
      const attempt = new AbortController();
      attempts.push(attempt);
      pending++;
      let started: Promise<Connection>;
      try {
        started = connect(address, AbortSignal.any([signal, attempt.signal]));
      } catch (error) {
        started = Promise.reject(error);
      }
      started.then(
        (connection) => {
          pending--;
          if (done) {
            connection.close();
            return;
          }
          settle();
          resolve(connection);
        },
        (error: unknown) => {
          pending--;
          if (done) return;
          errors.push(error);
          if (next < addresses.length) {
            launch();
          } else if (pending === 0) {
            settle();
            reject(mostTelling(errors));
          }
        },
      );
      if (next < addresses.length) timer = setTimeout(launch, delayMs);
    }

    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) onAbort();
    else launch();
  });
}

/** A refusal says most (something listens there, but not for us); otherwise the last failure. */
function mostTelling(errors: readonly unknown[]): unknown {
  return errors.find((error) => error instanceof NetError && error.code === "refused") ??
    errors[errors.length - 1];
}

/**
 * Names the target in a failure to connect to one of its addresses:
 * "Cannot connect to example.com:80 (2 addresses tried): 192.0.2.1:80: connection refused".
 */
function nameDialError(target: Target, tried: number, error: unknown): unknown {
  if (!(error instanceof NetError) || error.code === "aborted") return error;
  const detail = error.message.replace(/^Cannot connect to /, "");
  const count = tried > 1 ? ` (${tried} addresses tried)` : "";
  return new NetError(error.code, `Cannot connect to ${formatTarget(target)}${count}: ${detail}`, {
    cause: error,
  });
}

function dialError(target: Target, signal: Cancellation, error: unknown): NetError {
  if (signal.aborted && error === signal.reason) {
    return error instanceof NetError
      ? error
      : new NetError("aborted", `Cannot connect to ${formatTarget(target)}: aborted`, { cause: error });
  }
  if (error instanceof NetError) {
    if (error.code === "not_found" || error.message.startsWith("Cannot ")) return error;
    return new NetError(error.code, `Cannot connect to ${formatTarget(target)}: ${error.message}`, {
      cause: error,
    });
  }
  return new NetError(
    "other",
    `Cannot connect to ${formatTarget(target)}: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}
