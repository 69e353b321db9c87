import t from 'tap';
import { Metrics, TimingStore } from '../src/services/metrics.js';

t.test('timings: count, min, max, avg, latest and nearest-rank percentiles in seconds', async (t) => {
  const store = new TimingStore({ retention_seconds: 3600, max_samples: 1000 });
  for (let i = 1; i <= 100; i++) store.record('op', i / 1000);
  store.record('op', 0.05);
  const s = store.get('op')!;
  t.equal(s.name, 'op');
  t.equal(s.count, 101);
  t.equal(s.min, 0.001);
  t.equal(s.max, 0.1);
  t.equal(s.latest, 0.05);
  t.equal(s.avg, Math.round(((5050 + 50) / 1000 / 101) * 1e6) / 1e6);
  t.equal(s.p50, 0.05);
  t.equal(s.p95, 0.095);
  t.equal(s.p99, 0.099);
  t.equal(s.unit, 'seconds');
  t.equal(store.get('missing'), undefined);
});

t.test('timings: retention drops samples by age and by count', async (t) => {
  let now = 0;
  const store = new TimingStore({ retention_seconds: 10, max_samples: 5 }, () => now);
  for (let i = 1; i <= 8; i++) store.record('op', i);
  t.equal(store.get('op')!.count, 5, 'only the newest max_samples are kept');
  t.equal(store.get('op')!.min, 4);
  now = 5000;
  store.record('op', 100);
  now = 12_000;
  const s = store.get('op')!;
  t.equal(s.count, 1, 'samples older than retention_seconds are dropped');
  t.equal(s.latest, 100);
  now = 30_000;
  t.equal(store.get('op'), undefined, 'an operation with no samples left disappears');
  t.same(store.snapshot(), {});
});

t.test('timings: a smaller max_samples keeps the newest samples', async (t) => {
  const store = new TimingStore({ retention_seconds: 3600, max_samples: 10 });
  for (let i = 1; i <= 10; i++) store.record('op', i);
  store.setRetention({ retention_seconds: 3600, max_samples: 3 });
  const s = store.get('op')!;
  t.equal(s.count, 3);
  t.equal(s.min, 8);
  t.equal(s.latest, 10);
  store.record('op', 11);
  t.equal(store.get('op')!.min, 9);
});

t.test('metrics: timed records resolved and thrown calls; prometheus text; sections', async (t) => {
  const metrics = new Metrics();
  t.equal(await metrics.timed('work', async () => 42), 42);
  await t.rejects(metrics.timed('work', async () => {
    throw new Error('nope');
  }), /nope/);
  t.equal(metrics.timings.get('work')!.count, 2);
  metrics.recordRequest('GET', '/x', 200, 0.002);
  const text = await metrics.prometheus();
  t.match(text, /hearth_http_request_duration_seconds_count\{method="GET",route="\/x",status="200"\} 1/);
  t.match(text, /hearth_operation_duration_seconds_count\{operation="work"\} 2/);
  t.match(text, /hearth_process_cpu_user_seconds_total/);
  metrics.provide('cache_stats', () => ({ size: 1 }));
  const sections = await metrics.sections();
  t.same(Object.keys(sections), ['process', 'cache_stats'], 'the process section, then what was provided');
  t.same(sections.cache_stats, { size: 1 });
});

t.test('timings: beyond 1024 samples percentiles come from 1% buckets, min and max stay exact', async (t) => {
  const store = new TimingStore({ retention_seconds: 3600, max_samples: 10000 });
  // 1 ms .. 10 s, shuffled so the ring order is not the sorted order.
  const values = Array.from({ length: 10000 }, (_, i) => (i + 1) / 1000);
  for (let i = values.length - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  for (const v of values) store.record('op', v);
  const s = store.get('op')!;
  t.equal(s.count, 10000);
  t.equal(s.min, 0.001);
  t.equal(s.max, 10);
  t.ok(Math.abs(s.p50 - 5) / 5 <= 0.01, `p50 ${s.p50} within 1% of 5`);
  t.ok(Math.abs(s.p95 - 9.5) / 9.5 <= 0.01, `p95 ${s.p95} within 1% of 9.5`);
  t.ok(Math.abs(s.p99 - 9.9) / 9.9 <= 0.01, `p99 ${s.p99} within 1% of 9.9`);
  // The ring overwrites its oldest samples and the buckets follow: after 10000 samples of 1 s, all are 1 s.
  for (let i = 0; i < 10000; i++) store.record('op', 1);
  const after = store.get('op')!;
  t.equal(after.min, 1);
  t.equal(after.max, 1);
  t.equal(after.p50, 1);
  t.equal(after.p99, 1);
});

/** What the stats of a window must be, computed the slow way: a sort of every sample. */
function reference(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const r = (v: number) => Math.round(v * 1e6) / 1e6;
  const rank = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return {
    count: values.length,
    min: r(sorted[0]!),
    max: r(sorted.at(-1)!),
    avg: r(values.reduce((s, v) => s + v, 0) / values.length),
    latest: r(values.at(-1)!),
    p50: rank(0.5),
    p95: rank(0.95),
    p99: rank(0.99),
  };
}

/** A reproducible stream of timings: mostly around a millisecond, with ties, zeros, tiny and huge values. */
function timings(seed: number, n: number): number[] {
  let x = seed;
  const next = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: n }, () => {
    const u = next();
    if (u < 0.05) return 0;
    if (u < 0.1) return 0.001; // ties
    if (u < 0.12) return 1e-9; // below the first bucket
    if (u < 0.13) return 9000; // near the top of the buckets (1e4 s)
    return Math.exp(Math.log(1e-5) + next() * Math.log(1e6)); // 10 µs .. 10 s
  });
}

t.test('timings: min, max, avg, latest exact and percentiles as documented over a sliding window', async (t) => {
  for (const [cap, n] of [
    [7, 100],
    [300, 2000],
    [1024, 5000],
    [3000, 12000],
  ] as const) {
    const store = new TimingStore({ retention_seconds: 3600, max_samples: cap });
    const values = timings(cap, n);
    let failures = 0;
    for (let i = 0; i < values.length; i++) {
      store.record('op', values[i]!);
      if (i % 97 !== 0 && i !== values.length - 1) continue;
      const window = values.slice(Math.max(0, i + 1 - cap), i + 1);
      const want = reference(window);
      const got = store.get('op')!;
      const exact = ['count', 'min', 'max', 'avg', 'latest'] as const;
      for (const k of exact) if (got[k] !== want[k]) failures++, t.equal(got[k], want[k], `cap ${cap}, after ${i + 1}: ${k}`);
      for (const q of ['p50', 'p95', 'p99'] as const) {
        const r = (v: number) => Math.round(v * 1e6) / 1e6;
        if (window.length <= 1024) {
          if (got[q] !== r(want[q])) failures++, t.equal(got[q], r(want[q]), `cap ${cap}, after ${i + 1}: ${q} exact`);
        } else {
          const ok = (Math.abs(got[q] - want[q]) <= want[q] * 0.01 + 1e-6 || (want[q] <= 1e-7 && got[q] <= 1.01e-7)) && got[q] >= got.min && got[q] <= got.max;
          if (!ok) failures++, t.fail(`cap ${cap}, after ${i + 1}: ${q} ${got[q]} not within 1% of ${want[q]}`);
        }
      }
    }
    t.equal(failures, 0, `cap ${cap}: ${n} samples, every check passed`);
  }
});

t.test('timings: the window also slides by age; a ring grows to max_samples and shrinks with it', async (t) => {
  let now = 0;
  const store = new TimingStore({ retention_seconds: 1, max_samples: 5000 }, () => now);
  const values = timings(42, 3000);
  for (let i = 0; i < values.length; i++) {
    now = i; // one sample per ms: 1000 in the window
    store.record('op', values[i]!);
  }
  const want = reference(values.slice(-1001));
  const got = store.get('op')!;
  t.same({ count: got.count, min: got.min, max: got.max, avg: got.avg, latest: got.latest }, { count: want.count, min: want.min, max: want.max, avg: want.avg, latest: want.latest });
  t.equal(got.p99, Math.round(want.p99 * 1e6) / 1e6, 'exact percentiles: 1001 samples');
  store.setRetention({ retention_seconds: 1, max_samples: 10 });
  const shrunk = store.get('op')!;
  const newest = reference(values.slice(-10));
  t.same([shrunk.count, shrunk.min, shrunk.max, shrunk.avg], [10, newest.min, newest.max, newest.avg], 'the newest 10 are kept');
});

t.test('metrics: the request histogram prints what prom-client\'s own Histogram prints', async (t) => {
  const { Histogram, Registry } = await import('prom-client');
  const metrics = new Metrics();
  const registry = new Registry();
  const theirs = new Histogram({
    name: 'hearth_http_request_duration_seconds',
    help: 'Control API request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const samples: Array<[string, string, number, number]> = [
    ['GET', '/health', 200, 0.0001],
    ['GET', '/health', 200, 0.001],
    ['GET', '/health', 200, 0.0011],
    ['GET', '/optimization/stats', 401, 0.00002],
    ['POST', '/a "quoted"\\route', 500, 7],
    ['GET', '/health', 404, 5],
  ];
  for (const [method, route, status, seconds] of samples) {
    metrics.recordRequest(method, route, status, seconds);
    theirs.observe({ method, route, status: String(status) }, seconds);
  }
  const section = (text: string) => text.split('\n\n').find((s) => s.includes('# TYPE hearth_http_request_duration_seconds'))!.trim();
  t.equal(section(await metrics.prometheus()), section(await registry.metrics()));
  const json = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'hearth_http_request_duration_seconds')!;
  t.same(json.values.find((v) => (v as { metricName?: string }).metricName?.endsWith('_count') && v.labels.status === '401'), {
    value: 1,
    metricName: 'hearth_http_request_duration_seconds_count',
    labels: { method: 'GET', route: '/optimization/stats', status: '401' },
  });
  metrics.registry.resetMetrics();
  t.match(await metrics.prometheus(), /hearth_http_request_duration_seconds_count\{method="GET",route="\/health",status="200"\} 0/, 'reset zeroes');
  metrics.recordRequest('GET', '/health', 200, 0.001);
  t.match(await metrics.prometheus(), /hearth_http_request_duration_seconds_count\{method="GET",route="\/health",status="200"\} 1/, 'and counts again');
  t.throws(() => metrics.record('op', Number.NaN), /finite/, 'a NaN timing is refused');
});

t.test('a window: the figures of the last S seconds only; total counts every sample ever recorded', async (t) => {
  let now = 0;
  const store = new TimingStore({ retention_seconds: 60, max_samples: 300 }, () => now);
  // 300 samples a second apart: 1 ms .. 300 ms. The ring (300 from 256) grows once on the way.
  for (let i = 1; i <= 300; i++) {
    store.record('op', i / 1000);
    now += 1000;
  }
  // now = 300 s; samples stamped 0..299 s. Retention (60 s) keeps those stamped from 240 s.
  const all = store.snapshot().op!;
  t.equal(all.count, 60, 'the retention keeps the last 60 s');
  t.equal(all.total, 300, 'total counts every sample since the start (across a resize, past the retention)');
  const last10 = store.snapshot(10).op!;
  // Stamps 290..299 s: values 0.291 .. 0.300.
  t.match(last10, { count: 10, total: 300, min: 0.291, max: 0.3, latest: 0.3, p50: 0.295, p95: 0.3, p99: 0.3 });
  t.equal(last10.avg, 0.2955);
  t.same(store.snapshot(600).op, { ...all }, 'a window longer than the retention is the retention');
  now += 20_000;
  t.equal(store.snapshot(10).op, undefined, 'no sample in the window: left out');
  store.record('op', 0.5);
  t.match(store.snapshot(10).op, { count: 1, total: 301, p50: 0.5 });
});
