// Runs one batch: items checked against the operation's schema, cut into chunks of batch_size (one worker
// task per chunk), at most max_concurrent chunks in flight, results put back in input order.
import { isHearthError } from '../../src/errors.js';
import type { Operation } from './operations.js';
import type { ItemCode } from './task-kit.js';

export interface BatchError {
  index: number;
  code: ItemCode;
  message: string;
}

export interface BatchResult {
  operation: string;
  total_items: number;
  processed_items: number;
  failed_items: number;
  results: unknown[];
  errors: BatchError[];
  batch_size: number;
}

export interface Progress {
  total_items: number;
  processed_items: number;
  failed_items: number;
}

export interface RunBatchOptions {
  batchSize: number;
  maxConcurrent: number;
  signal: AbortSignal;
  /** Called after each chunk. */
  onProgress?: (progress: Progress) => void;
  /**
   * What to do when the pool refuses a chunk (QUEUE_FULL): `fail` rethrows (a synchronous request answers
   * 429 at once), `wait` retries after a pause (an accepted job keeps going).
   */
  whenFull: 'fail' | 'wait';
  /** When it aborts, no new chunk starts; chunks in flight finish, then the run rejects with its reason. */
  drain?: AbortSignal;
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A promise with its resolve (Promise.withResolvers is Node 22). */
function signalled(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Checks each item against the operation's item schema: the indexes that pass, and an ITEM_INVALID error for each that does not. */
export function checkItems(op: Operation, items: unknown[]): { valid: number[]; errors: BatchError[] } {
  const errors: BatchError[] = [];
  const valid: number[] = [];
  for (let i = 0; i < items.length; i++) {
    if (op.validate(items[i])) valid.push(i);
    else {
      const first = op.validate.errors?.[0];
      const where = first?.instancePath ? ` at ${first.instancePath}` : '';
      errors.push({ index: i, code: 'ITEM_INVALID', message: `the item${where} ${first?.message ?? 'is invalid'}` });
    }
  }
  return { valid, errors };
}

export async function runBatch(op: Operation, items: unknown[], options: RunBatchOptions): Promise<BatchResult> {
  const results: unknown[] = new Array(items.length).fill(null);
  const { valid, errors } = checkItems(op, items);
  const progress: Progress = { total_items: items.length, processed_items: 0, failed_items: errors.length };
  if (errors.length > 0) options.onProgress?.({ ...progress });

  const chunks = Math.ceil(valid.length / options.batchSize);
  let nextChunk = 0;
  // Sibling lanes stop once one fails for good (abort, or QUEUE_FULL in `fail` mode).
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  // Chunks of this batch in the pool, and a promise settled whenever one of them is done.
  let inFlight = 0;
  let chunkDone = signalled();

  const runChunk = async (input: unknown[]) => {
    inFlight++;
    try {
      return await op.run(input, { signal });
    } finally {
      inFlight--;
      chunkDone.resolve();
      chunkDone = signalled();
    }
  };

  const lane = async (): Promise<void> => {
    while (nextChunk < chunks && !signal.aborted) {
      if (options.drain?.aborted) throw options.drain.reason;
      const chunk = nextChunk++;
      const indexes = valid.slice(chunk * options.batchSize, (chunk + 1) * options.batchSize);
      const input = indexes.map((i) => items[i]);
      let outcome;
      for (;;) {
        try {
          outcome = await runChunk(input);
          break;
        } catch (err) {
          if (signal.aborted) throw options.signal.aborted ? options.signal.reason ?? err : err;
          if (isHearthError(err) && err.code === 'QUEUE_FULL') {
            // The pool is full. With chunks of our own in it, wait for one of them (our own backpressure);
            // without, a synchronous batch gives up at once (429) and a job waits a little.
            if (inFlight > 0) await Promise.race([chunkDone.promise, delay(1000, signal)]);
            else if (options.whenFull === 'fail') throw err;
            else await delay(50, signal);
            continue;
          }
          // The whole chunk failed (its task threw, exited or ran past its deadline): its items fail alone.
          const message = err instanceof Error ? err.message : String(err);
          outcome = { results: indexes.map(() => null), errors: indexes.map((_, index) => ({ index, code: 'ITEM_FAILED' as const, message })) };
          break;
        }
      }
      const failed = new Set<number>();
      for (const e of outcome.errors) {
        failed.add(e.index);
        errors.push({ index: indexes[e.index]!, code: e.code, message: e.message });
      }
      indexes.forEach((at, k) => {
        results[at] = failed.has(k) ? null : (outcome.results[k] ?? null);
      });
      progress.processed_items += indexes.length - failed.size;
      progress.failed_items += failed.size;
      options.onProgress?.({ ...progress });
    }
  };

  const lanes = Array.from({ length: Math.min(options.maxConcurrent, chunks) }, () =>
    lane().catch((err: unknown) => {
      stop.abort(err);
      throw err;
    }),
  );
  const settled = await Promise.allSettled(lanes);
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw stop.signal.reason ?? failure.reason;
  if (options.signal.aborted) throw options.signal.reason;

  errors.sort((a, b) => a.index - b.index);
  return {
    operation: op.name,
    total_items: items.length,
    processed_items: progress.processed_items,
    failed_items: progress.failed_items,
    results,
    errors,
    batch_size: options.batchSize,
  };
}
