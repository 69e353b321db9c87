// The BullMQ wiring of the batch queue: the Redis connections, a Queue and a Worker per queue this daemon
// uses (one for every job, one per shared root it declares, for path jobs under that root), the channel
// that brings every daemon's job events to the local bus, the maxmemory-policy check, the health reason
// while Redis is away, and the close. BullMQ gives the queue's hard parts: a chunk locked by the daemon
// running it, and a chunk whose daemon died (its lock expired) handed to another.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from '../../src/errors.js';
import { evictionPolicyIn, type RedisTarget } from '../../src/redis-target.js';
import { DaemonRegistry } from './daemons.js';
import type { QueueSettings } from './queue-options.js';
import { QueueStore, type ChannelMessage } from './queue-store.js';

/** A chunk as it travels through BullMQ: the job, the chunk's number, its items and their indexes in the job. */
export interface ChunkData {
  job: string;
  chunk: number;
  op: string;
  idx: number[];
  items: unknown[];
}

export type ChunkProcessor = (data: ChunkData, signal: AbortSignal | undefined) => Promise<void>;

/** Tries per chunk: a daemon closing hands its running chunks back (a failed try), another runs them. */
export const CHUNK_ATTEMPTS = 5;
const READY_WAIT_MS = 3000;

export const rootQueue = (root: string) => `root-${createHash('sha256').update(root).digest('hex').slice(0, 12)}`;
const MAIN_QUEUE = 'chunks';
/** Chunks per addBulk: each is one pipeline built and sent at once, holding the event loop while it is built. */
const ADD_SLICE = 500;

export interface BatchQueueOptions {
  settings: QueueSettings;
  daemonId: string;
  sharedRoots: string[];
  retentionSeconds: number;
  process: ChunkProcessor;
  /** A chunk BullMQ gave up on (tried CHUNK_ATTEMPTS times, or stalled more than max_stalls): its items are recorded as failed. */
  onGivenUp(data: ChunkData, err: Error): void;
  onMessage(message: ChannelMessage): void;
  /** Chunks this daemon has recorded, for its registry entry. */
  chunksRun(): number;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

async function evictionPolicy(redis: Redis): Promise<string> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    if (reply[1]) return reply[1];
  } catch {
    // CONFIG may be renamed or disabled (managed Redis): INFO says it too.
  }
  return evictionPolicyIn(await redis.info('memory'));
}

export class BatchQueue {
  readonly store: QueueStore;
  readonly registry: DaemonRegistry;
  readonly settings: QueueSettings;
  #options: BatchQueueOptions;
  #request: Redis;
  #subscriber: Redis;
  #workerConnection: Redis;
  #queues = new Map<string, Queue>();
  #workers: Worker[] = [];
  #lastError: string | undefined;
  /** Set when Redis answers with an eviction policy: the queue is then not used. */
  #misconfigured: string | undefined;
  /** Set once the connections are being closed: what they report then is not a Redis away. */
  #closing = false;
  #policyTimer: NodeJS.Timeout | undefined;
  #warned = 0;

  constructor(options: BatchQueueOptions) {
    this.#options = options;
    this.settings = options.settings;
    const { target, name } = options.settings;
    this.#request = connect(target, 'request');
    this.#subscriber = connect(target, 'subscriber');
    this.#workerConnection = connect(target, 'worker');
    for (const c of [this.#request, this.#subscriber, this.#workerConnection]) c.on('error', (err: Error) => this.#noteError(err));
    this.store = new QueueStore(this.#request, name, options.retentionSeconds);
    this.registry = new DaemonRegistry(
      this.#request,
      name,
      { id: options.daemonId, host: hostname(), roots: options.sharedRoots, concurrency: options.settings.concurrency },
      options.settings.heartbeatMs,
      options.chunksRun,
      () => {},
    );
  }

  #noteError(err: Error): void {
    if (this.#closing) return;
    this.#lastError = err.message || (err as { code?: string }).code || String(err);
    // Once per 30 s at most: a Redis that stays away must not fill the log.
    if (Date.now() - this.#warned > 30_000) {
      this.#warned = Date.now();
      this.#options.log.warn({ err: this.#lastError }, `batch queue ${this.settings.where}: Redis unreachable`);
    }
  }

  /**
   * Connects, checks the eviction policy (a Redis that evicts would lose chunks: throws, and the daemon
   * refuses to start), subscribes to the channel, and starts the workers and the heartbeat. A Redis that
   * does not answer within a few seconds is no reason to refuse: the daemon runs jobs locally meanwhile,
   * and checks the policy once it connects.
   */
  async start(): Promise<void> {
    if (await this.#ready()) {
      let problem: string | undefined;
      try {
        problem = await this.#checkPolicy();
      } catch {
        // Gone again meanwhile: checked when it is back.
      }
      if (problem) {
        this.#closing = true;
        await Promise.all([this.#request, this.#subscriber, this.#workerConnection].map((c) => quit(c)));
        throw new ConfigError(problem);
      }
    }
    // Checked again on every reconnect and with every heartbeat: someone may change it while we run.
    const recheck = () => {
      if (this.#request.status !== 'ready') return;
      void this.#checkPolicy().then((problem) => {
        if (problem && problem !== this.#misconfigured) this.#options.log.error({}, `${problem}; new jobs run on this daemon only`);
        if (!problem && this.#misconfigured) this.#options.log.info({}, `batch queue ${this.settings.where}: maxmemory-policy is noeviction again; the queue is used`);
        this.#misconfigured = problem;
      }, () => {});
    };
    this.#request.on('ready', () => {
      if (this.#lastError !== undefined) this.#options.log.info({}, `batch queue ${this.settings.where}: connected again`);
      this.#lastError = undefined;
      this.#warned = 0;
      recheck();
    });
    this.#policyTimer = setInterval(recheck, this.settings.heartbeatMs);
    this.#policyTimer.unref();
    this.#subscriber.on('message', (_channel: string, text: string) => {
      let message: ChannelMessage;
      try {
        message = JSON.parse(text) as ChannelMessage;
      } catch {
        return;
      }
      this.#options.onMessage(message);
    });
    void this.#subscriber.subscribe(this.store.channel).catch(() => {});
    const { concurrency } = this.settings;
    if (concurrency > 0) {
      this.#startWorker(MAIN_QUEUE);
      for (const root of this.#options.sharedRoots) this.#startWorker(rootQueue(root));
    }
    this.registry.start();
  }

  #ready(): Promise<boolean> {
    if (this.#request.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        this.#request.off('ready', onReady);
        this.#request.off('error', onError);
        resolve(value);
      };
      const onReady = () => done(true);
      const onError = () => done(false);
      const timer = setTimeout(() => done(false), READY_WAIT_MS);
      this.#request.once('ready', onReady);
      this.#request.once('error', onError);
    });
  }

  async #checkPolicy(): Promise<string | undefined> {
    const policy = await evictionPolicy(this.#request);
    if (policy === 'noeviction') return undefined;
    return `batch queue ${this.settings.where}: Redis maxmemory-policy is "${policy}"; BullMQ needs "noeviction" (CONFIG SET maxmemory-policy noeviction)`;
  }

  #startWorker(queueName: string): void {
    const worker = new Worker(
      queueName,
      async (job: Job<ChunkData>, _token?: string, signal?: AbortSignal) => this.#options.process(job.data, signal),
      {
        connection: this.#workerConnection,
        prefix: this.settings.name,
        concurrency: this.settings.concurrency,
        lockDuration: this.settings.lockMs,
        stalledInterval: this.settings.stalledIntervalMs,
        maxStalledCount: this.settings.maxStalls,
      },
    );
    worker.on('error', (err) => this.#noteError(err));
    worker.on('stalled', (chunk) => this.#options.log.info({ chunk }, 'batch queue: a chunk whose daemon died or hung is run again'));
    // A try that failed for good (out of attempts, or stalled too often: BullMQ then fails it without a try)
    // has its finishing time set; one to be retried has not.
    worker.on('failed', (job, err) => {
      if (job?.finishedOn) this.#options.onGivenUp(job.data, err);
    });
    this.#workers.push(worker);
  }

  #queue(queueName: string): Queue {
    let queue = this.#queues.get(queueName);
    if (!queue) {
      queue = new Queue(queueName, {
        connection: this.#request,
        prefix: this.settings.name,
        defaultJobOptions: { attempts: CHUNK_ATTEMPTS, removeOnComplete: true, removeOnFail: true },
      });
      queue.on('error', (err) => this.#noteError(err));
      this.#queues.set(queueName, queue);
    }
    return queue;
  }

  /**
   * Queues a job's chunks: on the queue of its shared root (a path job), else on the one every daemon runs.
   * In slices: one addBulk of 20,000 chunks held the event loop for ~2.5 s (a /health meanwhile took 1.1 s).
   */
  async add(chunks: ChunkData[], root?: string): Promise<void> {
    const queue = this.#queue(root ? rootQueue(root) : MAIN_QUEUE);
    for (let at = 0; at < chunks.length; at += ADD_SLICE) {
      await queue.addBulk(chunks.slice(at, at + ADD_SLICE).map((data) => ({ name: 'chunk', data })));
    }
  }

  /** Whether jobs can go through the queue now (Redis connected, and one that does not evict). */
  get available(): boolean {
    return this.#request.status === 'ready' && !this.#misconfigured;
  }

  /** What /health says while the queue is not usable (empty when it is). */
  reasons(): string[] {
    if (this.#misconfigured) return [this.#misconfigured];
    if (this.#request.status === 'ready') return [];
    return [`batch queue ${this.settings.where} unreachable: ${this.#lastError ?? this.#request.status}; new jobs run on this daemon only`];
  }

  /**
   * Stops taking chunks; the running ones may finish within `graceMs`, then `abort` stops them (BullMQ
   * hands them to another daemon). Then every connection is closed: BullMQ does not quit the ones it is given.
   */
  async close(graceMs: number, abort: () => void): Promise<void> {
    this.#closing = true;
    clearInterval(this.#policyTimer);
    // With Redis away nothing can be handed back or recorded, and BullMQ's close would wait for it: at once.
    const away = this.#request.status !== 'ready';
    await bounded(this.registry.close(), away ? 100 : 1000);
    const closing = Promise.allSettled(this.#workers.map((w) => w.close(away)));
    if (!(await bounded(closing, away ? 100 : graceMs))) {
      abort();
      await bounded(closing, away ? 100 : 2000);
    }
    await bounded(Promise.allSettled([...this.#queues.values()].map((q) => q.close())), away ? 100 : 2000);
    await Promise.all([this.#request, this.#subscriber, this.#workerConnection].map((c) => quit(c)));
  }
}

/** Whether `promise` settled within `ms`. */
async function bounded(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** QUIT when connected (what is in flight is answered first), else drop the connection. */
async function quit(redis: Redis): Promise<void> {
  if (redis.status === 'ready' && (await bounded(redis.quit(), 1000))) return;
  redis.disconnect();
}

/**
 * A connection: it reconnects within 2 s, forever; one that requests use (`request`) fails a command at
 * once while disconnected rather than queue it and keep an HTTP request waiting. BullMQ's Worker needs
 * `maxRetriesPerRequest: null`. Whoever opens one quits it (BullMQ does not quit a connection it is given).
 */
function connect(target: RedisTarget, mode: 'request' | 'worker' | 'subscriber'): Redis {
  const options: RedisOptions = {
    retryStrategy: (times) => Math.min(100 * times, 2000),
    ...(mode === 'request' ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 } : { maxRetriesPerRequest: null }),
  };
  return target.kind === 'socket' ? new Redis({ ...options, path: target.path }) : new Redis(target.url, options);
}
