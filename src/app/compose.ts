/**
 * Step 4 of `run()`: build the server from its parts: the socket runtime,
 * the resolver, the direct dialer, the first policy snapshot and the
 * session scope.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { AuthBackend } from "../auth/auth_setup.ts";
import { type HostsAccess, verifiedClientName } from "../acl/hosts_access.ts";
import { blocksInternal } from "./policy_files.ts";
import type { CliOptions } from "../cli/options.ts";
import type { ProcessRole } from "../cli/process_role.ts";
import { buildPolicy, type PolicyDeps, type PolicyFilesRead } from "../policy/load.ts";
import type { Policy } from "../policy/policy.ts";
import { createResolver, type Resolver } from "../runtime/resolver.ts";
import { createReverseLookup } from "../runtime/reverse_lookup.ts";
import type { NetAddress, NetRuntime } from "../runtime/types.ts";
import { SocksServer } from "../server/server.ts";
import { ServerMetrics } from "../metrics/server_metrics.ts";
import type { Admitter } from "../server/admit.ts";
import { clientLimitAdmitter } from "../server/client_limit.ts";
import { CommandSlots } from "../server/command_limits.ts";
import { proxyHeaderAdmitter } from "../server/proxy_header.ts";
import { formatAddress } from "../server/session_context.ts";
import { createDirectDialer } from "../upstream/direct_dialer.ts";

/**
 * The socket adapters: `main` serves and dials; `node` (node:net) dials
 * from a source address when `main` cannot, and is null when no option
 * needs it.
 */
export interface Runtimes {
  readonly main: NetRuntime;
  readonly node: NetRuntime | null;
}

/** The composed server and what reloads and listening need. */
export interface Composition {
  readonly server: SocksServer;
  readonly resolver: Resolver;
  /** The policy in force. */
  policy(): Policy;
  /** The tcp_wrappers tables of the policy in force (`-w`), for their warnings. */
  hostsAccess(): HostsAccess | null;
  /** Builds a snapshot from freshly read files and puts it in force. */
  swapPolicy(files: PolicyFilesRead): void;
  /** True when destinations on the proxy host itself are blocked by default. */
  readonly blockInternal: boolean;
  /** `--metrics`: the metric set the sessions feed, or null. */
  readonly metrics: ServerMetrics | null;
}

/** Log labels for clients: `host:port`, or `name[host]:port` with `-r` (looked up off the data path). */
function clientLabeller(options: CliOptions): (address: NetAddress) => string | Promise<string> {
  if (!options.reverseLookup) return formatAddress;
  const lookup = createReverseLookup();
  return async (address) => {
    const name = await lookup(address.host);
    return name === null ? formatAddress(address) : `${name}[${address.host}]:${address.port}`;
  };
}

/**
 * The listener's admitters. The PROXY header comes first: every later
 * admitter (`--max-per-client`, then the policy's tcp_wrappers) sees the
 * client address it carries.
 */
function listenerAdmitters(options: CliOptions): Admitter[] {
  const admitters: Admitter[] = [];
  if (options.proxyProtocol !== null) admitters.push(proxyHeaderAdmitter(options.proxyProtocol.from));
  if (options.maxPerClient > 0) admitters.push(clientLimitAdmitter(options.maxPerClient));
  return admitters;
}

/** Composes the server for `options` over `runtime` (and node:net for source-bound dials). */
export function compose(
  options: CliOptions,
  role: ProcessRole,
  runtimes: Runtimes,
  files: PolicyFilesRead,
  auth: AuthBackend,
): Composition {
  const resolver = createResolver();
  const blockInternal = blocksInternal(options, role.assignedListen ?? options.listen);
  const deps: PolicyDeps = {
    direct: createDirectDialer({
      runtime: runtimes.main,
      ...(runtimes.node === null ? {} : { sourceRuntime: runtimes.node }),
      resolver,
      connectTimeoutMs: options.connectTimeoutMs,
    }),
    routeResolver: options.routeDns ? resolver : null,
    resolver,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    auth,
    blockInternal,
    ...(options.reverseLookup
      ? { clientName: verifiedClientName(createReverseLookup(), (name) => resolver.resolve(name)) }
      : {}),
  };
  let built = buildPolicy(files, deps);
  const metrics = options.metrics === null ? null : new ServerMetrics({
    activeSessions: () => server.activeSessions,
    rejectedSessions: () => server.rejectedSessions,
  });
  const server: SocksServer = new SocksServer({
    runtime: runtimes.main,
    scope: {
      settings: {
        handshakeTimeoutMs: options.handshakeTimeoutMs,
        idleTimeoutMs: options.idleTimeoutMs,
        finWaitMs: options.finWaitMs,
        sameInterface: options.sameInterface,
        sourceAddress: options.sourceAddress,
        bindTimeoutMs: options.bindTimeoutMs,
        bindAnyPort: options.bindAnyPort,
      },
      logger: getLogger(["srelay", "session"]),
      admitters: listenerAdmitters(options),
      recorders: metrics === null ? [] : [metrics.recorder],
      labelClient: clientLabeller(options),
      runtime: runtimes.main,
      resolver,
      commandSlots: new CommandSlots(options.commandLimits),
    },
    policy: () => built.policy,
    maxSessions: options.maxSessions,
    reusePort: role.worker > 0,
  });
  return {
    server,
    resolver,
    policy: () => built.policy,
    hostsAccess: () => built.hostsAccess,
    swapPolicy(next) {
      built = buildPolicy(next, deps);
    },
    blockInternal,
    metrics,
  };
}
