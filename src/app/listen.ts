/**
 * Step 6 of `run()`: bind every listening address (`-i`, or what the
 * supervisor assigned a worker), then tell the user where the server
 * listens, warn about an open proxy, and log the start-up line.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { ListenAddress } from "../cli/listen_address.ts";
import type { CliOptions } from "../cli/options.ts";
import type { ProcessRole } from "../cli/process_role.ts";
import { boundLine } from "../cli/ready_lines.ts";
import { formatIp, ipFamily } from "../net/address.ts";
import type { Resolver } from "../runtime/resolver.ts";
import { type NetAddress, NetError } from "../runtime/types.ts";
import type { SocksServer } from "../server/server.ts";
import { formatAddress } from "../server/session_context.ts";
import { VERSION } from "../version.ts";
import type { Report } from "./report.ts";

/** Listens on every address one `-i` value names; a failure is fatal (srelay only warned). */
export async function listenAll(
  server: SocksServer,
  specs: readonly ListenAddress[],
  resolver: Resolver,
): Promise<string[]> {
  const lines: string[] = [];
  for (const spec of specs) {
    if (spec.host === null) {
      try {
        const address = await server.listen("::", spec.port);
        lines.push(`listening on ${formatAddress(address)} (every IPv6 and IPv4 address)`);
      } catch (error) {
        if (!(error instanceof NetError) || error.code === "address_in_use") throw error;
        const address = await server.listen("0.0.0.0", spec.port);
        lines.push(`listening on ${formatAddress(address)} (IPv6 unavailable: ${error.message})`);
      }
      continue;
    }
    const hosts = ipFamily(spec.host) !== 0 ? [spec.host] : await resolver.resolve(spec.host);
    for (const host of hosts) {
      const address = await server.listen(host, spec.port);
      lines.push(`listening on ${formatAddress(address)}`);
    }
  }
  return lines;
}

function isLoopback(address: NetAddress): boolean {
  return address.host === "::1" || address.host.startsWith("127.");
}

/** Prints the bound addresses (and, for a worker, reports them to the supervisor as data). */
export function reportListening(lines: readonly string[], server: SocksServer, role: ProcessRole, report: Report) {
  for (const line of lines) report(`srelay: ${line}`);
  if (role.worker > 0) report(boundLine(server.addresses));
}

/** Logs the open-proxy warning and the start-up line. */
export function logStarted(
  logger: Logger,
  server: SocksServer,
  options: CliOptions,
  role: ProcessRole,
  runtime: { readonly platform: string; readonly io: string },
  blockInternal: boolean,
): void {
  const open = options.proxyProtocol !== null
    ? server.addresses
    : server.addresses.filter((address) => !isLoopback(address));
  if (options.authMethods.includes("none") && open.length > 0) {
    logger.warn(
      "No authentication on {addresses}: anyone who can reach it can use this proxy (an open proxy). {internal} Restrict who may connect with -w (tcp_wrappers) and where they may go with --rules; see 'Running it safely' in the README",
      {
        addresses: open.map(formatAddress).join(", "),
        internal: blockInternal
          ? "Destinations on this host (loopback, its own and link-local addresses, 169.254.169.254) are blocked unless a rule passes them or --allow-internal is given."
          : "--allow-internal: destinations on this host, including loopback and 169.254.169.254, are reachable too.",
      },
    );
  }
  logger.info("srelay {version} {role} started on {runtime} ({io} sockets), max sessions {max}, idle timeout {idle}", {
    role: role.worker > 0 ? `worker ${role.worker}/${options.workers}` : "server",
    version: VERSION,
    runtime: runtime.platform,
    io: runtime.io,
    max: options.maxSessions === 0 ? "unlimited" : options.maxSessions,
    idle: options.idleTimeoutMs === 0 ? "none" : `${options.idleTimeoutMs / 1000} s`,
  });
  if (options.proxyProtocol !== null) {
    logger.info("PROXY protocol on every listener: headers are believed only from {from}", {
      from: options.proxyProtocol.from.map(({ network, prefix }) => `${formatIp(network)}/${prefix}`).join(", "),
    });
  }
}
