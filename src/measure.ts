// Measuring: timing calls, nearest-rank percentiles, medians and rounding, for the core's timings,
// `hearth demo` and the benches alike.
import { performance } from 'node:perf_hooks';

/** The 1-based nearest rank of quantile `q` (0..1) among `n` values: ceil(q * n), kept within 1..n. */
export function nearestRank(q: number, n: number): number {
  return Math.min(n, Math.max(1, Math.ceil(q * n)));
}

/** The nearest-rank `q` quantile (0..1) of ascending values; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[nearestRank(q, sorted.length) - 1]!;
}

/** The middle value, or the mean of the two middle ones; NaN when there are none. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const round = (v: number, digits = 3): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** What `fn` resolves to, and the milliseconds it took. */
export async function timeMs<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

/** Runs `fn` `n` times, one after another: the milliseconds of each run. */
export async function sampleMs(n: number, fn: (i: number) => unknown): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await fn(i);
    ms.push(performance.now() - start);
  }
  return ms;
}

/** Latency figures of a series of timings, in milliseconds. */
export interface Series {
  n: number;
  min_ms: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  avg_ms: number;
}

/** The figures of `ms`, rounded to microseconds; all zero when there are none. */
export function series(ms: readonly number[]): Series {
  const s = [...ms].sort((a, b) => a - b);
  if (s.length === 0) return { n: 0, min_ms: 0, p50_ms: 0, p99_ms: 0, max_ms: 0, avg_ms: 0 };
  const sum = s.reduce((a, b) => a + b, 0);
  return {
    n: s.length,
    min_ms: round(s[0]!),
    p50_ms: round(percentile(s, 0.5)),
    p99_ms: round(percentile(s, 0.99)),
    max_ms: round(s[s.length - 1]!),
    avg_ms: round(sum / s.length),
  };
}
