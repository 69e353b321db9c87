// The state of queue jobs in Redis, where every daemon on the queue reads it: a hash per job (its summary,
// the schema errors found at submission, one field per recorded chunk), a hash of chunks per daemon, and a
// sorted set of job ids by creation. A chunk's result is recorded by a Lua script, atomically: the chunk's
// field is set only if absent (HSETNX) and the counters move only then, so a chunk that BullMQ runs twice (a
// daemon that stalled or died after recording it) counts once. Whoever records the last chunk completes the
// job, and every change is published on the queue's channel in the same script.
import type { Redis } from 'ioredis';
import type { JobStatus, JobSummary } from './jobs.js';
import type { BatchError } from './runner.js';

export interface QueueJobSummary extends JobSummary {
  /** Chunks recorded, by the id of the daemon that ran them. */
  ran_on: Record<string, number>;
  /** The daemon the job was submitted to. */
  submitted_on: string;
  /** The shared root of a path job. */
  shared_root?: string;
}

export interface QueueJobDetail extends QueueJobSummary {
  results?: unknown[];
  errors?: BatchError[];
}

/** A recorded chunk: the items' indexes in the job, their results, and their errors (job indexes). */
export interface ChunkOutcome {
  i: number[];
  r: unknown[];
  e: BatchError[];
}

/** What a daemon hears on the channel: an event for the local bus, with the job's chunk counts. */
export interface ChannelMessage {
  type: 'batch.job.progress' | 'batch.job.finished';
  data: Record<string, unknown> & { job_id: string; status: JobStatus };
  submitter: string;
  chunks: number;
  chunks_done: number;
}

export interface NewQueueJob {
  summary: JobSummary;
  invalid: BatchError[];
  chunks: number;
  submitter: string;
  root?: string;
}

const EVENT = `
local function publish(job, kind, status, channel, processed, failed, done)
  local f = redis.call('HMGET', job, 'job_id', 'operation', 'total_items', 'submitter', 'chunks', 'reason')
  local data = {job_id = f[1], operation = f[2], status = status, total_items = tonumber(f[3]),
    processed_items = tonumber(processed), failed_items = tonumber(failed)}
  if f[6] and f[6] ~= '' then data.reason = f[6] end
  redis.call('PUBLISH', channel, cjson.encode({type = kind, data = data, submitter = f[4], chunks = tonumber(f[5]), chunks_done = tonumber(done)}))
end
`;

/** KEYS: job, ran. ARGV: chunk, outcome, processed, failed, daemon, now, retention ms, channel. */
const RECORD = `${EVENT}
local job = KEYS[1]
local status = redis.call('HGET', job, 'status')
if status ~= 'queued' and status ~= 'running' then return 0 end
if redis.call('HSETNX', job, 'chunk:' .. ARGV[1], ARGV[2]) == 0 then return 0 end
local processed = redis.call('HINCRBY', job, 'processed_items', ARGV[3])
local failed = redis.call('HINCRBY', job, 'failed_items', ARGV[4])
redis.call('HINCRBY', KEYS[2], ARGV[5], 1)
local done = redis.call('HINCRBY', job, 'chunks_done', 1)
local kind = 'batch.job.progress'
if done >= tonumber(redis.call('HGET', job, 'chunks')) then
  status = 'completed'
  kind = 'batch.job.finished'
  redis.call('HSET', job, 'status', status, 'finished_at', ARGV[6])
  redis.call('PEXPIRE', job, ARGV[7])
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
elseif status == 'queued' then
  status = 'running'
  redis.call('HSET', job, 'status', status, 'started_at', ARGV[6])
end
publish(job, kind, status, ARGV[8], processed, failed, done)
return 1
`;

/** KEYS: job. ARGV: now, channel. Answers the job's status (false when there is no such job). */
const START = `${EVENT}
local job = KEYS[1]
local status = redis.call('HGET', job, 'status')
if status == 'queued' then
  status = 'running'
  redis.call('HSET', job, 'status', status, 'started_at', ARGV[1])
  local f = redis.call('HMGET', job, 'processed_items', 'failed_items', 'chunks_done')
  publish(job, 'batch.job.progress', status, ARGV[2], f[1], f[2], f[3])
end
return status
`;

/** KEYS: job, ran. ARGV: now, retention ms, channel. Answers 1 when it cancelled the job, 0 when it had finished, false when absent. */
const CANCEL = `${EVENT}
local job = KEYS[1]
local status = redis.call('HGET', job, 'status')
if not status then return false end
if status ~= 'queued' and status ~= 'running' then return 0 end
redis.call('HSET', job, 'status', 'cancelled', 'reason', 'cancelled by request', 'finished_at', ARGV[1])
redis.call('PEXPIRE', job, ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local f = redis.call('HMGET', job, 'processed_items', 'failed_items', 'chunks_done')
publish(job, 'batch.job.finished', 'cancelled', ARGV[3], f[1], f[2], f[3])
return 1
`;

const SUMMARY_FIELDS = [
  'job_id', 'operation', 'status', 'total_items', 'processed_items', 'failed_items', 'batch_size', 'max_concurrent',
  'created_at', 'started_at', 'finished_at', 'reason', 'submitter', 'root',
] as const;
const ID = /^[0-9a-f-]{36}$/;
/** The most jobs GET /batch/jobs lists from Redis (newest first). */
export const LIST_LIMIT = 1000;

export class QueueStore {
  readonly channel: string;
  #redis: Redis;
  #name: string;
  #retentionMs: number;

  constructor(redis: Redis, name: string, retentionSeconds: number) {
    this.#redis = redis;
    this.#name = name;
    this.channel = `${name}:events`;
    // PEXPIRE 0 would delete at once, which is what a retention of 0 means.
    this.#retentionMs = Math.max(1, Math.round(retentionSeconds * 1000));
  }

  #job(id: string): string {
    return `${this.#name}:job:${id}`;
  }

  #ran(id: string): string {
    return `${this.#name}:job:${id}:ran`;
  }

  get #jobs(): string {
    return `${this.#name}:jobs`;
  }

  /** Writes a new job; one without chunks (every item invalid, or none) is completed at once. */
  async create(job: NewQueueJob): Promise<void> {
    const s = job.summary;
    const done = job.chunks === 0;
    const now = new Date().toISOString();
    const fields: Record<string, string | number> = {
      job_id: s.job_id, operation: s.operation, status: done ? 'completed' : 'queued', total_items: s.total_items,
      processed_items: 0, failed_items: job.invalid.length, batch_size: s.batch_size, max_concurrent: s.max_concurrent,
      created_at: s.created_at, started_at: done ? now : '', finished_at: done ? now : '', reason: '',
      submitter: job.submitter, root: job.root ?? '', chunks: job.chunks, chunks_done: 0, invalid: JSON.stringify(job.invalid),
    };
    const multi = this.#redis.multi().hset(this.#job(s.job_id), fields).zadd(this.#jobs, Date.parse(s.created_at), s.job_id);
    if (done) multi.pexpire(this.#job(s.job_id), this.#retentionMs);
    await multi.exec();
    if (done) {
      const data = { job_id: s.job_id, operation: s.operation, status: 'completed', total_items: s.total_items, processed_items: 0, failed_items: job.invalid.length };
      await this.#redis.publish(this.channel, JSON.stringify({ type: 'batch.job.finished', data, submitter: job.submitter, chunks: 0, chunks_done: 0 }));
    }
  }

  /** Takes back a job whose chunks could not be queued. */
  async remove(id: string): Promise<void> {
    await this.#redis.multi().del(this.#job(id), this.#ran(id)).zrem(this.#jobs, id).exec();
  }

  /** A chunk is about to run: the job becomes running if it was queued. Answers its status (null: gone). */
  async start(id: string): Promise<JobStatus | null> {
    return (await this.#redis.eval(START, 1, this.#job(id), new Date().toISOString(), this.channel)) as JobStatus | null;
  }

  /** Records a chunk's outcome, once: false when it was recorded already or the job is no longer running. */
  async record(id: string, chunk: number, outcome: ChunkOutcome, daemon: string): Promise<boolean> {
    const failed = outcome.e.length;
    const n = await this.#redis.eval(
      RECORD, 2, this.#job(id), this.#ran(id),
      chunk, JSON.stringify(outcome), outcome.i.length - failed, failed, daemon, new Date().toISOString(), this.#retentionMs, this.channel,
    );
    return n === 1;
  }

  /** A job's chunks and how many are recorded, and whether it has finished (undefined: gone). */
  async progress(id: string): Promise<{ chunks: number; done: number; finished: boolean } | undefined> {
    const [status, chunks, done] = await this.#redis.hmget(this.#job(id), 'status', 'chunks', 'chunks_done');
    if (!status) return undefined;
    return { chunks: Number(chunks), done: Number(done), finished: status !== 'queued' && status !== 'running' };
  }

  /** Cancels a queued or running job; a finished one is left as it is. Undefined when there is no such job. */
  async cancel(id: string): Promise<QueueJobSummary | undefined> {
    if (!ID.test(id)) return undefined;
    const r = await this.#redis.eval(CANCEL, 2, this.#job(id), this.#ran(id), new Date().toISOString(), this.#retentionMs, this.channel);
    return r === null ? undefined : this.summary(id);
  }

  async summary(id: string): Promise<QueueJobSummary | undefined> {
    if (!ID.test(id)) return undefined;
    const [[, values], [, ran]] = (await this.#redis.multi().hmget(this.#job(id), ...SUMMARY_FIELDS).hgetall(this.#ran(id)).exec()) as [
      [unknown, Array<string | null>],
      [unknown, Record<string, string>],
    ];
    return toSummary(values, ran);
  }

  /** The job, with its results and errors once it has completed. */
  async get(id: string): Promise<QueueJobDetail | undefined> {
    if (!ID.test(id)) return undefined;
    const [[, all], [, ran]] = (await this.#redis.multi().hgetall(this.#job(id)).hgetall(this.#ran(id)).exec()) as [
      [unknown, Record<string, string>],
      [unknown, Record<string, string>],
    ];
    const summary = toSummary(SUMMARY_FIELDS.map((f) => all[f] ?? null), ran);
    if (!summary || summary.status !== 'completed') return summary;
    const results: unknown[] = new Array(summary.total_items).fill(null);
    const errors: BatchError[] = JSON.parse(all.invalid ?? '[]') as BatchError[];
    for (const [field, text] of Object.entries(all)) {
      if (!field.startsWith('chunk:')) continue;
      const outcome = JSON.parse(text) as ChunkOutcome;
      outcome.i.forEach((at, k) => (results[at] = outcome.r[k] ?? null));
      for (const e of outcome.e) errors.push(e);
    }
    errors.sort((a, b) => a.index - b.index);
    return { ...summary, results, errors };
  }

  /** The jobs kept, newest first (at most LIST_LIMIT); ids whose job has expired are dropped from the set. */
  async list(): Promise<QueueJobSummary[]> {
    const ids = await this.#redis.zrevrange(this.#jobs, 0, LIST_LIMIT - 1);
    if (ids.length === 0) return [];
    const multi = this.#redis.multi();
    for (const id of ids) multi.hmget(this.#job(id), ...SUMMARY_FIELDS).hgetall(this.#ran(id));
    const replies = (await multi.exec()) ?? [];
    const out: QueueJobSummary[] = [];
    const gone: string[] = [];
    ids.forEach((id, k) => {
      const s = toSummary(replies[2 * k]![1] as Array<string | null>, replies[2 * k + 1]![1] as Record<string, string>);
      if (s) out.push(s);
      else gone.push(id);
    });
    if (gone.length > 0) await this.#redis.zrem(this.#jobs, ...gone);
    return out;
  }
}

function toSummary(values: Array<string | null>, ran: Record<string, string>): QueueJobSummary | undefined {
  const v = Object.fromEntries(SUMMARY_FIELDS.map((f, k) => [f, values[k] ?? null])) as Record<(typeof SUMMARY_FIELDS)[number], string | null>;
  if (!v.job_id) return undefined;
  const summary: QueueJobSummary = {
    job_id: v.job_id,
    operation: v.operation ?? '',
    status: (v.status ?? 'failed') as JobStatus,
    total_items: Number(v.total_items),
    processed_items: Number(v.processed_items),
    failed_items: Number(v.failed_items),
    batch_size: Number(v.batch_size),
    max_concurrent: Number(v.max_concurrent),
    created_at: v.created_at ?? '',
    started_at: v.started_at || null,
    finished_at: v.finished_at || null,
    ran_on: Object.fromEntries(Object.entries(ran).map(([id, n]) => [id, Number(n)])),
    submitted_on: v.submitter ?? '',
  };
  if (v.reason) summary.reason = v.reason;
  if (v.root) summary.shared_root = v.root;
  return summary;
}
