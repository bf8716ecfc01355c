// Counters, gauges and histograms with labels; collection as plain data;
// adding up the families of several processes.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type HistogramSample, mergeFamilies, type MetricFamily, Registry, type ScalarSample } from "./registry.ts";

function family(families: readonly MetricFamily[], name: string): MetricFamily {
  const found = families.find((f) => f.name === name);
  assert.ok(found, `${name} is collected`);
  return found;
}

describe("Registry", () => {
  test("a labelled counter keeps one child per combination, in creation order", () => {
    const registry = new Registry();
    const counter = registry.counter("x_total", "X.", ["a", "b"]);
    counter.labels("1", "2").inc();
    counter.labels("1", "3").inc(5);
    counter.labels("1", "2").inc(2);
    counter.labels("1", "2").inc(-4); // ignored: counters only go up
    assert.equal(counter.labels("1", "2"), counter.labels("1", "2"), "the same child every time");
    assert.deepEqual(family(registry.collect(), "x_total").samples, [
      { labels: ["1", "2"], value: 3 },
      { labels: ["1", "3"], value: 5 },
    ]);
  });

  test("label values that would collide if joined stay apart", () => {
    const registry = new Registry();
    const counter = registry.counter("y_total", "Y.", ["a", "b"]);
    counter.labels("a,b", "c").inc();
    counter.labels("a", "b,c").inc();
    assert.equal(family(registry.collect(), "y_total").samples.length, 2);
  });

  test("an update of an existing child allocates no new child and no key", () => {
    const registry = new Registry();
    const counter = registry.counter("z_total", "Z.", ["a", "b", "c", "d"]);
    const child = counter.labels("1", "2", "3", "4");
    for (let i = 0; i < 1000; i++) counter.labels("1", "2", "3", "4").inc();
    assert.equal(child.value, 1000);
    assert.equal(family(registry.collect(), "z_total").samples.length, 1);
  });

  test("too few label values, bad names, a fifth label and duplicates are errors", () => {
    const registry = new Registry();
    const counter = registry.counter("w_total", "W.", ["a", "b"]);
    assert.throws(() => counter.labels("1"), /needs 2 label values/);
    assert.throws(() => registry.counter("bad-name", "x"), /Invalid metric name/);
    assert.throws(() => registry.counter("ok_total", "x", ["le"]), /Invalid label name/);
    assert.throws(() => registry.counter("ok_total", "x", ["__x"]), /Invalid label name/);
    assert.throws(() => registry.counter("ok_total", "x", ["a", "b", "c", "d", "e"]), /more than 4 labels/);
    assert.throws(() => registry.counter("w_total", "again"), /already registered/);
  });

  test("gauges set, go up and down; hooks refresh them before each collection", () => {
    const registry = new Registry();
    const gauge = registry.gauge("g", "G.");
    let reading = 7;
    registry.beforeCollect(() => gauge.set(reading));
    assert.deepEqual(family(registry.collect(), "g").samples, [{ labels: [], value: 7 }]);
    reading = 3;
    assert.deepEqual(family(registry.collect(), "g").samples, [{ labels: [], value: 3 }]);
    const child = registry.gauge("h", "H.", ["k"]).labels("v");
    child.inc(2);
    child.dec(5);
    assert.equal(child.value, -3);
  });

  test("histograms count each observation in the first bucket whose bound is not below it", () => {
    const registry = new Registry();
    const histogram = registry.histogram("d_seconds", "D.", [0.1, 1, 10]);
    for (const value of [0.05, 0.1, 0.5, 1, 9, 100, Number.NaN]) histogram.observe(value);
    const [sample] = family(registry.collect(), "d_seconds").samples as HistogramSample[];
    assert.deepEqual(sample?.counts, [2, 2, 1, 1]);
    assert.equal(sample?.count, 6);
    assert.ok(Math.abs((sample?.sum ?? 0) - 110.65) < 1e-9);
    assert.throws(() => registry.histogram("e_seconds", "E.", [1, 1]), /ascending/);
  });

  test("collected families survive JSON (the supervisor reads them so)", () => {
    const registry = new Registry();
    registry.counter("c_total", "C.", ["a"]).labels("x").inc(2);
    registry.histogram("h_seconds", "H.", [1]).observe(0.5);
    const families = registry.collect();
    assert.deepEqual(JSON.parse(JSON.stringify(families)), families);
  });
});

describe("mergeFamilies()", () => {
  test("sums counters, gauges and histograms with equal labels, and keeps the others", () => {
    const make = (counter: number, gauge: number, observations: number[], label: string) => {
      const registry = new Registry();
      registry.counter("c_total", "C.", ["k"]).labels(label).inc(counter);
      registry.gauge("g", "G.").set(gauge);
      const histogram = registry.histogram("h_seconds", "H.", [1, 2]);
      for (const value of observations) histogram.observe(value);
      return registry.collect();
    };
    const merged = mergeFamilies([make(1, 10, [0.5], "a"), make(2, 20, [1.5, 3], "a"), make(4, 1, [], "b")]);
    assert.deepEqual(family(merged, "c_total").samples, [{ labels: ["a"], value: 3 }, { labels: ["b"], value: 4 }]);
    assert.equal((family(merged, "g").samples[0] as ScalarSample).value, 31);
    const [histogram] = family(merged, "h_seconds").samples as HistogramSample[];
    assert.deepEqual(histogram?.counts, [1, 1, 1]);
    assert.equal(histogram?.count, 3);
    assert.equal(histogram?.sum, 5);
  });

  test("a family that does not match the first one seen (type, labels, buckets) is left out", () => {
    const a: MetricFamily = {
      name: "m",
      help: "M.",
      type: "counter",
      labelNames: ["x"],
      samples: [{ labels: ["1"], value: 1 }],
    };
    const b: MetricFamily = { ...a, type: "gauge", samples: [{ labels: ["1"], value: 5 }] };
    const c: MetricFamily = { ...a, labelNames: ["y"], samples: [{ labels: ["1"], value: 5 }] };
    assert.deepEqual(mergeFamilies([[a], [b], [c]])[0]?.samples, [{ labels: ["1"], value: 1 }]);
  });

  test("does not change its inputs", () => {
    const registry = new Registry();
    registry.histogram("h_seconds", "H.", [1]).observe(0.5);
    const one = registry.collect();
    const copy = JSON.parse(JSON.stringify(one));
    mergeFamilies([one, one, one]);
    assert.deepEqual(one, copy);
  });
});
