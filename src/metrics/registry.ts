/**
 * Counters, gauges and histograms with labels, cheap to update: a labelled
 * metric hands out one child per combination of label values, found through
 * nested maps (no key string is built), so an update of a child that exists
 * allocates nothing. Callers on a hot path look their children up once.
 *
 * `collect()` turns the registry into plain data (`MetricFamily[]`):
 * `exposition.ts` renders that as Prometheus text, and the `--workers`
 * supervisor adds up the families its workers send it (`mergeFamilies`).
 *
 * @module
 */

/** The Prometheus metric types used here. */
export type MetricType = "counter" | "gauge" | "histogram";

/** One sample of a counter or gauge: its label values (in `labelNames` order) and its value. */
export interface ScalarSample {
  readonly labels: readonly string[];
  readonly value: number;
}

/** One histogram: its label values, the count in each bucket (not cumulative; the last is +Inf), sum and count. */
export interface HistogramSample {
  readonly labels: readonly string[];
  readonly counts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/** A metric with all its samples, as plain data (JSON-safe). */
export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  /** Histograms: the upper bounds of the buckets, ascending, without +Inf. */
  readonly buckets?: readonly number[];
  readonly samples: ReadonlyArray<ScalarSample | HistogramSample>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A counter (or counter child): only goes up. */
export class CounterChild {
  value = 0;
  /** Adds `amount` (default 1); a negative amount is ignored. */
  inc(amount = 1): void {
    if (amount > 0) this.value += amount;
  }
}

/** A gauge (or gauge child): any value. */
export class GaugeChild {
  value = 0;
  set(value: number): void {
    this.value = value;
  }
  inc(amount = 1): void {
    this.value += amount;
  }
  dec(amount = 1): void {
    this.value -= amount;
  }
}

/** A histogram (or histogram child). */
export class HistogramChild {
  readonly #bounds: readonly number[];
  /** Per bucket, not cumulative; the last one is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one observation (NaN is ignored). */
  observe(value: number): void {
    if (Number.isNaN(value)) return;
    const bounds = this.#bounds;
    let index = 0;
    while (index < bounds.length && value > (bounds[index] as number)) index++;
    this.counts[index]! += 1;
    this.sum += value;
    this.count++;
  }
}

type Child = CounterChild | GaugeChild | HistogramChild;

/** What every metric shares: name, help, labels, and the children by label values. */
abstract class Metric<C extends Child> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: MetricType;
  /** Nested maps, one level per label; the last level holds children. */
  readonly #root = new Map<string, unknown>();
  /** Every child with its label values, in creation order. */
  readonly #children: Array<{ readonly labels: readonly string[]; readonly child: C }> = [];
  #unlabelled: C | undefined;

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!METRIC_NAME.test(name)) throw new TypeError(`Invalid metric name '${name}'`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith("__") || label === "le") {
        throw new TypeError(`Invalid label name '${label}' for ${name}`);
      }
    }
    if (labelNames.length > 4) throw new TypeError(`${name} has more than 4 labels`);
    this.name = name;
    this.help = help;
    this.labelNames = [...labelNames];
  }

  protected abstract create(): C;

  /**
   * The child for these label values (created on first use). Pass exactly
   * as many values as the metric has labels; up to four.
   */
  labels(a?: string, b?: string, c?: string, d?: string): C {
    const count = this.labelNames.length;
    if (count === 0) return this.#unlabelled ??= this.#add([]);
    let level: Map<string, unknown> = this.#root;
    for (let i = 0; i < count - 1; i++) {
      const value = i === 0 ? a : i === 1 ? b : c;
      if (value === undefined) throw new TypeError(`${this.name} needs ${count} label values`);
      let next = level.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const last = count === 1 ? a : count === 2 ? b : count === 3 ? c : d;
    if (last === undefined) throw new TypeError(`${this.name} needs ${count} label values`);
    const found = level.get(last) as C | undefined;
    if (found !== undefined) return found;
    const child = this.#add([a, b, c, d].slice(0, count) as string[]);
    level.set(last, child);
    return child;
  }

  #add(labels: readonly string[]): C {
    const child = this.create();
    this.#children.push({ labels, child });
    return child;
  }

  /** Every child with its label values. */
  protected children(): ReadonlyArray<{ readonly labels: readonly string[]; readonly child: C }> {
    return this.#children;
  }

  abstract collect(): MetricFamily;
}

/** A metric whose children each hold one value (counters and gauges). */
abstract class ValueMetric<C extends CounterChild | GaugeChild> extends Metric<C> {
  collect(): MetricFamily {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      labelNames: this.labelNames,
      samples: this.children().map(({ labels, child }) => ({ labels, value: child.value })),
    };
  }
}

/** A counter, with or without labels. */
export class Counter extends ValueMetric<CounterChild> {
  readonly type = "counter" as const;
  protected create(): CounterChild {
    return new CounterChild();
  }
  /** Adds to the unlabelled counter. */
  inc(amount = 1): void {
    this.labels().inc(amount);
  }
}

/** A gauge, with or without labels. */
export class Gauge extends ValueMetric<GaugeChild> {
  readonly type = "gauge" as const;
  protected create(): GaugeChild {
    return new GaugeChild();
  }
  /** Sets the unlabelled gauge. */
  set(value: number): void {
    this.labels().set(value);
  }
}

/** A histogram with fixed buckets, with or without labels. */
export class Histogram extends Metric<HistogramChild> {
  readonly type = "histogram" as const;
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    const sorted = buckets.filter((bound) => Number.isFinite(bound));
    for (let i = 1; i < sorted.length; i++) {
      if ((sorted[i] as number) <= (sorted[i - 1] as number)) {
        throw new TypeError(`Buckets of ${name} must be ascending and distinct`);
      }
    }
    this.buckets = sorted;
  }
  protected create(): HistogramChild {
    return new HistogramChild(this.buckets);
  }
  /** Records one observation in the unlabelled histogram. */
  observe(value: number): void {
    this.labels().observe(value);
  }
  collect(): MetricFamily {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      labelNames: this.labelNames,
      buckets: this.buckets,
      samples: this.children().map(({ labels, child }) => ({
        labels,
        counts: Array.from(child.counts),
        sum: child.sum,
        count: child.count,
      })),
    };
  }
}

/** A set of metrics, collected together; hooks refresh gauges just before each collection. */
export class Registry {
  readonly #metrics: Array<Counter | Gauge | Histogram> = [];
  readonly #hooks: Array<() => void> = [];

  #register<M extends Counter | Gauge | Histogram>(metric: M): M {
    if (this.#metrics.some((known) => known.name === metric.name)) {
      throw new TypeError(`Metric ${metric.name} is already registered`);
    }
    this.#metrics.push(metric);
    return metric;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#register(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#register(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []): Histogram {
    return this.#register(new Histogram(name, help, labelNames, buckets));
  }

  /** Runs `hook` before every collection (to read gauges such as memory or open sockets). */
  beforeCollect(hook: () => void): void {
    this.#hooks.push(hook);
  }

  /** Every metric's current samples, in registration order. */
  collect(): MetricFamily[] {
    for (const hook of this.#hooks) hook();
    return this.#metrics.map((metric) => metric.collect());
  }
}

function isHistogramSample(sample: ScalarSample | HistogramSample): sample is HistogramSample {
  return "counts" in sample;
}

/**
 * Adds up families of the same metrics from several processes (the
 * `--workers` supervisor): samples with equal label values are summed,
 * counters, gauges and histograms alike. Families are matched by name; a
 * family whose type, labels or buckets differ from the first one seen is
 * skipped. Order: first appearance.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const one = { name: "x_total", help: "x", type: "counter" as const, labelNames: ["a"],
 *   samples: [{ labels: ["1"], value: 2 }] };
 * const two = { ...one, samples: [{ labels: ["1"], value: 3 }, { labels: ["2"], value: 1 }] };
 * assert.deepEqual(mergeFamilies([[one], [two]])[0]?.samples, [{ labels: ["1"], value: 5 }, { labels: ["2"], value: 1 }]);
 * ```
 */
export function mergeFamilies(sets: ReadonlyArray<readonly MetricFamily[]>): MetricFamily[] {
  const merged = new Map<
    string,
    { family: MetricFamily; samples: Map<string, ScalarSample | HistogramSample> }
  >();
  for (const families of sets) {
    for (const family of families) {
      let entry = merged.get(family.name);
      if (entry === undefined) {
        entry = { family, samples: new Map() };
        merged.set(family.name, entry);
      } else if (
        entry.family.type !== family.type ||
        entry.family.labelNames.join("\0") !== family.labelNames.join("\0") ||
        (entry.family.buckets ?? []).join(",") !== (family.buckets ?? []).join(",")
      ) {
        continue;
      }
      for (const sample of family.samples) {
        const key = JSON.stringify(sample.labels);
        const known = entry.samples.get(key);
        if (known === undefined) {
          entry.samples.set(
            key,
            isHistogramSample(sample) ? { ...sample, counts: [...sample.counts] } : { ...sample },
          );
        } else if (isHistogramSample(known) && isHistogramSample(sample)) {
          entry.samples.set(key, {
            labels: known.labels,
            counts: known.counts.map((count, i) => count + (sample.counts[i] ?? 0)),
            sum: known.sum + sample.sum,
            count: known.count + sample.count,
          });
        } else if (!isHistogramSample(known) && !isHistogramSample(sample)) {
          entry.samples.set(key, { labels: known.labels, value: known.value + sample.value });
        }
      }
    }
  }
  return [...merged.values()].map(({ family, samples }) => ({ ...family, samples: [...samples.values()] }));
}
