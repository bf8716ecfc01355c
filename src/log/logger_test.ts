import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLogger, type LogRecord } from "@logtape/logtape";
import { formatTextRecord } from "./line_format.ts";
import { reopenLogFile, setupLogging, shutdownLogging } from "./logger.ts";
import { emitTemplate } from "./template_emitter.ts";

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

describe("emitTemplate() once setupLogging() has run", () => {
  test("srelay lines reach the configured sink at its level and above, text and JSON alike", async () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-log-"));
    try {
      for (const format of ["text", "json"] as const) {
        const path = join(dir, `${format}.log`);
        await setupLogging({ destination: { kind: "file", path }, format, level: "warning" });
        const logger = getLogger(["srelay", "session"]);
        emitTemplate(logger, "info", "{client} quiet", { client: "a:1" });
        emitTemplate(logger, "warning", "{client} up={up}", { client: "a:1", up: 5 });
        emitTemplate(logger, "error", "{client} internal", { client: "a:1" });
        await shutdownLogging();
        const text = readFileSync(path, "utf8");
        if (format === "text") {
          assert.match(text, /^[^\n]* warning: a:1 up=5\n[^\n]* error: a:1 internal\n$/);
        } else {
          const lines = text.trim().split("\n").map((line) => JSON.parse(line));
          assert.deepEqual(lines.map((line) => [line.level, line.logger, line.message, line.up]), [
            ["WARN", "srelay.session", '"a:1" up=5', 5],
            ["ERROR", "srelay.session", '"a:1" internal', undefined],
          ]);
        }
      }
    } finally {
      await shutdownLogging();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("reopenLogFile()", () => {
  test("after a rename, lines logged after the reopen go to a new file at the path", async () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-log-"));
    const path = join(dir, "srelay.log");
    try {
      await setupLogging({ destination: { kind: "file", path }, format: "text", level: "info" });
      const logger = getLogger(["srelay", "test"]);
      logger.info("before rotation");
      renameSync(path, `${path}.1`);
      logger.info("still the old file");
      assert.equal(await reopenLogFile(), path);
      logger.info("after rotation");
      await shutdownLogging();
      const old = readFileSync(`${path}.1`, "utf8");
      const current = readFileSync(path, "utf8");
      assert.match(old, /before rotation\n.*still the old file\n$/s);
      assert.doesNotMatch(old, /after rotation/);
      assert.match(current, /^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ srelay\[\d+\]: after rotation\n$/);
    } finally {
      await shutdownLogging();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("when the path cannot be opened, it throws and lines keep going to the old file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-log-"));
    const path = join(dir, "logs", "srelay.log");
    try {
      mkdirSync(join(dir, "logs"));
      await setupLogging({ destination: { kind: "file", path }, format: "json", level: "info" });
      const logger = getLogger(["srelay", "test"]);
      renameSync(join(dir, "logs"), join(dir, "moved"));
      await assert.rejects(reopenLogFile(), /ENOENT/);
      logger.info("kept {n}", { n: 1 });
      await shutdownLogging();
      assert.deepEqual(
        readFileSync(join(dir, "moved", "srelay.log"), "utf8").trim().split("\n").map((line) =>
          JSON.parse(line).message
        ),
        ["kept 1"],
      );
    } finally {
      await shutdownLogging();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("onlyIfMoved: reopens only when the path no longer names the open file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "srelay-log-"));
    const path = join(dir, "srelay.log");
    try {
      await setupLogging({ destination: { kind: "file", path }, format: "text", level: "info" });
      const logger = getLogger(["srelay", "test"]);
      assert.equal(await reopenLogFile({ onlyIfMoved: true }), null);
      logger.info("one");
      renameSync(path, `${path}.1`);
      assert.equal(await reopenLogFile({ onlyIfMoved: true }), path);
      logger.info("two");
      rmSync(path);
      assert.equal(await reopenLogFile({ onlyIfMoved: true }), path);
      logger.info("three");
      await shutdownLogging();
      assert.match(readFileSync(`${path}.1`, "utf8"), /one\n$/);
      assert.match(readFileSync(path, "utf8"), /: three\n$/);
    } finally {
      await shutdownLogging();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("resolves to null when lines do not go to a file", async () => {
    await setupLogging({ destination: { kind: "none" }, format: "text", level: "info" });
    try {
      assert.equal(await reopenLogFile(), null);
    } finally {
      await shutdownLogging();
    }
  });
});
