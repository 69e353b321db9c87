// The cache service: (1) 10k sets into the SQLite level, counted when committed to disk, beside Keyv +
// @keyv/sqlite with its defaults (one implicit transaction, so one sync, per set) in the same run; (2) the
// latency of a level-1 hit through the service beside a bare lru-cache get.
// Target (issue): >= 50k sets/s committed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import KeyvSqlite from '@keyv/sqlite';
import { Keyv } from 'keyv';
import { LRUCache } from 'lru-cache';
import { percentile } from '../src/measure.js';
import { CacheService } from '../src/services/cache.js';

const SETS = Number(process.env.BENCH_SETS ?? 10_000);
const BASELINE_SETS = Number(process.env.BENCH_BASELINE_SETS ?? 2_000);
const HITS = 200_000;

const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-cache-'));
const value = (i: number) => ({ path: `/src/file-${i}.ts`, size: i, sha256: 'ab'.repeat(32) });

async function hearthSets(): Promise<number> {
  const cache = await CacheService.open({ ttl_seconds: 3600, max_size: 2000, store: 'sqlite', max_store_entries: 100_000, stateDir: dir });
  const start = performance.now();
  for (let i = 0; i < SETS; i++) await cache.set('bench', `k${i}`, value(i));
  await cache.flush(); // committed, not buffered
  const seconds = (performance.now() - start) / 1000;
  const rows = await cache.store!.count();
  await cache.close();
  if (rows < SETS) throw new Error(`only ${rows} of ${SETS} rows were committed`);
  return SETS / seconds;
}

async function baselineSets(): Promise<number> {
  const keyv = new Keyv({ store: new KeyvSqlite(`sqlite://${join(dir, 'baseline.sqlite')}`) });
  const start = performance.now();
  for (let i = 0; i < BASELINE_SETS; i++) await keyv.set(`k${i}`, value(i));
  const seconds = (performance.now() - start) / 1000;
  await keyv.disconnect();
  return BASELINE_SETS / seconds;
}

async function hitLatency(): Promise<{ hearth: [number, number]; bare: [number, number] }> {
  const cache = await CacheService.open({ ttl_seconds: 3600, max_size: 2000, store: 'memory', max_store_entries: 1 });
  const lru = new LRUCache<string, object>({ max: 2000, ttl: 3_600_000 });
  for (let i = 0; i < 1000; i++) {
    await cache.set('bench', `k${i}`, value(i));
    lru.set(`bench:k${i}`, value(i));
  }
  const hearth = new Float64Array(HITS);
  const bare = new Float64Array(HITS);
  for (let i = 0; i < HITS; i++) {
    let t = performance.now();
    await cache.get('bench', `k${i % 1000}`);
    hearth[i] = performance.now() - t;
    t = performance.now();
    await Promise.resolve(lru.get(`bench:k${i % 1000}`));
    bare[i] = performance.now() - t;
  }
  hearth.sort();
  bare.sort();
  await cache.close();
  const us = (ms: number) => Math.round(ms * 1000 * 100) / 100;
  return {
    hearth: [us(percentile(hearth, 0.5)), us(percentile(hearth, 0.99))],
    bare: [us(percentile(bare, 0.5)), us(percentile(bare, 0.99))],
  };
}

try {
  const baseline = await baselineSets();
  const ours = await hearthSets();
  const hits = await hitLatency();
  const rows = [
    ['SQLite level, sets/s committed', `hearth ${Math.round(ours)}`, `Keyv + @keyv/sqlite defaults ${Math.round(baseline)}`, `${(ours / baseline).toFixed(1)}x`],
    ['level-1 hit p50 / p99 (µs)', `hearth ${hits.hearth.join(' / ')}`, `bare lru-cache get ${hits.bare.join(' / ')}`, `${(hits.hearth[0] / hits.bare[0]).toFixed(1)}x`],
  ];
  for (const r of rows) process.stdout.write(`${r[0]!.padEnd(34)} ${r[1]!.padEnd(28)} ${r[2]!.padEnd(40)} ${r[3]}\n`);
  process.stdout.write(`target >= 50000 sets/s committed: ${ours >= 50_000 ? 'met' : 'MISSED'}\n`);
  process.stdout.write(`${JSON.stringify({ sets_per_second: Math.round(ours), baseline_sets_per_second: Math.round(baseline), level1_hit_us: hits })}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
