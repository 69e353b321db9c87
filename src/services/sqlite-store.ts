// The SQLite store of the cache's level 2: a Keyv store adapter on one file. It builds on @keyv/sqlite (its
// connection, its table and its query function) and adds what a cache that takes bursts needs from a store:
// - WAL and synchronous=NORMAL: a crash loses at most the last transaction, never the file;
// - `setMany` in ONE transaction of multi-row INSERT OR REPLACE (the write-behind buffer in front of it,
//   persistent-level.ts, hands it each flush's writes at once);
// - an `expires` column: expired rows are never returned, purged on open and every `purgeIntervalMs`;
// - a bound: past `maxEntries` rows, the least recently written rows are deleted (rowid order: INSERT OR
//   REPLACE gives a rewritten key a new rowid);
// - an exact row count, kept as statements run (stats never scan the table);
// - `clearPrefix`, for clearing one namespace of keys.
// Its writes run one at a time (#exclusive): the file has one connection, so a statement issued while a
// transaction is open would become part of it.
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { KeyvSqlite } from '@keyv/sqlite';

export interface SqliteStoreOptions {
  /** The database file, e.g. `<state_dir>/cache.sqlite`. Its directory is created if missing. */
  path: string;
  /** Row bound (cache.max_store_entries). */
  maxEntries: number;
  /** Background purge of expired rows. Default 60 s; 0 = only on open. */
  purgeIntervalMs?: number;
  /** Table name. Default `hearth_cache`. */
  table?: string;
  /** Failures that nobody awaits (background purges, a damaged file moved aside). */
  onError?: (err: unknown, context: string) => void;
}

interface Row {
  key: string;
  value: string;
  expires: number | null;
}

export interface StoreEntry {
  key: string;
  /** What Keyv serialized; anything else is stored as JSON. */
  value: unknown;
  /** Milliseconds to live; none (or 0) = no expiry. */
  ttl?: number | undefined;
}

// Rows per INSERT statement: 3 parameters each, far under SQLite's 32766 variables.
const INSERT_ROWS = 500;
const DELETE_KEYS = 500;
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

const placeholders = (n: number): string => `${'?,'.repeat(n - 1)}?`;

export class SqliteStore extends KeyvSqlite {
  readonly path: string;
  readonly #table: string;
  readonly #maxEntries: number;

  /**
   * Rows in the table, exact: counted once on open, then moved by what each statement did. The store is
   * the file's only writer (one daemon per state dir).
   */
  #rows = 0;
  /** Whether the last chunk written held only new keys (see #writeChunk). */
  #lastChunkNew = true;
  #expiredCount = 0;
  #transactions = 0;
  #failedTransactions = 0;

  #lock: Promise<unknown> = Promise.resolve();
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
    const onError = options.onError ?? noop;
    // @keyv/sqlite emits 'error' when the connection fails; without a listener that would throw.
    this.on('error', noop);
    this.ready = this.#init();
    this.ready.catch(noop);
    const purgeMs = options.purgeIntervalMs ?? 60_000;
    if (purgeMs > 0) {
      this.#purgeTimer = setInterval(() => {
        this.purgeExpired().catch((err) => onError(err, 'purge'));
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
    const counted: Array<{ n: number }> = await this.query(`SELECT count(*) AS n FROM ${this.#table}`);
    this.#rows = counted[0]?.n ?? 0;
    if (this.#rows > this.#maxEntries) {
      await this.#exclusive(async () => {
        this.#rows = await this.#enforceBound(this.#rows);
      });
    }
  }

  // ---- reads -------------------------------------------------------------------------------------

  override async get<Value>(key: string): Promise<Value | undefined> {
    await this.ready;
    if (this.#dbClosed) return undefined;
    const rows: Row[] = await this.query(`SELECT value, expires FROM ${this.#table} WHERE key = ?`, [key]);
    const row = rows[0];
    if (row === undefined) return undefined;
    if (isLive(row.expires, Date.now())) return row.value as Value;
    // Found expired: deleted now, and counted by the read whose delete took it (so once). The delete keeps
    // a row written since (its expiry is later), whatever the order of the two.
    const gone: unknown[] = await this.#exclusive(() =>
      this.query(`DELETE FROM ${this.#table} WHERE key = ? AND expires <= ? RETURNING key`, [key, Date.now()]),
    );
    this.#rows = Math.max(0, this.#rows - gone.length);
    this.#expiredCount += gone.length;
    return undefined;
  }

  override async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    return Promise.all(keys.map((key) => this.get<Value>(key)));
  }

  override async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  // ---- writes ------------------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closing) throw new Error('the cache store is closed');
  }

  override async set(key: string, value: any, ttl?: number): Promise<boolean> {
    await this.setMany([{ key, value, ttl }]);
    return true;
  }

  /** Writes the entries in one transaction (the later of two writes of a key wins). */
  async setMany(entries: StoreEntry[]): Promise<void> {
    this.#checkOpen();
    if (entries.length === 0) return;
    const now = Date.now();
    const rows = new Map<string, unknown[]>();
    for (const { key, value, ttl } of entries) {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      rows.delete(key);
      rows.set(key, [key, text, typeof ttl === 'number' && ttl > 0 && Number.isFinite(ttl) ? now + ttl : null]);
    }
    const params = [...rows.values()].flat();
    await this.#transaction(async (count) => {
      for (let i = 0; i < rows.size; i += INSERT_ROWS) {
        const n = Math.min(INSERT_ROWS, rows.size - i);
        count += await this.#writeChunk(params.slice(i * 3, (i + n) * 3), n);
      }
      return count > this.#maxEntries ? this.#enforceBound(count) : count;
    });
  }

  /** Answers whether a live entry was there. */
  override async delete(key: string): Promise<boolean> {
    return this.deleteMany([key]);
  }

  /** Deletes the keys in one transaction. Answers whether a live entry was among them. */
  override async deleteMany(keys: string[]): Promise<boolean> {
    this.#checkOpen();
    if (keys.length === 0) return false;
    let live = false;
    await this.#transaction(async (count) => {
      for (let i = 0; i < keys.length; i += DELETE_KEYS) {
        const chunk = keys.slice(i, i + DELETE_KEYS);
        const gone: Array<{ expires: number | null }> = await this.query(
          `DELETE FROM ${this.#table} WHERE key IN (${placeholders(chunk.length)}) RETURNING expires`,
          chunk,
        );
        count -= gone.length;
        const now = Date.now();
        live ||= gone.some((row) => isLive(row.expires, now));
      }
      return count;
    });
    return live;
  }

  /** Keyv's clear: everything, or Keyv's namespace when it set one. */
  override async clear(): Promise<void> {
    await this.clearPrefix(this.namespace ? `${this.namespace}:` : '');
  }

  /** Deletes every entry whose key starts with `prefix` ('' = all). Answers the keys of the live ones. */
  async clearPrefix(prefix: string): Promise<string[]> {
    this.#checkOpen();
    await this.ready;
    const rows: Row[] = await this.#exclusive(() =>
      prefix === ''
        ? this.query(`DELETE FROM ${this.#table} RETURNING key, expires`)
        : this.query(`DELETE FROM ${this.#table} WHERE key >= ? AND key < ? RETURNING key, expires`, [prefix, prefixEnd(prefix)]),
    );
    this.#rows = Math.max(0, this.#rows - rows.length);
    const now = Date.now();
    return rows.filter((row) => isLive(row.expires, now)).map((row) => row.key);
  }

  /** Deletes expired rows now. Answers how many. */
  async purgeExpired(): Promise<number> {
    if (this.#closing) return 0;
    await this.ready;
    return this.#exclusive(async () => {
      const rows: unknown[] = await this.query(
        `DELETE FROM ${this.#table} WHERE expires IS NOT NULL AND expires <= ? RETURNING key`,
        [Date.now()],
      );
      this.#rows = Math.max(0, this.#rows - rows.length);
      return rows.length;
    });
  }

  // ---- transactions ------------------------------------------------------------------------------

  /** Runs `fn` after every write queued before it (one writer at a time). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(noop);
    return run;
  }

  /** Runs `fn` (given the row count, answering the count after it) in one write transaction. */
  async #transaction(fn: (rows: number) => Promise<number>): Promise<void> {
    await this.ready;
    await this.#exclusive(async () => {
      if (this.#dbClosed) throw new Error('the cache store is closed');
      try {
        await this.query('BEGIN IMMEDIATE');
        let rows: number;
        try {
          rows = await fn(this.#rows);
          await this.query('COMMIT');
        } catch (err) {
          await this.query('ROLLBACK').catch(noop);
          throw err;
        }
        this.#rows = rows;
        this.#transactions++;
      } catch (err) {
        this.#failedTransactions++;
        throw err;
      }
    });
  }

  /**
   * Inside a transaction: writes `n` rows (key, value, expires triples) with INSERT OR REPLACE (a rewritten
   * key gets a new rowid: the bound's order of writing) and answers how many of them are new rows, which
   * keeps the row count exact. Two ways to learn that, the cheaper one picked by the last chunk: after a
   * chunk of only new keys (a burst of first writes), INSERT OR IGNORE then changes() (the new ones), and
   * REPLACE only if some were there already; otherwise a count of the keys present first.
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
      const present: Array<{ n: number }> = await this.query(`SELECT count(*) AS n FROM ${this.#table} WHERE key IN (${placeholders(n)})`, keys);
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

  /** Expired rows found (and deleted) by reads; purged ones are not counted. */
  get expiredCount(): number {
    return this.#expiredCount;
  }

  /** Write transactions committed and failed. */
  get transactionCount(): { committed: number; failed: number } {
    return { committed: this.#transactions, failed: this.#failedTransactions };
  }

  /** Closes the file once the writes queued before it are done. Idempotent. */
  override disconnect(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#purgeTimer);
      await this.ready.catch(noop);
      await this.#exclusive(async () => {
        this.#dbClosed = true;
        await this.close();
      }).catch(noop);
    })();
    return this.#closing;
  }
}
