// Jobs through the batch queue: a job is cut into chunks at submission and each chunk goes through
// BullMQ to whichever daemon on the queue takes it; that daemon runs it on its own pool and records its
// result in Redis. Here: admission (a path job's root, backpressure), submission, running a chunk that
// BullMQ hands to this daemon, and what the queue's channel says (progress, cancels).
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { HearthError, isHearthError } from '../../src/errors.js';
import { newJobSummary, PROGRESS_EVERY_MS, type JobSummary } from './jobs.js';
import type { Operation } from './operations.js';
import { BatchQueue, type BatchQueueOptions, type ChunkData } from './queue.js';
import type { QueueSettings } from './queue-options.js';
import type { ChannelMessage, ChunkOutcome, QueueJobSummary } from './queue-store.js';
import { checkItems } from './runner.js';
import type { ChunkResult } from './task-kit.js';

export interface QueueJobsOptions {
  settings: QueueSettings;
  daemonId: string;
  sharedRoots: string[];
  retentionSeconds: number;
  operation(name: string): Operation | undefined;
  /** The pool's max_queue: how many chunks of this daemon's jobs may wait on the queue. */
  maxQueue(): number;
  maxJobs: number;
  publish(type: string, data: Record<string, unknown>): void;
  log: BatchQueueOptions['log'];
}

const delay = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });

const full = (message: string, retryAfter: number) => new HearthError('QUEUE_FULL', message, { headers: { 'Retry-After': String(retryAfter) } });

/** The shared root `path` is under, if any. */
function rootOf(path: string, roots: string[]): string | undefined {
  const p = resolvePath(path);
  return roots.filter((r) => p === r || p.startsWith(r.endsWith('/') ? r : `${r}/`)).sort((a, b) => b.length - a.length)[0];
}

export class QueueJobs {
  readonly queue: BatchQueue;
  #options: QueueJobsOptions;
  /** This daemon's unfinished jobs: their chunks, and how many are recorded. */
  #own = new Map<string, { chunks: number; done: number }>();
  /** Chunks running here, by job: what a cancel aborts. */
  #running = new Map<string, Set<AbortController>>();
  #drain = new AbortController();
  #chunksRun = 0;
  /** When a progress event of each running job was last published here. */
  #lastProgress = new Map<string, number>();
  /** Chunks of this daemon's jobs recorded per second, smoothed: what Retry-After is estimated from. */
  #rate = 0;
  #lastDone = 0;
  #refresher: NodeJS.Timeout | undefined;

  constructor(options: QueueJobsOptions) {
    this.#options = options;
    const sharedRoots = options.sharedRoots.map((r) => resolvePath(r));
    this.#options.sharedRoots = sharedRoots;
    this.queue = new BatchQueue({
      settings: options.settings,
      daemonId: options.daemonId,
      sharedRoots,
      retentionSeconds: options.retentionSeconds,
      process: (data, signal) => this.#process(data, signal),
      onGivenUp: (data, err) => void this.#record(data, failedOutcome(data.idx, `the chunk was given up: ${err.message}`)).catch(() => {}),
      onMessage: (message) => this.#onMessage(message),
      chunksRun: () => this.#chunksRun,
      log: options.log,
    });
  }

  async start(): Promise<void> {
    await this.queue.start();
    // The channel misses what happens while Redis is away: this daemon's backlog is read again now and then.
    this.#refresher = setInterval(() => void this.#refresh(), this.#options.settings.heartbeatMs);
    this.#refresher.unref();
  }

  async #refresh(): Promise<void> {
    // A job whose finish this daemon never heard of (Redis was away) must not stay here for ever.
    const stale = Date.now() - 60_000;
    for (const [id, at] of this.#lastProgress) if (at < stale) this.#lastProgress.delete(id);
    if (!this.available) return;
    for (const [id, own] of this.#own) {
      try {
        const p = await this.queue.store.progress(id);
        if (!p || p.finished) this.#own.delete(id);
        else own.done = Math.max(own.done, p.done);
      } catch {
        return; // Redis went away again: next time.
      }
    }
  }

  get available(): boolean {
    return this.queue.available;
  }

  get daemonId(): string {
    return this.#options.daemonId;
  }

  /** Chunks of this daemon's jobs not recorded yet. */
  get outstanding(): number {
    let n = 0;
    for (const j of this.#own.values()) n += j.chunks - j.done;
    return n;
  }

  /** For /optimization/stats (`batch_queue`): where the queue is, whether it is used, and this daemon's part. */
  stats(): { target: string; name: string; daemon_id: string; available: boolean; reasons: string[]; own_jobs: number; outstanding_chunks: number; chunks_run: number } {
    const { settings } = this.queue;
    return {
      target: settings.where,
      name: settings.name,
      daemon_id: this.#options.daemonId,
      available: this.available,
      reasons: this.queue.reasons(),
      own_jobs: this.#own.size,
      outstanding_chunks: this.outstanding,
      chunks_run: this.#chunksRun,
    };
  }

  /** A new job on the queue (its items already past the size limits); throws the 400/429/503 that refuses it. */
  async submit(op: Operation, items: unknown[], batchSize: number, maxConcurrent: number): Promise<QueueJobSummary> {
    const { maxJobs } = this.#options;
    if (this.#drain.signal.aborted) throw full('The daemon is stopping', 1);
    if (this.#own.size >= maxJobs) throw full(`Too many unfinished jobs (${maxJobs})`, 1);
    const maxQueue = this.#options.maxQueue();
    const outstanding = this.outstanding;
    if (outstanding >= maxQueue) {
      const wait = this.#rate > 0 ? Math.ceil((outstanding - maxQueue + 1) / this.#rate) : 1;
      throw full(`${outstanding} chunks of this daemon's jobs wait on the batch queue (pool.max_queue is ${maxQueue}); retry later`, Math.min(60, Math.max(1, wait)));
    }
    const { valid, errors: invalid } = checkItems(op, items);
    const root = op.paths ? await this.#pathRoot(items, valid) : undefined;
    const summary = newJobSummary(op, items.length, batchSize, maxConcurrent);
    const chunks: ChunkData[] = [];
    for (let at = 0; at < valid.length; at += batchSize) {
      const idx = valid.slice(at, at + batchSize);
      chunks.push({ job: summary.job_id, chunk: chunks.length, op: op.name, idx, items: idx.map((i) => items[i]) });
    }
    const { store } = this.queue;
    await store.create({ summary, invalid, chunks: chunks.length, submitter: this.#options.daemonId, ...(root ? { root } : {}) });
    if (chunks.length > 0) {
      this.#own.set(summary.job_id, { chunks: chunks.length, done: 0 });
      try {
        await this.queue.add(chunks, root);
      } catch (err) {
        this.#own.delete(summary.job_id);
        await store.remove(summary.job_id).catch(() => {});
        throw err;
      }
    }
    return (await store.summary(summary.job_id)) ?? { ...summary, ran_on: {}, submitted_on: this.#options.daemonId };
  }

  /** The one shared root a path job's items are under, with a daemon alive that runs it; else the 400 or 503. */
  async #pathRoot(items: unknown[], valid: number[]): Promise<string | undefined> {
    const roots = this.#options.sharedRoots;
    let root: string | undefined;
    for (const i of valid) {
      const path = String(items[i]);
      const r = isAbsolute(path) ? rootOf(path, roots) : undefined;
      const refuse = (message: string) => new HearthError('VALIDATION_FAILED', message, { details: [{ path: `/items/${i}`, message, in: 'body' }] });
      if (!r) {
        throw refuse(
          roots.length === 0
            ? 'Path jobs go through the batch queue only under a shared root, and this daemon declares none (plugins.batch.shared_roots)'
            : `${JSON.stringify(path)} is not an absolute path under a shared root (plugins.batch.shared_roots: ${roots.join(', ')})`,
        );
      }
      if (root !== undefined && r !== root) throw refuse(`The items of a path job must be under one shared root: ${root} and ${r}`);
      root = r;
    }
    if (root === undefined) return undefined;
    if ((await this.queue.registry.runnersOf(root)).length === 0) {
      throw new HearthError('UNAVAILABLE', `No daemon alive on the batch queue runs chunks under the shared root ${root}`);
    }
    return root;
  }

  /** Runs a chunk BullMQ handed to this daemon and records it; throws only to hand the chunk back (closing). */
  async #process(data: ChunkData, bullSignal: AbortSignal | undefined): Promise<void> {
    if (this.#drain.signal.aborted) throw new Error('daemon stopped');
    if ((await this.queue.store.start(data.job)) !== 'running') return; // cancelled, finished or expired
    const op = this.#options.operation(data.op);
    const controller = new AbortController();
    let set = this.#running.get(data.job);
    if (!set) this.#running.set(data.job, (set = new Set()));
    set.add(controller);
    let outcome: ChunkOutcome;
    try {
      if (!op) throw new Error(`the operation "${data.op}" is not on daemon ${this.#options.daemonId}`);
      const signal = AbortSignal.any([controller.signal, this.#drain.signal, ...(bullSignal ? [bullSignal] : [])]);
      const result = await runOnPool(op, data.items, signal);
      const failed = new Set<number>();
      const e = result.errors.map((err) => (failed.add(err.index), { index: data.idx[err.index]!, code: err.code, message: err.message }));
      outcome = { i: data.idx, r: data.idx.map((_, k) => (failed.has(k) ? null : (result.results[k] ?? null))), e };
    } catch (err) {
      if (controller.signal.aborted) return; // the job was cancelled
      if (this.#drain.signal.aborted || bullSignal?.aborted) throw err;
      // The whole chunk failed (its task threw, exited or ran past its deadline): its items fail alone.
      outcome = failedOutcome(data.idx, err instanceof Error ? err.message : String(err));
    } finally {
      set.delete(controller);
      if (set.size === 0) this.#running.delete(data.job);
    }
    await this.#record(data, outcome);
  }

  async #record(data: ChunkData, outcome: ChunkOutcome): Promise<void> {
    if (await this.queue.store.record(data.job, data.chunk, outcome, this.#options.daemonId)) this.#chunksRun++;
  }

  #onMessage(message: ChannelMessage): void {
    const { job_id: id, status } = message.data;
    // Progress as on a local job: one event per job per PROGRESS_EVERY_MS at most; the finish always.
    const now = Date.now();
    if (message.type === 'batch.job.finished') {
      this.#lastProgress.delete(id);
      this.#options.publish(message.type, message.data);
    } else if (now - (this.#lastProgress.get(id) ?? 0) >= PROGRESS_EVERY_MS) {
      this.#lastProgress.set(id, now);
      this.#options.publish(message.type, message.data);
    }
    const own = this.#own.get(id);
    if (own) {
      const recorded = message.chunks_done - own.done;
      if (recorded > 0 && this.#lastDone > 0) {
        const rate = (recorded * 1000) / Math.max(1, now - this.#lastDone);
        this.#rate = this.#rate === 0 ? rate : 0.8 * this.#rate + 0.2 * rate;
      }
      if (recorded > 0) this.#lastDone = now;
      own.done = Math.max(own.done, message.chunks_done);
    }
    if (message.type === 'batch.job.finished') {
      this.#own.delete(id);
      if (status === 'cancelled') for (const c of this.#running.get(id) ?? []) c.abort(new Error('cancelled by request'));
    }
  }

  /** Stops taking chunks; running ones get `graceMs`, then are handed back to the queue (another daemon runs them). */
  close(graceMs: number): Promise<void> {
    clearInterval(this.#refresher);
    return this.queue.close(graceMs, () => this.#drain.abort(new Error('daemon stopped')));
  }
}

function failedOutcome(idx: number[], message: string): ChunkOutcome {
  return { i: idx, r: idx.map(() => null), e: idx.map((index) => ({ index, code: 'ITEM_FAILED' as const, message })) };
}

/** Runs a chunk on this daemon's pool, waiting while the pool is full (other work of this daemon). */
async function runOnPool(op: Operation, items: unknown[], signal: AbortSignal): Promise<ChunkResult> {
  for (;;) {
    try {
      return await op.run(items, { signal });
    } catch (err) {
      if (signal.aborted || !isHearthError(err) || err.code !== 'QUEUE_FULL') throw err;
      await delay(50, signal);
    }
  }
}
