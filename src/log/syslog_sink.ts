/**
 * Logging to syslog the way syslog(3) does: one RFC 3164 datagram per line,
 * facility daemon, `<PRI>Mmm dd hh:mm:ss srelay[pid]: message`, sent to the
 * local socket (`/dev/log`) or, with the host name after the time stamp, to
 * a UDP collector.
 *
 * Sending goes through a `SyslogTransport` that the runtime layer provides
 * (`src/runtime/syslog_unix_*.ts`, `src/runtime/syslog_udp.ts`): the entry
 * point hands `SyslogOpeners` to `setupLogging`. A transport never blocks
 * and never throws; it reports each datagram's fate. When datagrams are
 * dropped (the socket went away, its queue is full) the sink counts them,
 * warns once, and once sending works again logs how many were lost (at most
 * one such note a minute).
 *
 * @module
 */
import type { LogLevel, LogRecord, Sink } from "@logtape/logtape";
import { timeStamp } from "./line_format.ts";
import { formatSyslogAddress, type SyslogAddress } from "./syslog_address.ts";

/** The outcome of one datagram: null when sent, else an errno name such as `ECONNREFUSED` or `EAGAIN`. */
export type SyslogReport = (error: string | null) => void;

/** Sends syslog datagrams to one address. */
export interface SyslogTransport {
  /** Sends one datagram without blocking; never throws. The outcome goes to the transport's `SyslogReport`. */
  send(datagram: Uint8Array): void;
  /** Waits briefly for datagrams still in flight, then releases the socket. */
  close(): Promise<void>;
}

/**
 * Opens transports; each rejects with an `Error` whose `code` is an errno name
 * (`ENOENT`, `ECONNREFUSED`, `EACCES`, `EPROTOTYPE`, `ENOTFOUND`...) when the
 * address cannot be used.
 */
export interface SyslogOpeners {
  /** A Unix datagram socket at `path`. */
  unix(path: string, report: SyslogReport): Promise<SyslogTransport>;
  /** A UDP collector at `host:port` (`host` may be a name). */
  udp(host: string, port: number, report: SyslogReport): Promise<SyslogTransport>;
}

/** What a syslog line says about its sender. */
export interface SyslogHeader {
  /** Written after the time stamp for a remote collector; null for the local socket, which adds it itself. */
  readonly hostname: string | null;
  readonly tag: string;
  readonly pid: number;
}

/** syslog facility `daemon` (3). */
const FACILITY_DAEMON = 3;

/** syslog severities; `fatal` is `crit`, not `emerg` (which syslog daemons broadcast to every terminal). */
const SEVERITY: Readonly<Record<LogLevel, number>> = {
  trace: 7,
  debug: 7,
  info: 6,
  warning: 4,
  error: 3,
  fatal: 2,
};

/**
 * One RFC 3164 line, as syslog(3) writes it (no trailing newline).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSyslogLine } from "./syslog_sink.ts";
 * const at = new Date(2026, 10, 25, 16, 8, 21).getTime();
 * assert.equal(
 *   formatSyslogLine("warning", at, "open proxy", { hostname: null, tag: "srelay", pid: 42 }),
 *   "<28>Nov 25 16:08:21 srelay[42]: open proxy",
 * );
 * assert.equal(
 *   formatSyslogLine("info", at, "started", { hostname: "gw", tag: "srelay", pid: 42 }),
 *   "<30>Nov 25 16:08:21 gw srelay[42]: started",
 * );
 * ```
 */
export function formatSyslogLine(level: LogLevel, timestamp: number, message: string, header: SyslogHeader): string {
  const host = header.hostname === null ? "" : `${header.hostname} `;
  return `<${FACILITY_DAEMON * 8 + SEVERITY[level]}>${
    timeStamp(timestamp)
  } ${host}${header.tag}[${header.pid}]: ${message}`;
}

const CODE_TEXT: Readonly<Record<string, string>> = {
  ENOENT: "no such socket",
  ECONNREFUSED: "nothing receives on it",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EPROTOTYPE: "not a datagram socket",
  ENOTFOUND: "host name not found",
  EAGAIN: "its queue is full",
  ENOBUFS: "no buffer space",
  ENOTCONN: "nothing receives on it",
  EMSGSIZE: "line too long",
};

/** `no such socket (ENOENT)`: an errno name with what it means here. */
export function describeSyslogError(code: string): string {
  const text = CODE_TEXT[code];
  return text === undefined ? code : `${text} (${code})`;
}

/** What `openSyslogSink` needs. */
export interface SyslogSinkOptions {
  readonly address: SyslogAddress;
  readonly openers: SyslogOpeners;
  /** The message part of a line (no trailing newline needed: one is removed). */
  readonly render: (record: LogRecord) => string;
  /** This host's name, written into lines sent over UDP. */
  readonly hostname: string;
  readonly pid: number;
  /** Where to say that datagrams are being dropped (once) and, at close, how many were never noted. */
  readonly warn: (text: string) => void;
  /** Clock in milliseconds (tests). */
  readonly now?: () => number;
}

/** A LogTape sink that sends to syslog; dispose it to close the socket. */
export type SyslogSink = Sink & AsyncDisposable;

/** Shortest time between two "N log lines were dropped" notes. */
const NOTE_INTERVAL_MS = 60_000;

function logLines(count: number): string {
  return count === 1 ? "1 log line" : `${count} log lines`;
}

/** An `Error` carrying an errno name, as transports reject with. */
function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : error instanceof Error ? error.message : String(error);
}

/**
 * Opens the transport for `options.address` and returns the sink. Rejects
 * with an `Error` whose message says why the address cannot be used
 * (`cannot log to syslog at /dev/log: no such socket (ENOENT)`).
 */
export async function openSyslogSink(options: SyslogSinkOptions): Promise<SyslogSink> {
  const { address } = options;
  const now = options.now ?? Date.now;
  const target = formatSyslogAddress(address);
  const header: SyslogHeader = {
    hostname: address.kind === "udp" ? options.hostname : null,
    tag: "srelay",
    pid: options.pid,
  };
  const encoder = new TextEncoder();
  let transport: SyslogTransport | null = null;
  let dropped = 0;
  let noted = 0;
  let lastError = "";
  let warned = false;
  let lastNoteAt = -Infinity;
  const report: SyslogReport = (error) => {
    if (error !== null) {
      dropped++;
      lastError = error;
      if (!warned) {
        warned = true;
        options.warn(
          `syslog: cannot send to ${target}: ${describeSyslogError(error)}; log lines are dropped while this lasts`,
        );
      }
      return;
    }
    if (dropped === noted || now() - lastNoteAt < NOTE_INTERVAL_MS) return;
    const count = dropped - noted;
    noted = dropped;
    lastNoteAt = now();
    const note = `syslog: dropped ${logLines(count)} (${lastError})`;
    transport?.send(encoder.encode(formatSyslogLine("warning", lastNoteAt, note, header)));
  };
  try {
    transport = address.kind === "unix"
      ? await options.openers.unix(address.path, report)
      : await options.openers.udp(address.host, address.port, report);
  } catch (error) {
    throw new Error(`cannot log to syslog at ${target}: ${describeSyslogError(errorCode(error))}`, { cause: error });
  }
  const opened = transport;
  const sink = (record: LogRecord) => {
    const message = options.render(record);
    const body = message.endsWith("\n") ? message.slice(0, -1) : message;
    opened.send(encoder.encode(formatSyslogLine(record.level, record.timestamp, body, header)));
  };
  return Object.assign(sink, {
    [Symbol.asyncDispose]: async () => {
      await opened.close();
      if (dropped > noted) {
        options.warn(`syslog: dropped ${logLines(dropped - noted)} for ${target} (${lastError})`);
      }
    },
  });
}
