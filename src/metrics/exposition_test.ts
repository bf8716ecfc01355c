// The Prometheus text format: lines, escaping, histograms; and, where
// Debian's promtool is installed, its strict parser agrees.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { escapeHelp, escapeLabelValue, formatValue, renderText } from "./exposition.ts";
import { Registry } from "./registry.ts";

const PROMTOOL: string | false = (() => {
  const found = spawnSync("sh", ["-c", "command -v promtool"], { encoding: "utf8" });
  return found.status === 0 ? false : "promtool is not installed (apt-get install prometheus)";
})();

/** `promtool check metrics` on `text`: its exit code and what it printed. */
function promtool(text: string): { status: number | null; output: string } {
  const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

/** A registry with every kind of metric and awkward label values. */
function sampleRegistry(): Registry {
  const registry = new Registry();
  registry.gauge("demo_sessions_active", "Sessions in progress.").set(3);
  const counter = registry.counter("demo_requests_total", 'Requests, by "kind" \\ path;\nsecond line.', ["kind"]);
  counter.labels("plain").inc(2);
  counter.labels('with "quotes"').inc();
  counter.labels("back\\slash").inc();
  counter.labels("new\nline").inc();
  counter.labels("ünïcode ✓").inc();
  counter.labels("").inc();
  const histogram = registry.histogram("demo_duration_seconds", "Durations.", [0.005, 0.1, 1], ["command"]);
  histogram.labels("connect").observe(0.003);
  histogram.labels("connect").observe(0.2);
  histogram.labels("connect").observe(7);
  registry.counter("demo_empty_total", "Nothing yet.", ["x"]);
  return registry;
}

describe("escaping", () => {
  test("HELP escapes backslash and newline; label values escape quotes too", () => {
    assert.equal(escapeHelp('a "b" \\ c\nd'), 'a "b" \\\\ c\\nd');
    assert.equal(escapeLabelValue('a "b" \\ c\nd'), 'a \\"b\\" \\\\ c\\nd');
  });

  test("values: integers, fractions, infinities and NaN as Go parses them", () => {
    assert.equal(formatValue(42), "42");
    assert.equal(formatValue(0.005), "0.005");
    assert.equal(formatValue(1e21), "1e+21");
    assert.equal(formatValue(Infinity), "+Inf");
    assert.equal(formatValue(-Infinity), "-Inf");
    assert.equal(formatValue(Number.NaN), "NaN");
  });
});

describe("renderText()", () => {
  test("HELP and TYPE before the samples; escaped label values", () => {
    const text = renderText(sampleRegistry().collect());
    const lines = text.split("\n");
    assert.equal(lines[0], "# HELP demo_sessions_active Sessions in progress.");
    assert.equal(lines[1], "# TYPE demo_sessions_active gauge");
    assert.equal(lines[2], "demo_sessions_active 3");
    assert.ok(lines.includes('# HELP demo_requests_total Requests, by "kind" \\\\ path;\\nsecond line.'));
    assert.ok(lines.includes('demo_requests_total{kind="with \\"quotes\\""} 1'));
    assert.ok(lines.includes('demo_requests_total{kind="back\\\\slash"} 1'));
    assert.ok(lines.includes('demo_requests_total{kind="new\\nline"} 1'));
    assert.ok(lines.includes('demo_requests_total{kind="ünïcode ✓"} 1'));
    assert.ok(lines.includes('demo_requests_total{kind=""} 1'));
    assert.ok(text.endsWith("# TYPE demo_empty_total counter\n"), "a metric without samples keeps HELP and TYPE");
  });

  test("histograms: cumulative buckets up to +Inf, then _sum and _count", () => {
    const text = renderText(sampleRegistry().collect());
    const lines = text.split("\n").filter((line) => line.startsWith("demo_duration_seconds"));
    assert.deepEqual(lines, [
      'demo_duration_seconds_bucket{command="connect",le="0.005"} 1',
      'demo_duration_seconds_bucket{command="connect",le="0.1"} 1',
      'demo_duration_seconds_bucket{command="connect",le="1"} 2',
      'demo_duration_seconds_bucket{command="connect",le="+Inf"} 3',
      'demo_duration_seconds_sum{command="connect"} 7.203',
      'demo_duration_seconds_count{command="connect"} 3',
    ]);
  });

  test("nothing to render is the empty string", () => {
    assert.equal(renderText([]), "");
  });

  test("promtool check metrics accepts the output without a warning", { skip: PROMTOOL }, () => {
    const result = promtool(renderText(sampleRegistry().collect()));
    assert.equal(result.output, "");
    assert.equal(result.status, 0);
  });

  test(
    "promtool is strict: it rejects a broken exposition (the check above means something)",
    { skip: PROMTOOL },
    () => {
      const broken = renderText(sampleRegistry().collect()).replace('kind="plain"', 'kind="pla"in"');
      assert.notEqual(promtool(broken).status, 0);
    },
  );
});
