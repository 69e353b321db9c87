// Batch jobs across daemons: one real redis-server, daemons on their own state dirs sharing its BullMQ
// queue (BullMQ's stalled check shortened to ~2 s), real worker threads, real sockets.
import t from 'tap';
import { answer, faults, sleep } from './helpers/batch.js';
import { bootDaemon, tempDir, type TestDaemon } from './helpers/daemon.js';
import { skipWithoutRedis, startRedis, type TestRedis } from './helpers/redis.js';

t.setTimeout(240_000);

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const QUEUE_TIMING = { lock_ms: 2000, stalled_interval_ms: 2000, heartbeat_ms: 500 };

function queueConfig(redis: TestRedis, extra: object = {}) {
  return { socket: redis.socket, ...QUEUE_TIMING, ...extra };
}

interface Options {
  queue?: object | false;
  batch?: object;
  pool?: object;
  ms?: number;
}

async function daemon(t: Tap.Test, redis: TestRedis | undefined, o: Options = {}): Promise<TestDaemon> {
  const root = tempDir('hearth-bq-');
  const d = await bootDaemon({
    config: {
      pool: { max_threads: 2, task_timeout_ms: 5000, ...o.pool },
      plugins: {
        batch: { roots: [root], ...(redis && o.queue !== false ? { queue: queueConfig(redis, o.queue || {}) } : {}), ...o.batch },
        'batch-faults': { module: faults, options: { ms: o.ms ?? 20 } },
      },
    },
  });
  t.teardown(() => d.close());
  return d;
}

async function finished(d: TestDaemon, id: string, ms = 60_000): Promise<any> {
  return waitFor(`job ${id} to finish`, async () => {
    const j = await d.client.call<any>('GET', `/batch/jobs/${id}`);
    return ['completed', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
  }, ms);
}

async function selfId(d: TestDaemon): Promise<string> {
  return (await d.client.call<any>('GET', '/batch/daemons')).self;
}

t.test('a job submitted to A runs chunks on A and B and answers as on one daemon without a queue', { skip: skipWithoutRedis }, async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const a = await daemon(t, redis, { ms: 30 });
  const b = await daemon(t, redis, { ms: 30 });
  const solo = await daemon(t, undefined, { ms: 30 });
  const [idA, idB] = [await selfId(a), await selfId(b)];
  t.not(idA, idB, 'two state dirs, two ids');
  t.match(idA, /^.+-[0-9a-f]{8}$/);
  const listed = await waitFor('both daemons in the registry', async () => {
    const l = await b.client.call<any>('GET', '/batch/daemons');
    return l.daemons.length === 2 ? l : undefined;
  });
  t.same(listed.daemons.map((d: any) => d.id).sort(), [idA, idB].sort());
  t.match(listed, { queue: `unix:${redis.socket}`, name: 'hearth', self: idB });

  // Some items fail the schema (ITEM_INVALID), the rest run: each item's result once, in input order.
  const items: unknown[] = Array.from({ length: 120 }, (_, i) => (i % 17 === 5 ? 'not a number' : i));
  const body = { items, operation: 'fault.sleeps', batch_size: 3, max_concurrent: 4 };
  const started = await answer(a.client, 'POST', '/batch/jobs', body);
  t.equal(started.status, 202);
  const id = started.json.data.job_id;
  const job = await finished(a, id);
  const alone = await finished(solo, (await solo.client.call<any>('POST', '/batch/jobs', body)).job_id);
  t.equal(job.status, 'completed');
  t.same(job.results, alone.results, 'the same results as one daemon without a queue');
  t.same(job.errors, alone.errors, 'the same errors');
  t.equal(job.errors.length, items.filter((x) => typeof x !== 'number').length);
  t.match(job, { total_items: 120, processed_items: alone.processed_items, failed_items: alone.failed_items, submitted_on: idA });
  t.same(Object.keys(job.ran_on).sort(), [idA, idB].sort(), `chunks ran on both daemons: ${JSON.stringify(job.ran_on)}`);
  const chunks = Math.ceil(items.filter((x) => typeof x === 'number').length / 3);
  t.equal(job.ran_on[idA] + job.ran_on[idB], chunks, 'every chunk recorded once');
  t.same(await b.client.call<any>('GET', `/batch/jobs/${id}`), job, 'B answers the same job');
  const list = await b.client.call<any[]>('GET', '/batch/jobs');
  t.match(list.find((j) => j.job_id === id), { status: 'completed', ran_on: job.ran_on });
  t.notOk('results' in list.find((j) => j.job_id === id)!, 'the list has no results');
  t.equal((await answer(b.client, 'GET', '/batch/jobs/00000000-0000-0000-0000-000000000000')).status, 404);
  // Redis holds the job under the queue's name.
  t.match(redis.cli('KEYS', `hearth:job:${id}*`), new RegExp(`hearth:job:${id}`));
});
