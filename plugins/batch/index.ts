// The batch plugin: named operations run on the shared worker pool in chunks, synchronously
// (POST /batch/process) or as jobs with progress (POST /batch/jobs), with per-item errors and backpressure.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { HearthError, isHearthError } from '../../src/errors.js';
import { openEventStream } from '../../src/http/sse.js';
import type { HearthEvent } from '../../src/services/events.js';
import { definePlugin, type PluginContext } from '../../src/plugin.js';
import { DEFAULT_MAX_ITEMS } from './limits.js';
import { Jobs, isFinished } from './jobs.js';
import { JobStore } from './job-store.js';
import { Operations, type OperationDefinition } from './operations.js';
import { registerDaemonsRoute } from './daemons-route.js';
import type { QueueJobs } from './queue-jobs.js';
import { daemonId, QUEUE_SCHEMA, queueSettings, SHARED_ROOTS_SCHEMA, type QueueConfig } from './queue-options.js';
import { runBatch } from './runner.js';
import type { ChunkResult } from './task-kit.js';

export interface BatchOptions {
  batch_size: number;
  max_concurrent: number;
  max_items: number;
  job_retention_seconds: number;
  max_running_jobs: number;
  max_jobs: number;
  /** Roots of the path operations when the files plugin is disabled. Default: the files plugin's, else home. */
  roots?: string[];
  /** A Redis whose BullMQ queue spreads job chunks over every daemon on it (see queue-options.ts). */
  queue?: QueueConfig;
  /** Paths that are the same on every daemon of the queue: path jobs under them go through the queue. */
  shared_roots?: string[];
}

/** What other plugins get with ctx.use('batch') (after listing "batch" in dependsOn). */
export interface BatchApi {
  /** Adds an operation; its `run` usually calls the adding plugin's own ctx.runTask. */
  addOperation(definition: OperationDefinition): void;
}

const task = (name: string) => new URL(`./tasks/${name}${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

// The string and number operations are shareable (their result depends on the item alone). The path ones are
// not: their result depends on a local file, and a key by its content would need the file read and hashed,
// which is the work itself.
const BUILTINS: Array<{ name: string; description: string; itemSchema: object; paths?: boolean; shareable?: boolean }> = [
  { name: 'double', description: 'numbers → twice the number', itemSchema: { type: 'number' }, shareable: true },
  { name: 'sha256', description: 'strings → hex sha256 of their UTF-8 bytes', itemSchema: { type: 'string' }, shareable: true },
  { name: 'gzip_size', description: 'strings → gzipped size in bytes', itemSchema: { type: 'string' }, shareable: true },
  {
    name: 'hash_file',
    description: 'paths under the roots → {sha256, git_oid, size} (git_oid as `git hash-object`)',
    itemSchema: { type: 'string', minLength: 1, maxLength: 4096 },
    paths: true,
  },
  { name: 'count_lines', description: 'paths under the roots → number of lines', itemSchema: { type: 'string', minLength: 1, maxLength: 4096 }, paths: true },
];

/** The roots path items are contained in: this plugin's own, else the files plugin's (when it is on), else home. */
function pathRoots(ctx: PluginContext<BatchOptions>): string[] {
  if (ctx.config.roots) return [...ctx.config.roots];
  return [...(ctx.useOptional<{ roots: readonly string[] }>('files')?.roots ?? [homedir()])];
}

const batchBody = {
  type: 'object',
  required: ['items', 'operation'],
  additionalProperties: false,
  properties: {
    items: { type: 'array', description: 'more than plugins.batch.max_items → 413' },
    operation: { type: 'string', minLength: 1, maxLength: 100 },
    batch_size: { type: 'integer', minimum: 1, maximum: 100_000, description: 'items per worker task (default plugins.batch.batch_size)' },
    max_concurrent: { type: 'integer', minimum: 1, maximum: 1000, description: 'chunks of this batch in flight at once (default plugins.batch.max_concurrent)' },
  },
};

const jobParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } };

interface BatchBody {
  items: unknown[];
  operation: string;
  batch_size?: number;
  max_concurrent?: number;
}

export default definePlugin<BatchOptions, BatchApi>({
  name: 'batch',
  optionalDependsOn: ['files'],
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      batch_size: { type: 'integer', minimum: 1, default: 20, description: 'Items per worker task when a request does not say ($PERFORMANCE_BATCH_SIZE).' },
      max_concurrent: { type: 'integer', minimum: 1, default: 10, description: 'Chunks of one batch in flight at once ($PERFORMANCE_MAX_CONCURRENT).' },
      max_items: { type: 'integer', minimum: 1, default: DEFAULT_MAX_ITEMS, description: 'Most items in one batch; more → 413.' },
      job_retention_seconds: { type: 'number', minimum: 0, default: 86_400, description: 'How long finished jobs (and their results) are kept.' },
      max_running_jobs: { type: 'integer', minimum: 1, default: 2, description: 'Jobs that run at once; the others wait, queued.' },
      max_jobs: { type: 'integer', minimum: 1, default: 100, description: 'Unfinished (queued or running) jobs; more → 429.' },
      roots: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Roots of the path operations. Default: the files plugin\'s roots, else your home.' },
      queue: QUEUE_SCHEMA,
      shared_roots: SHARED_ROOTS_SCHEMA,
    },
  },
  tasks: Object.fromEntries(BUILTINS.map((b) => [b.name, task(b.name)])),
  async setup(ctx) {
    const operations = new Operations(ctx.cache);
    // A daemon declaring a root shared runs path chunks under it: the root is one of its path roots too.
    const roots = [...pathRoots(ctx), ...(ctx.config.shared_roots ?? [])];
    for (const b of BUILTINS) {
      operations.add('batch', {
        name: b.name,
        description: b.description,
        itemSchema: b.itemSchema,
        shareable: b.shareable === true,
        paths: b.paths === true,
        run: (items, { signal }) => ctx.runTask<ChunkResult>(b.name, b.paths ? { items, context: { roots } } : { items }, { signal }),
      });
    }

    const jobs = new Jobs({
      dir: join(ctx.core.state_dir, 'batch-jobs'),
      maxRunning: ctx.config.max_running_jobs,
      maxJobs: ctx.config.max_jobs,
      retentionSeconds: ctx.config.job_retention_seconds,
      publish: (type, data) => ctx.events.publish(type, data),
      onError: (err, context) => ctx.log.warn({ err, context }, 'batch job store'),
    });
    // Chunks in flight may finish within part of the close limit; then they are aborted.
    const grace = Math.floor(ctx.core.server.close_timeout_ms / 2);
    ctx.onClose(() => jobs.close(grace));

    let queue: QueueJobs | undefined;
    if (ctx.config.queue !== undefined) {
      const settings = queueSettings(ctx.config.queue, ctx.core.pool.max_threads);
      // BullMQ and ioredis (~0.2 s and ~25 MB of a start) are loaded only by a daemon that has a queue.
      const { QueueJobs } = await import('./queue-jobs.js');
      queue = new QueueJobs({
        settings,
        daemonId: daemonId(ctx.core.state_dir),
        sharedRoots: [...(ctx.config.shared_roots ?? [])],
        retentionSeconds: ctx.config.job_retention_seconds,
        operation: (name) => operations.get(name),
        maxQueue: () => ctx.pool.stats().max_queue,
        maxJobs: ctx.config.max_jobs,
        publish: (type, data) => ctx.events.publish(type, data),
        log: ctx.log,
      });
      const q = queue;
      ctx.onClose(() => q.close(grace));
      ctx.onHealth(() => q.queue.reasons());
      ctx.metrics.provide('batch_queue', () => q.stats());
      await q.start();
      registerDaemonsRoute(ctx, q);
    }
    const store = new JobStore(jobs, queue);

    /** The operation, sizes and items of a request, or the 400/413/429 that refuses it. */
    const admit = (body: BatchBody) => {
      const op = operations.get(body.operation);
      if (!op) {
        throw new HearthError('VALIDATION_FAILED', `Unknown operation "${body.operation}"`, {
          details: [{ path: '/operation', message: `must be one of ${operations.list().map((o) => JSON.stringify(o.name)).join(', ')}`, in: 'body' }],
        });
      }
      if (body.items.length > ctx.config.max_items) {
        throw new HearthError('PAYLOAD_TOO_LARGE', `${body.items.length} items is more than plugins.batch.max_items (${ctx.config.max_items})`);
      }
      if (ctx.pool.full) {
        throw new HearthError('QUEUE_FULL', 'The work queue is full; retry later', { headers: { 'Retry-After': '1' } });
      }
      return { op, batchSize: body.batch_size ?? ctx.config.batch_size, maxConcurrent: body.max_concurrent ?? ctx.config.max_concurrent };
    };

    ctx.route({
      method: 'GET',
      path: '/batch/operations',
      summary: 'The batch operations, with the JSON schema of their items',
      handler: () => operations.list(),
    });

    ctx.route({
      method: 'POST',
      path: '/batch/process',
      summary: 'Run a batch and answer with its results (in input order) and per-item errors',
      schema: { body: batchBody },
      handler: async ({ body, koa }: { body: BatchBody; koa: import('koa').Context }) => {
        const { op, batchSize, maxConcurrent } = admit(body);
        // A client that goes away cancels the rest of its batch.
        const controller = new AbortController();
        const onGone = () => {
          if (!koa.res.writableFinished) controller.abort(new Error('the client went away'));
        };
        koa.res.once('close', onGone);
        try {
          return await ctx.metrics.timed(`batch.${op.name}`, () =>
            runBatch(op, body.items, { batchSize, maxConcurrent, signal: controller.signal, whenFull: 'fail' }),
          );
        } catch (err) {
          if (isHearthError(err)) throw err;
          throw new HearthError('INTERNAL', undefined, { cause: err });
        } finally {
          koa.res.off('close', onGone);
        }
      },
    });

    ctx.route({
      method: 'POST',
      path: '/batch/jobs',
      summary: 'Start a batch as a job; 202 with its id (follow it with GET /batch/jobs/:id or its /events)',
      status: 202,
      schema: { body: batchBody },
      handler: async ({ body }: { body: BatchBody }) => {
        const { op, batchSize, maxConcurrent } = admit(body);
        const job = await store.create(op, body.items, batchSize, maxConcurrent);
        return { job_id: job.job_id, status: job.status };
      },
    });

    ctx.route({
      method: 'GET',
      path: '/batch/jobs',
      summary: 'Every job kept (newest first), without results',
      text: (list: Array<{ job_id: string; status: string; operation: string; processed_items: number; failed_items: number; total_items: number }>) =>
        list.map((j) => `${j.job_id} ${j.status} ${j.operation} ${j.processed_items + j.failed_items}/${j.total_items}`).join('\n'),
      handler: () => store.list(),
    });

    ctx.route({
      method: 'GET',
      path: '/batch/jobs/:id',
      summary: 'A job: status, counts, times, and its results and errors once finished',
      schema: { params: jobParams },
      handler: async ({ params }) => {
        const job = await store.get(params.id);
        if (!job) throw new HearthError('NOT_FOUND', `No job ${JSON.stringify(params.id)}`);
        return job;
      },
    });

    ctx.route({
      method: 'DELETE',
      path: '/batch/jobs/:id',
      summary: 'Cancel a queued or running job (its running chunks are stopped); a finished job is answered unchanged, with its final status',
      schema: { params: jobParams },
      handler: async ({ params }) => {
        const job = await store.cancel(params.id);
        if (!job) throw new HearthError('NOT_FOUND', `No job ${JSON.stringify(params.id)}`);
        return job;
      },
    });

    ctx.route({
      method: 'GET',
      path: '/batch/jobs/:id/events',
      produces: 'text/event-stream',
      summary: 'Server-sent progress of a job (batch.job.progress, then batch.job.finished, then the stream ends)',
      schema: { params: jobParams },
      handler: async ({ params, koa }) => {
        const id = String(params.id);
        // Subscribed before the job is read (a queue job is read from Redis): the events that come meanwhile
        // are kept, and those not older than the snapshot follow it.
        const early: HearthEvent[] = [];
        let onEvent = (event: HearthEvent) => void early.push(event);
        let end = () => {};
        const unsubscribe = ctx.events.subscribe(
          { types: ['batch.job.progress', 'batch.job.finished'] },
          (event) => {
            if (event.job_id === id) onEvent(event);
          },
          () => end(),
        );
        let first;
        try {
          first = await store.summary(id);
        } catch (err) {
          unsubscribe();
          throw err;
        }
        if (!first) {
          unsubscribe();
          throw new HearthError('NOT_FOUND', `No job ${JSON.stringify(id)}`);
        }
        // The snapshot goes out with the bus's clock now: the events after it carry later clocks.
        const stream = openEventStream(koa);
        end = stream.end;
        stream.onEnd(unsubscribe);
        const clock = ctx.events.clock;
        if (isFinished(first.status)) {
          stream.send(clock, 'batch.job.finished', first);
          stream.end();
          return;
        }
        // Progress only goes forward: a queue job's events come over Redis's channel, so one published before
        // the snapshot was read may arrive after it; an event not ahead of what was sent is left out.
        let done = first.processed_items + first.failed_items;
        onEvent = (event) => {
          if (event.type === 'batch.job.finished') {
            stream.send(event.id, event.type, event);
            stream.end();
            return;
          }
          const count = Number(event.processed_items) + Number(event.failed_items);
          if (count <= done) return;
          done = count;
          stream.send(event.id, event.type, event);
        };
        stream.send(clock, 'batch.job.progress', first);
        for (const event of early) onEvent(event);
      },
    });

    return {
      addOperation: (definition) => operations.add(definition.owner ?? 'another plugin', definition),
    };
  },
});
