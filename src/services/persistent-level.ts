// Level 2 of the cache: a write-behind buffer in front of a Keyv. It is where the order of writes is kept,
// once, for the whole stack:
// - a set or delete is recorded in the buffer synchronously, in call order (the newest operation of a key
//   replaces the one before it), and reads look at the buffer first: read-your-writes;
// - a flush takes the whole buffer and hands it to Keyv in one `setMany` and one `deleteMany` (the SQLite
//   store commits each in one transaction); the batch stays visible to reads until it is committed;
// - flushes and clears reach the store one at a time, in the order they were asked for, so a clear deletes
//   what was written before it and keeps what was written after it;
// - a read that a write of its key, a commit or a clear overlapped is reported as overtaken
//   (`overtaken(mark, key)`), so the caller retries instead of promoting a value that may be older.
// A flush that fails turns its keys into deletes, retried, so an older committed value can never come back
// in place of a write that was lost.
import type { Keyv } from 'keyv';

export interface PersistentLevelOptions {
  /** Longest wait of a write in the buffer before its flush starts. Default 50 ms. */
  flushDelayMs?: number;
  /** Buffered writes that start a flush at once. Default 2000. */
  flushRows?: number;
  /** Buffered writes past which `set` waits for a flush (back-pressure). Default 50000. */
  maxPending?: number;
  /** Failures nobody awaits: background flushes. */
  onError?: (err: unknown, context: string) => void;
}

/** What the store behind the Keyv must offer besides Keyv's interface: deleting a namespace of keys. */
export interface PrefixStore {
  /** Deletes every entry whose key starts with `prefix` ('' = all); answers the keys of the live ones. */
  clearPrefix(prefix: string): Promise<string[]>;
}

export interface Found {
  value: unknown;
  /** Epoch ms, or null for no expiry. */
  expires: number | null;
}

const DELETED = Symbol('deleted');
type Op = Found | typeof DELETED;

/** What a read saw when it started: see `overtaken`. */
export interface Mark {
  readonly epoch: number;
  readonly op: Op | 'hidden' | undefined;
}
const EMPTY: ReadonlyMap<string, Op> = new Map();
const noop = (): void => {};

const isLive = (expires: number | null, now: number): boolean => expires === null || expires > now;

export class PersistentLevel {
  readonly #keyv: Keyv;
  readonly #store: PrefixStore;
  readonly #flushDelayMs: number;
  readonly #flushRows: number;
  readonly #maxPending: number;
  readonly #onError: (err: unknown, context: string) => void;

  #pending = new Map<string, Op>();
  /** The batch being committed: still visible to reads. */
  #inflight: ReadonlyMap<string, Op> = EMPTY;
  /** Prefixes whose committed entries a clear is deleting: hidden from reads meanwhile. */
  readonly #clearing: string[] = [];
  /** Moves whenever the store may have changed under a read: a commit, a clear starting or ending. */
  #epoch = 0;
  /** Flushes and clears, run one at a time in the order asked for. */
  #queue: Promise<unknown> = Promise.resolve();
  #queuedFlush: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #retryDelayMs = 0;
  #writeFailure: Error | undefined;
  #closing: Promise<void> | undefined;

  constructor(keyv: Keyv, store: PrefixStore, options: PersistentLevelOptions = {}) {
    this.#keyv = keyv;
    this.#store = store;
    this.#flushDelayMs = options.flushDelayMs ?? 50;
    this.#flushRows = options.flushRows ?? 2000;
    this.#maxPending = Math.max(options.maxPending ?? 50_000, this.#flushRows);
    this.#onError = options.onError ?? noop;
  }

  // ---- reads -------------------------------------------------------------------------------------

  /** The buffered operation of `key` (newest first), 'hidden' while a clear deletes it, or undefined. */
  #buffered(key: string): Op | 'hidden' | undefined {
    const op = this.#pending.get(key);
    if (op !== undefined) return op;
    if (this.#clearing.length > 0 && this.#clearing.some((p) => key.startsWith(p))) return 'hidden';
    return this.#inflight.get(key);
  }

  /** Taken before a read of `key`; see `overtaken`. */
  mark(key: string): Mark {
    return { epoch: this.#epoch, op: this.#buffered(key) };
  }

  /** Whether something may have changed `key` since `mark`: a write of it buffered since, a commit or a clear. */
  overtaken(mark: Mark, key: string): boolean {
    return mark.epoch !== this.#epoch || mark.op !== this.#buffered(key);
  }

  /** The live entry of `key`: the buffered write if any, else what the store has. Throws if unreadable. */
  async get(key: string): Promise<Found | undefined> {
    const op = this.#buffered(key);
    if (op !== undefined) return op === 'hidden' || op === DELETED || !isLive(op.expires, Date.now()) ? undefined : op;
    const raw = (await this.#keyv.get(key, { raw: true })) as { value?: unknown; expires?: number } | undefined;
    if (raw === undefined || raw.value === undefined) return undefined;
    return { value: raw.value, expires: typeof raw.expires === 'number' ? raw.expires : null };
  }

  async has(key: string): Promise<boolean> {
    const op = this.#buffered(key);
    if (op !== undefined) return op !== 'hidden' && op !== DELETED && isLive(op.expires, Date.now());
    return this.#keyv.has(key);
  }

  // ---- writes ------------------------------------------------------------------------------------

  /**
   * Buffers a write (`expires`: epoch ms or null). Answers undefined, or, when `maxPending` writes wait,
   * a promise of the flush that makes room.
   */
  set(key: string, value: unknown, expires: number | null): Promise<void> | undefined {
    if (this.#closing) return undefined;
    this.#pending.set(key, { value, expires });
    this.#schedule();
    return this.#pending.size >= this.#maxPending ? this.#requestFlush().catch(noop) : undefined;
  }

  /** Buffers a delete. */
  drop(key: string): void {
    if (this.#closing) return;
    this.#pending.set(key, DELETED);
    this.#schedule();
  }

  /** Buffers a delete. Answers whether a live entry was there. */
  async delete(key: string): Promise<boolean> {
    if (this.#closing) return false;
    const before = this.#buffered(key);
    this.drop(key);
    if (before === 'hidden' || before === DELETED) return false;
    if (before !== undefined) return isLive(before.expires, Date.now());
    return this.#keyv.has(key);
  }

  /**
   * Deletes every entry under `prefix` ('' = all): buffered ones at once, committed ones after the flush
   * in progress. Writes made after this call are kept. Answers the keys of the live entries removed.
   */
  async clear(prefix: string): Promise<string[]> {
    if (this.#closing) return [];
    const now = Date.now();
    const removed = new Set<string>();
    for (const [key, op] of this.#pending) {
      if (!key.startsWith(prefix)) continue;
      if (op !== DELETED && isLive(op.expires, now)) removed.add(key);
      this.#pending.delete(key);
    }
    this.#clearing.push(prefix);
    this.#epoch++;
    try {
      for (const key of await this.#enqueue(() => this.#store.clearPrefix(prefix))) removed.add(key);
    } finally {
      this.#clearing.splice(this.#clearing.indexOf(prefix), 1);
      this.#epoch++;
    }
    return [...removed];
  }

  // ---- flushing ----------------------------------------------------------------------------------

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(noop);
    return run;
  }

  #schedule(): void {
    if (this.#pending.size >= this.#flushRows && this.#retryDelayMs === 0) {
      this.#requestFlush().catch(noop);
    } else if (this.#timer === undefined && this.#queuedFlush === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#requestFlush().catch(noop);
      }, Math.max(this.#flushDelayMs, this.#retryDelayMs));
      this.#timer.unref();
    }
  }

  /** One flush queued and not yet started takes every write buffered when it starts: callers share it. */
  #requestFlush(): Promise<void> {
    this.#queuedFlush ??= this.#enqueue(() => {
      this.#queuedFlush = undefined;
      return this.#flushNow();
    });
    return this.#queuedFlush;
  }

  /** Resolves once every write made before the call is committed; rejects if that failed. */
  flush(): Promise<void> {
    return this.#requestFlush();
  }

  async #flushNow(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    this.#inflight = batch;
    const now = Date.now();
    const puts: Array<{ key: string; value: unknown; ttl?: number }> = [];
    const deletes: string[] = [];
    for (const [key, op] of batch) {
      if (op === DELETED || !isLive(op.expires, now)) deletes.push(key);
      else puts.push(op.expires === null ? { key, value: op.value } : { key, value: op.value, ttl: op.expires - now });
    }
    try {
      if (puts.length > 0) await this.#keyv.setMany(puts);
      if (deletes.length > 0) await this.#keyv.deleteMany(deletes);
      this.#retryDelayMs = 0;
      this.#writeFailure = undefined;
    } catch (err) {
      // Nothing of the batch is known to be in the store: its keys become deletes, retried later.
      this.#retryDelayMs = 1000;
      this.#writeFailure = err instanceof Error ? err : new Error(String(err));
      for (const key of batch.keys()) if (!this.#pending.has(key)) this.#pending.set(key, DELETED);
      this.#onError(err, 'flush');
      throw err;
    } finally {
      this.#inflight = EMPTY;
      this.#epoch++;
      if (this.#pending.size > 0 && !this.#closing) this.#schedule();
    }
  }

  // ---- state -------------------------------------------------------------------------------------

  /** The last flush's error while flushes fail (retried every second); undefined once one commits. */
  get writeFailure(): Error | undefined {
    return this.#writeFailure;
  }

  /** Flushes what is buffered, then disconnects the Keyv. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#requestFlush();
      } catch {
        // Already reported through onError; the buffered writes are lost, the file stays sound.
      } finally {
        if (this.#timer !== undefined) clearTimeout(this.#timer);
        await this.#keyv.disconnect();
      }
    })();
    return this.#closing;
  }
}
