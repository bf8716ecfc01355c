/**
 * The composition root: `run()` is a handful of named steps, each in its own
 * file under `src/app/`:
 *
 * 1. one-shot commands (`-h`, `-v`, `--check-config`, `srelay passwd`)
 * 2. preflight of every file, with `file:line` errors
 * 3. process role (foreground, background child, worker N), computed once;
 *    detaching and `--workers` supervision branch off here
 * 4. compose: runtime, resolver, dialer, policy, server
 * 5. signals: SIGHUP reloads the policy whole; SIGTERM/SIGINT drain
 * 6. listen, switch to `--user` (drop_privileges), and report
 *
 * What only some runs need is imported when they need it: `srelay passwd`,
 * detaching, the `--workers` supervisor, `--metrics`, and the node:net
 * adapter. Loading them, and the node: modules behind them
 * (child_process, net, http, dgram), would otherwise be most of the
 * compiled binary's start-up time (`scripts/build.ts` puts them in chunks
 * that load on first use).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { type AuthBackend, startAuthentication } from "./auth/auth_setup.ts";
import { USAGE_HINT } from "./cli/help.ts";
import { type CliOptions, parseCliOptions, UsageError } from "./cli/options.ts";
import { type ProcessRole, processRole } from "./cli/process_role.ts";
import { READY_LINE } from "./cli/ready_lines.ts";
import { type LogDestination, setupLogging, shutdownLogging } from "./log/logger.ts";
import type { Platform } from "./platform.ts";
import type { PrivilegeOps } from "./runtime/privileges.ts";
import { compose, type Runtimes } from "./app/compose.ts";
import { type Account, becomeUser, resolveAccount } from "./app/drop_privileges.ts";
import { listenAll, logStarted, reportListening } from "./app/listen.ts";
import type { MetricsService } from "./app/metrics.ts";
import { logPolicyFiles } from "./app/log_policy.ts";
import { runOneShot } from "./app/one_shot.ts";
import { removePidFile, writePidFile } from "./app/pid_file.ts";
import { preflight } from "./app/preflight.ts";
import { type Report, reporter } from "./app/report.ts";
import { installSignals } from "./app/signals.ts";

function logDestination(options: CliOptions, role: ProcessRole): LogDestination {
  if (options.logFile !== null) return { kind: "file", path: options.logFile };
  if (options.syslog || role.backgroundChild) return { kind: "syslog", address: options.syslogAddress };
  return { kind: "stderr" };
}

/**
 * The node:net adapter is loaded only when something uses it: `--io node`,
 * or dials from a source address (`-x`, `-g`), which the
 * native adapters cannot bind.
 */
function needsNodeRuntime(options: CliOptions): boolean {
  return options.io === "node" || options.sourceAddress !== null || options.sameInterface;
}

async function loadRuntimes(platform: Platform, options: CliOptions, report: Report): Promise<Runtimes | null> {
  try {
    const node = needsNodeRuntime(options) ? await platform.loadNodeRuntime() : null;
    const main = options.io === "node" && node !== null ? node : await platform.loadNativeRuntime();
    return { main, node };
  } catch (error) {
    report(`srelay: cannot load the socket layer: ${(error as Error).message}`, true);
    return null;
  }
}

/** `srelay passwd USER -U FILE`: add or replace a user's bcrypt line. */
async function passwdCommand(args: readonly string[], report: Report): Promise<number> {
  const { parsePasswdArgs, processPasswdIo, runPasswd } = await import("./auth/passwd_command.ts");
  let passwd;
  try {
    passwd = parsePasswdArgs(args);
  } catch (error) {
    report(`srelay passwd: ${(error as Error).message}`, true);
    return 2;
  }
  return await runPasswd(passwd, processPasswdIo());
}

/** Runs srelay with `argv` (without the program name) and resolves to the exit code. */
export async function run(platform: Platform, argv: readonly string[]): Promise<number> {
  const role = processRole(process.env);
  const report = reporter(role);
  if (argv[0] === "passwd") return await passwdCommand(argv.slice(1), report);
  let options: CliOptions;
  try {
    options = parseCliOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    report(`srelay: ${error.message}\n${USAGE_HINT}`, true);
    return 2;
  }
  const answered = runOneShot(options, platform.name, report);
  if (answered !== null) return answered;
  const checked = preflight(options, report);
  if (checked === null) return 1;
  let account: Account | null = null;
  try {
    if (options.user !== null) account = resolveAccount(options.user, options.group);
  } catch (error) {
    report(`srelay: ${(error as Error).message}`, true);
    return 1;
  }
  if (!options.foreground && !role.backgroundChild) {
    const { detach } = await import("./cli/daemon.ts");
    return await detach(platform.selfCommand, argv);
  }
  const logging = await setupLogging({
    destination: logDestination(options, role),
    format: options.logFormat,
    level: options.logLevel,
    syslog: platform.syslog,
    background: role.backgroundChild,
  });
  if (logging.fallback !== null) report(`srelay: warning: ${logging.fallback}`, true);
  const runtimes = await loadRuntimes(platform, options, report);
  if (runtimes === null) return 1;
  if (options.workers > 1 && role.worker === 0) {
    const { runWorkers } = await import("./app/supervise.ts");
    return await runWorkers(platform, argv, options, role, runtimes.main, report);
  }
  let auth: AuthBackend;
  try {
    auth = await startAuthentication({
      order: options.authMethods,
      userFile: options.usersFile !== null,
      loadCrypt: () => platform.loadCrypt(),
    });
  } catch (error) {
    report(`srelay: ${(error as Error).message}`, true);
    await shutdownLogging();
    return 1;
  }
  try {
    return await serve(platform, options, role, runtimes, checked, auth, account, report);
  } finally {
    auth.close();
  }
}

/** Steps 4 to 6: compose, install signals, listen, report; resolves when the server has stopped. */
async function serve(
  platform: Platform,
  options: CliOptions,
  role: ProcessRole,
  runtimes: Runtimes,
  checked: NonNullable<ReturnType<typeof preflight>>,
  auth: AuthBackend,
  account: Account | null,
  report: Report,
): Promise<number> {
  const logger = getLogger(["srelay"]);
  let privileges: PrivilegeOps | null = null;
  try {
    if (account !== null) privileges = await platform.loadPrivileges();
  } catch (error) {
    report(`srelay: --user ${account?.user}: ${(error as Error).message}`, true);
    await shutdownLogging();
    return 1;
  }
  const composition = compose(options, role, runtimes, checked.files, auth);
  logPolicyFiles(logger, options, checked.files, checked.warnings, composition.hostsAccess());
  const ownsPidFile = role.worker === 0;
  // Signal handlers go in before anything says "listening": a supervisor that
  // signals as soon as it reads the start-up line must find them in place
  // (process.on is in force at once on Bun and Deno: no turn of the loop needed).
  let metrics: MetricsService | null = null;
  const signals = installSignals(options, composition, logger, () => {
    if (ownsPidFile) removePidFile(options.pidFile);
    void metrics?.close();
  });
  const { server } = composition;
  let lines: string[];
  try {
    lines = await listenAll(server, role.assignedListen ?? options.listen, composition.resolver);
  } catch (error) {
    await server.shutdown(0);
    report(`srelay: cannot listen: ${(error as Error).message}`, true);
    await shutdownLogging();
    return 1;
  }
  if (signals.stopping) {
    await server.shutdown(0);
    return signals.exited;
  }
  if (composition.metrics !== null) {
    try {
      const { startServerMetrics } = await import("./app/metrics.ts");
      const httpRuntimes = runtimes.node === null ? [runtimes.main] : [runtimes.main, runtimes.node];
      metrics = await startServerMetrics(options, role, httpRuntimes, server, composition.metrics);
    } catch (error) {
      await server.shutdown(0);
      report(`srelay: cannot serve --metrics: ${(error as Error).message}`, true);
      await shutdownLogging();
      return 1;
    }
  }
  // The PID file is written while still root (in /run, say); after --user
  // its removal at exit may fail, which is quiet.
  if (ownsPidFile) writePidFile(options.pidFile, logger);
  if (account !== null && privileges !== null) {
    const failure = becomeUser(account, privileges, options, logger);
    if (failure !== null) {
      await server.shutdown(0);
      await metrics?.close();
      if (ownsPidFile) removePidFile(options.pidFile);
      report(`srelay: ${failure}; stopped`, true);
      await shutdownLogging();
      return 1;
    }
  }
  reportListening(lines, server, role, report);
  if (metrics !== null) report(metrics.line);
  logStarted(
    logger,
    server,
    options,
    role,
    { platform: platform.name, io: runtimes.main.name },
    composition.blockInternal,
  );
  if (role.reportsToParent) report(READY_LINE);
  return await signals.exited;
}
