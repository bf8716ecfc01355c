/**
 * Logging set-up on LogTape: where lines go (stderr, syslog, a file), how they
 * look (srelay-style text or JSON lines) and from which level. The rest of
 * the code only calls `getLogger(["srelay", ...])`.
 *
 * @module
 */
import { hostname } from "node:os";
import { setImmediate } from "node:timers";
import { configure, dispose, getJsonLinesFormatter, type LogLevel, type LogRecord, type Sink } from "@logtape/logtape";
import { getStreamFileSink } from "@logtape/file";
import { formatTextRecord, renderMessage } from "./line_format.ts";
import type { SyslogAddress } from "./syslog_address.ts";
import { openSyslogSink, type SyslogOpeners } from "./syslog_sink.ts";

/** Where log lines are written. */
export type LogDestination =
  | { readonly kind: "stderr" }
  | { readonly kind: "syslog"; readonly address: SyslogAddress }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "none" };

/** How log lines are written. */
export interface LogSettings {
  readonly destination: LogDestination;
  readonly format: "text" | "json";
  readonly level: LogLevel;
  /** The runtime's syslog transports (from the entry point); required for a syslog destination. */
  readonly syslog?: SyslogOpeners;
  /**
   * True in the background child, whose stderr goes nowhere: the message
   * about a syslog that cannot be reached then says the lines are lost.
   */
  readonly background?: boolean;
}

/** What `setupLogging` could not do as asked. */
export interface LoggingSetup {
  /**
   * Why lines go to stderr instead of syslog (the socket is missing or
   * refuses), for the user to see at start-up; null when all went as asked.
   */
  readonly fallback: string | null;
}

/**
 * Writes formatted lines to stderr, batched: lines logged during one turn of
 * the event loop go out in one write (at thousands of sessions per second a
 * write per line is a measurable share of the CPU). Disposing flushes.
 */
function stderrSink(format: (record: LogRecord) => string): Sink & Disposable {
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    process.stderr.write(text);
  };
  const sink = (record: LogRecord) => {
    pending.push(format(record));
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return Object.assign(sink, { [Symbol.dispose]: flush });
}

/**
 * Configures LogTape for the server. Call once at start-up, before logging.
 * A syslog socket that cannot be reached is not fatal: lines go to stderr
 * and `fallback` says why.
 */
export async function setupLogging(settings: LogSettings): Promise<LoggingSetup> {
  const json = getJsonLinesFormatter({ properties: "flatten", message: "rendered" });
  const host = hostname();
  const prefix = `${host} srelay[${process.pid}]: `;
  const text = (record: LogRecord) => formatTextRecord(record, prefix);
  const formatter = settings.format === "json" ? json : text;
  let fallback: string | null = null;
  let sink: Sink;
  switch (settings.destination.kind) {
    case "stderr":
      sink = stderrSink(formatter);
      break;
    case "file":
      // The stream sink appends through a buffered stream; getFileSink would
      // fsync every 8 KiB, which cost two thirds of the CPU at high rates.
      sink = getStreamFileSink(settings.destination.path, { formatter });
      break;
    case "syslog": {
      if (settings.syslog === undefined) {
        throw new TypeError("setupLogging: a syslog destination needs `syslog` openers");
      }
      try {
        sink = await openSyslogSink({
          address: settings.destination.address,
          openers: settings.syslog,
          render: settings.format === "json" ? json : renderMessage,
          hostname: host,
          pid: process.pid,
          warn: (message) => process.stderr.write(`srelay: warning: ${message}\n`),
        });
      } catch (error) {
        fallback = settings.background
          ? `${
            (error as Error).message
          }; a background server has no stderr, so its log lines are lost (use -f, --log-file FILE or --syslog-address)`
          : `${(error as Error).message}; logging to stderr instead`;
        sink = stderrSink(formatter);
      }
      break;
    }
    case "none":
      sink = () => {};
      break;
  }
  await configure({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: ["srelay"], lowestLevel: settings.level, sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
  return { fallback };
}

/** Flushes and closes the sinks (file and syslog sinks hold resources). */
export async function shutdownLogging(): Promise<void> {
  await dispose();
}
