// The cache through the daemon: cache_stats in /optimization/stats, POST /cache/clear, `hearth cache clear`,
// and the SQLite level surviving a restart.
import { join } from 'node:path';
import t from 'tap';
import { startDaemon } from '../src/daemon.js';
import { Client } from '../src/client.js';
import { bootDaemon, cleanEnv, root, runCli } from './helpers/daemon.js';

const memo = { module: join(root, 'test/fixtures/plugins/memo/index.js') };

t.test('cache_stats, hit rate and POST /cache/clear through a plugin namespace', async (t) => {
  const d = await bootDaemon({ config: { cache: { max_size: 3 }, plugins: { memo } } });
  t.teardown(() => d.close());
  for (const key of ['a', 'b']) await d.client.call('POST', '/memo', { key, value: { n: key } });
  t.same(await d.client.call('GET', '/memo?key=a'), { key: 'a', found: true, value: { n: 'a' } });
  t.same(await d.client.call('GET', '/memo?key=zz'), { key: 'zz', found: false, value: null });
  const stats = await d.client.call<any>('GET', '/optimization/stats');
  const c = stats.cache_stats;
  t.match(c, { size: 2, max_size: 3, ttl_seconds: 300, hits: 1, misses: 1, hit_rate: 0.5, evictions: 0, store: 'sqlite' });
  for (const f of ['expired_count', 'persisted']) t.ok(Number.isInteger(c[f]) && c[f] >= 0, `${f} is a count`);

  for (const key of ['c', 'd']) await d.client.call('POST', '/memo', { key, value: key });
  const after = (await d.client.call<any>('GET', '/optimization/stats')).cache_stats;
  t.equal(after.size, 3, 'level 1 holds max_size entries');
  t.equal(after.evictions, 1, 'the least recently used entry was evicted');
  t.same(await d.client.call('GET', '/memo?key=a'), { key: 'a', found: true, value: { n: 'a' } }, 'an evicted entry is still in SQLite');

  const other = await d.client.call<any>('POST', '/cache/clear', { namespace: 'nobody' });
  t.same(other, { message: 'Cache namespace "nobody" cleared successfully', cleared: 0, namespace: 'nobody' });
  t.same(await d.client.call('GET', '/memo?key=b'), { key: 'b', found: true, value: { n: 'b' } }, 'another namespace is untouched');
  const bad = await d.client.raw('POST', '/cache/clear', { namespace: '../x' });
  t.equal(bad.status, 400);
  t.equal(JSON.parse(bad.body).error.code, 'VALIDATION_FAILED');

  const cli = await runCli(['cache', 'clear', '--namespace', 'memo', '--state-dir', d.stateDir, '--socket', d.socket], cleanEnv());
  t.equal(cli.code, 0, cli.stderr);
  t.match(cli.stdout, /Cache namespace "memo" cleared successfully \(4 entries\)/);
  t.same(await d.client.call('GET', '/memo?key=a'), { key: 'a', found: false, value: null }, 'cleared');
  await d.client.call('POST', '/memo', { key: 'x', value: 1 });
  t.same(await d.client.call('POST', '/cache/clear'), { message: 'All caches cleared successfully', cleared: 1 });
});

t.test('the SQLite level survives a restart; the memory store does not', async (t) => {
  const d = await bootDaemon({ config: { plugins: { memo } } });
  await d.client.call('POST', '/memo', { key: 'kept', value: [1, 2, 3] });
  const { stateDir } = d;
  await d.close();
  const env = cleanEnv();
  const flags = { stateDir, port: 0, config: join(stateDir, 'config.json') };
  const again = await startDaemon({ flags, env, logDestination: process.stderr });
  const client = new Client({ socket: again.listening.socket });
  t.teardown(async () => {
    await client.close();
    await again.close();
  });
  t.same(await client.call('GET', '/memo?key=kept'), { key: 'kept', found: true, value: [1, 2, 3] });
  const stats = (await client.call<any>('GET', '/optimization/stats')).cache_stats;
  t.equal(stats.persisted, 1, 'one row in SQLite');
  t.equal(stats.hits, 1);

  const mem = await bootDaemon({ config: { cache: { store: 'memory' }, plugins: { memo } } });
  t.teardown(() => mem.close());
  await mem.client.call('POST', '/memo', { key: 'k', value: 1 });
  const memStats = (await mem.client.call<any>('GET', '/optimization/stats')).cache_stats;
  t.match(memStats, { store: 'memory', persisted: 0, size: 1 });
});
