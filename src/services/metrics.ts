// Timings per operation (count, min, max, avg, latest, p50, p95, p99 in seconds) with retention by age and
// count, the Prometheus registry behind GET /metrics, and the sections services add to /optimization/stats.
import { performance } from 'node:perf_hooks';
import { Registry, Histogram, collectDefaultMetrics } from 'prom-client';

export interface TimingStats {
  name: string;
  count: number;
  min: number;
  max: number;
  avg: number;
  latest: number;
  p50: number;
  p95: number;
  p99: number;
  unit: 'seconds';
}

export interface Retention {
  retention_seconds: number;
  max_samples: number;
}

// Percentiles come from log buckets 1% wide (1e-7 s .. 1e4 s) kept in step with the ring, so recording is
// O(1) and reading is O(buckets); up to EXACT_LIMIT samples they are exact (a sort of the ring).
const BUCKET_BASE = 1e-7;
const BUCKET_GROWTH = Math.log(1.01);
const BUCKETS = Math.ceil(Math.log(1e4 / BUCKET_BASE) / BUCKET_GROWTH) + 1;
const EXACT_LIMIT = 1024;

function bucketOf(seconds: number): number {
  if (!(seconds > BUCKET_BASE)) return 0;
  return Math.min(BUCKETS - 1, Math.floor(Math.log(seconds / BUCKET_BASE) / BUCKET_GROWTH));
}

/** A ring of the newest samples of one operation, with a histogram of what the ring holds. */
class Series {
  values: Float64Array;
  stamps: Float64Array;
  buckets = new Uint32Array(BUCKETS);
  start = 0;
  length = 0;

  constructor(capacity: number) {
    this.values = new Float64Array(capacity);
    this.stamps = new Float64Array(capacity);
  }

  push(value: number, at: number): void {
    const cap = this.values.length;
    if (this.length === cap) this.#dropOldest();
    const slot = (this.start + this.length) % cap;
    this.values[slot] = value;
    this.stamps[slot] = at;
    this.buckets[bucketOf(value)]!++;
    this.length++;
  }

  #dropOldest(): void {
    this.buckets[bucketOf(this.values[this.start]!)]!--;
    this.start = (this.start + 1) % this.values.length;
    this.length--;
  }

  dropOlderThan(cutoff: number): void {
    while (this.length > 0 && this.stamps[this.start]! < cutoff) this.#dropOldest();
  }

  at(i: number): number {
    return this.values[(this.start + i) % this.values.length]!;
  }

  /** Nearest-rank percentiles, exact for small series, else within 1% (clamped to the exact min and max). */
  percentiles(qs: number[], min: number, max: number): number[] {
    if (this.length <= EXACT_LIMIT) {
      const sorted = new Float64Array(this.length);
      for (let i = 0; i < this.length; i++) sorted[i] = this.at(i);
      sorted.sort();
      return qs.map((q) => sorted[Math.min(this.length - 1, Math.max(0, Math.ceil(q * this.length) - 1))]!);
    }
    return qs.map((q) => {
      const rank = Math.max(1, Math.ceil(q * this.length));
      let seen = 0;
      let i = 0;
      for (; i < BUCKETS; i++) {
        seen += this.buckets[i]!;
        if (seen >= rank) break;
      }
      const mid = BUCKET_BASE * Math.exp((i + 0.5) * BUCKET_GROWTH);
      return Math.min(max, Math.max(min, mid));
    });
  }
}

const round = (v: number): number => Math.round(v * 1e6) / 1e6;

export class TimingStore {
  #series = new Map<string, Series>();
  #retention: Retention;
  #now: () => number;

  constructor(retention: Retention, now: () => number = performance.now.bind(performance)) {
    this.#retention = retention;
    this.#now = now;
  }

  setRetention(retention: Retention): void {
    if (retention.max_samples !== this.#retention.max_samples) {
      // Keep the newest samples that fit the new size.
      for (const [name, old] of this.#series) {
        const fresh = new Series(retention.max_samples);
        for (let i = Math.max(0, old.length - retention.max_samples); i < old.length; i++) {
          fresh.push(old.at(i), old.stamps[(old.start + i) % old.stamps.length]!);
        }
        this.#series.set(name, fresh);
      }
    }
    this.#retention = retention;
  }

  record(name: string, seconds: number): void {
    let series = this.#series.get(name);
    if (!series) {
      series = new Series(this.#retention.max_samples);
      this.#series.set(name, series);
    }
    series.push(seconds, this.#now());
  }

  get(name: string): TimingStats | undefined {
    const series = this.#series.get(name);
    if (!series) return undefined;
    series.dropOlderThan(this.#now() - this.#retention.retention_seconds * 1000);
    if (series.length === 0) {
      this.#series.delete(name);
      return undefined;
    }
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < series.length; i++) {
      const v = series.at(i);
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const [p50, p95, p99] = series.percentiles([0.5, 0.95, 0.99], min, max) as [number, number, number];
    return {
      name,
      count: series.length,
      min: round(min),
      max: round(max),
      avg: round(sum / series.length),
      latest: round(series.at(series.length - 1)),
      p50: round(p50),
      p95: round(p95),
      p99: round(p99),
      unit: 'seconds',
    };
  }

  snapshot(): Record<string, TimingStats> {
    const out: Record<string, TimingStats> = {};
    for (const name of [...this.#series.keys()].sort()) {
      const stats = this.get(name);
      if (stats) out[name] = stats;
    }
    return out;
  }

  clear(): void {
    this.#series.clear();
  }
}

export type StatsSection = () => unknown | Promise<unknown>;

export class Metrics {
  readonly timings: TimingStore;
  readonly registry = new Registry();
  readonly #requests: Histogram<'method' | 'route' | 'status'>;
  readonly #operations: Histogram<'operation'>;
  readonly #sections = new Map<string, StatsSection>();

  constructor(retention: Retention = { retention_seconds: 3600, max_samples: 10000 }) {
    this.timings = new TimingStore(retention);
    collectDefaultMetrics({ register: this.registry, prefix: 'hearth_' });
    this.#requests = new Histogram({
      name: 'hearth_http_request_duration_seconds',
      help: 'Control API request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    this.#operations = new Histogram({
      name: 'hearth_operation_duration_seconds',
      help: 'Duration of timed operations',
      labelNames: ['operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
  }

  /** Records one timing sample (seconds) under `name`. */
  record(name: string, seconds: number): void {
    this.timings.record(name, seconds);
    this.#operations.observe({ operation: name }, seconds);
  }

  /** Records one request; `route` is the route's pattern, never the raw URL, so labels stay bounded. */
  recordRequest(method: string, route: string, status: number, seconds: number): void {
    this.timings.record(`http.${method} ${route}`, seconds);
    this.#requests.observe({ method, route, status: String(status) }, seconds);
  }

  /** Runs `fn` and records how long it took, whether it resolved or threw. */
  async timed<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.record(name, (performance.now() - start) / 1000);
    }
  }

  snapshot(): Record<string, TimingStats> {
    return this.timings.snapshot();
  }

  setRetention(retention: Retention): void {
    this.timings.setRetention(retention);
  }

  /** A service adds its own section (`cache_stats`, `pool`, ...) to GET /optimization/stats. */
  provide(key: string, section: StatsSection): void {
    this.#sections.set(key, section);
  }

  async sections(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const [key, section] of this.#sections) out[key] = await section();
    return out;
  }

  prometheus(): Promise<string> {
    return this.registry.metrics();
  }

  get prometheusContentType(): string {
    return this.registry.contentType;
  }
}
