// The shared cache tier (cache.shared) on a real redis-server: daemons with their own state dirs share
// batch results keyed by what they were computed from, signed with the team secret; a Redis that stops or
// hangs costs the daemons nothing but the tier (no 5xx, no long waits, /health degraded, back when it is).
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../src/config.js';
import { SharedTier } from '../src/services/shared-tier.js';
import { resultKey } from '../plugins/batch/shared-results.js';
import { bootDaemon, cleanEnv, tempDir, type TestDaemon } from './helpers/daemon.js';
import { skipWithoutRedis, startRedis, type TestRedis } from './helpers/redis.js';
import { sleep } from './helpers/batch.js';

t.setTimeout(120_000);

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function secretFile(text: string): string {
  const path = join(tempDir('hearth-secret-'), 'secret');
  writeFileSync(path, `${text}\n`, { mode: 0o600 });
  return path;
}

const TEAM = secretFile('team-secret-0123456789abcdef');

async function daemonOn(t: Tap.Test, redis: TestRedis, secret = TEAM, extra: object = {}): Promise<TestDaemon> {
  const work = tempDir('hearth-shared-work-');
  const d = await bootDaemon({
    config: {
      cache: { shared: { socket: redis.socket }, shared_secret_file: secret, shared_timeout_ms: 200, ...extra },
      circuit_breaker: { failure_threshold: 2, reset_timeout_seconds: 1 },
      pool: { max_threads: 1 },
      plugins: { batch: { roots: [work] } },
    },
  });
  t.teardown(() => d.close());
  return d;
}

async function process_(d: TestDaemon, operation: string, items: unknown[]): Promise<{ status: number; body: any }> {
  const res = await d.client.raw('POST', '/batch/process', { operation, items });
  return { status: res.status, body: JSON.parse(res.body) };
}
const shared = async (d: TestDaemon) => (await d.client.call<any>('GET', '/optimization/stats')).cache_stats.shared;

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

t.test('shared tier', { skip: skipWithoutRedis }, async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());

  t.test('a result computed on A is a shared hit on B; keys are content-addressed and signed', async (t) => {
    const [a, b] = await Promise.all([daemonOn(t, redis), daemonOn(t, redis)]);
    const items = ['alpha', 'beta', 'gamma'];
    const first = await process_(a, 'sha256', items);
    t.equal(first.status, 200);
    t.same(first.body.data.results, items.map(sha));
    await until('A to write 3 entries', async () => (await shared(a)).writes >= 3);
    const keys = redis.cli('--scan', '--pattern', 'hearth:cache:batch:r:sha256:*').split('\n').filter(Boolean);
    t.equal(keys.length, 3, 'one Redis key per item');
    t.ok(keys.includes(`hearth:cache:batch:${resultKey({ name: 'sha256' }, 'alpha')}`), 'keyed by operation, version, options and the item');
    t.match(redis.cli('GET', keys[0]!), /^[0-9a-f]{64}\.".*"$/, 'stored as signature.json');

    const second = await process_(b, 'sha256', [...items, 'delta']);
    t.same(second.body.data.results, [...items, 'delta'].map(sha), 'the same answers');
    const sb = await shared(b);
    t.match(sb, { hits: 3, misses: 1, bad_signatures: 0, connected: true, breaker: 'CLOSED', eviction_policy: 'noeviction' }, 'three from the tier, one computed');
    const again = await process_(b, 'sha256', items);
    t.same(again.body.data.results, items.map(sha));
    t.equal((await shared(b)).hits, 3, 'found locally the second time (promoted from the tier)');
  });

  t.test('a tampered entry and another secret are misses, counted; the answers stay right', async (t) => {
    const a = await daemonOn(t, redis);
    await process_(a, 'gzip_size', ['x'.repeat(1000)]);
    await until('the write', async () => (await shared(a)).writes >= 1);
    const key = `hearth:cache:batch:${resultKey({ name: 'gzip_size' }, 'x'.repeat(1000))}`;
    const stored = redis.cli('GET', key);
    t.match(stored, /^[0-9a-f]{64}\.\d+$/);
    // Someone with write access but without the secret replaces the value and keeps the signature.
    redis.cli('SET', key, `${stored.slice(0, 65)}999999`);
    const c = await daemonOn(t, redis);
    const res = await process_(c, 'gzip_size', ['x'.repeat(1000)]);
    t.not(res.body.data.results[0], 999999, 'the forged value is not served');
    t.same(res.body.data.results, (await process_(a, 'gzip_size', ['x'.repeat(1000)])).body.data.results, 'equal to the real one');
    t.match(await shared(c), { hits: 0, bad_signatures: 1 });

    await process_(a, 'double', [21]);
    await until('the write', async () => (await shared(a)).writes >= 2);
    const other = await daemonOn(t, redis, secretFile('another-secret-0123456789'));
    const d = await process_(other, 'double', [21]);
    t.same(d.body.data.results, [42]);
    t.match(await shared(other), { hits: 0, bad_signatures: 1 }, 'signed with another secret: a miss');
  });

  t.test('path operations are not shared', async (t) => {
    const work = tempDir('hearth-shared-paths-');
    const file = join(work, 'f.txt');
    writeFileSync(file, 'a\nb\n');
    const d = await bootDaemon({
      config: { cache: { shared: { socket: redis.socket }, shared_secret_file: TEAM }, plugins: { batch: { roots: [work] } } },
    });
    t.teardown(() => d.close());
    const res = await process_(d, 'count_lines', [file]);
    t.same(res.body.data.results, [2]);
    const ops = await d.client.call<any[]>('GET', '/batch/operations');
    t.match(ops.find((o) => o.name === 'count_lines'), { shareable: false });
    t.match(ops.find((o) => o.name === 'sha256'), { shareable: true, version: '1' });
    t.equal(redis.cli('--scan', '--pattern', '*count_lines*'), '', 'nothing of it in Redis');
  });

  t.test('Redis stopped: no 5xx, /health degraded with the reason, normal again when it is back', async (t) => {
    const d = await daemonOn(t, redis);
    t.same((await process_(d, 'double', [1, 2])).body.data.results, [2, 4]);
    await redis.stop();
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const res = await process_(d, 'double', [100 + i, 200 + i]);
      t.equal(res.status, 200, `request ${i} answered`);
      t.same(res.body.data.results, [200 + 2 * i, 400 + 2 * i]);
      t.ok(Date.now() - started < 2000, 'and soon');
    }
    const health = await d.client.call<any>('GET', '/health');
    t.equal(health.status, 'degraded');
    t.match(health.reasons.join('\n'), /shared cache unix:.*redis\.sock unreachable/);
    t.match(await shared(d), { connected: false });
    t.ok((await shared(d)).skipped > 0, 'reads not sent while Redis is away');

    await redis.restart();
    await until('/health ok', async () => (await d.client.call<any>('GET', '/health')).status === 'ok');
    await process_(d, 'double', [7]);
    await until('a write after the restart', async () => redis.cli('--scan', '--pattern', 'hearth:cache:batch:r:double:*') !== '');
  });

  t.test('a hung Redis (SIGSTOP): answers stay bounded, the breaker opens', async (t) => {
    const d = await daemonOn(t, redis);
    await process_(d, 'double', [1]);
    redis.pause();
    t.teardown(() => redis.resume());
    for (let i = 0; i < 4; i++) {
      const started = Date.now();
      const res = await process_(d, 'double', [1000 + i]);
      t.equal(res.status, 200);
      t.same(res.body.data.results, [2 * (1000 + i)]);
      t.ok(Date.now() - started < 2000, `request ${i} within 2 s`);
    }
    const s = await shared(d);
    t.ok(s.timeouts >= 1, 'reads timed out');
    t.equal(s.breaker, 'OPEN', 'then the breaker opened');
    t.equal((await d.client.call<any>('GET', '/health')).status, 'degraded');
    redis.resume();
    await until('/health ok', async () => (await d.client.call<any>('GET', '/health')).status === 'ok');
  });

  t.test('SharedTier on its own: round trip, bad envelope, TTL, close', async (t) => {
    const tier = await SharedTier.open({ target: { kind: 'socket', path: redis.socket }, secret: Buffer.from('s'.repeat(32)), timeoutMs: 500, ttlSeconds: 60 });
    t.teardown(() => tier.close());
    t.ok(await tier.whenConnected(5000));
    await tier.setMany([['ns:a', { n: 1 }], ['ns:b', [1, 'x']]], 60_000);
    t.same(await tier.getMany(['ns:a', 'ns:b', 'ns:none']), [{ n: 1 }, [1, 'x'], undefined]);
    const ttl = Number(redis.cli('PTTL', 'hearth:cache:ns:a'));
    t.ok(ttl > 50_000 && ttl <= 60_000, `expires with the TTL given (${ttl} ms)`);
    redis.cli('SET', 'hearth:cache:ns:c', 'not an envelope');
    t.same(await tier.getMany(['ns:c']), [undefined]);
    t.match(tier.stats(), { hits: 2, misses: 2, bad_signatures: 1, writes: 2 });
    t.same(await tier.getMany([]), []);
    await tier.close();
    t.same(tier.reasons(), [], 'closed: nothing to report');
    t.same(await tier.getMany(['ns:a']), [undefined], 'closed: a miss, no throw');
  });

  t.test("the Redis's eviction policy: read on each connection, in stats, noeviction warned of", async (t) => {
    const warned: string[] = [];
    const tier = await SharedTier.open({
      target: { kind: 'socket', path: redis.socket },
      secret: Buffer.from('s'.repeat(32)),
      timeoutMs: 500,
      ttlSeconds: 3600,
      onWarning: (message) => warned.push(message),
    });
    t.teardown(() => tier.close());
    t.teardown(() => redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction'));
    const policyBecomes = (policy: string) => until(`policy ${policy}`, async () => tier.stats().eviction_policy === policy);
    await policyBecomes('noeviction');
    t.equal(warned.length, 1, "redis-server's default, noeviction: warned of");
    t.match(warned[0], /maxmemory-policy is noeviction.*TTL \(3600 s\).*allkeys-lru/);

    // Changed, then the connection dropped: the reconnect reads it again.
    redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    await policyBecomes('allkeys-lru');
    t.equal(warned.length, 1, 'an evicting Redis suits a cache: no warning');
    redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    await policyBecomes('noeviction');
    t.equal(warned.length, 2, 'noeviction again: warned again');
    t.same(await tier.getMany(['ns:none']), [undefined], 'the tier works on after the reconnects');
  });
});

t.test('config: the shared tier is refused at start when it cannot be trusted', async (t) => {
  const dir = tempDir('hearth-shared-config-');
  const load = (cache: object) => {
    const file = join(dir, `c${Math.random()}.json`);
    writeFileSync(file, JSON.stringify({ cache }));
    return () => loadConfig({ config: file, stateDir: dir }, cleanEnv());
  };
  t.throws(load({ shared: { socket: '/tmp/r.sock' } }), /cache\.shared is set but cache\.shared_secret_file is not/);
  t.throws(load({ shared: { socket: '/tmp/r.sock' }, shared_secret_file: join(dir, 'missing') }), /cannot read cache\.shared_secret_file .*ENOENT/);
  t.throws(load({ shared: { socket: '/tmp/r.sock' }, shared_secret_file: secretFile('short') }), /at least 16/);
  t.throws(load({ shared: 'http://example.com', shared_secret_file: TEAM }), /cache\/shared/);
  t.throws(load({ shared: { socket: 'relative.sock' }, shared_secret_file: TEAM }), /cache\/shared/);
  const ok = load({ shared: 'redis://user:pw@example.com:6380/2', shared_secret_file: TEAM })();
  t.equal(ok.config.cache.shared, 'redis://user:pw@example.com:6380/2');

  const single = await bootDaemon({ config: { plugins: { batch: {} } } });
  t.teardown(() => single.close());
  const stats = (await single.client.call<any>('GET', '/optimization/stats')).cache_stats;
  t.notOk('shared' in stats, 'without cache.shared: no shared section');
  t.same((await process_(single, 'sha256', ['a'])).body.data.results, [sha('a')]);
});
