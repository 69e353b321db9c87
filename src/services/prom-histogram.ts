// A Prometheus histogram whose observations cost a few array writes. prom-client's Histogram hashes the
// labels object and converts the bucket bound to a string key on every observe(); on the request path of
// a daemon answering in ~30 µs that was several percent of a request. Here a caller takes the child of a
// label set once (`child(labels)`) and observes through it; prom-client's registry reads the counts at
// scrape time, in the same shape its own Histogram gives (so /metrics prints the same lines).
import type { Registry } from 'prom-client';

export interface HistogramChild {
  observe(seconds: number): void;
}

interface Counts extends HistogramChild {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

interface Value {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
}

export interface FastHistogramOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  /** Upper bounds, ascending. */
  buckets: readonly number[];
  registry: Registry;
}

export class FastHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #labelNames: readonly string[];
  readonly #bounds: Float64Array;
  #children = new Map<string, Counts>();

  constructor(options: FastHistogramOptions) {
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = options.labelNames;
    this.#bounds = Float64Array.from(options.buckets);
    // The registry only reads name, help, type, aggregator, get/getForPromString and reset.
    options.registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The child for one label set; callers keep it (a lookup here costs what observe() saves). */
  child(labels: Record<string, string>): HistogramChild {
    const values = this.#labelNames.map((n) => labels[n] ?? '');
    const key = JSON.stringify(values);
    let counts = this.#children.get(key);
    if (!counts) {
      const bounds = this.#bounds;
      const made: Counts = {
        labels: Object.fromEntries(this.#labelNames.map((n, i) => [n, values[i]!])),
        buckets: new Float64Array(bounds.length + 1),
        sum: 0,
        count: 0,
        observe(seconds: number): void {
          let i = 0;
          while (i < bounds.length && seconds > bounds[i]!) i++;
          made.buckets[i]!++;
          made.sum += seconds;
          made.count++;
        },
      };
      counts = made;
      this.#children.set(key, counts);
    }
    return counts;
  }

  /** prom-client's Histogram.getForPromString shape: `le` in labels, the series' labels as sharedLabels. */
  async getForPromString(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const values: Value[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const c of this.#children.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += c.buckets[i]!;
        values.push({ labels: { le: this.#bounds[i]! }, sharedLabels: c.labels, value: cumulative, metricName: bucketName });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: c.labels, value: c.count, metricName: bucketName });
      values.push({ labels: {}, sharedLabels: c.labels, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: c.labels, value: c.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** The registry's JSON form: every value with its series' labels merged in. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return data;
  }

  /** Zeroes every child in place: children already handed out keep counting. */
  reset(): void {
    for (const c of this.#children.values()) {
      c.buckets.fill(0);
      c.sum = 0;
      c.count = 0;
    }
  }
}
