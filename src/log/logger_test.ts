import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { formatTextRecord } from "./line_format.ts";

function record(
  level: LogRecord["level"],
  message: unknown[],
  timestamp = new Date(2026, 10, 25, 15, 7, 4).getTime(),
): LogRecord {
  return { category: ["srelay"], level, message, rawMessage: "", timestamp, properties: {} };
}

describe("formatTextRecord()", () => {
  test("writes srelay's foreground format: time, prefix, message", () => {
    const line = formatTextRecord(record("info", ["", "127.0.0.1:1", " 5-CON ", "a:80", ""]), "host srelay[7]: ");
    assert.match(line, /^Nov 25 15:07:04 host srelay\[7\]: 127\.0\.0\.1:1 5-CON a:80\n$/);
  });

  test("names warnings and errors, not info", () => {
    assert.match(formatTextRecord(record("warning", ["open proxy"]), "p: "), / p: warning: open proxy\n$/);
    assert.match(formatTextRecord(record("error", ["bad"]), "p: "), / p: error: bad\n$/);
    assert.doesNotMatch(formatTextRecord(record("info", ["fine"]), "p: "), /info/);
  });

  test("renders non-string values as JSON and pads the day like syslog", () => {
    const line = formatTextRecord(
      record("info", ["up=", 42, " ok=", true, ""], new Date(2026, 0, 5, 12).getTime()),
      "p: ",
    );
    assert.match(line, /^Jan {2}5 12:00:00 p: up=42 ok=true\n$/);
  });
});
