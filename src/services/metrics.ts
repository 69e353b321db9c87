// Timings per operation (count, min, max, avg, latest, p50, p95, p99 in seconds) with retention by age and
// count, the Prometheus registry behind GET /metrics, and the sections services add to /optimization/stats.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { percentile, round } from '../measure.js';
import { FastHistogram, type HistogramChild } from './prom-histogram.js';
import { Series } from './timing-series.js';
import { OnDemandDelay, processSection, type DelayStats } from './process-stats.js';

export interface TimingStats {
  name: string;
  /** Samples in the window (retention, or the `window` asked for). */
  count: number;
  /** Samples recorded since the daemon started, whatever the window: rates are differences of it. */
  total: number;
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

const PERCENTILES = [0.5, 0.95, 0.99] as const;
/** A new operation's ring starts this small and doubles up to max_samples: most operations stay small. */
const INITIAL_CAPACITY = 256;

export class TimingStore {
  #series = new Map<string, Series>();
  /** The last answer of each series, by the series' version: an operation nobody ran since is not recomputed. */
  #answers = new WeakMap<Series, { version: number; stats: TimingStats }>();
  #retention: Retention;
  #now: () => number;

  constructor(retention: Retention, now: () => number = performance.now.bind(performance)) {
    this.#retention = retention;
    this.#now = now;
  }

  setRetention(retention: Retention): void {
    // A ring larger than the new bound keeps its newest samples; a smaller one grows up to it when needed.
    for (const [name, series] of this.#series) {
      if (series.capacity > retention.max_samples) this.#series.set(name, series.resized(retention.max_samples));
    }
    this.#retention = retention;
  }

  record(name: string, seconds: number): void {
    let series = this.#series.get(name);
    const max = this.#retention.max_samples;
    if (!series) {
      series = new Series(Math.min(max, INITIAL_CAPACITY));
      this.#series.set(name, series);
    } else if (series.length === series.capacity && series.capacity < max) {
      series = series.resized(Math.min(max, series.capacity * 2));
      this.#series.set(name, series);
    }
    series.push(seconds, this.#now());
  }

  /** The series of `name` with what is past the retention dropped; undefined (and forgotten) when nothing is left. */
  #kept(name: string): Series | undefined {
    const series = this.#series.get(name);
    if (!series) return undefined;
    series.dropOlderThan(this.#now() - this.#retention.retention_seconds * 1000);
    if (series.length > 0) return series;
    this.#series.delete(name);
    return undefined;
  }

  get(name: string): TimingStats | undefined {
    const series = this.#kept(name);
    if (!series) return undefined;
    const known = this.#answers.get(series);
    if (known?.version === series.version) return known.stats;
    const [p50, p95, p99] = series.percentiles(PERCENTILES) as [number, number, number];
    const stats: TimingStats = Object.freeze({
      name,
      count: series.length,
      total: series.total,
      min: round(series.min, 6),
      max: round(series.max, 6),
      avg: round(series.sum / series.length, 6),
      latest: round(series.latest, 6),
      p50: round(p50, 6),
      p95: round(p95, 6),
      p99: round(p99, 6),
      unit: 'seconds',
    });
    this.#answers.set(series, { version: series.version, stats });
    return stats;
  }

  /**
   * Every operation's timings, over its retention; or, given `windowSeconds`, over the samples of that many
   * last seconds only (operations with none in it are left out): what a live view plots.
   */
  snapshot(windowSeconds?: number): Record<string, TimingStats> {
    const out: Record<string, TimingStats> = {};
    for (const name of [...this.#series.keys()].sort()) {
      const stats = windowSeconds === undefined ? this.get(name) : this.#windowed(name, windowSeconds);
      if (stats) out[name] = stats;
    }
    return out;
  }

  #windowed(name: string, seconds: number): TimingStats | undefined {
    // Past the retention nothing is kept, whatever the window.
    const series = this.#kept(name);
    if (!series) return undefined;
    const sorted = series.sortedSince(this.#now() - seconds * 1000);
    const n = sorted.length;
    if (n === 0) return undefined;
    let sum = 0;
    for (const v of sorted) sum += v;
    const [p50, p95, p99] = PERCENTILES.map((q) => percentile(sorted, q)) as [number, number, number];
    return {
      name,
      count: n,
      total: series.total,
      min: round(sorted[0]!, 6),
      max: round(sorted[n - 1]!, 6),
      avg: round(sum / n, 6),
      latest: round(series.latest, 6),
      p50: round(p50, 6),
      p95: round(p95, 6),
      p99: round(p99, 6),
      unit: 'seconds',
    };
  }

  clear(): void {
    this.#series.clear();
  }
}

/** Records the requests of one method and route pattern: built once, so a request builds no name. */
export interface RequestRecorder {
  record(status: number, seconds: number): void;
}

export type StatsSection = () => unknown | Promise<unknown>;

const PREFIX = 'hearth_';

/**
 * prom-client's default metrics, each from its own module (`collectDefaultMetrics.metricsList` names them),
 * but its event-loop monitor, which would wake the loop 100 times a second for good: the
 * `nodejs_eventloop_lag_*` gauges are fed by an on-demand monitor instead, running while /metrics is scraped.
 */
function collectProcessMetrics(registry: Registry, delay: OnDemandDelay): void {
  const require = createRequire(import.meta.url);
  for (const name of collectDefaultMetrics.metricsList) {
    if (name === 'eventLoopLag') continue;
    (require(`prom-client/lib/metrics/${name}`) as (r: Registry, c: object) => void)(registry, { prefix: PREFIX });
  }
  const gauges: Array<[keyof DelayStats, string]> = [
    ['min', 'minimum'],
    ['max', 'maximum'],
    ['mean', 'mean'],
    ['stddev', 'standard deviation'],
    ['p50', '50th percentile'],
    ['p90', '90th percentile'],
    ['p99', '99th percentile'],
  ];
  const made: Array<[keyof DelayStats, Gauge]> = [];
  for (const [key, what] of gauges) {
    const gauge = new Gauge({
      name: `${PREFIX}nodejs_eventloop_lag_${key}_seconds`,
      help: `The ${what} of the event-loop delay since the previous scrape (seconds).`,
      registers: [registry],
      // The first one read sets them all (prom-client collects each metric as it writes it, in order).
      ...(made.length === 0 ? { collect: () => setAll(delay.read()) } : {}),
    });
    made.push([key, gauge]);
  }
  const setAll = (stats: ReturnType<OnDemandDelay['read']>) => {
    for (const [key, gauge] of made) if (stats) gauge.set(stats[key]);
    else gauge.reset();
  };
}

const isThenable = (v: unknown): v is PromiseLike<unknown> => typeof (v as PromiseLike<unknown> | null)?.then === 'function';

export class Metrics {
  readonly timings: TimingStore;
  readonly registry = new Registry();
  readonly #requests: FastHistogram;
  readonly #operations: FastHistogram;
  readonly #operationChildren = new Map<string, HistogramChild>();
  /** By method, then route pattern. */
  readonly #recorders = new Map<string, Map<string, RequestRecorder>>();
  readonly #sections = new Map<string, StatsSection>();
  /** One monitor for the scraper and one for /optimization/stats: each read restarts what the reader sees. */
  readonly #delays = [new OnDemandDelay(), new OnDemandDelay()] as const;

  constructor(retention: Retention = { retention_seconds: 3600, max_samples: 10000 }) {
    this.timings = new TimingStore(retention);
    collectProcessMetrics(this.registry, this.#delays[0]);
    const delay = this.#delays[1];
    this.provide('process', () => processSection(delay));
    this.#requests = new FastHistogram({
      name: 'hearth_http_request_duration_seconds',
      help: 'Control API request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registry: this.registry,
    });
    this.#operations = new FastHistogram({
      name: 'hearth_operation_duration_seconds',
      help: 'Duration of timed operations',
      labelNames: ['operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registry: this.registry,
    });
  }

  /** Records one timing sample (seconds) under `name`. */
  record(name: string, seconds: number): void {
    if (!Number.isFinite(seconds)) throw new TypeError(`a timing must be a finite number of seconds, not ${seconds}`);
    this.timings.record(name, seconds);
    let child = this.#operationChildren.get(name);
    if (!child) {
      child = this.#operations.child({ operation: name });
      this.#operationChildren.set(name, child);
    }
    child.observe(seconds);
  }

  /**
   * The recorder of one method and route pattern (timing `http.<METHOD> <route>`, and the Prometheus
   * series by status). `route` is a route's pattern or a fixed word, never the raw URL, so labels stay
   * bounded; the request path keeps the recorder and pays no name building or label hashing.
   */
  requestRecorder(method: string, route: string): RequestRecorder {
    let byRoute = this.#recorders.get(method);
    if (!byRoute) {
      byRoute = new Map();
      this.#recorders.set(method, byRoute);
    }
    let recorder = byRoute.get(route);
    if (!recorder) {
      const name = `http.${method} ${route}`;
      const byStatus = new Map<number, HistogramChild>();
      const timings = this.timings;
      const requests = this.#requests;
      recorder = {
        record(status, seconds) {
          timings.record(name, seconds);
          let child = byStatus.get(status);
          if (!child) {
            child = requests.child({ method, route, status: String(status) });
            byStatus.set(status, child);
          }
          child.observe(seconds);
        },
      };
      byRoute.set(route, recorder);
    }
    return recorder;
  }

  /** Records one request; see requestRecorder. */
  recordRequest(method: string, route: string, status: number, seconds: number): void {
    this.requestRecorder(method, route).record(status, seconds);
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

  snapshot(windowSeconds?: number): Record<string, TimingStats> {
    return this.timings.snapshot(windowSeconds);
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
    for (const [key, section] of this.#sections) {
      // Most sections answer at once: only a promise is awaited (each await is a trip through the queue).
      const value = section();
      out[key] = isThenable(value) ? await value : value;
    }
    return out;
  }

  prometheus(): Promise<string> {
    return this.registry.metrics();
  }

  get prometheusContentType(): string {
    return this.registry.contentType;
  }

  /** Stops the event-loop monitors (they stop by themselves a minute after the last read). */
  close(): void {
    for (const d of this.#delays) d.close();
  }
}
