// The Redis clients (node-redis for the shared tier, ioredis and BullMQ for the batch queue) cost a start
// time and memory that a single-machine daemon must not pay: they are loaded only when configured. This
// file runs in its own process, so what its require cache holds is what these daemons loaded.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import { bootDaemon, tempDir } from './helpers/daemon.js';

const require = createRequire(import.meta.url);
const loaded = (pkg: string) => Object.keys(require.cache).some((path) => path.includes(`/node_modules/${pkg}/`));

t.test('a daemon with neither cache.shared nor a batch queue loads no Redis client', async (t) => {
  const d = await bootDaemon({ config: { plugins: { batch: {} } } });
  t.teardown(() => d.close());
  t.equal((await d.client.call<any>('POST', '/batch/process', { items: [1, 2], operation: 'double' })).results.length, 2);
  t.notOk(loaded('ioredis'), 'no ioredis');
  t.notOk(loaded('@redis/client'), 'no node-redis');
});

t.test('with both configured (their Redis away), both clients are loaded and the daemon starts, degraded', async (t) => {
  const dir = tempDir('hearth-redis-');
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'team-secret-0123456789abcdef');
  const socket = join(dir, 'none.sock');
  const d = await bootDaemon({ config: { cache: { shared: { socket }, shared_secret_file: secret }, plugins: { batch: { queue: { socket } } } } });
  t.teardown(() => d.close());
  t.equal((await d.client.call<any>('GET', '/health')).status, 'degraded');
  t.ok(loaded('ioredis'), 'ioredis');
  t.ok(loaded('@redis/client'), 'node-redis');
});
