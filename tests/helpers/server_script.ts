/**
 * A `SocksServer` running in-process on the memory runtime, for byte-script
 * tests: a captured logger, a recorder that keeps every `SessionRecord`, a
 * policy the test can swap, and scripted clients.
 *
 * ```ts
 * await withServer({ router }, async (harness) => {
 *   const client = harness.client();
 *   client.send([5, 1, 0]);
 *   assert.deepEqual(await client.read(2), Uint8Array.of(5, 0));
 * });
 * ```
 *
 * Call `installLogCapture()` in the test file's `before()` first.
 *
 * @module
 */
import { isIP } from "node:net";
import type { Policy } from "../../src/policy/policy.ts";
import type { Resolver } from "../../src/runtime/resolver.ts";
import { type NetAddress, NetError } from "../../src/runtime/types.ts";
import type { SessionRecord } from "../../src/server/account.ts";
import type { Admitter } from "../../src/server/admit.ts";
import { ALLOW_ALL } from "../../src/server/authorize.ts";
import { type CommandLimits, CommandSlots } from "../../src/server/command_limits.ts";
import { OPEN_NEGOTIATION } from "../../src/server/negotiate.ts";
import type { Router } from "../../src/server/router.ts";
import { SocksServer } from "../../src/server/server.ts";
import { formatAddress, type SessionSettings } from "../../src/server/session_context.ts";
import { type CapturedLog, captureLogger } from "./log_capture.ts";
import { createMemoryRuntime, type MemoryRuntime } from "./memory_runtime.ts";
import { ScriptPeer } from "./script_peer.ts";

/** Settings of test servers unless a test says otherwise. */
export const TEST_SETTINGS: SessionSettings = {
  handshakeTimeoutMs: 5000,
  idleTimeoutMs: 0,
  finWaitMs: 0,
  sameInterface: false,
  sourceAddress: null,
  bindTimeoutMs: 5000,
  bindAnyPort: false,
};

/** A resolver for tests: numeric addresses as they are, names from `names`, anything else `not_found`. */
export function testResolver(names: Readonly<Record<string, readonly string[]>> = {}): Resolver {
  return {
    resolve(name) {
      if (isIP(name) !== 0) return Promise.resolve([name]);
      const addresses = names[name];
      return addresses === undefined
        ? Promise.reject(new NetError("not_found", `Cannot resolve ${name}: no such host`))
        : Promise.resolve([...addresses]);
    },
  };
}

/** Interface addresses of test servers unless a test says otherwise: loopback only. */
export const TEST_INTERFACES: readonly string[] = ["127.0.0.1/8", "::1/128"];

/** A router for tests that must not route. */
export const NO_ROUTER: Router = {
  choose: () => Promise.reject(new Error("This test has no router")),
};

/** A policy built by hand: `OPEN_NEGOTIATION`, no admitters, `ALLOW_ALL`, plus `overrides`. */
export function testPolicy(router: Router, overrides: Partial<Policy> = {}): Policy {
  return { router, negotiation: OPEN_NEGOTIATION, admitters: [], authorizer: ALLOW_ALL, ...overrides };
}

/** How to build the server under test. */
export interface HarnessOptions {
  readonly runtime?: MemoryRuntime;
  /** The policy's router (ignored when `policy` is given). */
  readonly router?: Router;
  readonly policy?: Policy;
  readonly settings?: Partial<SessionSettings>;
  readonly maxSessions?: number;
  /** Scope admitters (the listener's, not the policy's). */
  readonly admitters?: readonly Admitter[];
  readonly labelClient?: (address: NetAddress) => string | Promise<string>;
  /** Resolves names for commands (default `testResolver()`). */
  readonly resolver?: Resolver;
  /** The host's interface addresses as `address/prefix` (default `TEST_INTERFACES`). */
  readonly interfaces?: readonly string[];
  /** Limits on BIND listeners and UDP associations (default `DEFAULT_COMMAND_LIMITS`). */
  readonly commandLimits?: CommandLimits;
  /** Where the server listens; port 1080 on 127.0.0.1 unless given. */
  readonly host?: string;
  readonly port?: number;
}

/** A running server under test. */
export interface ServerHarness {
  readonly runtime: MemoryRuntime;
  readonly server: SocksServer;
  readonly address: NetAddress;
  readonly log: CapturedLog;
  /** Every finished session's record, in order. */
  readonly records: SessionRecord[];
  /** How many times the server read the policy (once per accepted session). */
  readonly policyReads: number;
  /** Puts another policy in force (what a reload does). */
  setPolicy(policy: Policy): void;
  /** Connects a scripted client (from a fresh port on 127.0.0.1, or `from`). */
  client(from?: NetAddress): ScriptPeer;
  /** Waits (at most `timeoutMs`) until `count` records arrived; returns them all. */
  waitForRecords(count: number, timeoutMs?: number): Promise<SessionRecord[]>;
  /** Waits (at most `timeoutMs`) until no session is running. */
  waitForIdle(timeoutMs?: number): Promise<void>;
}

/** Waits until `condition()` holds, polling every 2 ms for at most `timeoutMs`. */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a server on the memory runtime. Stop it with `server.shutdown(0)` (or use `withServer`). */
export async function startServer(options: HarnessOptions = {}): Promise<ServerHarness> {
  const runtime = options.runtime ?? createMemoryRuntime();
  const log = captureLogger();
  const records: SessionRecord[] = [];
  let policy = options.policy ?? testPolicy(options.router ?? NO_ROUTER);
  let policyReads = 0;
  const server = new SocksServer({
    runtime,
    scope: {
      settings: { ...TEST_SETTINGS, ...options.settings },
      logger: log.logger,
      admitters: options.admitters ?? [],
      recorders: [(record) => records.push(record)],
      labelClient: options.labelClient ?? formatAddress,
      runtime,
      resolver: options.resolver ?? testResolver(),
      interfaces: () => options.interfaces ?? TEST_INTERFACES,
      commandSlots: new CommandSlots(options.commandLimits),
    },
    policy: () => {
      policyReads++;
      return policy;
    },
    maxSessions: options.maxSessions ?? 0,
  });
  const address = await server.listen(options.host ?? "127.0.0.1", options.port ?? 1080);
  return {
    runtime,
    server,
    address,
    log,
    records,
    get policyReads() {
      return policyReads;
    },
    setPolicy(next) {
      policy = next;
    },
    client: (from) => new ScriptPeer(runtime.dial(address, from)),
    async waitForRecords(count, timeoutMs = 2000) {
      await eventually(() => records.length >= count, `${count} session records (have ${records.length})`, timeoutMs);
      return records;
    },
    waitForIdle: (timeoutMs = 2000) =>
      eventually(() => server.activeSessions === 0, `no session running (${server.activeSessions} left)`, timeoutMs),
  };
}

/** Runs `body` against a fresh server, then shuts it down with no grace, whatever happened. */
export async function withServer(
  options: HarnessOptions,
  body: (harness: ServerHarness) => Promise<void>,
): Promise<void> {
  const harness = await startServer(options);
  try {
    await body(harness);
  } finally {
    await harness.server.shutdown(0);
  }
}
