// The batch plugin through a real daemon over real HTTP, on real worker threads: the original example,
// results checked against node:crypto, zlib and git, faults that fail alone, validation, backpressure
// (jobs and the CLI are in batch-jobs.test.ts).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { answer, setup, sleep } from './helpers/batch.js';
import { Client } from '../src/client.js';
import { bootDaemon, tempDir } from './helpers/daemon.js';
import { countLines } from '../plugins/batch/tasks/count_lines.js';
import double from '../plugins/batch/tasks/double.js';
import { gzipSize } from '../plugins/batch/tasks/gzip_size.js';
import { hashFile } from '../plugins/batch/tasks/hash_file.js';
import { sha256 } from '../plugins/batch/tasks/sha256.js';

// Real threads and daemons, each loading TypeScript: slow on a loaded machine, so more than the default limit.
t.setTimeout(300_000);

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

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
  const { d } = await setup(t, { pool: { task_timeout_ms: 4000 } });
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
  t.match(ops.find((o) => o.name === 'fault.loops'), { owner: 'batch-faults', paths: false, shareable: false });
  t.match(ops.find((o) => o.name === 'hash_file'), { paths: true, shareable: false });
  t.match(ops.find((o) => o.name === 'sha256'), { paths: false, shareable: true, version: '1' });
  const openapi = await d.client.call<any>('GET', '/openapi.json').catch(() => undefined);
  if (openapi) t.ok(JSON.stringify(openapi).includes('/batch/process'));
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

t.test('an operation that takes paths cannot be shareable; a name is checked; a second one of a name is refused', async (t) => {
  const { Operations } = await import('../plugins/batch/operations.js');
  const ops = new Operations();
  const run = async () => ({ results: [], errors: [] });
  t.throws(() => ops.add('mine', { name: 'reads', itemSchema: { type: 'string' }, paths: true, shareable: true, run }), /takes paths.*cannot be shareable/);
  t.throws(() => ops.add('mine', { name: 'Bad Name', itemSchema: {}, run }), /must be lower-case/);
  ops.add('mine', { name: 'reads', itemSchema: { type: 'string' }, paths: true, run });
  t.throws(() => ops.add('other', { name: 'reads', itemSchema: {}, run }), /already registered by mine/);
  t.match(ops.list(), [{ name: 'reads', owner: 'mine', paths: true, shareable: false, version: '1' }]);
});
