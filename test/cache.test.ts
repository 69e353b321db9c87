// The two-level cache on real SQLite files in temp dirs: level 1 (LRU + TTL), level 2 (Keyv on our
// write-behind SQLite store), namespaces, validation, persistence, bounds, crash safety; cached() and lazy().
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { Keyv } from 'keyv';
import sqlite3 from 'sqlite3';
import t from 'tap';
import { CacheService, cached, type CacheOpenOptions } from '../src/services/cache.js';
import { lazy } from '../src/services/lazy.js';
import { SqliteStore } from '../src/services/sqlite-store.js';
import { root, tempDir } from './helpers/daemon.js';

const base = { ttl_seconds: 300, max_size: 100, store: 'sqlite', max_store_entries: 100_000 } as const;

function open(stateDir: string, options: Partial<CacheOpenOptions> = {}): Promise<CacheService> {
  return CacheService.open({ ...base, stateDir, purgeIntervalMs: 0, ...options });
}

/** Runs one statement on the file through a separate connection: what is committed, nothing else. */
function sql<T = Record<string, unknown>>(file: string, query: string): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (err) => {
      if (err) return reject(err);
      db.all(query, (err2, rows) => {
        db.close();
        if (err2) reject(err2);
        else resolve(rows as T[]);
      });
    });
  });
}

const rowCount = async (stateDir: string): Promise<number> =>
  (await sql<{ n: number }>(join(stateDir, 'cache.sqlite'), 'SELECT count(*) AS n FROM hearth_cache'))[0]!.n;

t.test('get, set, has, delete and clear, in memory and on SQLite', async (t) => {
  for (const store of ['memory', 'sqlite'] as const) {
    const cache = await open(tempDir('hearth-cache-'), { store });
    const files = cache.namespace('files');
    t.equal(await files.get('a'), undefined, `${store}: missing key`);
    await files.set('a', { size: 3, list: [1, 'two', null] });
    await files.set('b', 'text');
    await files.set('n', null);
    t.same(await files.get('a'), { size: 3, list: [1, 'two', null] });
    t.equal(await files.get('b'), 'text');
    t.equal(await files.get('n'), null, 'null is a value, not a miss');
    t.equal(await files.has('a'), true);
    t.equal(await files.has('zzz'), false);
    t.equal(await files.delete('a'), true);
    t.equal(await files.delete('a'), false, 'a second delete finds nothing');
    t.equal(await files.get('a'), undefined);
    t.equal(await files.clear(), 2);
    t.equal(await files.get('b'), undefined);
    await t.rejects(files.set('u', undefined), /undefined/);
    await t.rejects(files.set('x', 1, { ttlSeconds: 0 }), /ttlSeconds/);
    t.throws(() => cache.namespace('bad:name'), /namespace/);
    t.throws(() => cache.namespace(''), /namespace/);
    const stats = await cache.stats();
    t.equal(stats.store, store);
    t.equal(stats.max_size, 100);
    t.equal(stats.ttl_seconds, 300);
    await cache.close();
  }
  await t.rejects(CacheService.open({ ...base }), /stateDir/);
});

t.test('TTL: entries expire in both levels and are counted once', async (t) => {
  const dir = tempDir('hearth-cache-');
  const cache = await open(dir, { ttl_seconds: 0.2, max_size: 3 });
  const ns = cache.namespace('t');
  await ns.set('short', 1);
  await ns.set('long', 2, { ttlSeconds: 60 });
  await ns.set('forever', 3, { ttlSeconds: Infinity });
  t.equal(await ns.get('short'), 1);
  await sleep(300);
  t.equal(await ns.get('short'), undefined, 'expired in level 1');
  t.equal(await ns.get('long'), 2, 'a per-set TTL outlives the default');
  t.equal(await ns.get('forever'), 3);
  let stats = await cache.stats();
  t.equal(stats.expired_count, 1);
  t.equal(stats.evictions, 0);
  t.equal(await ns.get('short'), undefined, 'not found again in level 2');
  t.equal((await cache.stats()).expired_count, 1, 'and not counted twice');

  // An entry only in level 2 (pushed out of level 1 by newer ones) expires there.
  await ns.set('l2only', 'x', { ttlSeconds: 0.2 });
  for (const k of ['p', 'q', 'r', 's']) await ns.set(k, k, { ttlSeconds: 60 });
  await cache.flush();
  await sleep(300);
  t.equal(await ns.get('l2only'), undefined);
  stats = await cache.stats();
  t.equal(stats.expired_count, 2, 'expired in level 2 counted');
  t.equal(await ns.get('l2only'), undefined);
  t.equal((await cache.stats()).expired_count, 2, 'once');
  await cache.close();

  // Expired rows are purged on open; the others survive.
  const again = await open(dir);
  t.equal(await again.namespace('t').get('forever'), 3);
  t.equal(await again.namespace('t').get('long'), 2);
  t.equal(await again.store!.count(), 6, 'only the live rows are left after open');
  await again.close();
});

t.test('stats: level 1 size and expiries stay exact, each entry counted once, without a read of it', async (t) => {
  const cache = await open(tempDir('hearth-cache-'), { ttl_seconds: 60 });
  const ns = cache.namespace('s');
  await ns.set('long', 1);
  await ns.set('short', 2, { ttlSeconds: 0.1 });
  await ns.set('forever', 3, { ttlSeconds: Infinity });
  let stats = await cache.stats();
  t.same([stats.size, stats.expired_count], [3, 0]);
  await sleep(150);
  stats = await cache.stats();
  t.same([stats.size, stats.expired_count], [2, 1], 'the expired entry is gone from size and counted');
  t.same([(await cache.stats()).size, (await cache.stats()).expired_count], [2, 1], 'once');
  await ns.set('short2', 4, { ttlSeconds: 0.1 });
  await ns.set('short3', 5, { ttlSeconds: 0.35 });
  await sleep(150);
  stats = await cache.stats();
  t.same([stats.size, stats.expired_count], [3, 2], 'a later, shorter entry expires first');
  await sleep(250);
  stats = await cache.stats();
  t.same([stats.size, stats.expired_count], [2, 3], 'and the next one after it');
  await cache.close();
});

t.test('persisted is the exact row count through sets, overwrites, deletes, clears, expiry and the bound', async (t) => {
  const dir = tempDir('hearth-cache-');
  let cache = await open(dir, { max_size: 10, max_store_entries: 60 });
  let x = 7;
  const next = (n: number) => ((x = (x * 1103515245 + 12345) % 2147483648) % n);
  let mismatches = 0;
  const check = async (what: string) => {
    await cache.flush();
    const persisted = (await cache.stats()).persisted;
    const rows = await rowCount(dir);
    if (persisted !== rows) mismatches++, t.equal(persisted, rows, what);
  };
  for (let i = 0; i < 3000; i++) {
    const ns = cache.namespace(['p', 'q'][next(2)]!);
    const key = `k${next(90)}`;
    const op = next(100);
    if (op < 55) await ns.set(key, i);
    else if (op < 70) await ns.set(key, i, { ttlSeconds: 0.02 });
    else if (op < 85) await ns.delete(key);
    else if (op < 95) await ns.get(key);
    else if (op < 97) await ns.clear();
    else if (op < 98) await cache.store!.purgeExpired();
    else await sleep(25);
    if (i % 50 === 0) await check(`after ${i + 1} operations`);
  }
  await check('after the mixed operations');
  await cache.close();
  // Bursts bigger than one INSERT (500 rows): only new keys, then the same keys again, then half and half.
  cache = await open(dir, { max_size: 10, max_store_entries: 5000 });
  const burst = cache.namespace('burst');
  for (let i = 0; i < 1200; i++) await burst.set(`b${i}`, i);
  await check('a burst of new keys');
  for (let i = 0; i < 1200; i++) await burst.set(`b${i}`, -i);
  await check('the same keys rewritten');
  for (let i = 600; i < 1800; i++) await burst.set(`b${i}`, i);
  await check('half rewritten, half new');
  await cache.close();
  cache = await open(dir, { max_size: 10, max_store_entries: 20 });
  await check('reopened with a smaller bound');
  t.ok((await cache.stats()).persisted <= 20);
  await cache.close();
  t.equal(mismatches, 0, 'persisted always equalled count(*)');
});

t.test('reasons: failing store writes are named until a write commits again', async (t) => {
  const dir = tempDir('hearth-cache-');
  const file = join(dir, 'cache.sqlite');
  const cache = await open(dir);
  t.same(cache.reasons(), []);
  await cache.set('r', 'a', 1);
  await cache.flush();
  await exec(file, 'DROP TABLE hearth_cache');
  await cache.set('r', 'b', 2);
  await t.rejects(cache.flush(), /no such table/);
  const reasons = cache.reasons();
  t.equal(reasons.length, 1);
  t.match(reasons[0], /^cache store writes failing: SQLITE_ERROR: no such table: hearth_cache \(.*cache\.sqlite\)$/);
  await exec(file, 'CREATE TABLE hearth_cache(key VARCHAR(255) PRIMARY KEY, value TEXT, expires INTEGER)');
  await cache.set('r', 'c', 3);
  await cache.flush();
  t.same(cache.reasons(), [], 'a commit clears it');
  t.equal(await cache.get('r', 'c'), 3);
  const memory = await open(tempDir('hearth-cache-'), { store: 'memory' });
  t.same(memory.reasons(), [], 'the memory store has no writes to fail');
  await cache.close();
});

t.test('LRU: eviction at max_size counted; level 2 still answers', async (t) => {
  for (const store of ['memory', 'sqlite'] as const) {
    const cache = await open(tempDir('hearth-cache-'), { store, max_size: 3 });
    const ns = cache.namespace('lru');
    await ns.set('a', 1);
    await ns.set('b', 2);
    await ns.set('c', 3);
    t.equal(await ns.get('a'), 1, 'a is now the most recently used');
    await ns.set('d', 4);
    let stats = await cache.stats();
    t.equal(stats.size, 3, `${store}: size stays at max_size`);
    t.equal(stats.evictions, 1);
    t.equal(await ns.get('b'), store === 'memory' ? undefined : 2, 'b was the least recently used');
    stats = await cache.stats();
    if (store === 'sqlite') t.equal(stats.evictions, 2, 'promoting b evicted another entry');
    await cache.close();
  }
});

t.test('persistence: level 2 is warm after a restart and a hit is promoted', async (t) => {
  const dir = tempDir('hearth-cache-');
  const first = await open(dir);
  for (let i = 0; i < 50; i++) await first.namespace('git').set(`repo${i}`, { branch: `b${i}`, dirty: i % 2 === 0 });
  await first.close();
  await first.close(); // idempotent
  await first.flush(); // harmless after close

  const second = await open(dir);
  let stats = await second.stats();
  t.equal(stats.size, 0, 'level 1 starts empty');
  t.equal(stats.persisted, 50);
  t.same(await second.namespace('git').get('repo7'), { branch: 'b7', dirty: false });
  stats = await second.stats();
  t.equal(stats.size, 1, 'the level-2 hit was promoted');
  t.equal(stats.hits, 1);
  t.equal(await second.namespace('git').get('repo7'), await second.namespace('git').get('repo7'), 'then served from memory');
  const integrity = await sql<{ integrity_check: string }>(join(dir, 'cache.sqlite'), 'PRAGMA integrity_check');
  t.equal(integrity[0]!.integrity_check, 'ok');
  const mode = await sql<{ journal_mode: string }>(join(dir, 'cache.sqlite'), 'PRAGMA journal_mode');
  t.equal(mode[0]!.journal_mode, 'wal');
  await second.close();
});

t.test('validate: a stale value restored from SQLite (or memory) is deleted and counted as a miss', async (t) => {
  const dir = tempDir('hearth-cache-');
  const first = await open(dir);
  await first.namespace('files').set('/a', { mtime: 1 });
  await first.namespace('files').set('/b', { mtime: 1 });
  await first.close();

  const diskMtime = new Map([
    ['/a', 2],
    ['/b', 1],
  ]);
  const seen: Array<[string, number]> = [];
  const cache = await open(dir);
  const files = cache.namespace('files', {
    validate: async (value: { mtime: number }, info) => {
      seen.push([info.key, info.level]);
      return value.mtime === diskMtime.get(info.key);
    },
  });
  t.equal(await files.get('/a'), undefined, 'the file changed while the daemon was down');
  t.same(await files.get('/b'), { mtime: 1 }, 'an unchanged file is served');
  t.same(seen, [
    ['/a', 2],
    ['/b', 2],
  ]);
  t.equal(await files.has('/a'), false, 'the stale entry is gone from both levels');
  await cache.flush();
  t.equal(await cache.store!.count(), 1);

  diskMtime.set('/b', 5);
  t.equal(await files.get('/b'), undefined, 'a value in memory is revalidated too');
  t.same(seen.at(-1), ['/b', 1]);
  let stats = await cache.stats();
  t.equal(stats.hits, 1);
  t.equal(stats.misses, 2);

  await files.set('c', { mtime: 0 });
  t.same(await files.get('c', { validate: () => true }), { mtime: 0 }, 'a per-get validator replaces the namespace one');
  const errors: string[] = [];
  const strict = await open(tempDir('hearth-cache-'), { onError: (_e, ctx) => errors.push(ctx) });
  const ns = strict.namespace('s');
  await ns.set('k', 1);
  t.equal(
    await ns.get('k', {
      validate: () => {
        throw new Error('stat failed');
      },
    }),
    undefined,
    'a throwing validator means invalid',
  );
  t.same(errors, ['validate s']);
  stats = await strict.stats();
  t.equal(stats.misses, 1);
  await strict.close();
  await cache.close();
});

t.test('clear by namespace leaves the others, in both levels and across a restart', async (t) => {
  const dir = tempDir('hearth-cache-');
  const cache = await open(dir, { max_size: 5 });
  for (let i = 0; i < 20; i++) {
    await cache.set('files', `f${i}`, i);
    await cache.set('git', `g${i}`, i);
  }
  await cache.flush();
  await cache.set('files', 'pending', 'not yet committed');
  t.equal(await cache.clear('files'), 21, 'every live entry of the namespace, committed, buffered or in memory');
  await cache.set('files', 'after', 'kept');
  t.equal(await cache.get('files', 'f3'), undefined);
  t.equal(await cache.get('files', 'pending'), undefined);
  t.equal(await cache.get('git', 'g3'), 3);
  t.equal(await cache.get('files', 'after'), 'kept', 'a write after the clear is kept');
  await cache.close();

  const again = await open(dir);
  t.equal(await again.get('files', 'f19'), undefined);
  t.equal(await again.get('files', 'after'), 'kept');
  t.equal(await again.get('git', 'g19'), 19);
  t.equal((await again.stats()).persisted, 21);
  t.equal(await again.clear(), 21, 'clear() without a namespace clears everything');
  t.equal((await again.stats()).persisted, 0);
  await again.close();
});

t.test('hit rate and per-namespace counts', async (t) => {
  const cache = await open(tempDir('hearth-cache-'), { store: 'memory' });
  t.equal((await cache.stats()).hit_rate, 0, '0 when nothing was read');
  const a = cache.namespace('a');
  const b = cache.namespace('b');
  await a.set('x', 1);
  await a.get('x');
  await a.get('x');
  await a.get('x');
  await b.get('x');
  await a.has('x'); // not a lookup
  const stats = await cache.stats();
  t.equal(stats.hits, 3);
  t.equal(stats.misses, 1);
  t.equal(stats.hit_rate, 0.75);
  t.same(stats.namespaces, {
    a: { hits: 3, misses: 0, hit_rate: 1, size: 1, evictions: 0 },
    b: { hits: 0, misses: 1, hit_rate: 0, size: 0, evictions: 0 },
  });
  t.same(Object.keys(stats).sort(), [
    'evictions',
    'expired_count',
    'hit_rate',
    'hits',
    'max_size',
    'misses',
    'namespaces',
    'persisted',
    'size',
    'store',
    'ttl_seconds',
  ]);
  await cache.close();
});

t.test('each namespace’s size and evictions follow its level-1 entries', async (t) => {
  const cache = await open(tempDir('hearth-cache-'), { max_size: 3 });
  const a = cache.namespace('a');
  const b = cache.namespace('b');
  const sizes = () => {
    const n = cache.stats().namespaces;
    return { a: n.a?.size, b: n.b?.size, evicted: [n.a?.evictions, n.b?.evictions], total: cache.stats().size };
  };
  await a.set('x', 1);
  await a.set('x', 2); // a replacement, not a new entry
  await a.set('y', 1);
  await b.set('z', 1);
  t.same(sizes(), { a: 2, b: 1, evicted: [0, 0], total: 3 });
  await b.set('w', 1); // evicts a:x, the least recent
  t.same(sizes(), { a: 1, b: 2, evicted: [1, 0], total: 3 });
  await b.delete('w');
  t.same(sizes(), { a: 1, b: 1, evicted: [1, 0], total: 2 });
  await a.get('x'); // from level 2 back into level 1
  t.same(sizes(), { a: 2, b: 1, evicted: [1, 0], total: 3 });
  await a.set('short', 1, { ttlSeconds: 0.05 });
  await new Promise((r) => setTimeout(r, 80));
  t.same(sizes(), { a: 1, b: 1, evicted: [2, 0], total: 2 }, 'a:y was evicted for it, and it expired: both leave the count');
  await cache.clear('a');
  t.same(sizes(), { a: 0, b: 1, evicted: [2, 0], total: 1 });
  await cache.close();
});

t.test('read-your-writes through level 2 and no resurrection after delete', async (t) => {
  const dir = tempDir('hearth-cache-');
  const cache = await open(dir, { max_size: 1 });
  const ns = cache.namespace('r');
  await ns.set('a', 'A');
  await ns.set('b', 'B'); // a leaves level 1 before anything is committed
  t.equal(await ns.get('a'), 'A', 'served from the write buffer');

  // A set, then a delete issued at once: the delete wins, in memory and on disk.
  const writes = [ns.set('c', 'C'), ns.delete('c')];
  await Promise.all(writes);
  t.equal(await ns.get('c'), undefined);

  // A read of level 2 overtaken by a delete does not bring the value back into level 1.
  await ns.set('d', 'D');
  await ns.set('e', 'E');
  await cache.flush();
  const read = ns.get('d');
  await ns.delete('d');
  t.ok((await read) === 'D' || (await read) === undefined);
  t.equal(await ns.get('d'), undefined, 'not resurrected');

  // A read overtaken by a set answers the new value.
  await ns.set('f', 'old');
  await ns.set('g', 'G');
  await cache.flush();
  const reading = ns.get('f');
  await ns.set('f', 'new');
  t.ok(['old', 'new'].includes((await reading) as string));
  t.equal(await ns.get('f'), 'new');
  await cache.close();

  const again = await open(dir);
  t.equal(await again.get('r', 'c'), undefined);
  t.equal(await again.get('r', 'd'), undefined);
  t.equal(await again.get('r', 'f'), 'new');
  await again.close();
});

t.test('writes are committed within 100 ms, visible to another connection', async (t) => {
  const dir = tempDir('hearth-cache-');
  const cache = await open(dir);
  await cache.set('w', 'one', 1);
  t.equal(await rowCount(dir), 0, 'buffered, not yet committed');
  const start = Date.now();
  while ((await rowCount(dir)) === 0 && Date.now() - start < 2000) await sleep(10);
  const took = Date.now() - start;
  t.equal(await rowCount(dir), 1);
  t.ok(took < 1000, `committed after ~${took} ms (flush delay 50 ms; generous bound for a loaded machine)`);
  await cache.close();
});

t.test('10k sets are committed in one go; measured sets/s', async (t) => {
  const dir = tempDir('hearth-cache-');
  const cache = await open(dir, { max_size: 2000 });
  const ns = cache.namespace('bulk');
  const value = { path: '/home/user/project/src/index.ts', size: 1234, sha256: 'ab'.repeat(32), cached: true };
  const cold = performance.now();
  for (let i = 0; i < 2000; i++) await ns.set(`warm${i}`, { ...value, i });
  await cache.flush();
  t.comment(`cache.set x2k, cold process (JIT warm-up), committed: ${Math.round(2000 / ((performance.now() - cold) / 1000))} sets/s`);
  const start = performance.now();
  for (let i = 0; i < 10_000; i++) await ns.set(`k${i}`, { ...value, i });
  await cache.flush();
  const seconds = (performance.now() - start) / 1000;
  t.equal(await rowCount(dir), 12_000, 'all committed and visible to another connection');
  t.ok(seconds < 10, `10k sets committed in ${seconds.toFixed(3)} s`);
  t.comment(`cache.set x10k, sequential awaits, committed: ${Math.round(10_000 / seconds)} sets/s (${(seconds * 1000).toFixed(0)} ms)`);

  const start2 = performance.now();
  await Promise.all(Array.from({ length: 10_000 }, (_, i) => ns.set(`c${i}`, { ...value, i })));
  await cache.flush();
  const seconds2 = (performance.now() - start2) / 1000;
  t.comment(`cache.set x10k, concurrent, committed: ${Math.round(10_000 / seconds2)} sets/s (${(seconds2 * 1000).toFixed(0)} ms)`);
  const flushes = cache.store!.transactionCount;
  t.ok(flushes.committed < 60, `grouped into ${flushes.committed} transactions`);
  t.equal(flushes.failed, 0);
  await cache.close();
  const again = await open(dir);
  t.equal((await again.stats()).persisted, 22_000);
  t.same(await again.get('bulk', 'k9999'), { ...value, i: 9999 });
  await again.close();
});

t.test('max_store_entries bounds level 2: the least recently written rows go', async (t) => {
  const dir = tempDir('hearth-cache-');
  const cache = await open(dir, { max_size: 10, max_store_entries: 100 });
  const ns = cache.namespace('b');
  for (let i = 0; i < 100; i++) await ns.set(`k${i}`, i);
  await cache.flush();
  await ns.set('k0', 'rewritten'); // k0 becomes the most recently written
  for (let i = 100; i < 150; i++) await ns.set(`k${i}`, i);
  await cache.flush();
  t.equal(await rowCount(dir), 100);
  await cache.close();
  const again = await open(dir, { max_size: 10, max_store_entries: 100 });
  t.equal(await again.get('b', 'k1'), undefined, 'the oldest rows were evicted');
  t.equal(await again.get('b', 'k50'), undefined);
  t.equal(await again.get('b', 'k0'), 'rewritten', 'a rewritten key counts as recent');
  t.equal(await again.get('b', 'k52'), 52);
  t.equal(await again.get('b', 'k149'), 149);
  await again.close();
  // Reopened with a smaller bound, the file shrinks at once.
  const smaller = await open(dir, { max_store_entries: 10 });
  t.equal((await smaller.stats()).persisted, 10);
  t.equal(await smaller.get('b', 'k149'), 149);
  await smaller.close();
});

t.test('SqliteStore is a Keyv store adapter: namespaces, ttl, clear, purge', async (t) => {
  const dir = tempDir('hearth-cache-');
  const errors: string[] = [];
  const file = join(dir, 'kv.sqlite');
  const store = await SqliteStore.open({ path: file, maxEntries: 1000, purgeIntervalMs: 20, onError: (_e, c) => errors.push(c) });
  const users = new Keyv({ store, namespace: 'users' });
  await users.set('ann', { id: 1 });
  await users.set('tmp', 'x', 50);
  t.same(await users.get('ann'), { id: 1 });
  t.equal(await users.has('ann'), true);
  t.same(await users.get(['ann', 'bob']), [{ id: 1 }, undefined]);
  const rows = await sql<{ key: string; expires: number | null }>(file, 'SELECT key, expires FROM hearth_cache ORDER BY key');
  t.same(rows.map((r) => r.key), ['users:ann', 'users:tmp'], 'committed at once');
  t.equal(rows[0]!.expires, null);
  t.ok(rows[1]!.expires! > Date.now());
  await sleep(120);
  t.equal(await store.count(), 1, 'the expired row was purged in the background');
  t.equal(await users.get('tmp'), undefined);
  await store.setMany([
    { key: 'users:a', value: '{"value":1}' },
    { key: 'users:b', value: { value: 2 } },
  ]);
  t.equal(await users.get('b'), 2, 'a non-string value is stored as JSON');
  t.equal(await store.deleteMany(['users:a', 'users:nope']), true);
  t.equal(await store.deleteMany(['users:nope']), false);
  t.equal(await users.delete('ann'), true);
  await users.clear();
  t.equal(await store.count(), 0);
  t.same(await sql(file, 'PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  await users.disconnect();
  await store.disconnect();
  await t.rejects(store.set('k', 'v'), /closed/);
  t.equal(await store.get('users:x'), undefined);
  t.same(errors, []);
});

/** Runs statements on the file through a separate read-write connection (to damage it on purpose). */
function exec(file: string, statements: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, (err) => {
      if (err) return reject(err);
      db.configure('busyTimeout', 5000);
      db.exec(statements, (err2) => {
        db.close();
        if (err2) reject(err2);
        else resolve();
      });
    });
  });
}

t.test('a failed flush loses its writes safely: they become deletes, retried until they land', async (t) => {
  const dir = tempDir('hearth-cache-');
  const file = join(dir, 'cache.sqlite');
  const errors: string[] = [];
  const cache = await open(dir, { max_size: 1, onError: (_e, c) => errors.push(c) });
  await cache.set('f', 'a', 'old');
  await cache.flush();
  await exec(file, 'DROP TABLE hearth_cache');
  await cache.set('f', 'a', 'new');
  await cache.set('f', 'b', 'pushes a out of level 1');
  await t.rejects(cache.flush(), /no such table/);
  t.same(errors, ['flush']);
  t.equal(cache.store!.transactionCount.failed, 1);
  t.equal(await cache.get('f', 'a'), undefined, 'neither the lost write nor an older value is served');
  await exec(file, 'CREATE TABLE hearth_cache(key VARCHAR(255) PRIMARY KEY, value TEXT, expires INTEGER); ' +
    `INSERT INTO hearth_cache VALUES ('f:a', '{"value":"older"}', NULL)`);
  await cache.flush();
  t.equal(await rowCount(dir), 0, 'the retried delete landed');
  t.equal(await cache.get('f', 'a'), undefined);
  await cache.close();
});

t.test('level 2 edge cases: an unreadable row, a read overtaken during validation', async (t) => {
  const dir = tempDir('hearth-cache-');
  const errors: string[] = [];
  const cache = await open(dir, { max_size: 1, onError: (_e, c) => errors.push(c) });
  await cache.set('e', 'bad', 1);
  await cache.set('e', 'other', 2);
  await cache.flush();
  await exec(join(dir, 'cache.sqlite'), `UPDATE hearth_cache SET value = 'not json' WHERE key = 'e:bad'`);
  t.equal(await cache.get('e', 'bad'), undefined, 'an unreadable row is a miss');
  t.same(errors, ['read']);
  await cache.flush();
  t.equal(await rowCount(dir), 1, 'and is deleted');

  // A slow validator of a level-2 value; the key is rewritten meanwhile: the new value is answered.
  await cache.set('e', 'slow', 'v1');
  await cache.set('e', 'other', 3);
  await cache.flush();
  let calls = 0;
  const reading = cache.get('e', 'slow', {
    validate: async () => {
      calls++;
      await sleep(30);
      return true;
    },
  });
  await sleep(5);
  await cache.set('e', 'slow', 'v2');
  t.equal(await reading, 'v2', 'the overtaken read was retried');
  t.equal(calls, 2);
  await cache.close();
});

t.test('a damaged cache file is moved aside and the cache starts empty', async (t) => {
  const dir = tempDir('hearth-cache-');
  writeFileSync(join(dir, 'cache.sqlite'), 'this is not a database, just junk bytes '.repeat(200));
  const errors: string[] = [];
  const cache = await open(dir, { onError: (_e, context) => errors.push(context) });
  await cache.set('x', 'k', 1);
  await cache.flush();
  t.equal((await cache.stats()).persisted, 1);
  t.match(errors[0], /damaged; moved to .*cache\.sqlite\.damaged-/);
  t.ok(readdirSync(dir).some((f) => f.startsWith('cache.sqlite.damaged-')));
  await cache.close();
});

t.test('kill -9 while writing: the file stays sound and keeps what was committed', async (t) => {
  const dir = tempDir('hearth-cache-');
  const file = join(dir, 'cache.sqlite');
  const moduleUrl = pathToFileURL(join(root, 'src/services/cache.ts')).href;
  const code = `
    import { CacheService } from ${JSON.stringify(moduleUrl)};
    const cache = await CacheService.open({ ttl_seconds: 600, max_size: 100, store: 'sqlite', max_store_entries: 1e6,
      stateDir: process.env.CACHE_DIR, flushDelayMs: 20 });
    let i = 0;
    const value = 'x'.repeat(300);
    setInterval(() => { for (let j = 0; j < 200; j++) cache.set('k', String(i++), value); }, 2);
    setInterval(() => { if (cache.store.transactionCount.committed >= 3) console.log('committed'); }, 10);
  `;
  const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], {
    env: { ...process.env, CACHE_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      if (String(d).includes('committed')) resolve();
    });
    void exited.then(() => reject(new Error(`child exited early: ${output}`)));
    setTimeout(() => reject(new Error(`child did not commit within 60 s: ${output}`)), 60_000).unref();
  });
  await sleep(100);
  child.kill('SIGKILL');
  await exited;
  t.ok(existsSync(`${file}-wal`), 'killed with a WAL file left behind');
  t.same(await sql(file, 'PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  const cache = await open(dir, { max_store_entries: 1e6 });
  const rows = (await cache.stats()).persisted;
  t.ok(rows >= 2000, `${rows} committed rows survived`);
  t.equal(await cache.get('k', '0'), 'x'.repeat(300), 'the first rows are there');
  await cache.close();
});

t.test('cached(): one in-flight call per key, results cached, failures not', async (t) => {
  const cache = await open(tempDir('hearth-cache-'));
  let calls = 0;
  let fail = false;
  const slowSquare = cache.cached(
    { namespace: 'math', key: (n: number) => `sq:${n}`, ttlSeconds: 60 },
    async (n: number) => {
      calls++;
      await sleep(30);
      if (fail) throw new Error('boom');
      return n * n;
    },
  );
  const results = await Promise.all([slowSquare(3), slowSquare(3), slowSquare(3), slowSquare(4)]);
  t.same(results, [9, 9, 9, 16]);
  t.equal(calls, 2, 'concurrent callers of one key shared one call');
  t.equal(await slowSquare(3), 9);
  t.equal(calls, 2, 'then answered from the cache');
  t.equal(await cache.get('math', 'sq:3'), 9, 'stored under the key function result');

  fail = true;
  await t.rejects(Promise.all([slowSquare(5), slowSquare(5)]), /boom/);
  t.equal(calls, 3, 'the failing call was shared too');
  fail = false;
  t.equal(await slowSquare(5), 25, 'a failure is not cached: the next call runs again');
  t.equal(calls, 4);

  // On a view, with a validator, and a function that answers undefined (not cached).
  const view = cache.namespace('view');
  let hits = 0;
  const maybe = view.cached({ key: (k: string) => k, validate: (v) => v !== 'stale' }, async (k: string) => {
    hits++;
    return k === 'none' ? undefined : k;
  });
  t.equal(await maybe('none'), undefined);
  t.equal(await maybe('none'), undefined);
  t.equal(hits, 2, 'undefined is not cached');
  await view.set('old', 'stale');
  t.equal(await maybe('old'), 'old', 'an invalid cached value is recomputed');
  const plain = cached({ cache: view, key: () => 'const' }, () => 42);
  t.equal(await plain(), 42);
  t.equal(await view.get('const'), 42);
  await cache.close();
});

t.test('cached(): validate and store see the call; a call in flight answers another only as the cache would', async (t) => {
  const cache = await open(tempDir('hearth-cache-'));
  const view = cache.namespace('versions');
  let calls = 0;
  // The value of `name` as of the version its caller has seen, good for callers that have seen that one.
  const read = view.cached(
    {
      key: (name: string) => name,
      validate: (v, _name, seen) => v.version === seen,
      store: (v) => !v.partial,
    },
    async (name: string, seen: number) => {
      calls++;
      await sleep(30);
      if (name === 'boom') throw new Error('boom');
      return { name, version: seen, partial: name === 'partial' };
    },
  );
  t.same(await read('a', 1), { name: 'a', version: 1, partial: false });
  t.equal((await read('a', 1)).version, 1);
  t.equal(calls, 1, 'the second call was a hit');
  t.equal((await read('a', 2)).version, 2, 'a value validate refuses for this call is made again');
  t.equal(calls, 2);

  const [b1, b2] = await Promise.all([read('b', 1), read('b', 1)]);
  t.same([b1.version, b2.version], [1, 1]);
  t.equal(calls, 3, 'a call that accepts the value in flight shares it');
  const [c1, c2] = await Promise.all([read('c', 1), read('c', 2)]);
  t.same([c1.version, c2.version], [1, 2], 'one that refuses it makes its own');
  t.equal(calls, 5);
  await t.rejects(Promise.all([read('boom', 1), read('boom', 1)]), /boom/);
  t.equal(calls, 6, 'a failure in flight is shared');

  t.equal((await read('partial', 1)).partial, true);
  t.equal((await read('partial', 1)).partial, true);
  t.equal(calls, 8, 'a value store refuses is returned, not cached');
  t.equal(await view.has('partial'), false);
  await cache.close();
});

t.test('lazy(): one shared load, failures retried, reset reloads', async (t) => {
  let loads = 0;
  let fail = true;
  const config = lazy(async () => {
    const n = ++loads;
    await sleep(20);
    if (fail) throw new Error('not yet');
    return { loaded: n };
  });
  t.equal(config.loaded, false);
  t.equal(config.peek(), undefined);
  await t.rejects(Promise.all([config(), config.get()]), /not yet/);
  t.equal(loads, 1, 'concurrent callers shared the failed load');
  fail = false;
  const [a, b] = await Promise.all([config(), config()]);
  t.equal(a, b);
  t.same(a, { loaded: 2 }, 'the failure was not kept: the next call loaded again');
  t.equal(await config(), a);
  t.equal(loads, 2, 'loaded once');
  t.equal(config.loaded, true);
  t.equal(config.peek(), a);
  config.reset();
  t.equal(config.loaded, false);
  t.same(await config(), { loaded: 3 }, 'reset forces a reload');

  // A reset during a load: that load's callers get its value, later callers load again.
  config.reset();
  const inFlight = config();
  config.reset();
  const after = config();
  t.same(await inFlight, { loaded: 4 });
  t.same(await after, { loaded: 5 });
  t.same(await config(), { loaded: 5 });

  const sync = lazy(() => 7);
  t.equal(await sync(), 7);
  const throwing = lazy((): number => {
    throw new Error('sync throw');
  });
  await t.rejects(throwing(), /sync throw/);
});
