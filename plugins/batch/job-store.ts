// Where the routes find jobs: this daemon's own (jobs.ts, run here) and, with a batch queue, the queue's
// in Redis (queue-jobs.ts, run by every daemon on it). A new job goes through the queue while Redis is
// there, else it runs here. A job is looked up here first, then in Redis; reading a queue job while Redis
// is away is the one 503.
import { HearthError } from '../../src/errors.js';
import type { JobDetail, JobSummary, Jobs } from './jobs.js';
import type { Operation } from './operations.js';
import type { QueueJobs } from './queue-jobs.js';

const unavailable = (queue: QueueJobs) =>
  new HearthError('UNAVAILABLE', `The batch queue's Redis (${queue.queue.settings.where}) is unreachable; its jobs can be read again once it is back`);

export class JobStore {
  #local: Jobs;
  #queue: QueueJobs | undefined;

  constructor(local: Jobs, queue?: QueueJobs) {
    this.#local = local;
    this.#queue = queue;
  }

  async create(op: Operation, items: unknown[], batchSize: number, maxConcurrent: number): Promise<JobSummary> {
    if (this.#queue?.available) {
      try {
        return await this.#queue.submit(op, items, batchSize, maxConcurrent);
      } catch (err) {
        // Refused (400, 429, 503) is an answer; Redis going away meanwhile is not: the job runs here.
        if (err instanceof HearthError) throw err;
      }
    }
    return this.#local.create(op, items, batchSize, maxConcurrent);
  }

  /** Every job kept, newest first: this daemon's and (while Redis is there) the queue's. */
  async list(): Promise<JobSummary[]> {
    const local = this.#local.list();
    if (!this.#queue?.available) return local;
    let remote: JobSummary[] = [];
    try {
      remote = await this.#queue.queue.store.list();
    } catch {
      // Redis went away meanwhile: this daemon's jobs alone.
    }
    return [...local, ...remote].sort((a, b) => b.created_at.localeCompare(a.created_at));
  }

  async summary(id: string): Promise<JobSummary | undefined> {
    return this.#local.summary(id) ?? this.#remote((q) => q.queue.store.summary(id));
  }

  async get(id: string): Promise<JobDetail | undefined> {
    return (await this.#local.get(id)) ?? this.#remote((q) => q.queue.store.get(id));
  }

  async cancel(id: string): Promise<JobSummary | undefined> {
    return this.#local.cancel(id) ?? this.#remote((q) => q.queue.store.cancel(id));
  }

  async #remote<T>(fn: (queue: QueueJobs) => Promise<T>): Promise<T | undefined> {
    const queue = this.#queue;
    if (!queue) return undefined;
    if (!queue.available) throw unavailable(queue);
    try {
      return await fn(queue);
    } catch (err) {
      if (err instanceof HearthError) throw err;
      throw unavailable(queue);
    }
  }
}
