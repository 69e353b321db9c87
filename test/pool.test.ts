// The worker pool on real threads: results, a task that throws, exits or loops forever fails alone (the
// thread is replaced and the next task runs), cancellation of queued and running tasks, the queue bound.
import t from 'tap';
import { HearthError } from '../src/errors.js';
import { PoolService, abortError, isAbortError } from '../src/services/pool.js';
import run from '../src/services/worker.js';
import { readdirSync, readFileSync } from 'node:fs';

// Real threads and daemons, each loading TypeScript: slow on a loaded machine, so more than the default limit.
t.setTimeout(240_000);

const task = (name: string) => new URL(`./fixtures/tasks/${name}.js`, import.meta.url);

function pool(t: Tap.Test, options: Partial<ConstructorParameters<typeof PoolService>[0]> = {}) {
  const p = new PoolService({ max_threads: 2, max_queue: 10, task_timeout_ms: 10_000, ...options });
  t.teardown(() => p.close());
  return p;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

t.test('runs a task module in a worker and returns its result', async (t) => {
  const p = pool(t);
  t.same(await p.run(task('echo'), { a: [1, 2] }), { a: [1, 2] });
  t.same(await p.run(task('sleeps').href, { items: [1, 2], context: { ms: 1 } }), { results: [2, 4], errors: [] });
  t.match(p.stats(), { threads: 2, max_threads: 2, completed: 2, failed: 0, running: 0, queue_size: 0 });
});

t.test('a task that throws, one that exits and one that loops forever each fail alone', async (t) => {
  const p = pool(t, { task_timeout_ms: 2000 });
  const thrown = await rejection(p.run(task('throws'), {}));
  t.match(thrown.message, /always throws/);
  t.same(await p.run(task('echo'), 1), 1, 'the next task runs');
  const exited = await rejection(p.run(task('exits'), {}));
  t.match(exited.message, /exited/);
  t.same(await p.run(task('echo'), 2), 2, 'a thread that exited was replaced');
  const started = Date.now();
  const [looped, beside] = await Promise.all([
    rejection(p.run(task('loops'), {})),
    p.run(task('sleeps'), { items: [21], context: { ms: 10 } }),
  ]);
  t.ok(looped instanceof HearthError && looped.code === 'TIMEOUT', 'the stuck task times out');
  t.ok(Date.now() - started < 8000, 'within a generous bound of its deadline');
  t.same(beside, { results: [42], errors: [] }, 'a task beside the stuck one was not affected');
  t.same(await p.run(task('echo'), 3), 3, 'the pool keeps running after a thread was terminated');
  t.match(p.stats(), { failed: 3, timed_out: 1 });
  t.equal(p.stats().threads, 2, 'the thread count is restored');
});

t.test('a per-task timeout overrides the pool deadline', async (t) => {
  const p = pool(t);
  const err = await rejection(p.run(task('loops'), {}, { timeoutMs: 200 }));
  t.match(err, { code: 'TIMEOUT' });
});

t.test('cancellation: a queued task leaves the queue, a running one has its thread stopped', async (t) => {
  const p = pool(t, { max_threads: 1 });
  const running = new AbortController();
  const queued = new AbortController();
  const a = rejection(p.run(task('loops'), {}, { signal: running.signal }));
  const b = rejection(p.run(task('echo'), 'never', { signal: queued.signal }));
  t.equal(p.stats().queue_size, 1);
  queued.abort();
  t.ok(isAbortError(await b), 'the queued task is cancelled');
  t.equal(p.stats().queue_size, 0);
  running.abort(new Error('stop it'));
  const err = await a;
  t.ok(isAbortError(err), 'the running task is cancelled');
  t.equal(err.message, 'stop it');
  t.same(await p.run(task('echo'), 'after'), 'after');
  t.ok(isAbortError(await rejection(p.run(task('echo'), 1, { signal: AbortSignal.abort() }))), 'an aborted signal never runs');
  t.equal(p.stats().cancelled, 3);
});

t.test('the queue is bounded: QUEUE_FULL at once, with Retry-After', async (t) => {
  const p = pool(t, { max_threads: 1, max_queue: 2 });
  const stop = new AbortController();
  const busy = [0, 1, 2].map(() => p.run(task('loops'), {}, { signal: stop.signal }).catch((e: Error) => e));
  t.ok(p.full);
  const err = await rejection(p.run(task('echo'), 1));
  t.ok(err instanceof HearthError);
  t.match(err, { code: 'QUEUE_FULL', status: 429, headers: { 'Retry-After': '1' } });
  stop.abort();
  await Promise.all(busy);
  t.notOk(p.full);
  t.same(await p.run(task('echo'), 'ok'), 'ok');
});

t.test('close refuses new tasks and cancels queued ones', async (t) => {
  const p = new PoolService({ max_threads: 1, max_queue: 5, task_timeout_ms: 10_000 });
  const running = p.run(task('loops'), {}).catch((e: Error) => e);
  const queued = p.run(task('echo'), 1).catch((e: Error) => e);
  await p.close();
  t.ok(isAbortError(await queued));
  t.ok((await running) instanceof Error, 'the running task is cut off');
  t.match(await rejection(p.run(task('echo'), 1)), { code: 'QUEUE_FULL' });
  await p.close();
});

t.test('worker threads run at a lower priority than the event loop (Linux)', { skip: process.platform !== 'linux' }, async (t) => {
  const nices = () =>
    readdirSync('/proc/self/task').map((tid) => {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    });
  const before = nices().filter((n) => n === 5).length;
  const p = pool(t, { worker_nice: 5 });
  await Promise.all([p.run(task('echo'), 1), p.run(task('echo'), 2)]);
  t.equal(nices().filter((n) => n === 5).length - before, 2, 'both worker threads are at nice 5');
  t.equal(readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[16], '0', 'the main thread is not');
  const both = () => Promise.all([p.run(task('nice'), { ms: 300 }), p.run(task('nice'), { ms: 300 })]);
  t.same(await both(), [5, 5], 'tasks run at nice 5');
  await rejection(p.run(task('exits'), {}));
  t.same(await both(), [5, 5], 'so does the thread that replaced one that exited');
  const same = pool(t, { worker_nice: 0 });
  t.equal(await same.run(task('nice'), null), 0, 'at worker_nice 0 the threads keep the event loop\'s priority');
});

t.test('the worker entry, in this thread', async (t) => {
  t.same(await run({ module: task('echo').href, input: 5 }), 5);
  await t.rejects(run({ module: new URL('./fixtures/plugins/not-a-plugin/index.js', import.meta.url).href, input: 1 }), /default export/);
  t.equal(abortError(undefined).message, 'The task was cancelled');
  t.equal(abortError('why').message, 'why');
});
