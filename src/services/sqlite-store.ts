// Level 2 of the cache: a Keyv store adapter on one SQLite file. It builds on @keyv/sqlite (its connection,
// its table and its query function) and adds what that adapter lacks for a cache that takes bursts:
// - WAL and synchronous=NORMAL: a crash loses at most the writes not yet committed, never the file;
// - a write-behind buffer: sets and deletes are kept in memory and written in ONE transaction of multi-row
//   INSERT OR REPLACE / DELETE, at the latest `flushDelayMs` after the first pending write, or at once
//   when `flushRows` writes are pending; `flush()` resolves once they are committed;
// - read-your-writes: reads look at the buffer (and at the batch being committed) before the file;
// - an `expires` column: expired rows are never served, purged on open and every `purgeIntervalMs`;
// - a bound: past `maxEntries` rows, the least recently written rows are deleted (rowid order: INSERT OR
//   REPLACE gives a rewritten key a new rowid).
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { KeyvSqlite } from '@keyv/sqlite';

export interface SqliteStoreOptions {
  /** The database file, e.g. `<state_dir>/cache.sqlite`. Its directory is created if missing. */
  path: string;
  /** Row bound (cache.max_store_entries). */
  maxEntries: number;
  /** Longest time a write waits in the buffer before its transaction starts. Default 50 ms. */
  flushDelayMs?: number;
  /** Pending writes that start a flush at once. Default 2000. */
  flushRows?: number;
  /** Pending writes past which `set` waits for a flush (back-pressure). Default 50000. */
  maxPending?: number;
  /** Background purge of expired rows. Default 60 s; 0 = only on open. */
  purgeIntervalMs?: number;
  /** Table name. Default `hearth_cache`. */
  table?: string;
  /** Failures that nobody awaits (background flushes, purges, a damaged file moved aside). */
  onError?: (err: unknown, context: string) => void;
}

const DELETED = Symbol('deleted');
interface Put {
  value: string;
  /** Epoch ms, or null for no expiry. */
  expires: number | null;
}
type Op = Put | typeof DELETED;

interface Row {
  key: string;
  value: string;
  expires: number | null;
}

// Rows per INSERT statement: 3 parameters each, far under SQLite's 32766 variables.
const INSERT_ROWS = 500;
const DELETE_KEYS = 500;
const EMPTY: ReadonlyMap<string, Op> = new Map();
const noop = (): void => {};

const isLive = (expires: number | null | undefined, now: number): boolean =>
  expires === null || expires === undefined || expires > now;

/** The smallest string greater than every string that starts with `prefix` (prefix is non-empty). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

function isDamagedFile(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT';
}

export class SqliteStore extends KeyvSqlite {
  readonly path: string;
  readonly #table: string;
  readonly #maxEntries: number;
  readonly #flushDelayMs: number;
  readonly #flushRows: number;
  readonly #maxPending: number;
  readonly #onError: (err: unknown, context: string) => void;

  #pending = new Map<string, Op>();
  /** The batch inside the transaction being committed: still visible to reads. */
  #inflight: ReadonlyMap<string, Op> = EMPTY;
  /** Key prefixes whose committed rows are being deleted by a clear: hidden from reads meanwhile. */
  #clearing: string[] = [];
  /**
   * Rows in the table, exact: counted once on open, then moved by what each statement did (rows a commit
   * added or deleted, rows a clear or purge deleted), so that stats never run `count(*)` (a scan of the
   * table). The store is the file's only writer (one daemon per state dir).
   */
  #rows = 0;
  /** Whether the last chunk a flush wrote held only new keys (see #writeChunk). */
  #lastChunkNew = true;
  /** The error of the last flush when it failed; cleared by the next flush that commits. */
  #writeFailure: Error | undefined;
  #expiredCount = 0;
  #flushes = 0;
  #failedFlushes = 0;
  /** After a failed flush, retries wait this long instead of flushDelayMs. */
  #retryDelayMs = 0;

  #lock: Promise<unknown> = Promise.resolve();
  #queuedFlush: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #purgeTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #dbClosed = false;
  readonly ready: Promise<void>;

  /** Prefer `SqliteStore.open`, which waits for the file to be ready and replaces a damaged one. */
  constructor(options: SqliteStoreOptions) {
    mkdirSync(dirname(options.path), { recursive: true });
    super({ uri: `sqlite://${options.path}`, table: options.table ?? 'hearth_cache', busyTimeout: 5000 });
    this.ttlSupport = true;
    this.path = options.path;
    this.#table = this.opts.table!;
    this.#maxEntries = options.maxEntries;
    this.#flushDelayMs = options.flushDelayMs ?? 50;
    this.#flushRows = options.flushRows ?? 2000;
    this.#maxPending = Math.max(options.maxPending ?? 50_000, this.#flushRows);
    this.#onError = options.onError ?? noop;
    // @keyv/sqlite emits 'error' when the connection fails; without a listener that would throw.
    this.on('error', noop);
    this.ready = this.#init();
    this.ready.catch(noop);
    const purgeMs = options.purgeIntervalMs ?? 60_000;
    if (purgeMs > 0) {
      this.#purgeTimer = setInterval(() => {
        this.purgeExpired().catch((err) => this.#onError(err, 'purge'));
      }, purgeMs);
      this.#purgeTimer.unref();
    }
  }

  /** Opens (or creates) the store; a file that is not a database or is damaged is moved aside and recreated. */
  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    const store = new SqliteStore(options);
    try {
      await store.ready;
      return store;
    } catch (err) {
      await store.disconnect().catch(noop);
      if (!isDamagedFile(err)) throw err;
      const aside = `${options.path}.damaged-${Date.now()}`;
      for (const suffix of ['', '-wal', '-shm']) {
        if (existsSync(options.path + suffix)) renameSync(options.path + suffix, aside + suffix);
      }
      (options.onError ?? noop)(err, `cache file damaged; moved to ${aside}, starting empty`);
      const fresh = new SqliteStore(options);
      await fresh.ready;
      return fresh;
    }
  }

  async #init(): Promise<void> {
    await this.query('PRAGMA journal_mode = WAL');
    await this.query('PRAGMA synchronous = NORMAL');
    const columns: Array<{ name: string }> = await this.query(`PRAGMA table_info(${this.#table})`);
    if (!columns.some((c) => c.name === 'expires')) {
      await this.query(`ALTER TABLE ${this.#table} ADD COLUMN expires INTEGER`);
    }
    await this.query(`DELETE FROM ${this.#table} WHERE expires IS NOT NULL AND expires <= ?`, [Date.now()]);
    this.#rows = await this.#countRows();
    if (this.#rows > this.#maxEntries) {
      await this.#exclusive(async () => {
        this.#rows = await this.#enforceBound(this.#rows);
      });
    }
  }

  // ---- reads -------------------------------------------------------------------------------------

  /** The buffered operation for `key`, if any (newest first), or 'hidden' while a clear deletes it. */
  #buffered(key: string): Op | 'hidden' | undefined {
    const op = this.#pending.get(key);
    if (op !== undefined) return op;
    if (this.#clearing.length > 0 && this.#clearing.some((p) => key.startsWith(p))) return 'hidden';
    return this.#inflight.get(key);
  }

  async #readRow(key: string): Promise<Row | undefined> {
    await this.ready;
    if (this.#dbClosed) return undefined;
    const rows: Row[] = await this.query(`SELECT key, value, expires FROM ${this.#table} WHERE key = ?`, [key]);
    const row = rows[0];
    if (row === undefined) return undefined;
    if (!isLive(row.expires, Date.now())) {
      // Counted once: the delete is buffered, so the next read finds nothing (unless a write came meanwhile).
      if (this.#buffered(key) === undefined) {
        this.#expiredCount++;
        this.#pending.set(key, DELETED);
        this.#schedule();
      }
      return undefined;
    }
    return row;
  }

  override async get<Value>(key: string): Promise<Value | undefined> {
    const op = this.#buffered(key);
    if (op !== undefined) {
      if (op === 'hidden' || op === DELETED || !isLive(op.expires, Date.now())) return undefined;
      return op.value as Value;
    }
    const row = await this.#readRow(key);
    return row?.value as Value | undefined;
  }

  override async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    return Promise.all(keys.map((key) => this.get<Value>(key)));
  }

  override async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  /** Expiry (epoch ms, or null) of a live entry, or undefined when there is none. */
  async expiresOf(key: string): Promise<number | null | undefined> {
    const op = this.#buffered(key);
    if (op !== undefined) {
      if (op === 'hidden' || op === DELETED || !isLive(op.expires, Date.now())) return undefined;
      return op.expires;
    }
    const row = await this.#readRow(key);
    return row === undefined ? undefined : row.expires;
  }

  // ---- writes ------------------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closing) throw new Error('the cache store is closed');
  }

  /**
   * Buffers a write: `value` is what Keyv serialized, `ttl` in ms (none = no expiry). Resolves at once,
   * unless `maxPending` writes wait, then once a flush has made room.
   */
  override async set(key: string, value: any, ttl?: number): Promise<boolean> {
    this.#checkOpen();
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    const expires = typeof ttl === 'number' && ttl > 0 && Number.isFinite(ttl) ? Date.now() + ttl : null;
    this.#pending.set(key, { value: text, expires });
    this.#schedule();
    if (this.#pending.size >= this.#maxPending) await this.#requestFlush().catch(noop);
    return true;
  }

  async setMany(entries: Array<{ key: string; value: any; ttl?: number }>): Promise<void> {
    for (const { key, value, ttl } of entries) await this.set(key, value, ttl);
  }

  /** Buffers a delete. Answers whether a live entry was there. */
  override async delete(key: string): Promise<boolean> {
    this.#checkOpen();
    const before = this.#buffered(key);
    this.#pending.set(key, DELETED);
    this.#schedule();
    if (before === 'hidden' || before === DELETED) return false;
    if (before !== undefined) return isLive(before.expires, Date.now());
    await this.ready;
    if (this.#dbClosed) return false;
    const rows: Row[] = await this.query(`SELECT expires FROM ${this.#table} WHERE key = ?`, [key]);
    return rows[0] !== undefined && isLive(rows[0].expires, Date.now());
  }

  override async deleteMany(keys: string[]): Promise<boolean> {
    const results = await Promise.all(keys.map((key) => this.delete(key)));
    return results.some(Boolean);
  }

  /** Keyv's clear: everything, or Keyv's namespace when it set one. */
  override async clear(): Promise<void> {
    await this.clearPrefix(this.namespace ? `${this.namespace}:` : '');
  }

  /**
   * Deletes every entry whose key starts with `prefix` ('' = all): buffered ones at once, committed ones in
   * a statement that runs after the transaction in progress. Writes made after this call are kept.
   * Answers the keys of the live entries removed.
   */
  async clearPrefix(prefix: string): Promise<string[]> {
    this.#checkOpen();
    const now = Date.now();
    const removed = new Set<string>();
    for (const [key, op] of this.#pending) {
      if (!key.startsWith(prefix)) continue;
      if (op !== DELETED && isLive(op.expires, now)) removed.add(key);
      this.#pending.delete(key);
    }
    this.#clearing.push(prefix);
    try {
      await this.ready;
      const rows: Row[] = await this.#exclusive(() =>
        prefix === ''
          ? this.query(`DELETE FROM ${this.#table} RETURNING key, expires`)
          : this.query(`DELETE FROM ${this.#table} WHERE key >= ? AND key < ? RETURNING key, expires`, [prefix, prefixEnd(prefix)]),
      );
      this.#rows = Math.max(0, this.#rows - rows.length);
      const after = Date.now();
      for (const row of rows) if (isLive(row.expires, after)) removed.add(row.key);
    } finally {
      this.#clearing.splice(this.#clearing.indexOf(prefix), 1);
    }
    return [...removed];
  }

  /** Deletes expired rows now. Answers how many. */
  async purgeExpired(): Promise<number> {
    if (this.#closing) return 0;
    await this.ready;
    return this.#exclusive(async () => {
      const rows: Array<{ key: string }> = await this.query(
        `DELETE FROM ${this.#table} WHERE expires IS NOT NULL AND expires <= ? RETURNING key`,
        [Date.now()],
      );
      this.#rows = Math.max(0, this.#rows - rows.length);
      return rows.length;
    });
  }

  // ---- flushing ----------------------------------------------------------------------------------

  /** Runs `fn` after every write transaction queued before it (one writer at a time). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(noop);
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

  /** One flush queued and not yet started takes every write pending when it starts: callers share it. */
  #requestFlush(): Promise<void> {
    this.#queuedFlush ??= this.#exclusive(() => {
      this.#queuedFlush = undefined;
      return this.#flushNow();
    });
    return this.#queuedFlush;
  }

  /** Resolves once every write made before the call is committed to the file; rejects if that failed. */
  flush(): Promise<void> {
    if (this.#dbClosed) return Promise.resolve();
    return this.#requestFlush();
  }

  async #flushNow(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#pending.size === 0 || this.#dbClosed) return;
    await this.ready;
    const batch = this.#pending;
    this.#pending = new Map();
    this.#inflight = batch;
    const puts: unknown[] = [];
    const deletes: string[] = [];
    for (const [key, op] of batch) {
      if (op === DELETED) deletes.push(key);
      else puts.push(key, op.value, op.expires);
    }
    const putRows = puts.length / 3;
    try {
      await this.query('BEGIN IMMEDIATE');
      // The row count after this transaction: each put adds a row unless its key had one already.
      let rows = this.#rows;
      try {
        for (let i = 0; i < putRows; i += INSERT_ROWS) {
          const n = Math.min(INSERT_ROWS, putRows - i);
          rows += await this.#writeChunk(puts.slice(i * 3, (i + n) * 3), n);
        }
        for (let i = 0; i < deletes.length; i += DELETE_KEYS) {
          const chunk = deletes.slice(i, i + DELETE_KEYS);
          const gone: unknown[] = await this.query(`DELETE FROM ${this.#table} WHERE key IN (${'?,'.repeat(chunk.length - 1)}?) RETURNING key`, chunk);
          rows -= gone.length;
        }
        if (rows > this.#maxEntries) rows = await this.#enforceBound(rows);
        await this.query('COMMIT');
      } catch (err) {
        await this.query('ROLLBACK').catch(noop);
        throw err;
      }
      this.#rows = rows;
      this.#flushes++;
      this.#retryDelayMs = 0;
      this.#writeFailure = undefined;
    } catch (err) {
      // Nothing of the batch reached the file. Its keys become deletes (retried later), so that an older
      // committed value can never come back in place of a write that was lost.
      this.#failedFlushes++;
      this.#retryDelayMs = 1000;
      this.#writeFailure = err instanceof Error ? err : new Error(String(err));
      for (const key of batch.keys()) if (!this.#pending.has(key)) this.#pending.set(key, DELETED);
      this.#onError(err, 'flush');
      throw err;
    } finally {
      this.#inflight = EMPTY;
      if (this.#pending.size > 0 && !this.#dbClosed) this.#schedule();
    }
  }

  /**
   * Inside the flush's transaction: writes `n` rows (key, value, expires triples) with INSERT OR REPLACE
   * (a rewritten key gets a new rowid: the bound's order of writing) and answers how many of them are new
   * rows, which keeps the row count exact. Two ways to learn that, the cheaper one picked by the last chunk:
   * after a chunk of only new keys (a burst of first writes), INSERT OR IGNORE then changes() (the new
   * ones), and REPLACE only if some were there already; otherwise a count of the keys present first.
   */
  async #writeChunk(chunk: unknown[], n: number): Promise<number> {
    const values = `VALUES ${'(?,?,?),'.repeat(n - 1)}(?,?,?)`;
    const replace = `INSERT OR REPLACE INTO ${this.#table} (key, value, expires) ${values}`;
    let fresh: number;
    if (this.#lastChunkNew) {
      await this.query(`INSERT OR IGNORE INTO ${this.#table} (key, value, expires) ${values}`, chunk);
      const changed: Array<{ n: number }> = await this.query('SELECT changes() AS n');
      fresh = changed[0]?.n ?? 0;
      if (fresh < n) await this.query(replace, chunk);
    } else {
      const keys = chunk.filter((_, j) => j % 3 === 0);
      const present: Array<{ n: number }> = await this.query(`SELECT count(*) AS n FROM ${this.#table} WHERE key IN (${'?,'.repeat(n - 1)}?)`, keys);
      fresh = n - (present[0]?.n ?? 0);
      await this.query(replace, chunk);
    }
    this.#lastChunkNew = fresh === n;
    return fresh;
  }

  /**
   * Inside a transaction or the write lock, with `rows` rows in the table: deletes the least recently
   * written rows past the bound. Answers the rows left.
   */
  async #enforceBound(rows: number): Promise<number> {
    if (rows <= this.#maxEntries) return rows;
    const gone: unknown[] = await this.query(
      `DELETE FROM ${this.#table} WHERE rowid IN (SELECT rowid FROM ${this.#table} ORDER BY rowid LIMIT ?) RETURNING rowid`,
      [rows - this.#maxEntries],
    );
    return rows - gone.length;
  }

  async #countRows(): Promise<number> {
    const rows: Array<{ n: number }> = await this.query(`SELECT count(*) AS n FROM ${this.#table}`);
    return rows[0]?.n ?? 0;
  }

  // ---- state -------------------------------------------------------------------------------------

  /** Rows committed to the file (expired rows not yet purged included). */
  async count(): Promise<number> {
    await this.ready;
    return this.rowCount;
  }

  /** The same, without waiting: 0 before the file is open and after it is closed. */
  get rowCount(): number {
    return this.#dbClosed ? 0 : this.#rows;
  }

  /**
   * Why writes to the file are failing (the last flush's error: a full disk, a read-only file), or
   * undefined while they commit. A failed flush is retried every second, so this clears by itself once
   * the file takes writes again.
   */
  get writeFailure(): Error | undefined {
    return this.#writeFailure;
  }

  /** Writes buffered, not yet committed. */
  get pendingCount(): number {
    return this.#pending.size + this.#inflight.size;
  }

  /** Expired rows found by reads (purged ones are not counted). */
  get expiredCount(): number {
    return this.#expiredCount;
  }

  get flushCount(): { committed: number; failed: number } {
    return { committed: this.#flushes, failed: this.#failedFlushes };
  }

  /** `PRAGMA integrity_check`: 'ok' when the file is sound. */
  async integrityCheck(): Promise<string> {
    const rows: Array<{ integrity_check: string }> = await this.query('PRAGMA integrity_check');
    return rows.map((r) => r.integrity_check).join('\n');
  }

  /** Flushes what is pending, then closes the file. Idempotent; calling it twice returns the same promise. */
  override disconnect(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#purgeTimer);
      try {
        await this.ready.catch(noop);
        await this.#requestFlush();
      } finally {
        await this.#exclusive(async () => {
          this.#dbClosed = true;
          if (this.#timer !== undefined) clearTimeout(this.#timer);
          await this.close();
        }).catch(noop);
      }
    })();
    return this.#closing;
  }
}
