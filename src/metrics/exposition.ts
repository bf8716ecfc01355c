/**
 * The Prometheus text exposition format, version 0.0.4: `# HELP` and
 * `# TYPE` lines, then one line per sample; histograms as cumulative
 * `_bucket{le="..."}` lines ending in `le="+Inf"`, then `_sum` and `_count`.
 * HELP text escapes `\` and newlines; label values escape `\`, `"` and
 * newlines.
 *
 * @module
 */
import type { HistogramSample, MetricFamily, ScalarSample } from "./registry.ts";

/** The `Content-Type` of the text format. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Escapes HELP text: `\` and line feeds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(escapeHelp("a\\b\nc"), "a\\\\b\\nc");
 * ```
 */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/**
 * Escapes a label value: `\`, `"` and line feeds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(escapeLabelValue('say "hi"\n'), 'say \\"hi\\"\\n');
 * ```
 */
export function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/**
 * A sample value as Go's `strconv.ParseFloat` reads it: `+Inf`, `-Inf`, `NaN`, or the number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(formatValue(Infinity), "+Inf");
 * assert.equal(formatValue(0.25), "0.25");
 * ```
 */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function labelText(names: readonly string[], values: readonly string[], extra?: string): string {
  const pairs: string[] = [];
  for (let i = 0; i < names.length; i++) pairs.push(`${names[i]}="${escapeLabelValue(values[i] ?? "")}"`);
  if (extra !== undefined) pairs.push(extra);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

/** Renders families as the text format (one trailing newline). */
export function renderText(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    const { name, labelNames } = family;
    lines.push(`# HELP ${name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${name} ${family.type}`);
    if (family.type !== "histogram") {
      for (const sample of family.samples as readonly ScalarSample[]) {
        lines.push(`${name}${labelText(labelNames, sample.labels)} ${formatValue(sample.value)}`);
      }
      continue;
    }
    const bounds = family.buckets ?? [];
    for (const sample of family.samples as readonly HistogramSample[]) {
      let cumulative = 0;
      for (let i = 0; i <= bounds.length; i++) {
        cumulative += sample.counts[i] ?? 0;
        const le = i < bounds.length ? formatValue(bounds[i] as number) : "+Inf";
        lines.push(`${name}_bucket${labelText(labelNames, sample.labels, `le="${le}"`)} ${formatValue(cumulative)}`);
      }
      lines.push(`${name}_sum${labelText(labelNames, sample.labels)} ${formatValue(sample.sum)}`);
      lines.push(`${name}_count${labelText(labelNames, sample.labels)} ${formatValue(sample.count)}`);
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}
