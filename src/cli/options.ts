/**
 * The command line: srelay(8)'s options plus srelay's own long options,
 * parsed with `node:util` `parseArgs` into one typed value.
 *
 * @module
 */
import { type AuthMethodName, parseAuthOrder } from "../auth/auth_setup.ts";
import { HOSTS_ALLOW, HOSTS_DENY } from "../acl/hosts_access.ts";
import { parseArgs } from "node:util";
import type { LogLevel } from "@logtape/logtape";
import { DEFAULT_SYSLOG_ADDRESS, parseSyslogAddress, type SyslogAddress } from "../log/syslog_address.ts";
import { type ListenAddress, parseListenAddress } from "./listen_address.ts";
import { type Cidr, parseCidr } from "../net/address.ts";
import { DEFAULT_PROXY_FROM } from "../server/proxy_header.ts";
import { type CommandLimits, DEFAULT_COMMAND_LIMITS } from "../server/command_limits.ts";

/** The compiled-in default route table, as in srelay. */
export const DEFAULT_CONFIG_FILE = "/usr/local/etc/srelay.conf";

/** Everything the command line can say. */
export interface CliOptions {
  readonly listen: readonly ListenAddress[];
  /** `-c`; `explicit` is false when the default path is used. */
  readonly config: { readonly path: string; readonly explicit: boolean };
  readonly passwdFile: string | null;
  /** `-m`: 0 = unlimited. */
  readonly maxSessions: number;
  /** `--max-per-client`: concurrent sessions per client address (after the PROXY header); 0 = unlimited. */
  readonly maxPerClient: number;
  /**
   * `--max-binds`, `--max-binds-per-client`, `--max-udp`, `--max-udp-per-client`: BIND listeners and
   * UDP associations in all and per client address; 0 = unlimited.
   */
  readonly commandLimits: CommandLimits;
  /** `-o` in milliseconds: 0 = no idle timeout. */
  readonly idleTimeoutMs: number;
  /** `--fin-wait` in milliseconds: 0 = half-closed sessions may last forever. */
  readonly finWaitMs: number;
  readonly pidFile: string | null;
  /** `-a`: the SOCKS5 methods in the server's order of preference. */
  readonly authMethods: readonly AuthMethodName[];
  /** `-U`: the user file for `-a p`; null means the host's accounts. */
  readonly usersFile: string | null;
  readonly foreground: boolean;
  readonly reverseLookup: boolean;
  readonly syslog: boolean;
  readonly bindAnyPort: boolean;
  readonly sameInterface: boolean;
  readonly sourceAddress: string | null;
  readonly io: "native" | "node";
  readonly logFormat: "text" | "json";
  readonly logLevel: LogLevel;
  readonly logFile: string | null;
  /** `--syslog-address`: where `-s` and background mode log (default `/dev/log`). */
  readonly syslogAddress: SyslogAddress;
  readonly checkConfig: boolean;
  readonly workers: number;
  readonly graceMs: number;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  /** `--bind-timeout` in milliseconds: how long a BIND waits for its peer. */
  readonly bindTimeoutMs: number;
  readonly routeDns: boolean;
  /** `-w`: the tcp_wrappers tables (`--hosts-allow`, `--hosts-deny` change the paths and imply `-w`), or null. */
  readonly tcpWrappers: { readonly allow: string; readonly deny: string } | null;
  /** `--rules`: the destination rules file, or null. */
  readonly rulesFile: string | null;
  /**
   * `--proxy-protocol`: every listener reads a PROXY v1/v2 header first, believed only from the
   * `from` prefixes (`--proxy-protocol-from`, which implies `--proxy-protocol`); null when off.
   */
  readonly proxyProtocol: { readonly from: readonly Cidr[] } | null;
  /** `--allow-internal`: let clients of an exposed listener without authentication reach the proxy host itself. */
  readonly allowInternal: boolean;
  /** `--user`: the account to become once the listeners are open, or null. */
  readonly user: string | null;
  /** `--group`: the group to become instead of the user's primary group, or null. */
  readonly group: string | null;
  /** `--metrics HOST:PORT`: where to serve `/metrics` and `/healthz` (host null: every address), or null. */
  readonly metrics: ListenAddress | null;
  readonly showVersion: boolean;
  readonly showHelp: boolean;
}

/** A command-line mistake: printed with a usage hint, exit code 2. */
export class UsageError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warning", "error", "fatal"];

const SPEC = {
  config: { type: "string", short: "c" },
  interface: { type: "string", short: "i", multiple: true },
  "max-sessions": { type: "string", short: "m" },
  "max-per-client": { type: "string" },
  "max-binds": { type: "string" },
  "max-binds-per-client": { type: "string" },
  "max-udp": { type: "string" },
  "max-udp-per-client": { type: "string" },
  "idle-timeout": { type: "string", short: "o" },
  "pid-file": { type: "string", short: "p" },
  "passwd-file": { type: "string", short: "u" },
  "users-file": { type: "string", short: "U" },
  auth: { type: "string", short: "a", multiple: true },
  foreground: { type: "boolean", short: "f" },
  "reverse-lookup": { type: "boolean", short: "r" },
  syslog: { type: "boolean", short: "s" },
  "no-threads": { type: "boolean", short: "t" },
  "bind-any-port": { type: "boolean", short: "b" },
  "same-interface": { type: "boolean", short: "g" },
  "source-address": { type: "string", short: "x" },
  "outbound-address": { type: "string", short: "J" },
  version: { type: "boolean", short: "v" },
  "version-upper": { type: "boolean", short: "V" },
  help: { type: "boolean", short: "h" },
  "help-question": { type: "boolean", short: "?" },
  io: { type: "string" },
  "log-format": { type: "string" },
  "log-level": { type: "string" },
  "log-file": { type: "string" },
  "syslog-address": { type: "string" },
  "check-config": { type: "boolean" },
  check: { type: "boolean" },
  workers: { type: "string" },
  grace: { type: "string" },
  "connect-timeout": { type: "string" },
  "handshake-timeout": { type: "string" },
  "bind-timeout": { type: "string" },
  "fin-wait": { type: "string" },
  "no-route-dns": { type: "boolean" },
  "tcp-wrappers": { type: "boolean", short: "w" },
  "hosts-allow": { type: "string" },
  "hosts-deny": { type: "string" },
  rules: { type: "string" },
  "allow-internal": { type: "boolean" },
  metrics: { type: "string" },
  "proxy-protocol": { type: "boolean" },
  "proxy-protocol-from": { type: "string" },
  user: { type: "string" },
  group: { type: "string" },
} as const;

function number(name: string, text: string | undefined, fallback: number, options: {
  integer?: boolean;
  min?: number;
  max?: number;
} = {}): number {
  if (text === undefined) return fallback;
  const pattern = options.integer ? /^\d+$/ : /^\d+(\.\d+)?$|^\.\d+$/;
  const value = Number(text);
  if (!pattern.test(text) || !Number.isFinite(value)) {
    throw new UsageError(`Invalid value for ${name}: '${text}' is not a ${options.integer ? "whole " : ""}number`);
  }
  if (options.min !== undefined && value < options.min) {
    throw new UsageError(`Invalid value for ${name}: ${text} is below ${options.min}`);
  }
  if (options.max !== undefined && value > options.max) {
    throw new UsageError(`Invalid value for ${name}: ${text} is above ${options.max}`);
  }
  return value;
}

function oneOf<T extends string>(name: string, text: string | undefined, allowed: readonly T[], fallback: T): T {
  if (text === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(text)) {
    throw new UsageError(`Invalid value for ${name}: '${text}' (expected ${allowed.join(", ")})`);
  }
  return text as T;
}

function authMethods(values: readonly string[] | undefined): AuthMethodName[] {
  if (values === undefined) return ["none"];
  try {
    return parseAuthOrder(values.join(""));
  } catch (error) {
    throw new UsageError(`Invalid value for -a: ${(error as Error).message}`);
  }
}

function syslogAddress(text: string | undefined): SyslogAddress {
  if (text === undefined) return DEFAULT_SYSLOG_ADDRESS;
  try {
    return parseSyslogAddress(text);
  } catch (error) {
    throw new UsageError(`Invalid value for --syslog-address: ${(error as Error).message}`);
  }
}

function proxyProtocol(enabled: boolean | undefined, from: string | undefined): { from: Cidr[] } | null {
  if (!enabled && from === undefined) return null;
  const prefixes: Cidr[] = [];
  for (const entry of (from ?? DEFAULT_PROXY_FROM).split(",")) {
    const cidr = parseCidr(entry.trim());
    if (cidr === null) {
      throw new UsageError(
        `Invalid value for --proxy-protocol-from: '${entry.trim()}' is not an address or ADDRESS/LENGTH`,
      );
    }
    prefixes.push(cidr);
  }
  return { from: prefixes };
}

/** `--metrics HOST:PORT`, `:PORT` or `[IPV6]:PORT`: the forms of `-i`, with the port required. */
function metricsAddress(text: string | undefined): ListenAddress | null {
  if (text === undefined) return null;
  if (!/:\d+$/.test(text) || (!text.startsWith("[") && text.indexOf(":") !== text.lastIndexOf(":"))) {
    throw new UsageError(`Invalid value for --metrics: '${text}' is not HOST:PORT, :PORT or [IPV6]:PORT`);
  }
  try {
    return parseListenAddress(text);
  } catch (error) {
    throw new UsageError(`Invalid value for --metrics: ${(error as Error).message.replace(/^Cannot parse -i /, "")}`);
  }
}

/** Parses argv (without the program name). Throws `UsageError` on any mistake. */
export function parseCliOptions(argv: readonly string[]): CliOptions {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: SPEC, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional.*$/s, ""));
  }
  const listen: ListenAddress[] = [];
  for (const text of values.interface ?? []) {
    try {
      listen.push(parseListenAddress(text));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const sourceAddress = values["source-address"] ?? values["outbound-address"] ?? null;
  if (values["source-address"] !== undefined && values["outbound-address"] !== undefined) {
    throw new UsageError("Options -x and -J both set the outbound source address: give only one");
  }
  if (sourceAddress !== null && values["same-interface"]) {
    throw new UsageError("Options -g and -x/-J both choose the outbound source address: give only one");
  }
  const methods = authMethods(values.auth);
  const user = values.user ?? null;
  if (user === "" || values.group === "") throw new UsageError("--user and --group need a name or a number");
  if (values.group !== undefined && user === null) throw new UsageError("--group needs --user");
  if (user !== null && methods.includes("password") && values["users-file"] === undefined) {
    throw new UsageError(
      "--user cannot be combined with host accounts (-a p without -U): checking their passwords needs " +
        "/etc/shadow, which only root can read, and srelay no longer runs as root once it has switched " +
        "to --user; give -U FILE, or leave out --user",
    );
  }
  return {
    listen: listen.length > 0 ? listen : [{ host: null, port: 1080 }],
    config: {
      path: values.config ?? DEFAULT_CONFIG_FILE,
      explicit: values.config !== undefined,
    },
    passwdFile: values["passwd-file"] ?? null,
    maxSessions: number("-m", values["max-sessions"], 0, { integer: true }),
    maxPerClient: number("--max-per-client", values["max-per-client"], 0, { integer: true }),
    commandLimits: {
      bind: {
        total: number("--max-binds", values["max-binds"], DEFAULT_COMMAND_LIMITS.bind.total, { integer: true }),
        perClient: number(
          "--max-binds-per-client",
          values["max-binds-per-client"],
          DEFAULT_COMMAND_LIMITS.bind.perClient,
          {
            integer: true,
          },
        ),
      },
      udp: {
        total: number("--max-udp", values["max-udp"], DEFAULT_COMMAND_LIMITS.udp.total, { integer: true }),
        perClient: number("--max-udp-per-client", values["max-udp-per-client"], DEFAULT_COMMAND_LIMITS.udp.perClient, {
          integer: true,
        }),
      },
    },
    idleTimeoutMs: Math.round(number("-o", values["idle-timeout"], 0) * 60_000),
    finWaitMs: Math.round(number("--fin-wait", values["fin-wait"], 0) * 1000),
    pidFile: values["pid-file"] ?? null,
    authMethods: methods,
    usersFile: values["users-file"] ?? null,
    foreground: values.foreground ?? false,
    reverseLookup: values["reverse-lookup"] ?? false,
    syslog: values.syslog ?? false,
    bindAnyPort: values["bind-any-port"] ?? false,
    sameInterface: values["same-interface"] ?? false,
    sourceAddress,
    io: oneOf("--io", values.io, ["native", "node"], "native"),
    logFormat: oneOf("--log-format", values["log-format"], ["text", "json"], "text"),
    logLevel: oneOf("--log-level", values["log-level"], LOG_LEVELS, "info"),
    logFile: values["log-file"] ?? null,
    syslogAddress: syslogAddress(values["syslog-address"]),
    checkConfig: (values["check-config"] ?? false) || (values.check ?? false),
    workers: number("--workers", values.workers, 1, { integer: true, min: 1, max: 256 }),
    graceMs: Math.round(number("--grace", values.grace, 10) * 1000),
    connectTimeoutMs: Math.round(number("--connect-timeout", values["connect-timeout"], 30, { min: 0.001 }) * 1000),
    handshakeTimeoutMs: Math.round(
      number("--handshake-timeout", values["handshake-timeout"], 30, { min: 0.001 }) * 1000,
    ),
    bindTimeoutMs: Math.round(number("--bind-timeout", values["bind-timeout"], 30, { min: 0.001 }) * 1000),
    routeDns: !(values["no-route-dns"] ?? false),
    tcpWrappers: values["tcp-wrappers"] || values["hosts-allow"] !== undefined || values["hosts-deny"] !== undefined
      ? { allow: values["hosts-allow"] ?? HOSTS_ALLOW, deny: values["hosts-deny"] ?? HOSTS_DENY }
      : null,
    rulesFile: values.rules ?? null,
    allowInternal: values["allow-internal"] ?? false,
    proxyProtocol: proxyProtocol(values["proxy-protocol"], values["proxy-protocol-from"]),
    user,
    group: values.group ?? null,
    metrics: metricsAddress(values.metrics),
    showVersion: (values.version ?? false) || (values["version-upper"] ?? false),
    showHelp: (values.help ?? false) || (values["help-question"] ?? false),
  };
}
