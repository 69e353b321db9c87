// The batch plugin through a real daemon over real HTTP, on real worker threads: the original example,
// results checked against node:crypto, zlib and git, faults that fail alone, validation, jobs with progress,
// cancellation, backpressure, restarts, and the CLI.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { Client } from '../src/client.js';
import { startDaemon } from '../src/daemon.js';
import { bootDaemon, cleanEnv, runCli, tempDir, type TestDaemon } from './helpers/daemon.js';
import { countLines } from '../plugins/batch/tasks/count_lines.js';
import double from '../plugins/batch/tasks/double.js';
import { gzipSize } from '../plugins/batch/tasks/gzip_size.js';
import { hashFile } from '../plugins/batch/tasks/hash_file.js';
import { sha256 } from '../plugins/batch/tasks/sha256.js';
import { parseItems, progressLine } from '../plugins/batch/cli.js';

const faults = join(import.meta.dirname, 'fixtures/plugins/batch-faults/index.js');
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Setup {
  root: string;
  d: TestDaemon;
}

async function setup(t: Tap.Test, extra: { pool?: object; batch?: object; faults?: object; server?: object } = {}): Promise<Setup> {
  const root = tempDir('hearth-batch-');
  const d = await bootDaemon({
    config: {
      pool: { max_threads: 2, task_timeout_ms: 3000, ...extra.pool },
      ...(extra.server ? { server: extra.server } : {}),
      plugins: { batch: { roots: [root], ...extra.batch }, 'batch-faults': { module: faults, options: { ms: 20, ...extra.faults } } },
    },
  });
  t.teardown(() => d.close());
  return { root, d };
}

async function answer(client: Client, method: string, path: string, body?: unknown) {
  const res = await client.raw(method, path, body);
  return { status: res.status, headers: res.headers, json: JSON.parse(res.body) };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

t.test('the original example: [1,2,3,4,5] doubled', async (t) => {
  const { d } = await setup(t);
  const res = await answer(d.tcp, 'POST', '/batch/process', { items: [1, 2, 3, 4, 5], operation: 'double', batch_size: 10 });
  t.equal(res.status, 200);
  t.same(res.json.data, { operation: 'double', total_items: 5, processed_items: 5, failed_items: 0, results: [2, 4, 6, 8, 10], errors: [], batch_size: 10 });
  const many = Array.from({ length: 1000 }, (_, i) => i);
  const big = await d.client.call<any>('POST', '/batch/process', { items: many, operation: 'double', batch_size: 7, max_concurrent: 3 });
  t.same(big.results, many.map((n) => n * 2), 'results in input order across 143 chunks');
  t.equal(big.batch_size, 7);
  const dflt = await d.client.call<any>('POST', '/batch/process', { items: [1.5], operation: 'double' });
  t.equal(dflt.batch_size, 20, 'plugins.batch.batch_size is the default');
  const stats = await d.client.call<any>('GET', '/optimization/stats');
  t.match(stats.pool, { threads: 2, max_threads: 2, queue_size: 0, running: 0, failed: 0 });
  t.ok(stats.pool.completed >= 145);
  t.ok(stats.metrics['batch.double'], 'the operation is timed');
});

t.test('sha256 and gzip_size agree with node:crypto and zlib; a bad item fails alone', async (t) => {
  const { d } = await setup(t);
  const texts = ['', 'hello', 'héllo wörld ✓', 'x'.repeat(100_000)];
  const s = await d.client.call<any>('POST', '/batch/process', { items: texts, operation: 'sha256', batch_size: 3 });
  t.same(s.results, texts.map((x) => sha(x)));
  const g = await d.client.call<any>('POST', '/batch/process', { items: [...texts, 42], operation: 'gzip_size' });
  t.same(g.results, [...texts.map((x) => gzipSync(Buffer.from(x)).length), null]);
  t.same(g.errors, [{ index: 4, code: 'ITEM_INVALID', message: 'the item must be string' }]);
  t.match(g, { total_items: 5, processed_items: 4, failed_items: 1 });
});

t.test('hash_file agrees with git hash-object; count_lines; paths outside the roots fail alone', async (t) => {
  const { root, d } = await setup(t);
  mkdirSync(join(root, 'sub'));
  const files = {
    'a.txt': 'one\ntwo\n',
    'sub/b.bin': Buffer.from([0, 1, 2, 255, 10, 13]),
    'empty': '',
    'big.txt': 'line\n'.repeat(400_000) + 'tail',
  };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(root, name), content);
  const outside = tempDir('hearth-outside-');
  writeFileSync(join(outside, 'secret'), 'no');
  symlinkSync(join(outside, 'secret'), join(root, 'link-out'));
  const paths = Object.keys(files).map((n) => join(root, n));
  const res = await d.client.call<any>('POST', '/batch/process', {
    items: [...paths, 'a.txt', join(root, 'missing'), join(outside, 'secret'), join(root, 'link-out'), join(root, 'sub')],
    operation: 'hash_file',
    batch_size: 2,
  });
  for (const [i, p] of paths.entries()) {
    const oid = execFileSync('git', ['hash-object', p], { encoding: 'utf8' }).trim();
    const bytes = Buffer.from(Object.values(files)[i]!);
    t.same(res.results[i], { sha256: sha(bytes), git_oid: oid, size: bytes.length }, p);
  }
  t.same(res.results[4], res.results[0], 'a relative path is taken from the first root');
  t.same(
    res.errors.map((e: any) => [e.index, e.code]),
    [
      [5, 'ITEM_FAILED'],
      [6, 'ITEM_INVALID'],
      [7, 'ITEM_INVALID'],
      [8, 'ITEM_INVALID'],
    ],
  );
  t.match(res.errors[1].message, /outside the configured roots/);
  const lines = await d.client.call<any>('POST', '/batch/process', { items: paths, operation: 'count_lines' });
  t.same(lines.results, [2, 2, 0, 400_001]);
  // In this thread too (what runs in workers is not counted by coverage otherwise).
  t.equal(await countLines(paths[0]!, { roots: [root] }), 2);
  t.same(await hashFile(paths[2]!, { roots: [root] }), { sha256: sha(''), git_oid: 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391', size: 0 });
  t.equal(sha256('a'), sha('a'));
  t.equal(gzipSize('a'), gzipSync('a').length);
  t.same(await double({ items: [1, 'x'] }), { results: [2, NaN], errors: [] });
});

t.test('with the files plugin on, path operations use its roots', async (t) => {
  const root = tempDir('hearth-batch-files-');
  writeFileSync(join(root, 'f'), 'x\n');
  const d = await bootDaemon({ config: { plugins: { files: { roots: [root] }, batch: {} } } });
  t.teardown(() => d.close());
  const res = await d.client.call<any>('POST', '/batch/process', { items: [join(root, 'f'), '/etc/hostname'], operation: 'count_lines' });
  t.same(res.results, [1, null]);
  t.equal(res.errors[0].code, 'ITEM_INVALID');
});

t.test('a task that throws, exits or loops forever fails alone, and the next request succeeds', async (t) => {
  const { d } = await setup(t, { pool: { task_timeout_ms: 1000 } });
  for (const fault of ['throws', 'exits', 'loops']) {
    const res = await d.client.call<any>('POST', '/batch/process', { items: [1, 2, 3], operation: `fault.${fault}`, batch_size: 2 });
    t.match(res, { total_items: 3, processed_items: 0, failed_items: 3, results: [null, null, null] }, fault);
    t.same(res.errors.map((e: any) => e.code), ['ITEM_FAILED', 'ITEM_FAILED', 'ITEM_FAILED']);
    t.match(res.errors[0].message, { throws: /always throws/, exits: /exited/, loops: /deadline/ }[fault]!);
    const next = await d.client.call<any>('POST', '/batch/process', { items: [1, 2, 3, 4, 5], operation: 'double' });
    t.same(next.results, [2, 4, 6, 8, 10], `after ${fault}, the next request succeeds`);
  }
  const health = await d.client.call<any>('GET', '/health');
  t.equal(health.status, 'ok');
  const pool = (await d.client.call<any>('GET', '/optimization/stats')).pool;
  t.match(pool, { threads: 2, timed_out: 2 });
  t.ok(pool.failed >= 4);
});

t.test('validation: bad bodies and unknown operations are 400, too many items 413', async (t) => {
  const { d } = await setup(t, { batch: { max_items: 10 } });
  const cases: Array<[unknown, number, string]> = [
    [{ operation: 'double' }, 400, 'VALIDATION_FAILED'],
    [{ items: 'nope', operation: 'double' }, 400, 'VALIDATION_FAILED'],
    [{ items: [1], operation: 'triple' }, 400, 'VALIDATION_FAILED'],
    [{ items: [1], operation: 'double', batch_size: 0 }, 400, 'VALIDATION_FAILED'],
    [{ items: [1], operation: 'double', max_concurrent: 'x' }, 400, 'VALIDATION_FAILED'],
    [{ items: [1], operation: 'double', extra: true }, 400, 'VALIDATION_FAILED'],
    [{ items: Array(11).fill(1), operation: 'double' }, 413, 'PAYLOAD_TOO_LARGE'],
  ];
  for (const [body, status, code] of cases) {
    for (const path of ['/batch/process', '/batch/jobs']) {
      const res = await answer(d.client, 'POST', path, body);
      t.same([res.status, res.json.error.code], [status, code], `${path} ${JSON.stringify(body).slice(0, 60)}`);
    }
  }
  const unknown = await answer(d.client, 'POST', '/batch/process', { items: [1], operation: 'triple' });
  t.match(unknown.json.error.details, [{ path: '/operation', message: /"double"/ }]);
  const empty = await d.client.call<any>('POST', '/batch/process', { items: [], operation: 'double' });
  t.same(empty, { operation: 'double', total_items: 0, processed_items: 0, failed_items: 0, results: [], errors: [], batch_size: 20 });
  t.equal((await answer(d.client, 'GET', '/batch/jobs/nope')).status, 404);
  t.equal((await answer(d.client, 'DELETE', '/batch/jobs/00000000-0000-0000-0000-000000000000')).status, 404);
  t.equal((await answer(d.client, 'GET', '/batch/jobs/00000000-0000-0000-0000-000000000000/events')).status, 404);
  const ops = await d.client.call<any[]>('GET', '/batch/operations');
  t.same(
    ops.map((o) => o.name),
    ['count_lines', 'double', 'fault.exits', 'fault.loops', 'fault.sleeps', 'fault.throws', 'gzip_size', 'hash_file', 'sha256'],
  );
  t.match(ops.find((o) => o.name === 'double'), { item_schema: { type: 'number' }, owner: 'batch' });
  t.match(ops.find((o) => o.name === 'fault.loops'), { owner: 'batch-faults' });
  const openapi = await d.client.call<any>('GET', '/openapi.json').catch(() => undefined);
  if (openapi) t.ok(JSON.stringify(openapi).includes('/batch/process'));
});

t.test('a job runs in the background with progress events, and its results are kept', async (t) => {
  const { d } = await setup(t);
  const items = Array.from({ length: 40 }, (_, i) => i);
  const started = await answer(d.client, 'POST', '/batch/jobs', { items, operation: 'fault.sleeps', batch_size: 2, max_concurrent: 2 });
  t.equal(started.status, 202);
  t.match(started.json.data, { job_id: /^[0-9a-f-]{36}$/, status: /queued|running/ });
  const id = started.json.data.job_id;
  // The SSE stream: progress events, then the finished event, then the stream ends by itself.
  const { request } = await import('undici');
  const { Agent } = await import('undici');
  const agent = new Agent({ connect: { socketPath: d.socket } });
  t.teardown(() => agent.close());
  const sse = await request(`http://localhost/batch/jobs/${id}/events`, { dispatcher: agent });
  t.match(sse.headers['content-type'], /^text\/event-stream/);
  const text = await sse.body.text();
  t.match(text, /event: batch.job.progress/);
  t.match(text, /event: batch.job.finished\ndata: .*"status":"completed"/);
  const job = await d.client.call<any>('GET', `/batch/jobs/${id}`);
  t.match(job, { job_id: id, operation: 'fault.sleeps', status: 'completed', total_items: 40, processed_items: 40, failed_items: 0, batch_size: 2 });
  t.ok(job.started_at && job.finished_at);
  t.same(job.results, items.map((n) => n * 2));
  const list = await d.client.call<any[]>('GET', '/batch/jobs');
  t.match(list, [{ job_id: id, status: 'completed' }]);
  t.notOk('results' in list[0], 'the list has no results');
  const text2 = await d.client.raw('GET', '/batch/jobs?format=text');
  t.match(text2.body, new RegExp(`${id} completed fault.sleeps 40/40`));
  const after = await request(`http://localhost/batch/jobs/${id}/events`, { dispatcher: agent });
  t.match(await after.body.text(), /event: batch.job.finished/, 'a finished job\'s stream says so and ends');
  t.match(await answer(d.client, 'DELETE', `/batch/jobs/${id}`), { status: 409, json: { error: { code: 'CONFLICT' } } });
});

t.test('cancelling a running job stops its chunks; the pool keeps working', async (t) => {
  const { d } = await setup(t, { faults: { ms: 200 }, batch: { max_running_jobs: 1 } });
  const items = Array.from({ length: 200 }, (_, i) => i);
  const { job_id: id } = await d.client.call<any>('POST', '/batch/jobs', { items, operation: 'fault.sleeps', batch_size: 5, max_concurrent: 2 });
  const second = await d.client.call<any>('POST', '/batch/jobs', { items: [1], operation: 'double' });
  t.equal(second.status, 'queued', 'a job beyond max_running_jobs waits');
  await waitFor('progress', async () => ((await d.client.call<any>('GET', `/batch/jobs/${id}`)).status === 'running' ? true : undefined));
  const cancelled = await d.client.call<any>('DELETE', `/batch/jobs/${id}`);
  t.equal(cancelled.job_id, id);
  const job = await waitFor('cancelled', async () => {
    const j = await d.client.call<any>('GET', `/batch/jobs/${id}`);
    return j.status === 'cancelled' ? j : undefined;
  });
  t.ok(job.processed_items < 200, `stopped early (${job.processed_items} processed)`);
  t.equal(job.reason, 'cancelled by request');
  t.equal((await d.client.call<any>('DELETE', `/batch/jobs/${id}`)).status, 'cancelled', 'cancelling twice is fine');
  const done = await waitFor('second job', async () => {
    const j = await d.client.call<any>('GET', `/batch/jobs/${second.job_id}`);
    return j.status === 'completed' ? j : undefined;
  });
  t.same(done.results, [2]);
  // A queued job is cancelled without running.
  const long = await d.client.call<any>('POST', '/batch/jobs', { items, operation: 'fault.sleeps', batch_size: 5, max_concurrent: 2 });
  const queued = await d.client.call<any>('POST', '/batch/jobs', { items: [1], operation: 'double' });
  t.match(await d.client.call<any>('DELETE', `/batch/jobs/${queued.job_id}`), { status: 'cancelled', started_at: null });
  await d.client.call('DELETE', `/batch/jobs/${long.job_id}`);
  const stats = (await d.client.call<any>('GET', '/optimization/stats')).pool;
  t.ok(stats.cancelled >= 1, 'running chunks were aborted');
  t.same((await d.client.call<any>('POST', '/batch/process', { items: [1, 2], operation: 'double' })).results, [2, 4]);
});

t.test('a flood gets 429 QUEUE_FULL with Retry-After, and /health still answers fast', async (t) => {
  const { d } = await setup(t, { pool: { max_threads: 1, max_queue: 2 }, faults: { ms: 300 }, batch: { max_jobs: 2 } });
  const body = { items: [1, 2, 3, 4], operation: 'fault.sleeps', batch_size: 1, max_concurrent: 4 };
  const flood = Array.from({ length: 30 }, () => answer(d.tcp, 'POST', '/batch/process', body));
  await sleep(100);
  const t0 = Date.now();
  const health = await answer(d.tcp, 'GET', '/health');
  t.equal(health.status, 200);
  t.ok(Date.now() - t0 < 2000, `/health answered in ${Date.now() - t0} ms during the flood`);
  const answers = await Promise.all(flood);
  const full = answers.filter((a) => a.status === 429);
  const ok = answers.filter((a) => a.status === 200);
  t.ok(full.length > 0, `${full.length} refused`);
  t.ok(ok.length > 0, `${ok.length} served`);
  t.equal(full.length + ok.length, 30, 'nothing else');
  t.match(full[0], { headers: { 'retry-after': '1' }, json: { error: { code: 'QUEUE_FULL' } } });
  for (const a of ok) t.same(a.json.data.results, [2, 4, 6, 8]);
  // Jobs: at most max_jobs unfinished.
  const jobBody = { items: [1, 2, 3, 4, 5, 6], operation: 'fault.sleeps', batch_size: 1, max_concurrent: 1 };
  const j1 = await answer(d.client, 'POST', '/batch/jobs', jobBody);
  const j2 = await answer(d.client, 'POST', '/batch/jobs', jobBody);
  const j3 = await answer(d.client, 'POST', '/batch/jobs', jobBody);
  t.same([j1.status, j2.status, j3.status], [202, 202, 429]);
  const after = await d.client.call<any>('GET', '/optimization/stats');
  t.ok(after.pool.queue_size <= 2, 'the queue never passes its bound');
});

t.test('jobs survive a restart; one running at shutdown is failed with "daemon stopped"', async (t) => {
  const { d } = await setup(t, { faults: { ms: 100 }, server: { close_timeout_ms: 2000 } });
  const done = await d.client.call<any>('POST', '/batch/jobs', { items: [1, 2, 3], operation: 'double' });
  await waitFor('done', async () => ((await d.client.call<any>('GET', `/batch/jobs/${done.job_id}`)).status === 'completed' ? true : undefined));
  const long = await d.client.call<any>('POST', '/batch/jobs', { items: Array(100).fill(1), operation: 'fault.sleeps', batch_size: 1, max_concurrent: 1 });
  await waitFor('running', async () => ((await d.client.call<any>('GET', `/batch/jobs/${long.job_id}`)).processed_items > 0 ? true : undefined));
  const t0 = Date.now();
  await d.close();
  t.ok(Date.now() - t0 < 10_000, 'the close did not hang');
  const again = await startDaemon({ flags: { stateDir: d.stateDir, port: 0, config: join(d.stateDir, 'config.json') }, env: cleanEnv(), logDestination: process.stderr });
  const client = new Client({ socket: again.listening.socket });
  t.teardown(async () => {
    await client.close();
    await again.close();
  });
  t.match(await client.call<any>('GET', `/batch/jobs/${done.job_id}`), { status: 'completed', results: [2, 4, 6] });
  const failed = await client.call<any>('GET', `/batch/jobs/${long.job_id}`);
  t.match(failed, { status: 'failed', reason: 'daemon stopped', total_items: 100 });
  t.ok(failed.processed_items > 0 && failed.processed_items < 100, `progress kept (${failed.processed_items})`);
  t.ok(failed.finished_at);
  t.equal(readdirSync(join(d.stateDir, 'batch-jobs')).filter((f) => f.endsWith('.tmp')).length, 0);
});

t.test('finished jobs are dropped after job_retention_seconds', async (t) => {
  const { d } = await setup(t, { batch: { job_retention_seconds: 1 } });
  const job = await d.client.call<any>('POST', '/batch/jobs', { items: [1], operation: 'double' });
  await waitFor('done', async () => ((await d.client.call<any>('GET', `/batch/jobs/${job.job_id}`)).status === 'completed' ? true : undefined));
  await waitFor('dropped', async () => ((await answer(d.client, 'GET', `/batch/jobs/${job.job_id}`)).status === 404 ? true : undefined), 10_000);
  await waitFor('file removed', async () => (readdirSync(join(d.stateDir, 'batch-jobs')).length === 0 ? true : undefined), 5000);
  t.pass('dropped');
});

t.test('CLI: batch run, jobs, cancel', async (t) => {
  const { d } = await setup(t, { faults: { ms: 300 } });
  const base = ['--config', join(d.stateDir, 'config.json'), '--state-dir', d.stateDir, 'batch'];
  const itemsFile = join(d.stateDir, 'items.json');
  writeFileSync(itemsFile, JSON.stringify([4, 5]));
  const r = await runCli([...base, 'run', 'double', '1', '2', '3', '--file', itemsFile, '--batch-size', '2'], cleanEnv(), 60_000);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.match(out, { status: 'completed', results: [2, 4, 6, 8, 10], errors: [] });
  t.match(r.stderr, /completed 5\/5/, 'plain progress lines when not a terminal');
  const jobs = await runCli([...base, 'jobs'], cleanEnv(), 60_000);
  t.match(jobs.stdout, new RegExp(`${out.job_id}  completed  double  5/5`));
  const long = await d.client.call<any>('POST', '/batch/jobs', { items: Array(100).fill(1), operation: 'fault.sleeps', batch_size: 1, max_concurrent: 1 });
  const c = await runCli([...base, 'cancel', long.job_id], cleanEnv(), 60_000);
  t.equal(c.code, 0, c.stderr);
  t.match(c.stdout, new RegExp(`${long.job_id} (running|queued|cancelled)`));
  const bad = await runCli([...base, 'run', 'nope', '1'], cleanEnv(), 60_000);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /VALIDATION_FAILED/);
  // The pieces, in this process.
  t.same(parseItems(['1', 'a b', '"q"'], undefined), [1, 'a b', 'q']);
  t.same(parseItems([], '-', () => 'x\ny\n'), ['x', 'y']);
  t.equal(progressLine({ job_id: 'j', operation: 'o', status: 'running', total_items: 4, processed_items: 1, failed_items: 1 }, false), 'running 2/4 failed=1\n');
  t.match(progressLine({ job_id: 'j', operation: 'o', status: 'running', total_items: 4, processed_items: 2, failed_items: 0 }, true), /\r\[#{15}\.{15}\]  50% 2\/4 running/);
  t.match(progressLine({ job_id: 'j', operation: 'o', status: 'completed', total_items: 0, processed_items: 0, failed_items: 0 }, true), /100%/);
});
