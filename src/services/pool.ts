// The worker pool: one Piscina pool for every plugin's tasks. Piscina owns the threads: it keeps them
// alive, replaces one that exits or is stopped, lowers their priority (niceIncrement), stops a running
// task's thread when the task's AbortSignal aborts, and measures utilization. This service adds what
// Piscina 5.3 lacks, each with its reason below: a FIFO queue with an exact bound, a deadline counted from
// a task's start, and counts of how tasks ended.
import { Piscina } from 'piscina';
import { HearthError } from '../errors.js';

export interface PoolOptions {
  max_threads: number;
  max_queue: number;
  task_timeout_ms: number;
  /** How much lower the worker threads' priority is than the event loop's (Linux). Default 0. */
  worker_nice?: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Overrides pool.task_timeout_ms for this task. */
  timeoutMs?: number;
}

export interface PoolStats {
  threads: number;
  max_threads: number;
  running: number;
  queue_size: number;
  max_queue: number;
  completed: number;
  failed: number;
  timed_out: number;
  cancelled: number;
  utilization: number;
  task_timeout_ms: number;
}

/** The deadline of a task's start (thread start-up and module load), before its own deadline applies. */
export const STARTUP_MS = 30_000;

const workerUrl = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);

interface Pending {
  module: string;
  input: unknown;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** While queued: takes the task out of the queue when its signal aborts. */
  onAbort?: () => void;
}

export function abortError(reason: unknown): Error {
  const err = new Error(typeof reason === 'string' ? reason : reason instanceof Error ? reason.message : 'The task was cancelled');
  err.name = 'AbortError';
  return err;
}

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

const queueFull = (message: string) => new HearthError('QUEUE_FULL', message, { headers: { 'Retry-After': '1' } });

export class PoolService {
  readonly options: Readonly<PoolOptions>;
  #piscina: Piscina | undefined;
  /**
   * Tasks waiting for a thread: our own, handed to Piscina only when a thread is free, because Piscina's
   * queue does not fit (checked on 5.3.2). Its `maxQueue` does not bound tasks that carry an AbortSignal
   * (they wait in a second queue it does not count), and every task here carries one for its deadline; and
   * it does not run them in order: 8 tasks on one thread ran as 0 2 4 6 1 5 3 7, and with `stricterFIFO`
   * as 0 7 6 5 4 3 2 1. So Piscina's queue stays empty, QUEUE_FULL and queue_size are exact, and a queued
   * task that is cancelled never reaches a thread.
   */
  #queue: Pending[] = [];
  #running = 0;
  // Piscina's own `completed` counts every task a thread gave back, failed or stopped too: not ours.
  #completed = 0;
  #failed = 0;
  #timedOut = 0;
  #cancelled = 0;
  #closed = false;
  #nextId = 1;
  /** Running tasks by id: what restarts the deadline when the worker says the task has started. */
  #started = new Map<number, () => void>();

  constructor(options: PoolOptions) {
    this.options = { ...options };
  }

  /** Starts the threads (they stay alive: minThreads = maxThreads). Idempotent; run() starts it too. */
  start(): void {
    if (this.#piscina || this.#closed) return;
    this.#piscina = new Piscina({
      filename: workerUrl.href,
      minThreads: this.options.max_threads,
      maxThreads: this.options.max_threads,
      idleTimeout: 60_000,
      // Through nice(2), which lowers the calling thread alone on Linux but the whole process (the event
      // loop too) on macOS and the BSDs: so on Linux only.
      niceIncrement: process.platform === 'linux' ? (this.options.worker_nice ?? 0) : 0,
    });
    // A worker that dies between tasks is replaced by Piscina; its error must not become an uncaught one.
    this.#piscina.on('error', () => {});
    this.#piscina.on('message', (message: { hearth_task_started?: number }) => {
      if (typeof message?.hearth_task_started === 'number') this.#started.get(message.hearth_task_started)?.();
    });
  }

  /** Whether a new task would be refused with QUEUE_FULL right now. */
  get full(): boolean {
    return this.#running >= this.options.max_threads && this.#queue.length >= this.options.max_queue;
  }

  get queueSize(): number {
    return this.#queue.length;
  }

  /**
   * Runs the default export of the module at `module` on `input` in a worker thread. Rejects with
   * QUEUE_FULL (429) when the queue is full, TIMEOUT (504) past the deadline, an AbortError when `signal`
   * aborts, or the task's own error.
   */
  run<T = unknown>(module: URL | string, input: unknown, options: RunOptions = {}): Promise<T> {
    if (this.#closed) return Promise.reject(queueFull('The worker pool is closed'));
    if (options.signal?.aborted) {
      this.#cancelled++;
      return Promise.reject(abortError(options.signal.reason));
    }
    if (this.full) return Promise.reject(queueFull(`The work queue is full (${this.options.max_queue} tasks waiting)`));
    this.start();
    return new Promise<T>((resolve, reject) => {
      const task: Pending = {
        module: typeof module === 'string' ? module : module.href,
        input,
        timeoutMs: options.timeoutMs ?? this.options.task_timeout_ms,
        signal: options.signal,
        resolve: resolve as (v: unknown) => void,
        reject,
      };
      if (this.#running < this.options.max_threads) {
        this.#dispatch(task);
        return;
      }
      if (task.signal) {
        task.onAbort = () => {
          const at = this.#queue.indexOf(task);
          if (at < 0) return;
          this.#queue.splice(at, 1);
          this.#cancelled++;
          reject(abortError(task.signal!.reason));
        };
        task.signal.addEventListener('abort', task.onAbort, { once: true });
      }
      this.#queue.push(task);
    });
  }

  /**
   * Hands a task to Piscina, which has a free thread for it. Piscina has no deadline of its own; this one
   * counts from the task's start, not from when it was queued (the worker says when, after loading the
   * task module; a thread being started and the module load have STARTUP_MS), and is enforced by aborting
   * the task's signal: Piscina then stops the thread and starts another.
   */
  #dispatch(task: Pending): void {
    if (task.onAbort) task.signal!.removeEventListener('abort', task.onAbort);
    this.#running++;
    const id = this.#nextId++;
    const controller = new AbortController();
    let timedOut = false;
    const arm = (ms: number) =>
      setTimeout(() => {
        timedOut = true;
        controller.abort(new Error('deadline'));
      }, ms);
    let timer = arm(Math.max(task.timeoutMs, STARTUP_MS));
    this.#started.set(id, () => {
      clearTimeout(timer);
      timer = arm(task.timeoutMs);
    });
    const onAbort = () => controller.abort(task.signal!.reason);
    task.signal?.addEventListener('abort', onAbort, { once: true });
    // Book-keeping first, so a caller that sees the result also sees the pool's counts updated.
    const settle = (): void => {
      clearTimeout(timer);
      this.#started.delete(id);
      task.signal?.removeEventListener('abort', onAbort);
      this.#running--;
    };
    this.#piscina!.run({ id, module: task.module, input: task.input }, { signal: controller.signal }).then(
      (value) => {
        settle();
        this.#completed++;
        task.resolve(value);
        this.#next();
      },
      (err: unknown) => {
        settle();
        if (timedOut) {
          this.#timedOut++;
          this.#failed++;
          task.reject(new HearthError('TIMEOUT', `The task ran past its deadline of ${task.timeoutMs} ms and was stopped`));
        } else if (task.signal?.aborted) {
          this.#cancelled++;
          task.reject(abortError(task.signal.reason));
        } else {
          this.#failed++;
          task.reject(err instanceof Error ? err : new Error(String(err)));
        }
        this.#next();
      },
    );
  }

  #next(): void {
    while (this.#running < this.options.max_threads && this.#queue.length > 0) this.#dispatch(this.#queue.shift()!);
  }

  stats(): PoolStats {
    return {
      threads: this.#piscina?.threads.length ?? 0,
      max_threads: this.options.max_threads,
      running: this.#running,
      queue_size: this.#queue.length,
      max_queue: this.options.max_queue,
      completed: this.#completed,
      failed: this.#failed,
      timed_out: this.#timedOut,
      cancelled: this.#cancelled,
      utilization: Math.round((this.#piscina?.utilization ?? 0) * 1e4) / 1e4,
      task_timeout_ms: this.options.task_timeout_ms,
    };
  }

  /** Refuses new tasks, cancels queued ones, and stops the threads (running tasks are cut off). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const task of this.#queue.splice(0)) {
      if (task.onAbort) task.signal!.removeEventListener('abort', task.onAbort);
      this.#cancelled++;
      task.reject(abortError('the worker pool closed'));
    }
    const piscina = this.#piscina;
    this.#piscina = undefined;
    if (piscina) await piscina.destroy();
  }
}
