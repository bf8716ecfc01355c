/**
 * Logging set-up on LogTape: where lines go (stderr, syslog, a file), how they
 * look (srelay-style text or JSON lines) and from which level. The rest of
 * the code only calls `getLogger(["srelay", ...])`.
 *
 * @module
 */
import { closeSync, createWriteStream, fstatSync, openSync, statSync, type WriteStream } from "node:fs";
import { hostname } from "node:os";
import { configure, dispose, getJsonLinesFormatter, type LogLevel, type LogRecord, type Sink } from "@logtape/logtape";
import { formatTextRecord, renderMessage } from "./line_format.ts";
import { sendDirectly } from "./template_emitter.ts";
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

/** How long log lines wait to be written together: one write per 10 ms at most, not one per line. */
const BATCH_MS = 10;

/**
 * Collects lines and writes them in one piece `BATCH_MS` after the first: at
 * thousands of sessions per second a write per line (two per session) is a
 * measurable share of the CPU, and lines are not needed sooner. A record is
 * formatted as it comes (a record kept for 10 ms outlives a garbage
 * collection or two, its line costs less), except until the first write:
 * the first local-time stamp sets up the time zone (about 3 ms in Bun),
 * which then comes after the start-up lines, not before. `flush()` writes
 * what is pending at once.
 */
function batchedWriter(
  format: (record: LogRecord) => string,
  write: (text: string) => void,
): { add(record: LogRecord): void; flush(): void } {
  /** Records not formatted yet: only those before the first write. */
  let early: LogRecord[] | null = [];
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (early !== null) {
      let head = "";
      for (const record of early) head += format(record);
      text = head + text;
      early = null;
    }
    if (text === "") return;
    const lines = text;
    text = "";
    write(lines);
  };
  return {
    add(record) {
      if (early === null) text += format(record);
      else early.push(record);
      timer ??= setTimeout(flush, BATCH_MS);
    },
    flush,
  };
}

/** Writes formatted lines to stderr, batched (`batchedWriter`). Disposing flushes. */
function stderrSink(format: (record: LogRecord) => string): Sink & Disposable {
  const writer = batchedWriter(format, (text) => process.stderr.write(text));
  return Object.assign((record: LogRecord) => writer.add(record), { [Symbol.dispose]: writer.flush });
}

/** A `--log-file` sink that can close its file and open it again by name. */
interface FileSink extends Sink, AsyncDisposable {
  /**
   * Opens the path again (a new file if logrotate renamed the old one) and
   * sends the next lines there; the old file gets what was already written
   * and is closed. Throws, with lines still going to the old file, when the
   * path cannot be opened. Resolves once the old file is closed.
   */
  reopen(): Promise<void>;
  /** True when the path no longer names the open file (renamed or removed). */
  moved(): boolean;
}

/** Ends a stream and resolves once its descriptor is closed. */
function closeStream(stream: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.closed || stream.destroyed) {
      resolve();
      return;
    }
    stream.once("close", () => resolve());
    stream.end();
  });
}

/**
 * Appends formatted lines to `path`, batched (`batchedWriter`), through a
 * write stream (no fsync, which cost two thirds of the CPU at high rates).
 * The file is opened synchronously, so a file that cannot be opened is an
 * error at once rather than a stream error later; a write error is
 * reported on stderr once.
 */
function fileSink(path: string, format: (record: LogRecord) => string): FileSink {
  let failed = false;
  let fd = -1;
  const open = () => {
    const opened = openSync(path, "a");
    let stream: WriteStream;
    try {
      stream = createWriteStream(path, { fd: opened, flags: "a" });
    } catch (error) {
      closeSync(opened);
      throw error;
    }
    fd = opened;
    stream.on("error", (error) => {
      if (failed) return;
      failed = true;
      process.stderr.write(`srelay: cannot write the log file ${path}: ${error.message}\n`);
    });
    return stream;
  };
  let stream = open();
  let disposed = false;
  const writer = batchedWriter(format, (text) => stream.write(text));
  const sink = (record: LogRecord) => {
    if (!disposed) writer.add(record);
  };
  return Object.assign(sink, {
    moved(): boolean {
      try {
        const open = fstatSync(fd);
        const named = statSync(path);
        return open.ino !== named.ino || open.dev !== named.dev;
      } catch {
        return true;
      }
    },
    reopen(): Promise<void> {
      if (disposed) return Promise.resolve();
      const next = open();
      writer.flush();
      const old = stream;
      stream = next;
      failed = false;
      return closeStream(old);
    },
    [Symbol.asyncDispose](): Promise<void> {
      if (disposed) return Promise.resolve();
      writer.flush();
      disposed = true;
      return closeStream(stream);
    },
  });
}

/** The `--log-file` sink in use, or null when lines go elsewhere. */
let currentFile: { readonly path: string; readonly sink: FileSink } | null = null;

/**
 * Closes `--log-file` and opens it again by name, for log rotation
 * (SIGUSR1, SIGHUP): lines logged after the call go to the file now at that
 * path. With `onlyIfMoved`, it does so only when the path no longer names
 * the open file (renamed or removed). Resolves to the path, or null when
 * lines do not go to a file or nothing was reopened. Throws when the file
 * cannot be opened (after `--user`, NAME must be allowed to write it);
 * lines then keep going to the file opened before.
 */
export async function reopenLogFile(options: { readonly onlyIfMoved?: boolean } = {}): Promise<string | null> {
  if (currentFile === null) return null;
  const { path, sink } = currentFile;
  if (options.onlyIfMoved && !sink.moved()) return null;
  await sink.reopen();
  return path;
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
      sink = fileSink(settings.destination.path, formatter);
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
  currentFile = settings.destination.kind === "file"
    ? { path: settings.destination.path, sink: sink as FileSink }
    : null;
  await configure({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: ["srelay"], lowestLevel: settings.level, sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
  sendDirectly({ sink, lowestLevel: settings.level });
  return { fallback };
}

/** Flushes and closes the sinks (file and syslog sinks hold resources). */
export async function shutdownLogging(): Promise<void> {
  currentFile = null;
  sendDirectly(null);
  await dispose();
}
