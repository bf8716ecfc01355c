/**
 * LogTape records captured in memory, so a test can assert the exact log
 * line a user would see. `installLogCapture()` configures LogTape once
 * (`reset: true`) with a sink that files each record under its category;
 * each `captureLogger()` gets its own category and sees only its records.
 * Sinks run synchronously: a record is there as soon as the call that
 * logged it returns.
 *
 * @module
 */
import { configure, getLogger, type Logger, type LogLevel, type LogRecord, reset } from "@logtape/logtape";
import { renderMessage } from "../../src/log/line_format.ts";

const ROOT = "srelay-test";
const buckets = new Map<string, LogRecord[]>();
let nextBucket = 1;

/** One captured record, as the text log shows it. */
export interface CapturedLine {
  readonly level: LogLevel;
  /** The rendered message (the text line without time stamp and prefix). */
  readonly text: string;
  /** The record's structured fields (what `--log-format json` writes). */
  readonly properties: Record<string, unknown>;
}

/** A logger whose records the test can read. */
export interface CapturedLog {
  readonly logger: Logger;
  /** Every record so far, in order. */
  entries(): CapturedLine[];
  /** The rendered messages so far, in order. */
  lines(): string[];
  /** Waits (at most `timeoutMs`) until a message matches `pattern`; returns that entry. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<CapturedLine>;
}

/** Routes LogTape records to the capture buckets. Call in `before()`. */
export async function installLogCapture(): Promise<void> {
  await configure({
    reset: true,
    sinks: {
      capture: (record: LogRecord) => {
        const bucket = record.category[1];
        if (bucket !== undefined) buckets.get(bucket)?.push(record);
      },
    },
    loggers: [
      { category: [ROOT], lowestLevel: "debug", sinks: ["capture"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
}

/** Undoes `installLogCapture`. Call in `after()`. */
export async function removeLogCapture(): Promise<void> {
  buckets.clear();
  await reset();
}

/** A fresh logger with its own record list. */
export function captureLogger(): CapturedLog {
  const name = String(nextBucket++);
  const records: LogRecord[] = [];
  buckets.set(name, records);
  const entries = () =>
    records.map((record) => ({ level: record.level, text: renderMessage(record), properties: record.properties }));
  return {
    logger: getLogger([ROOT, name]),
    entries,
    lines: () => entries().map((entry) => entry.text),
    async waitFor(pattern, timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = entries().find((entry) => pattern.test(entry.text));
        if (found !== undefined) return found;
        if (Date.now() > deadline) {
          throw new Error(
            `Timed out after ${timeoutMs} ms waiting for a log line matching ${pattern}; got:\n` +
              entries().map((entry) => `  ${entry.level}: ${entry.text}`).join("\n"),
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  };
}
