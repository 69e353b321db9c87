// The measuring helpers shared by the core's timings, `hearth demo` and the benches.
import t from 'tap';
import { median, nearestRank, percentile, round, sampleMs, series, timeMs } from '../src/measure.js';

t.test('nearest-rank percentiles', async (t) => {
  const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  t.equal(percentile(sorted, 0.5), 50);
  t.equal(percentile(sorted, 0.99), 99);
  t.equal(percentile(sorted, 1), 100);
  t.equal(percentile(sorted, 0), 1, 'q = 0 is the smallest');
  t.equal(percentile([7], 0.99), 7);
  t.equal(percentile([1, 2, 3], 0.5), 2);
  t.ok(Number.isNaN(percentile([], 0.5)), 'NaN when there are none');
  t.same([0, 0.01, 0.5, 1].map((q) => nearestRank(q, 10)), [1, 1, 5, 10]);
});

t.test('median and round', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5, 'the mean of the two middle values');
  t.ok(Number.isNaN(median([])));
  t.equal(round(1.23456), 1.235, 'three decimals by default');
  t.equal(round(1.23456, 1), 1.2);
  t.equal(round(0.0000014, 6), 0.000001);
});

t.test('series of timings', async (t) => {
  t.same(series([4, 1, 3, 2]), { n: 4, min_ms: 1, p50_ms: 2, p99_ms: 4, max_ms: 4, avg_ms: 2.5 });
  t.same(series([]), { n: 0, min_ms: 0, p50_ms: 0, p99_ms: 0, max_ms: 0, avg_ms: 0 });
});

t.test('timing calls', async (t) => {
  const { ms, value } = await timeMs(async () => {
    await new Promise((r) => setTimeout(r, 20));
    return 'done';
  });
  t.equal(value, 'done');
  t.ok(ms >= 15, `${ms} ms`);
  const seen: number[] = [];
  const samples = await sampleMs(3, (i) => seen.push(i));
  t.same(seen, [0, 1, 2], 'one run after another');
  t.equal(samples.length, 3);
  t.ok(samples.every((s) => s >= 0));
});
