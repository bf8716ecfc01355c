/**
 * How one log record becomes text: the srelay-style line for stderr and
 * files, and the pieces the syslog line shares with it (the message and
 * the `Mmm dd hh:mm:ss` time stamp).
 *
 * @module
 */
import type { LogRecord } from "@logtape/logtape";

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

/** A record's message with strings and numbers as they are and other values as JSON. */
export function renderMessage(record: LogRecord): string {
  let message = "";
  for (let i = 0; i < record.message.length; i++) {
    const part = record.message[i];
    message += i % 2 === 0 || typeof part === "number"
      ? String(part)
      : typeof part === "string"
      ? part
      : JSON.stringify(part);
  }
  return message;
}

let stampSecond = -1;
let stampText = "";

/**
 * `Nov 25 15:27:24` (the day padded with a space, as syslog does) in local
 * time, computed once per second.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timeStamp } from "./line_format.ts";
 * assert.equal(timeStamp(new Date(2026, 0, 5, 9, 3, 7).getTime()), "Jan  5 09:03:07");
 * ```
 */
export function timeStamp(timestamp: number): string {
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
