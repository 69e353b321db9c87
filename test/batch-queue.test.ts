// Batch jobs across daemons: one real redis-server, daemons on their own state dirs sharing its BullMQ
// queue (BullMQ's stalled check shortened to ~2 s), real worker threads, real sockets.
import t from 'tap';
import { answer, faults, sleep } from './helpers/batch.js';
import { bootDaemon, tempDir, type TestDaemon } from './helpers/daemon.js';
import { waitFor as poll } from './helpers/processes.js';
import { skipWithoutRedis, startRedis, type TestRedis } from './helpers/redis.js';

t.setTimeout(240_000);

/** Polls `fn` until it answers something truthy; 30 s unless told. */
const waitFor = <T>(what: string, fn: () => Promise<T>, ms = 30_000) => poll(what, fn, ms);

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
  const { runCli, cleanEnv } = await import('./helpers/daemon.js');
  const { join } = await import('node:path');
  const cli = await runCli(['--config', join(b.stateDir, 'config.json'), '--state-dir', b.stateDir, 'batch', 'daemons'], cleanEnv(), 60_000);
  t.equal(cli.code, 0, cli.stderr);
  t.match(cli.stdout, new RegExp(`^queue unix:${redis.socket}\n`));
  t.match(cli.stdout, new RegExp(`${idB}  \\S+  chunks=0  concurrency=2  roots=-  \\(this daemon\\)`));
  t.match(cli.stdout, new RegExp(`${idA}  `));

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

/**
 * A on the queue in the test, B a daemon process on the same queue; a job of 80 items (chunks of 4, ~400 ms
 * each) submitted to A (or to B); once B has recorded a chunk, B is killed with SIGKILL. Answers the job as
 * A reports it.
 */
async function killBMidJob(t: Tap.Test, queue: object = {}, submitTo: 'A' | 'B' = 'A') {
  const { Client } = await import('../src/client.js');
  const { spawnDaemon, cleanEnv } = await import('./helpers/daemon.js');
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const a = await daemon(t, redis, { ms: 100, queue });
  const dir = tempDir('hearth-bqkill-');
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      state_dir: join(dir, 'state'),
      server: { port: 0 },
      pool: { max_threads: 2, task_timeout_ms: 5000 },
      plugins: {
        files: false, git: false, dashboard: false,
        batch: { roots: [dir], queue: queueConfig(redis, queue) },
        'batch-faults': { module: faults, options: { ms: 100 } },
      },
    }),
  );
  const b = await spawnDaemon(['--config', config], cleanEnv());
  t.teardown(() => {
    if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGKILL');
  });
  const idA = await selfId(a);
  const idB = await waitFor('B in the registry', async () => {
    const l = await a.client.call<any>('GET', '/batch/daemons');
    return l.daemons.find((d: any) => d.id !== idA)?.id as string | undefined;
  });
  const items = Array.from({ length: 80 }, (_, i) => i);
  const bClient = new Client({ socket: join(dir, 'state', 'hearth.sock') });
  t.teardown(() => bClient.close());
  const submitter = submitTo === 'A' ? a.client : bClient;
  const { job_id: id } = await submitter.call<any>('POST', '/batch/jobs', { items, operation: 'fault.sleeps', batch_size: 4 });
  // B has recorded chunks and is running more (every chunk takes ~400 ms): then it dies.
  await waitFor('B to have run a chunk', async () => ((await a.client.call<any>('GET', `/batch/jobs/${id}`)).ran_on[idB] > 0 ? true : undefined));
  b.child.kill('SIGKILL');
  await b.exited;
  const killedAt = Date.now();
  const before = await a.client.call<any>('GET', `/batch/jobs/${id}`);
  t.not(before.status, 'completed', 'the job was not finished when B died');
  const job = await finished(a, id, 90_000);
  t.comment(`finished ${Date.now() - killedAt} ms after B was killed (lock and stalled check 2000 ms)`);
  return { a, job, items, idA, idB };
}

t.test('B killed with SIGKILL mid-job: A finishes the job, every item once', { skip: skipWithoutRedis }, async (t) => {
  const { a, job, items, idA, idB } = await killBMidJob(t);
  t.equal(job.status, 'completed');
  t.same(job.results, items.map((n) => n * 2), 'every result, in order');
  t.same(job.errors, []);
  t.equal(job.processed_items, 80, 'each item counted once');
  t.equal(job.ran_on[idA] + job.ran_on[idB], 20, `each chunk recorded once: ${JSON.stringify(job.ran_on)}`);
  t.ok(job.ran_on[idB] >= 1 && job.ran_on[idA] >= 1);
  t.ok(a.logs.some((l) => l.msg === 'batch queue: a chunk whose daemon died or hung is run again'), "A ran again a chunk B held (BullMQ's stalled check)");
  // B's entry expires from the registry (three heartbeats).
  await waitFor('B gone from the registry', async () =>
    (await a.client.call<any>('GET', '/batch/daemons')).daemons.some((d: any) => d.id === idB) ? undefined : true);
  t.pass('B is no longer listed');
});

t.test('the submitter B killed with SIGKILL mid-job: the job finishes without it, and A reports it', { skip: skipWithoutRedis }, async (t) => {
  const { job, items, idA, idB } = await killBMidJob(t, {}, 'B');
  t.equal(job.submitted_on, idB, 'submitted to B');
  t.equal(job.status, 'completed', 'finished by A');
  t.same(job.results, items.map((n) => n * 2), 'every result, in order');
  t.same(job.errors, []);
  t.equal(job.processed_items, 80, 'each item counted once');
  t.equal(job.ran_on[idA] + job.ran_on[idB], 20, `each chunk recorded once: ${JSON.stringify(job.ran_on)}`);
});

t.test('a chunk stalled more than max_stalls is given up: its items fail, the job still finishes', { skip: skipWithoutRedis }, async (t) => {
  // max_stalls 0: the chunks B held when it died are not run again but recorded as failed.
  const { job, items, idA, idB } = await killBMidJob(t, { max_stalls: 0 });
  t.equal(job.status, 'completed', 'the job finished (not left running)');
  t.ok(job.failed_items >= 4 && job.failed_items <= 8, `B's one or two chunks in flight failed: ${job.failed_items} items`);
  t.equal(job.processed_items + job.failed_items, 80, 'every item counted once');
  t.equal(job.errors.length, job.failed_items);
  for (const e of job.errors) {
    t.equal(e.code, 'ITEM_FAILED');
    t.match(e.message, /given up: job stalled more than allowable limit/);
  }
  const failed = new Set(job.errors.map((e: any) => e.index));
  t.same(job.results, items.map((n) => (failed.has(n) ? null : n * 2)), 'the others computed, in order');
  t.ok(job.ran_on[idA] >= 1 && job.ran_on[idB] >= 1, JSON.stringify(job.ran_on));
});

t.test('the store records a chunk once, whoever records it and however often', { skip: skipWithoutRedis }, async (t) => {
  const { Redis } = await import('ioredis');
  const { QueueStore } = await import('../plugins/batch/queue-store.js');
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const conn = new Redis({ path: redis.socket });
  t.teardown(() => conn.quit());
  const store = new QueueStore(conn, 'probe', 60);
  const heard: any[] = [];
  const sub = new Redis({ path: redis.socket });
  t.teardown(() => sub.quit());
  sub.on('message', (_c, m) => heard.push(JSON.parse(m)));
  await sub.subscribe(store.channel);
  const summary = {
    job_id: '11111111-2222-3333-4444-555555555555', operation: 'double', status: 'queued' as const, total_items: 5, processed_items: 0,
    failed_items: 0, batch_size: 2, max_concurrent: 1, created_at: new Date().toISOString(), started_at: null, finished_at: null,
  };
  const id = summary.job_id;
  await store.create({ summary, invalid: [{ index: 4, code: 'ITEM_INVALID', message: 'bad' }], chunks: 2, submitter: 'x' });
  t.equal(await store.start(id), 'running');
  t.equal(await store.start(id), 'running', 'starting again changes nothing');
  const c0 = { i: [0, 1], r: [0, 2], e: [] };
  t.equal(await store.record(id, 0, c0, 'd1'), true, 'first record of chunk 0');
  t.equal(await store.record(id, 0, c0, 'd2'), false, 'chunk 0 again (a re-run elsewhere): ignored');
  t.equal(await store.record(id, 0, c0, 'd1'), false, 'and again by the first daemon');
  t.match(await store.summary(id), { status: 'running', processed_items: 2, failed_items: 1, ran_on: { d1: 1 } });
  const c1 = { i: [2, 3], r: [4, null], e: [{ index: 3, code: 'ITEM_FAILED' as const, message: 'boom' }] };
  t.equal(await store.record(id, 1, c1, 'd2'), true, 'the last chunk completes the job');
  t.equal(await store.record(id, 1, c1, 'd1'), false);
  const job = await store.get(id);
  t.match(job, { status: 'completed', processed_items: 3, failed_items: 2, ran_on: { d1: 1, d2: 1 }, submitted_on: 'x' });
  t.ok(job!.finished_at && job!.started_at);
  t.same(job!.results, [0, 2, 4, null, null]);
  t.same(job!.errors!.map((e) => e.index), [3, 4], 'errors in index order');
  t.match(await store.cancel(id), { status: 'completed' }, 'cancelling a completed job leaves it');
  t.ok(Number(redis.cli('PTTL', `probe:job:${id}`)) > 0, 'a finished job expires after the retention');
  // Concurrent records of one chunk from many connections: exactly one wins.
  const other = { ...summary, job_id: '11111111-2222-3333-4444-666666666666' };
  await store.create({ summary: other, invalid: [], chunks: 1, submitter: 'x' });
  const wins = await Promise.all(Array.from({ length: 20 }, (_, k) => store.record(other.job_id, 0, { i: [0], r: [k], e: [] }, `d${k % 3}`)));
  t.equal(wins.filter(Boolean).length, 1, 'one of 20 concurrent records counts');
  t.match(await store.summary(other.job_id), { status: 'completed', processed_items: 1 });
  // A cancelled job takes no more records.
  const third = { ...summary, job_id: '11111111-2222-3333-4444-777777777777' };
  await store.create({ summary: third, invalid: [], chunks: 2, submitter: 'x' });
  t.match(await store.cancel(third.job_id), { status: 'cancelled', reason: 'cancelled by request' });
  t.equal(await store.record(third.job_id, 0, c0, 'd1'), false);
  t.equal(await store.start(third.job_id), 'cancelled');
  t.equal(await store.cancel('11111111-2222-3333-4444-888888888888'), undefined, 'no such job');
  t.same((await store.list()).map((j) => j.job_id).sort(), [id, other.job_id, third.job_id].sort(), 'every job listed');
  await waitFor('the events', async () => (heard.some((m) => m.data.job_id === third.job_id && m.type === 'batch.job.finished') ? true : undefined), 5000);
  const first = heard.filter((m) => m.data.job_id === id);
  t.same(first.map((m) => m.type), ['batch.job.progress', 'batch.job.progress', 'batch.job.finished'], 'running, chunk 0, chunk 1 (nothing for the ignored records)');
  t.match(first[2], { submitter: 'x', chunks: 2, chunks_done: 2, data: { status: 'completed', processed_items: 3, failed_items: 2, total_items: 5 } });
});

t.test('cancel and SSE from B of a job submitted to A', { skip: skipWithoutRedis }, async (t) => {
  const { openSse } = await import('./helpers/sse.js');
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const a = await daemon(t, redis, { ms: 100 });
  const b = await daemon(t, redis, { ms: 100 });
  // SSE on B of a job on A: progress, then finished, then the stream ends.
  const small = await a.client.call<any>('POST', '/batch/jobs', { items: Array.from({ length: 16 }, (_, i) => i), operation: 'fault.sleeps', batch_size: 2 });
  const sse = await openSse({ socket: b.socket }, `/batch/jobs/${small.job_id}/events`);
  t.teardown(() => sse.close());
  t.equal(sse.status, 200);
  await sse.until('finished', (r) => r.some((x) => x.event === 'batch.job.finished'), 60_000);
  const events = sse.events();
  t.match(events.at(-1), { job_id: small.job_id, status: 'completed', processed_items: 16, total_items: 16 });
  t.ok(events.length >= 2, `progress before the end (${events.length} events)`);
  const done = events.map((e) => e.processed_items + e.failed_items);
  t.same(done, [...done].sort((x, y) => x - y), 'progress never goes back');
  await waitFor('the stream to end', async () => (sse.ended() ? true : undefined), 5000);
  // Progress is published as for a local job, one event per 100 ms at most: not one per chunk.
  const many = await a.client.call<any>('POST', '/batch/jobs', { items: Array.from({ length: 150 }, (_, i) => i), operation: 'double', batch_size: 1 });
  const manySse = await openSse({ socket: b.socket }, `/batch/jobs/${many.job_id}/events`);
  t.teardown(() => manySse.close());
  await manySse.until('finished', (r) => r.some((x) => x.event === 'batch.job.finished'), 60_000);
  const manyJob = await finished(a, many.job_id);
  const ranMs = Date.parse(manyJob.finished_at) - Date.parse(manyJob.created_at);
  const progress = manySse.records.filter((r) => r.event === 'batch.job.progress').length;
  t.ok(progress <= Math.ceil(ranMs / 100) + 3, `${progress} progress events for 150 chunks in ${ranMs} ms`);
  t.match(manyJob, { status: 'completed', processed_items: 150 });
  // Opened while chunks finish fast: an event published before the snapshot may come over Redis after it.
  const manyDone = manySse.events().map((e) => e.processed_items + e.failed_items);
  t.same(manyDone, [...manyDone].sort((x, y) => x - y), 'progress never goes back, from the snapshot on');
  // A finished job's stream on B: the final state at once.
  const again = await openSse({ socket: b.socket }, `/batch/jobs/${small.job_id}/events`);
  await again.until('finished', (r) => r.length === 1, 5000);
  t.match(again.events()[0], { status: 'completed' });

  // Cancel on B of a job running on both: it stops; no more chunks run.
  const items = Array.from({ length: 200 }, (_, i) => i);
  const { job_id: id } = await a.client.call<any>('POST', '/batch/jobs', { items, operation: 'fault.sleeps', batch_size: 2 });
  const onA = await openSse({ socket: a.socket }, `/batch/jobs/${id}/events`);
  t.teardown(() => onA.close());
  await waitFor('progress', async () => ((await b.client.call<any>('GET', `/batch/jobs/${id}`)).processed_items >= 4 ? true : undefined));
  const cancelled = await answer(b.client, 'DELETE', `/batch/jobs/${id}`);
  t.equal(cancelled.status, 200);
  t.match(cancelled.json.data, { job_id: id, status: 'cancelled', reason: 'cancelled by request' });
  await onA.until('A hears the cancel', (r) => r.some((x) => x.event === 'batch.job.finished'), 10_000);
  t.match(onA.events().at(-1), { status: 'cancelled' }, "A's stream ends with the cancel");
  const job = await a.client.call<any>('GET', `/batch/jobs/${id}`);
  t.match(job, { status: 'cancelled', reason: 'cancelled by request' });
  t.ok(job.processed_items < 200, `stopped early (${job.processed_items})`);
  t.notOk('results' in job, 'a cancelled job has no results');
  await sleep(800);
  t.equal((await a.client.call<any>('GET', `/batch/jobs/${id}`)).processed_items, job.processed_items, 'nothing recorded after the cancel');
  const aborted = (await a.client.call<any>('GET', '/optimization/stats')).pool.cancelled + (await b.client.call<any>('GET', '/optimization/stats')).pool.cancelled;
  t.ok(aborted >= 1, `running chunks were aborted (${aborted})`);
  t.match((await answer(a.client, 'DELETE', `/batch/jobs/${id}`)).json.data, { status: 'cancelled', finished_at: job.finished_at }, 'cancelling again changes nothing');
  // Both still work.
  const after = await b.client.call<any>('POST', '/batch/jobs', { items: [1, 2, 3], operation: 'double' });
  t.match(await finished(a, after.job_id), { status: 'completed', results: [2, 4, 6] });
});

t.test('path jobs: only under a shared root, with a daemon alive that declares it, run only there', { skip: skipWithoutRedis }, async (t) => {
  const { writeFileSync } = await import('node:fs');
  const { createHash } = await import('node:crypto');
  const { join } = await import('node:path');
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const shared = tempDir('hearth-bqshared-');
  const lonely = tempDir('hearth-bqlonely-');
  const files = Array.from({ length: 12 }, (_, i) => {
    const path = join(shared, `f${i}.txt`);
    writeFileSync(path, `file ${i}\n`);
    return path;
  });
  const a = await daemon(t, redis, { batch: { shared_roots: [shared] } });
  const b = await daemon(t, redis);
  // C declares a root but runs no chunk (submits only).
  const c = await daemon(t, redis, { queue: { concurrency: 0 }, batch: { shared_roots: [lonely] } });
  const idA = await selfId(a);
  await waitFor('three daemons', async () => ((await a.client.call<any>('GET', '/batch/daemons')).daemons.length === 3 ? true : undefined));
  const listed = (await a.client.call<any>('GET', '/batch/daemons')).daemons;
  t.match(listed.find((d: any) => d.id === idA), { roots: [shared], concurrency: 2 });
  t.match(listed.find((d: any) => d.roots.includes(lonely)), { concurrency: 0 }, 'C is listed, running no chunk');

  const onB = await answer(b.client, 'POST', '/batch/jobs', { items: files, operation: 'hash_file' });
  t.equal(onB.status, 400, 'B declares no shared root');
  t.match(onB.json.error, { code: 'VALIDATION_FAILED', message: /shared root.*plugins\.batch\.shared_roots/ });
  const outside = await answer(a.client, 'POST', '/batch/jobs', { items: [...files, join(lonely, 'x')], operation: 'hash_file' });
  t.equal(outside.status, 400, 'an item outside the shared roots');
  t.match(outside.json.error.message, /is not an absolute path under a shared root/);
  const none = await answer(c.client, 'POST', '/batch/jobs', { items: [join(lonely, 'x')], operation: 'hash_file' });
  t.equal(none.status, 503, 'no daemon alive runs chunks under that root');
  t.match(none.json.error, { code: 'UNAVAILABLE', message: new RegExp(`No daemon alive .* ${lonely}`) });

  const { job_id: id } = await a.client.call<any>('POST', '/batch/jobs', { items: [...files, join(shared, 'missing')], operation: 'hash_file', batch_size: 1 });
  const job = await finished(b, id);
  t.match(job, { status: 'completed', shared_root: shared, processed_items: 12, failed_items: 1 });
  t.same(Object.keys(job.ran_on), [idA], `only A ran its chunks: ${JSON.stringify(job.ran_on)}`);
  t.same(job.results.slice(0, 12).map((r: any) => r.sha256), files.map((_, i) => createHash('sha256').update(`file ${i}\n`).digest('hex')));
  t.match(job.errors, [{ index: 12, code: 'ITEM_FAILED' }]);
  // Not path jobs: they run anywhere, C's too.
  const anywhere = await c.client.call<any>('POST', '/batch/jobs', { items: Array.from({ length: 40 }, (_, i) => i), operation: 'fault.sleeps', batch_size: 2 });
  const ran = (await finished(c, anywhere.job_id)).ran_on;
  t.equal(Object.keys(ran).length, 2, `A and B ran it, C (concurrency 0) did not: ${JSON.stringify(ran)}`);
});

t.test("a daemon's outstanding chunks count against pool.max_queue: QUEUE_FULL with Retry-After", { skip: skipWithoutRedis }, async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const a = await daemon(t, redis, { ms: 200, pool: { max_queue: 4 } });
  const b = await daemon(t, redis, { ms: 200, batch: { max_jobs: 1 } });
  const items = Array.from({ length: 40 }, (_, i) => i);
  const first = await answer(a.client, 'POST', '/batch/jobs', { items, operation: 'fault.sleeps', batch_size: 2 });
  t.equal(first.status, 202, 'a job larger than max_queue is taken when nothing waits');
  const second = await answer(a.client, 'POST', '/batch/jobs', { items: [1], operation: 'double' });
  t.equal(second.status, 429);
  t.match(second.json.error, { code: 'QUEUE_FULL', message: /chunks of this daemon's jobs wait on the batch queue \(pool\.max_queue is 4\)/ });
  t.match(second.headers['retry-after'], /^[1-9][0-9]?$/, `Retry-After: ${second.headers['retry-after']}`);
  // B's own backlog is empty: B takes jobs (the queue is shared, the backpressure is per submitter).
  const onB = await answer(b.client, 'POST', '/batch/jobs', { items: [1], operation: 'double' });
  t.equal(onB.status, 202);
  // max_jobs counts B's unfinished queue jobs.
  const slow = await answer(b.client, 'POST', '/batch/jobs', { items, operation: 'fault.sleeps', batch_size: 20 });
  const accepted = slow.status === 202 ? slow : await waitFor('B\'s first job done', async () => {
    const r = await answer(b.client, 'POST', '/batch/jobs', { items, operation: 'fault.sleeps', batch_size: 20 });
    return r.status === 202 ? r : undefined;
  });
  const tooMany = await answer(b.client, 'POST', '/batch/jobs', { items: [1], operation: 'double' });
  t.equal(tooMany.status, 429);
  t.match(tooMany.json.error.message, /Too many unfinished jobs \(1\)/);
  await b.client.call('DELETE', `/batch/jobs/${accepted.json.data.job_id}`);
  // Once the backlog drains (here: cancelled), A takes jobs again.
  await a.client.call('DELETE', `/batch/jobs/${first.json.data.job_id}`);
  const third = await waitFor('A to take a job', async () => {
    const r = await answer(a.client, 'POST', '/batch/jobs', { items: [5], operation: 'double' });
    return r.status === 202 ? r : undefined;
  }, 10_000);
  t.match(await finished(a, third.json.data.job_id), { status: 'completed', results: [10] });
});

t.test("a chunk's deadline counts from its start on the daemon that runs it, not from the job's submission", { skip: skipWithoutRedis }, async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  // One chunk at a time, 600 ms each, a deadline of 1500 ms: the sixth starts ~3 s after submission.
  const d = await daemon(t, redis, { ms: 600, pool: { max_threads: 1, task_timeout_ms: 1500 } });
  const slow = await d.client.call<any>('POST', '/batch/jobs', { items: [0, 1, 2, 3, 4, 5], operation: 'fault.sleeps', batch_size: 1 });
  const job = await finished(d, slow.job_id);
  t.match(job, { status: 'completed', results: [0, 2, 4, 6, 8, 10], errors: [], processed_items: 6 }, 'every chunk within its own deadline');
  t.ok(Date.parse(job.finished_at) - Date.parse(job.created_at) > 1500, 'though the job took longer than one deadline');
  // A chunk that never ends is stopped at its deadline; its items fail, the job finishes.
  const stuck = await d.client.call<any>('POST', '/batch/jobs', { items: [1, 2], operation: 'fault.loops', batch_size: 2 });
  const lost = await finished(d, stuck.job_id);
  t.match(lost, { status: 'completed', processed_items: 0, failed_items: 2 });
  t.match(lost.errors, [{ index: 0, code: 'ITEM_FAILED' }, { index: 1, code: 'ITEM_FAILED' }]);
  t.comment(lost.errors[0].message);
});

t.test('a Redis with an eviction policy: the daemon refuses to start, saying why; one changed later disables the queue until it is back', { skip: skipWithoutRedis }, async (t) => {
  const redis = await startRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] });
  t.teardown(() => redis.stop());
  await t.rejects(
    bootDaemon({ config: { plugins: { batch: { queue: { socket: redis.socket } } } } }),
    { name: 'ConfigError', message: new RegExp(`^plugin batch: batch queue unix:${redis.socket}: Redis maxmemory-policy is "allkeys-lru"; BullMQ needs "noeviction" \\(CONFIG SET maxmemory-policy noeviction\\)`) },
  );
  redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
  const d = await daemon(t, redis);
  t.match(await d.client.call<any>('GET', '/health'), { status: 'ok', reasons: [] }, 'with noeviction it starts');
  // Changed while the daemon runs: seen within a heartbeat; new jobs then run on this daemon only.
  redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru');
  const health = await waitFor('degraded', async () => {
    const h = await d.client.call<any>('GET', '/health');
    return h.status === 'degraded' ? h : undefined;
  }, 10_000);
  t.match(health.reasons, [/maxmemory-policy is "volatile-lru"/]);
  const local = await d.client.call<any>('POST', '/batch/jobs', { items: [1, 2], operation: 'double' });
  const job = await finished(d, local.job_id);
  t.match(job, { status: 'completed', results: [2, 4] });
  t.notOk('submitted_on' in job, 'the job ran locally, not through the queue');
  redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
  await waitFor('ok again', async () => ((await d.client.call<any>('GET', '/health')).status === 'ok' ? true : undefined), 10_000);
  const queued = await d.client.call<any>('POST', '/batch/jobs', { items: [3], operation: 'double' });
  t.match(await finished(d, queued.job_id), { status: 'completed', results: [6], submitted_on: await selfId(d) }, 'and the queue is used again');
});

t.test('Redis stopped mid-run: no 5xx, /health degraded, jobs run locally; back to normal when Redis returns', { skip: skipWithoutRedis }, async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const a = await daemon(t, redis, { ms: 100 });
  const b = await daemon(t, redis, { ms: 100 });
  const statuses: number[] = [];
  const ask = async (d: TestDaemon, method: string, path: string, body?: unknown) => {
    const r = await answer(d.client, method, path, body);
    statuses.push(r.status);
    return r;
  };
  const items = Array.from({ length: 60 }, (_, i) => i);
  const { job_id: id } = (await ask(a, 'POST', '/batch/jobs', { items, operation: 'fault.sleeps', batch_size: 2 })).json.data;
  await waitFor('progress', async () => ((await a.client.call<any>('GET', `/batch/jobs/${id}`)).processed_items >= 6 ? true : undefined));
  // Saved, then killed: the restart loads what was saved (chunks recorded after the save are run again).
  redis.cli('SAVE');
  await redis.stop();
  const health = await waitFor('degraded', async () => {
    const h = (await ask(b, 'GET', '/health')).json.data;
    return h.status === 'degraded' ? h : undefined;
  }, 10_000);
  t.match(health.reasons, [new RegExp(`batch queue unix:${redis.socket} unreachable`)]);
  const read = await ask(b, 'GET', `/batch/jobs/${id}`);
  t.equal(read.status, 503, 'reading a queue job while Redis is away');
  t.match(read.json.error, { code: 'UNAVAILABLE', message: /Redis .* is unreachable/ });
  t.equal((await ask(a, 'DELETE', `/batch/jobs/${id}`)).status, 503);
  t.equal((await ask(a, 'GET', '/batch/daemons')).status, 503);
  t.equal((await ask(a, 'GET', '/batch/jobs')).status, 200, 'the list answers (this daemon\'s jobs)');
  t.same((await ask(a, 'POST', '/batch/process', { items: [1, 2], operation: 'double' })).json.data.results, [2, 4]);
  const local = await ask(a, 'POST', '/batch/jobs', { items: [1, 2, 3], operation: 'double' });
  t.equal(local.status, 202, 'a new job runs here');
  const localJob = await finished(a, local.json.data.job_id);
  t.match(localJob, { status: 'completed', results: [2, 4, 6] });
  t.notOk('ran_on' in localJob, 'a local job (no queue)');
  t.ok(statuses.every((s) => s < 500 || s === 503), `no 5xx but the 503s: ${statuses.join(' ')}`);

  await redis.restart();
  await waitFor('ok again', async () => ((await ask(a, 'GET', '/health')).json.data.status === 'ok' ? true : undefined), 15_000);
  await waitFor('B ok again', async () => ((await ask(b, 'GET', '/health')).json.data.status === 'ok' ? true : undefined), 15_000);
  const job = await finished(b, id, 60_000);
  t.match(job, { status: 'completed', processed_items: 60 }, 'the job kept in Redis is answered again and finishes');
  t.same(job.results, items.map((n) => n * 2));
  t.equal(Object.values(job.ran_on as Record<string, number>).reduce((x, y) => x + y, 0), 30, 'each chunk recorded once');
  const list = await a.client.call<any[]>('GET', '/batch/jobs');
  t.ok(list.some((j) => j.job_id === id) && list.some((j) => j.job_id === local.json.data.job_id), 'the list has both');
  const next = await a.client.call<any>('POST', '/batch/jobs', { items: [7], operation: 'double' });
  const nextJob = await finished(b, next.job_id);
  t.match(nextJob, { status: 'completed', results: [14], submitted_on: await selfId(a) }, 'new jobs go through the queue again');
  t.equal(Object.keys(nextJob.ran_on).length, 1);
  t.ok(statuses.every((s) => s < 500 || s === 503), 'still no 5xx');
});

t.test('Redis away when the daemon starts: it starts, degraded, and uses the queue once Redis is there', { skip: skipWithoutRedis }, async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  await redis.stop();
  const d = await daemon(t, redis);
  const h = (await d.client.call<any>('GET', '/health'));
  t.match(h, { status: 'degraded', reasons: [/batch queue .* unreachable/] });
  const local = await d.client.call<any>('POST', '/batch/jobs', { items: [1], operation: 'double' });
  t.match(await finished(d, local.job_id), { status: 'completed', results: [2] });
  await redis.restart();
  await waitFor('ok', async () => ((await d.client.call<any>('GET', '/health')).status === 'ok' ? true : undefined), 15_000);
  const queued = await d.client.call<any>('POST', '/batch/jobs', { items: [2], operation: 'double' });
  t.match(await finished(d, queued.job_id), { status: 'completed', results: [4], ran_on: { [await selfId(d)]: 1 } });
});

t.test('a queue config without a Redis, or not a Redis URL, is refused at start', async (t) => {
  for (const queue of [{ name: 'team' }, 'http://localhost:6379', { socket: 'relative.sock' }, { url: 'redis://h:1', socket: '/x.sock' }]) {
    await t.rejects(bootDaemon({ config: { plugins: { batch: { queue } } } }), { message: /invalid config for plugin batch: \/plugins\/batch\/queue/ }, JSON.stringify(queue));
  }
});
