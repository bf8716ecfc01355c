/**
 * Logging set-up on LogTape: where lines go (stderr, syslog, a file), how they
 * look (srelay-style text or JSON lines) and from which level. The rest of
 * the code only calls `getLogger(["srelay", ...])`.
 *
 * @module
 */
import { hostname } from "node:os";
import { setImmediate } from "node:timers";
import {
  configure,
  dispose,
  getJsonLinesFormatter,
  type LogLevel,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";
import { getStreamFileSink } from "@logtape/file";
import { getSyslogSink } from "@logtape/syslog";

/** Where log lines are written. */
export type LogDestination =
  | { readonly kind: "stderr" }
  | { readonly kind: "syslog"; readonly host: string; readonly port: number }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "none" };

/** How log lines are written. */
export interface LogSettings {
  readonly destination: LogDestination;
  readonly format: "text" | "json";
  readonly level: LogLevel;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function pad2(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

/**
 * Formats a record like srelay's foreground log: `Nov 25 15:27:24 host srelay[pid]: message`,
 * with the level named for warnings and errors. `prefix` is `host srelay[pid]: `.
 */
export function formatTextRecord(record: LogRecord, prefix: string): string {
  const stamp = timeStamp(record.timestamp);
  const message = renderMessage(record);
  const level = record.level === "warning" || record.level === "error" || record.level === "fatal"
    ? `${record.level}: `
    : "";
  return `${stamp} ${prefix}${level}${message}\n`;
}

/** A record's message with string values as they are and other values as JSON. */
function renderMessage(record: LogRecord): string {
  let message = "";
  for (let i = 0; i < record.message.length; i++) {
    const part = record.message[i];
    message += i % 2 === 0 ? String(part) : typeof part === "string" ? part : JSON.stringify(part);
  }
  return message;
}

let stampSecond = -1;
let stampText = "";

/** `Nov 25 15:27:24` in local time, computed once per second. */
function timeStamp(timestamp: number): string {
  const second = Math.floor(timestamp / 1000);
  if (second !== stampSecond) {
    const time = new Date(timestamp);
    const day = String(time.getDate()).padStart(2, " ");
    stampText = `${MONTHS[time.getMonth()]} ${day} ${pad2(time.getHours())}:${pad2(time.getMinutes())}:${
      pad2(time.getSeconds())
    }`;
    stampSecond = second;
  }
  return stampText;
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

/** Configures LogTape for the server. Call once at start-up, before logging. */
export async function setupLogging(settings: LogSettings): Promise<void> {
  const json = getJsonLinesFormatter({ properties: "flatten", message: "rendered" });
  const prefix = `${hostname()} srelay[${process.pid}]: `;
  const text = (record: LogRecord) => formatTextRecord(record, prefix);
  const formatter = settings.format === "json" ? json : text;
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
      const syslog = getSyslogSink({
        hostname: settings.destination.host,
        port: settings.destination.port,
        appName: "srelay",
        facility: "daemon",
      });
      // The syslog sink renders values JSON-style ("quoted" strings): hand it
      // the message already rendered the way the text format does.
      sink = (record) => syslog({ ...record, message: [renderMessage(record), ""] });
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
}

/** Flushes and closes the sinks (file and syslog sinks hold resources). */
export async function shutdownLogging(): Promise<void> {
  await dispose();
}
