// Jobs: batches that run in the background with progress. Each job is one JSON file in
// <state_dir>/batch-jobs (written atomically), so jobs and their results survive a restart; a job that was
// queued or running when the daemon stopped is marked failed with reason "daemon stopped" (not resumed).
// In memory: every job's summary, and the items and results of the jobs not yet finished.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HearthError } from '../../src/errors.js';
import type { Operation } from './operations.js';
import { runBatch, type BatchError, type Progress } from './runner.js';

export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface JobSummary {
  job_id: string;
  operation: string;
  status: JobStatus;
  total_items: number;
  processed_items: number;
  failed_items: number;
  batch_size: number;
  max_concurrent: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** Why a job failed or was cancelled. */
  reason?: string;
}

/** A new job's summary: queued, nothing processed yet. */
export function newJobSummary(op: Operation, totalItems: number, batchSize: number, maxConcurrent: number): JobSummary {
  return {
    job_id: randomUUID(),
    operation: op.name,
    status: 'queued',
    total_items: totalItems,
    processed_items: 0,
    failed_items: 0,
    batch_size: batchSize,
    max_concurrent: maxConcurrent,
    created_at: new Date().toISOString(),
    started_at: null,
    finished_at: null,
  };
}

export interface JobDetail extends JobSummary {
  results?: unknown[];
  errors?: BatchError[];
}

interface Live {
  summary: JobSummary;
  op: Operation;
  items: unknown[] | undefined;
  controller: AbortController;
  /** Cancelled by DELETE (not by the daemon stopping). */
  cancelled?: boolean;
  done?: Promise<void>;
}

export interface JobsOptions {
  dir: string;
  maxRunning: number;
  maxJobs: number;
  retentionSeconds: number;
  publish(type: string, data: Record<string, unknown>): void;
  onError(err: unknown, context: string): void;
}

const FINISHED = new Set<JobStatus>(['completed', 'failed', 'cancelled']);
export const isFinished = (status: JobStatus): boolean => FINISHED.has(status);
/** At most one progress event a job in this long (a job of many small chunks would send thousands). */
export const PROGRESS_EVERY_MS = 100;
const PERSIST_EVERY_MS = 1000;
const ID = /^[0-9a-f-]{36}$/;

export class Jobs {
  #options: JobsOptions;
  #summaries = new Map<string, JobSummary>();
  #live = new Map<string, Live>();
  #waiting: Live[] = [];
  #running = 0;
  #drain = new AbortController();
  #sweeper: NodeJS.Timeout;

  constructor(options: JobsOptions) {
    this.#options = options;
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    this.#restore();
    this.sweep();
    this.#sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, options.retentionSeconds * 1000)));
    this.#sweeper.unref();
  }

  #file(id: string): string {
    return join(this.#options.dir, `${id}.json`);
  }

  /** Jobs left queued or running by a daemon that stopped (or crashed) are failed, never resumed. */
  #restore(): void {
    for (const name of readdirSync(this.#options.dir)) {
      if (!name.endsWith('.json')) continue;
      const path = join(this.#options.dir, name);
      try {
        const job = JSON.parse(readFileSync(path, 'utf8')) as JobDetail;
        if (!isFinished(job.status)) {
          job.status = 'failed';
          job.reason = 'daemon stopped';
          job.finished_at ??= new Date().toISOString();
          this.#writeSync(job);
        }
        const { results: _r, errors: _e, ...summary } = job;
        this.#summaries.set(job.job_id, summary);
      } catch (err) {
        this.#options.onError(err, `unreadable job file ${path}`);
      }
    }
  }

  #writeSync(job: JobDetail): void {
    const path = this.#file(job.job_id);
    writeFileSync(`${path}.tmp`, JSON.stringify(job), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  }

  // One write at a time per job, the newest state last.
  #writes = new Map<string, Promise<void>>();
  #persist(job: JobDetail): Promise<void> {
    const id = job.job_id;
    const text = JSON.stringify(job);
    const path = this.#file(id);
    const next = (this.#writes.get(id) ?? Promise.resolve())
      .then(async () => {
        if (!this.#summaries.has(id)) return; // swept meanwhile
        await writeFile(`${path}.tmp`, text, { mode: 0o600 });
        await rename(`${path}.tmp`, path);
      })
      .catch((err: unknown) => this.#options.onError(err, `writing job ${id}`));
    this.#writes.set(id, next);
    void next.then(() => {
      if (this.#writes.get(id) === next) this.#writes.delete(id);
    });
    return next;
  }

  get active(): number {
    return this.#live.size;
  }

  create(op: Operation, items: unknown[], batchSize: number, maxConcurrent: number): JobSummary {
    if (this.#drain.signal.aborted) throw new HearthError('QUEUE_FULL', 'The daemon is stopping', { headers: { 'Retry-After': '1' } });
    if (this.#live.size >= this.#options.maxJobs) {
      throw new HearthError('QUEUE_FULL', `Too many unfinished jobs (${this.#options.maxJobs})`, { headers: { 'Retry-After': '1' } });
    }
    const summary = newJobSummary(op, items.length, batchSize, maxConcurrent);
    const live: Live = { summary, op, items, controller: new AbortController() };
    this.#summaries.set(summary.job_id, summary);
    this.#live.set(summary.job_id, live);
    this.#waiting.push(live);
    void this.#persist(summary);
    this.#pump();
    return { ...summary };
  }

  #pump(): void {
    while (this.#running < this.#options.maxRunning && this.#waiting.length > 0 && !this.#drain.signal.aborted) {
      const live = this.#waiting.shift()!;
      live.done = this.#run(live);
    }
  }

  #publish(type: string, summary: JobSummary): void {
    this.#options.publish(type, {
      job_id: summary.job_id,
      operation: summary.operation,
      status: summary.status,
      total_items: summary.total_items,
      processed_items: summary.processed_items,
      failed_items: summary.failed_items,
      ...(summary.reason ? { reason: summary.reason } : {}),
    });
  }

  async #run(live: Live): Promise<void> {
    const { summary } = live;
    this.#running++;
    summary.status = 'running';
    summary.started_at = new Date().toISOString();
    void this.#persist(summary);
    this.#publish('batch.job.progress', summary);
    let lastEvent = 0;
    let lastPersist = Date.now();
    const onProgress = (p: Progress) => {
      summary.processed_items = p.processed_items;
      summary.failed_items = p.failed_items;
      const now = Date.now();
      if (now - lastEvent >= PROGRESS_EVERY_MS) {
        lastEvent = now;
        this.#publish('batch.job.progress', summary);
      }
      if (now - lastPersist >= PERSIST_EVERY_MS) {
        lastPersist = now;
        void this.#persist(summary);
      }
    };
    let detail: JobDetail;
    try {
      const result = await runBatch(live.op, live.items!, {
        batchSize: summary.batch_size,
        maxConcurrent: summary.max_concurrent,
        signal: live.controller.signal,
        drain: this.#drain.signal,
        whenFull: 'wait',
        onProgress,
      });
      summary.status = 'completed';
      summary.processed_items = result.processed_items;
      summary.failed_items = result.failed_items;
      detail = { ...summary, results: result.results, errors: result.errors };
    } catch (err) {
      if (live.cancelled) {
        summary.status = 'cancelled';
        summary.reason = 'cancelled by request';
      } else {
        summary.status = 'failed';
        summary.reason = this.#drain.signal.aborted ? 'daemon stopped' : err instanceof Error ? err.message : String(err);
      }
      detail = { ...summary };
    }
    summary.finished_at = new Date().toISOString();
    detail.finished_at = summary.finished_at;
    live.items = undefined;
    this.#live.delete(summary.job_id);
    this.#running--;
    if (this.#drain.signal.aborted) this.#writeSync(detail);
    else await this.#persist(detail);
    this.#publish('batch.job.finished', summary);
    this.#pump();
  }

  list(): JobSummary[] {
    return [...this.#summaries.values()].map((s) => ({ ...s })).sort((a, b) => b.created_at.localeCompare(a.created_at));
  }

  summary(id: string): JobSummary | undefined {
    const s = this.#summaries.get(id);
    return s ? { ...s } : undefined;
  }

  /** The job, with its results and errors once it has finished. */
  async get(id: string): Promise<JobDetail | undefined> {
    const summary = ID.test(id) ? this.#summaries.get(id) : undefined;
    if (!summary) return undefined;
    if (!isFinished(summary.status)) return { ...summary };
    await this.#writes.get(id);
    try {
      return JSON.parse(await readFile(this.#file(id), 'utf8')) as JobDetail;
    } catch {
      return { ...summary };
    }
  }

  /**
   * Cancels a queued or running job (its running chunks are aborted: their threads are stopped). A finished
   * job (completed, failed or cancelled) is answered as it is, unchanged: the caller wanted it to stop and it
   * has, and a cancel that races the job's last chunk must not turn into an error depending on who won.
   */
  cancel(id: string): JobSummary | undefined {
    const summary = this.#summaries.get(id);
    if (!summary) return undefined;
    if (isFinished(summary.status)) return { ...summary };
    const live = this.#live.get(id)!;
    live.cancelled = true;
    live.controller.abort(new Error('cancelled by request'));
    const waiting = this.#waiting.indexOf(live);
    if (waiting >= 0) {
      this.#waiting.splice(waiting, 1);
      this.#live.delete(id);
      live.items = undefined;
      summary.status = 'cancelled';
      summary.reason = 'cancelled by request';
      summary.finished_at = new Date().toISOString();
      void this.#persist(summary);
      this.#publish('batch.job.finished', summary);
    }
    return { ...summary };
  }

  /** Resolves once the job has finished (at once if it has). */
  async settled(id: string): Promise<void> {
    await this.#live.get(id)?.done;
  }

  /** Drops finished jobs older than the retention. */
  sweep(now = Date.now()): number {
    const cutoff = now - this.#options.retentionSeconds * 1000;
    let dropped = 0;
    for (const [id, s] of this.#summaries) {
      if (s.finished_at && Date.parse(s.finished_at) < cutoff) {
        this.#summaries.delete(id);
        dropped++;
        void (this.#writes.get(id) ?? Promise.resolve()).then(() => rm(this.#file(id), { force: true }));
      }
    }
    return dropped;
  }

  /**
   * At daemon close: no new chunk or job starts; chunks in flight may finish within `graceMs`, then are
   * aborted. Every job not finished is written as failed with reason "daemon stopped".
   */
  async close(graceMs: number): Promise<void> {
    clearInterval(this.#sweeper);
    this.#drain.abort(new Error('daemon stopped'));
    for (const live of this.#waiting.splice(0)) {
      this.#live.delete(live.summary.job_id);
      Object.assign(live.summary, { status: 'failed', reason: 'daemon stopped', finished_at: new Date().toISOString() });
      this.#writeSync(live.summary);
    }
    const running = [...this.#live.values()].map((l) => l.done);
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([Promise.allSettled(running), grace]);
    clearTimeout(timer);
    for (const live of this.#live.values()) live.controller.abort(new Error('daemon stopped'));
    await Promise.allSettled(running);
    await Promise.allSettled([...this.#writes.values()]);
  }
}
