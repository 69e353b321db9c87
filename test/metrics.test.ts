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
  t.same(await metrics.sections(), { cache_stats: { size: 1 } });
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
