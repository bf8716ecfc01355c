// The --workers supervisor adds up its workers' metrics: sums, stale
// figures for a worker that does not answer, monotonic counters across a
// restart.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WorkerAggregator } from "./aggregate.ts";
import { type MetricFamily, Registry, type ScalarSample } from "./registry.ts";

function worker(sessions: number, active: number): MetricFamily[] {
  const registry = new Registry();
  registry.gauge("srelay_sessions_active", "Active.").set(active);
  registry.counter("srelay_sessions_total", "Sessions.", ["command"]).labels("connect").inc(sessions);
  return registry.collect();
}

function value(families: readonly MetricFamily[], name: string): number | undefined {
  return (families.find((f) => f.name === name)?.samples[0] as ScalarSample | undefined)?.value;
}

describe("WorkerAggregator", () => {
  test("sums every worker and the supervisor's own figures, and says how many answered", async () => {
    const own = new Registry();
    own.gauge("srelay_sessions_active", "Active.");
    own.counter("srelay_sessions_total", "Sessions.", ["command"]);
    const answers: Record<string, MetricFamily[]> = { "127.0.0.1:1": worker(3, 1), "127.0.0.1:2": worker(4, 2) };
    const aggregator = new WorkerAggregator(
      () => own.collect(),
      () => new Map([[1, "127.0.0.1:1"], [2, "127.0.0.1:2"]]),
      { fetch: (endpoint) => Promise.resolve(answers[endpoint] ?? []) },
    );
    const families = await aggregator.families();
    assert.equal(value(families, "srelay_sessions_total"), 7);
    assert.equal(value(families, "srelay_sessions_active"), 3);
    assert.equal(value(families, "srelay_workers"), 2);
    assert.deepEqual(families.map((f) => f.name), [
      "srelay_sessions_active",
      "srelay_sessions_total",
      "srelay_workers",
    ]);
  });

  test("a worker that does not answer counts with its last counters (not its gauges)", async () => {
    let fail = false;
    const aggregator = new WorkerAggregator(() => [], () => new Map([[1, "w1"]]), {
      fetch: () => fail ? Promise.reject(new Error("timeout")) : Promise.resolve(worker(5, 2)),
    });
    await aggregator.families();
    fail = true;
    const families = await aggregator.families();
    assert.equal(value(families, "srelay_sessions_total"), 5);
    assert.equal(value(families, "srelay_sessions_active"), undefined);
    assert.equal(value(families, "srelay_workers"), 0);
  });

  test("a restarted worker: the dead one's last counters stay, so totals never go down", async () => {
    let endpoint = "old";
    const aggregator = new WorkerAggregator(() => [], () => new Map([[1, endpoint]]), {
      fetch: (at) => Promise.resolve(at === "old" ? worker(10, 4) : worker(1, 1)),
    });
    assert.equal(value(await aggregator.families(), "srelay_sessions_total"), 10);
    endpoint = "new";
    const families = await aggregator.families();
    assert.equal(value(families, "srelay_sessions_total"), 11);
    assert.equal(value(families, "srelay_sessions_active"), 1);
    assert.equal(value(await aggregator.families(), "srelay_sessions_total"), 11, "retired once, not at every scrape");
  });
});
