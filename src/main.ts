/**
 * The program: parse the command line, set up logging, build the router
 * and the server, listen, and run until a signal says stop.
 *
 * @module
 */
import { appendFileSync, unlinkSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { getLogger, type Logger } from "@logtape/logtape";
import { detach, isDaemonChild } from "./cli/daemon.ts";
import { READY_LINE } from "./cli/ready_child.ts";
import { superviseWorkers, workerListenAddresses, workerNumber } from "./cli/workers.ts";
import { helpText, USAGE_HINT } from "./cli/help.ts";
import { parseListenAddress } from "./cli/listen_address.ts";
import { type CliOptions, parseCliOptions, UsageError } from "./cli/options.ts";
import { type LogDestination, setupLogging, shutdownLogging } from "./log/logger.ts";
import type { Platform } from "./platform.ts";
import { SOCKS5_METHOD } from "./protocol/socks5.ts";
import { createResolver, type Resolver } from "./runtime/resolver.ts";
import { createReverseLookup } from "./runtime/reverse_lookup.ts";
import { NetError, type NetAddress, type NetRuntime } from "./runtime/types.ts";
import { formatIssue } from "./config/config_issue.ts";
import { formatRouteTable } from "./config/format_routes.ts";
import { PasswdFile } from "./config/passwd.ts";
import { loadRouteConfig, type RouteConfigLoad } from "./server/route_config.ts";
import type { Router } from "./server/router.ts";
import { SocksServer } from "./server/server.ts";
import { createSrelayConfRouter } from "./server/srelay_conf_router.ts";
import { formatAddress } from "./server/session_context.ts";
import { createDirectDialer } from "./upstream/direct_dialer.ts";
import { VERSION } from "./version.ts";

/**
 * True in a process whose parent reads its stdout until `READY_LINE`
 * (the background child and workers): everything it must say goes there.
 */
function reportsToParent(): boolean {
  return isDaemonChild() || workerNumber() > 0;
}

/** Prints what the user must see: errors on stderr, unless a parent reads stdout. */
function report(text: string, isError = false): void {
  (isError && !reportsToParent() ? process.stderr : process.stdout).write(`${text}\n`);
}

function logDestination(options: CliOptions): LogDestination {
  if (options.logFile !== null) return { kind: "file", path: options.logFile };
  if (options.syslog || isDaemonChild()) return { kind: "syslog", ...options.syslogAddress };
  return { kind: "stderr" };
}

function isLoopback(host: string): boolean {
  return host === "::1" || host.startsWith("127.") || host === "localhost";
}

/** Listens on every address one `-i` value names; a failure is fatal (srelay only warned). */
async function listenAll(server: SocksServer, options: CliOptions, resolver: Resolver): Promise<string[]> {
  const lines: string[] = [];
  const assigned = workerListenAddresses()?.map(parseListenAddress);
  for (const spec of assigned ?? options.listen) {
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
    const hosts = isIP(spec.host) ? [spec.host] : await resolver.resolve(spec.host);
    for (const host of hosts) {
      const address = await server.listen(host, spec.port);
      lines.push(`listening on ${formatAddress(address)}`);
    }
  }
  return lines;
}

function labelClients(options: CliOptions): (address: NetAddress) => Promise<string> {
  if (!options.reverseLookup) return (address) => Promise.resolve(formatAddress(address));
  const lookup = createReverseLookup();
  return async (address) => {
    const name = await lookup(address.host);
    return name === null ? formatAddress(address) : `${name}[${address.host}]:${address.port}`;
  };
}

function logRouteConfig(logger: Logger, options: CliOptions, load: RouteConfigLoad): void {
  for (const issue of load.issues) logger.warn("{issue}", { issue: formatIssue(issue) });
  if (load.missingDefault) {
    logger.info("No route table at {file}: every destination is reached directly", { file: options.config.path });
  } else {
    logger.info("Route table {file}: {count} rules", { file: options.config.path, count: load.rules.length });
  }
}

/** `--check-config`: print the effective routing table and every issue; exit 1 on errors. */
function checkConfig(options: CliOptions): number {
  const load = loadRouteConfig(options.config.path, options.config.explicit);
  for (const issue of load.issues) report(formatIssue(issue), true);
  if (!load.ok) {
    const errors = load.issues.filter((issue) => issue.severity === "error").length;
    report(`${options.config.path}: ${errors} ${errors === 1 ? "error" : "errors"}`, true);
    return 1;
  }
  if (load.missingDefault) report(`# ${options.config.path} does not exist: every destination is direct`);
  else report(`# ${options.config.path}: ${load.rules.length} rules, first match wins; hops in travel order`);
  report(formatRouteTable(load.rules));
  return 0;
}

function writePidFile(options: CliOptions, logger: Logger): void {
  if (options.pidFile === null) return;
  try {
    writeFileSync(options.pidFile, `${process.pid}\n`);
  } catch (error) {
    logger.error("Cannot write PID file {file}: {error}", { file: options.pidFile, error: (error as Error).message });
  }
}

function removePidFile(options: CliOptions): void {
  if (options.pidFile === null) return;
  try {
    unlinkSync(options.pidFile);
  } catch {
    // Already gone: nothing to remove.
  }
}

/** `--workers N` in the supervising process: start the workers and wait for them. */
async function runWorkers(
  platform: Platform,
  argv: readonly string[],
  options: CliOptions,
  runtime: NetRuntime,
): Promise<number> {
  const logger = getLogger(["srelay"]);
  if (!runtime.canReusePort) {
    report(
      `srelay: --workers needs SO_REUSEPORT, which the ${runtime.name} socket layer does not offer on ${process.platform}`,
      true,
    );
    await shutdownLogging();
    return 2;
  }
  let group;
  try {
    group = await superviseWorkers(platform.selfCommand, argv, options.workers, logger);
  } catch (error) {
    report(`srelay: cannot start ${options.workers} workers: ${(error as Error).message}`, true);
    await shutdownLogging();
    return 1;
  }
  for (const line of group.lines) report(line);
  writePidFile(options, logger);
  if (reportsToParent()) report(READY_LINE);
  const code = await group.stopped;
  removePidFile(options);
  logger.info("Stopped");
  await shutdownLogging();
  return code;
}

/** Runs srelay with `argv` (without the program name) and resolves to the exit code. */
export async function run(platform: Platform, argv: readonly string[]): Promise<number> {
  let options: CliOptions;
  try {
    options = parseCliOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    report(`srelay: ${error.message}\n${USAGE_HINT}`, true);
    return 2;
  }
  if (options.showHelp) {
    process.stdout.write(helpText());
    return 0;
  }
  if (options.showVersion) {
    report(`srelay ${VERSION} (${platform.name})`);
    return 0;
  }
  if (options.authMethods.includes("password")) {
    report("srelay: -a p (user name and password authentication) is not available in this version yet", true);
    return 2;
  }
  if (options.checkConfig) return checkConfig(options);
  const initial = loadRouteConfig(options.config.path, options.config.explicit);
  if (!initial.ok) {
    for (const issue of initial.issues) report(formatIssue(issue), true);
    report(`srelay: ${options.config.path} has errors; nothing started`, true);
    return 1;
  }
  const passwd = options.passwdFile === null ? null : new PasswdFile(options.passwdFile);
  if (passwd !== null) {
    const unreadable = passwd.refresh().find((issue) => issue.line === 0);
    if (unreadable !== undefined) {
      report(`srelay: ${formatIssue(unreadable)}`, true);
      return 1;
    }
  }
  if (!options.foreground && !isDaemonChild()) {
    return detach(platform.selfCommand, argv);
  }
  if (options.logFile !== null) {
    try {
      appendFileSync(options.logFile, "");
    } catch (error) {
      report(`srelay: cannot write the log file: ${(error as Error).message}`, true);
      return 1;
    }
  }
  await setupLogging({ destination: logDestination(options), format: options.logFormat, level: options.logLevel });
  const logger = getLogger(["srelay"]);
  let runtime: NetRuntime;
  let nodeRuntime: NetRuntime;
  try {
    nodeRuntime = await platform.loadNodeRuntime();
    runtime = options.io === "node" ? nodeRuntime : await platform.loadNativeRuntime();
  } catch (error) {
    report(`srelay: cannot load the socket layer: ${(error as Error).message}`, true);
    return 1;
  }
  if (options.workers > 1 && workerNumber() === 0) return runWorkers(platform, argv, options, runtime);
  const resolver = createResolver();
  const dialer = createDirectDialer({
    runtime,
    sourceRuntime: nodeRuntime,
    resolver,
    connectTimeoutMs: options.connectTimeoutMs,
  });
  const buildRouter = (rules: RouteConfigLoad["rules"]): Router =>
    createSrelayConfRouter({
      rules,
      direct: dialer,
      passwd,
      resolver: options.routeDns ? resolver : null,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
    });
  let router = buildRouter(initial.rules);
  logRouteConfig(logger, options, initial);
  for (const issue of passwd?.lastIssues ?? []) logger.warn("{issue}", { issue: formatIssue(issue) });
  const server = new SocksServer({
    runtime,
    settings: {
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      finWaitMs: options.finWaitMs,
      socks5Methods: [SOCKS5_METHOD.NO_AUTH],
      refuseSocks4: false,
      sameInterface: options.sameInterface,
      sourceAddress: options.sourceAddress,
    },
    router: () => router,
    logger: getLogger(["srelay", "session"]),
    maxSessions: options.maxSessions,
    labelClient: labelClients(options),
    reusePort: workerNumber() > 0,
  });
  // Signal handlers go in before anything says "listening": a supervisor that
  // signals as soon as it reads the start-up line must find them in place.
  let stopping = false;
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("{signal} received: no new sessions; waiting up to {grace} s for {active} running sessions", {
      signal,
      grace: options.graceMs / 1000,
      active: server.activeSessions,
    });
    await server.shutdown(options.graceMs);
    if (workerNumber() === 0) removePidFile(options);
    logger.info("Stopped");
    await shutdownLogging();
    resolveExit(0);
  };
  process.on("SIGHUP", () => {
    logger.info("SIGHUP received: reloading {file}", { file: options.config.path });
    const next = loadRouteConfig(options.config.path, options.config.explicit);
    if (!next.ok) {
      for (const issue of next.issues) logger.error("{issue}", { issue: formatIssue(issue) });
      logger.error("Reload rejected: {file} has errors; the previous route table stays in force", {
        file: options.config.path,
      });
      return;
    }
    router = buildRouter(next.rules);
    logRouteConfig(logger, options, next);
  });
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  await new Promise((resolve) => setTimeout(resolve, 0));
  let lines: string[];
  try {
    lines = await listenAll(server, options, resolver);
  } catch (error) {
    await server.shutdown(0);
    report(`srelay: cannot listen: ${(error as Error).message}`, true);
    await shutdownLogging();
    return 1;
  }
  if (stopping) {
    await server.shutdown(0);
    return exited;
  }
  for (const line of lines) report(`srelay: ${line}`);
  const open = server.addresses.filter((address) => !isLoopback(address.host));
  if (options.authMethods.includes("none") && open.length > 0) {
    logger.warn(
      "No authentication on {addresses}: anyone who can reach it can use this proxy (an open proxy)",
      { addresses: open.map(formatAddress).join(", ") },
    );
  }
  logger.info("srelay {version} {role} started on {runtime} ({io} sockets), max sessions {max}, idle timeout {idle}", {
    role: workerNumber() > 0 ? `worker ${workerNumber()}/${options.workers}` : "server",
    version: VERSION,
    runtime: platform.name,
    io: runtime.name,
    max: options.maxSessions === 0 ? "unlimited" : options.maxSessions,
    idle: options.idleTimeoutMs === 0 ? "none" : `${options.idleTimeoutMs / 1000} s`,
  });
  if (workerNumber() === 0) writePidFile(options, logger);
  if (reportsToParent()) report(READY_LINE);
  return await exited;
}
