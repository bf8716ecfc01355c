/**
 * Routers, dialers and targets for server tests on the memory runtime: a
 * dialer that reaches in-test targets through `MemoryRuntime.connect`, one
 * that fails with a given error, one that never answers until its dial is
 * aborted, and targets that echo or record what they get.
 *
 * @module
 */
import type { Target } from "../../src/protocol/target.ts";
import { NetError } from "../../src/runtime/types.ts";
import type { RouteChoice, Router, RouteRequest } from "../../src/server/router.ts";
import { type DialContext, type Dialer, type DialResult, targetFromAddress } from "../../src/upstream/dialer.ts";
import type { MemoryRuntime } from "./memory_runtime.ts";
import type { MemoryConnectionEnd } from "./memory_connection.ts";
import { ScriptPeer } from "./script_peer.ts";

/** One `dial` call. */
export interface DialCall {
  readonly target: Target;
  readonly context: DialContext;
  /** Set once the call's signal aborted while it was pending. */
  aborted: boolean;
  /** The connection handed to the server, once there is one. */
  connection?: MemoryConnectionEnd;
}

/** A dialer that records its calls. */
export interface RecordingDialer extends Dialer {
  readonly calls: DialCall[];
}

/** Options for `runtimeDialer`. */
export interface RuntimeDialerOptions {
  /** Names the dialer resolves (`example.org` → `203.0.113.10`); other names fail with `not_found`. */
  readonly names?: Readonly<Record<string, string>>;
  /** BND to report instead of the outbound connection's local address. */
  readonly bound?: Target;
}

/** Dials through `runtime.connect` (so it reaches memory listeners), like the direct dialer. */
export function runtimeDialer(runtime: MemoryRuntime, options: RuntimeDialerOptions = {}): RecordingDialer {
  const calls: DialCall[] = [];
  return {
    calls,
    async dial(target, context) {
      const call: DialCall = { target, context, aborted: false };
      calls.push(call);
      let host = target.host;
      if (target.kind === "domain") {
        const address = options.names?.[target.host];
        if (address === undefined) throw new NetError("not_found", `Cannot resolve ${target.host}: no such host`);
        host = address;
      }
      const connection = await runtime.connect({
        host,
        port: target.port,
        signal: context.signal,
        ...(context.localHost === undefined ? {} : { localHost: context.localHost }),
      }) as MemoryConnectionEnd;
      call.connection = connection;
      const result: DialResult = {
        connection,
        rest: new Uint8Array(0),
        bound: options.bound ?? targetFromAddress(connection.local),
      };
      return result;
    },
  };
}

/** A dialer whose every dial fails with `error` (a `NetError`, a `HopError`...). */
export function failingDialer(error: unknown): RecordingDialer {
  const calls: DialCall[] = [];
  return {
    calls,
    dial(target, context) {
      calls.push({ target, context, aborted: false });
      return Promise.reject(error);
    },
  };
}

/** A dialer that never answers: each dial rejects with `NetError("aborted")` once its signal aborts. */
export function hangingDialer(): RecordingDialer & { started: Promise<void> } {
  const calls: DialCall[] = [];
  let markStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    markStarted = resolve;
  });
  return {
    calls,
    started,
    dial(target, context) {
      const call: DialCall = { target, context, aborted: false };
      calls.push(call);
      markStarted();
      return new Promise<DialResult>((_, reject) => {
        const abort = () => {
          call.aborted = true;
          reject(new NetError("aborted", "Dial aborted"));
        };
        if (context.signal.aborted) abort();
        else context.signal.addEventListener("abort", abort, { once: true });
      });
    },
  };
}

/** A router that sends every request to `dialer`, recording what it was asked. */
export function fixedRouter(dialer: Dialer, description = "direct"): Router & { requests: RouteRequest[] } {
  const requests: RouteRequest[] = [];
  const choice: RouteChoice = { dialer, description };
  return {
    requests,
    choose(request) {
      requests.push(request);
      return Promise.resolve(choice);
    },
  };
}

/** An in-test target server on the memory runtime. */
export interface TestTarget {
  /** The peers accepted so far (the target's side of each connection). */
  readonly peers: ScriptPeer[];
  /** Resolves with the `index`-th accepted peer (waits for it, at most `timeoutMs`). */
  peer(index?: number, timeoutMs?: number): Promise<ScriptPeer>;
  close(): void;
}

/**
 * Listens on `host:port` of `runtime`. With `echo` each peer writes back
 * what it receives and half-closes when its client does.
 */
export async function startTarget(
  runtime: MemoryRuntime,
  host: string,
  port: number,
  options: { echo?: boolean } = {},
): Promise<TestTarget> {
  const peers: ScriptPeer[] = [];
  const listener = await runtime.listen({
    host,
    port,
    onConnection: (connection) => {
      peers.push(new ScriptPeer(connection, options.echo ? { echo: true } : {}));
    },
  });
  return {
    peers,
    async peer(index = 0, timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const peer = peers[index];
        if (peer !== undefined) return peer;
        if (Date.now() > deadline) throw new Error(`Timed out waiting for connection #${index} to ${host}:${port}`);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    },
    close: () => listener.close(),
  };
}
