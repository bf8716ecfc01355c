/**
 * Logs through LogTape with message templates parsed once, not per call.
 *
 * `logger.info("{a} {b}", fields)` parses its template and copies its
 * properties twice on every call; at thousands of sessions per second, with
 * two lines per session, that is a measurable share of the CPU. `emitTemplate`
 * splits each template into literal text and property
 * names the first time it sees it, and then hands LogTape a finished record
 * (`Logger.emit`), which reaches the same sinks, levels and filters.
 *
 * Templates are `{name}` placeholders in literal text (no `{{` escapes, no
 * property paths): what the session account uses.
 *
 * Once `setupLogging` has named the sink every `srelay` line goes to
 * (`sendDirectly`), records of `srelay` loggers are handed to that sink
 * here: `Logger.emit` copies each record through its property descriptors
 * and walks the logger tree with generators, about 2.5 µs per line in Bun.
 *
 * @module
 */
import { compareLogLevel, type Logger, type LogLevel, type LogRecord, type Sink } from "@logtape/logtape";

/** A template split into literal text and the property names between. */
interface CompiledTemplate {
  /** Literal text; one more entry than `names`. */
  readonly texts: readonly string[];
  readonly names: readonly string[];
}

/** Most distinct templates kept (each is a literal of the code, so a handful). */
const MAX_TEMPLATES = 256;

function compile(template: string): CompiledTemplate {
  const texts: string[] = [];
  const names: string[] = [];
  let last = 0;
  for (const match of template.matchAll(/\{([^{}]+)\}/g)) {
    texts.push(template.slice(last, match.index));
    names.push(match[1] as string);
    last = match.index + match[0].length;
  }
  texts.push(template.slice(last));
  return { texts, names };
}

/** Templates compiled so far (each is a literal of the code, so a handful). */
const templates = new Map<string, CompiledTemplate>();

/** The sink of every `srelay` logger and its lowest level, while `setupLogging`'s configuration holds. */
let direct: { readonly sink: Sink; readonly lowestLevel: LogLevel } | null = null;

/**
 * Sends the records `emitTemplate` makes for `srelay` loggers straight to
 * `sink` when at `lowestLevel` or above (what the LogTape configuration
 * says for the `srelay` category, with no filters); `null` goes back to
 * `Logger.emit`.
 */
export function sendDirectly(target: { readonly sink: Sink; readonly lowestLevel: LogLevel } | null): void {
  direct = target;
}

/**
 * Logs `template` at `level` through `logger`, with `properties` filling its
 * placeholders (a missing one renders as undefined), as
 * `logger[level](template, properties)` would.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Logger, LogRecord } from "@logtape/logtape";
 * import { emitTemplate } from "./template_emitter.ts";
 * const records: Omit<LogRecord, "category">[] = [];
 * const logger = { emit: (record: Omit<LogRecord, "category">) => records.push(record) } as unknown as Logger;
 * emitTemplate(logger, "info", "{client} up={bytes}", { client: "a:1", bytes: 5 });
 * assert.deepEqual(records[0]?.message, ["", "a:1", " up=", 5, ""]);
 * assert.deepEqual(records[0]?.properties, { client: "a:1", bytes: 5 });
 * ```
 */
export function emitTemplate(
  logger: Logger,
  level: LogLevel,
  template: string,
  properties: Record<string, unknown>,
): void {
  let compiled = templates.get(template);
  if (compiled === undefined) {
    compiled = compile(template);
    if (templates.size < MAX_TEMPLATES) templates.set(template, compiled);
  }
  const { texts, names } = compiled;
  const message: unknown[] = [texts[0]];
  for (let i = 0; i < names.length; i++) message.push(properties[names[i] as string], texts[i + 1]);
  if (direct === null || logger.category[0] !== "srelay") {
    logger.emit({ level, timestamp: Date.now(), message, rawMessage: template, properties });
  } else if (compareLogLevel(level, direct.lowestLevel) >= 0) {
    const record: LogRecord = {
      category: logger.category,
      level,
      timestamp: Date.now(),
      message,
      rawMessage: template,
      properties,
    };
    direct.sink(record);
  }
}
