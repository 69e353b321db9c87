// Batch jobs through a real daemon over real HTTP, on real worker threads: progress events, results kept,
// cancellation, restarts, retention, and the CLI.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { answer, setup, sleep } from './helpers/batch.js';
import { Client } from '../src/client.js';
import { startDaemon } from '../src/daemon.js';
import { cleanEnv, runCli } from './helpers/daemon.js';
import { parseItems, progressLine } from '../plugins/batch/cli.js';

// Real threads and daemons, each loading TypeScript: slow on a loaded machine, so more than the default limit.
t.setTimeout(300_000);


async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

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
  // Cancelling a finished job: 200 with its final state, and nothing about it changes.
  const cancelDone = await answer(d.client, 'DELETE', `/batch/jobs/${id}`);
  t.equal(cancelDone.status, 200, 'cancelling a completed job is not an error');
  t.match(cancelDone.json, { success: true, data: { job_id: id, status: 'completed', processed_items: 40, finished_at: job.finished_at } });
  t.equal(cancelDone.json.data?.reason, undefined, 'no cancellation reason is added');
  t.same(await d.client.call<any>('GET', `/batch/jobs/${id}`), job, 'the job, its results included, is unchanged');
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
  const again = await answer(d.client, 'DELETE', `/batch/jobs/${id}`);
  t.equal(again.status, 200, 'cancelling twice is fine');
  t.match(again.json.data, { status: 'cancelled', finished_at: job.finished_at, processed_items: job.processed_items });
  t.same(await d.client.call<any>('GET', `/batch/jobs/${id}`), job, 'and changes nothing');
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
  const cancelFailed = await answer(client, 'DELETE', `/batch/jobs/${long.job_id}`);
  t.equal(cancelFailed.status, 200, 'cancelling a failed job is not an error');
  t.match(cancelFailed.json.data, { status: 'failed', reason: 'daemon stopped', finished_at: failed.finished_at });
  t.same(await client.call<any>('GET', `/batch/jobs/${long.job_id}`), failed, 'and changes nothing');
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
