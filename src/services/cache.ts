// The two-level cache. Level 1: an LRU with TTL in memory (lru-cache; cache.max_size entries). Level 2:
// Keyv on SQLite in the state dir (cache.store "sqlite"; see sqlite-store.ts), persistent across restarts
// and bounded by cache.max_store_entries. Every write goes to both levels; a read tries level 1, then level 2
// (promoting a hit to level 1). Keys are namespaced (one namespace per plugin), values JSON-serializable.
//
// Ordering and read-your-writes are level 2's (persistent-level.ts): a write is recorded there in call order
// as it is made, and a read of the store that a write overtook is retried rather than promoted, so nothing
// deleted comes back. A validated level-1 hit is served only if the entry is still the one validated.
import { join } from 'node:path';
import { Keyv } from 'keyv';
import { LRUCache } from 'lru-cache';
import { PersistentLevel } from './persistent-level.js';
import type { SharedTier, SharedTierStats } from './shared-tier.js';
import { SqliteStore } from './sqlite-store.js';

export interface CacheSettings {
  ttl_seconds: number;
  max_size: number;
  store: 'sqlite' | 'memory';
  max_store_entries: number;
}

export interface CacheOpenOptions extends CacheSettings {
  /** Directory of `cache.sqlite` (config.state_dir); required when store is "sqlite". */
  stateDir?: string;
  /** The SQLite file name inside stateDir. Default `cache.sqlite`. */
  fileName?: string;
  /** Longest wait of a write in the buffer before its transaction starts (default 50 ms). */
  flushDelayMs?: number;
  /** Background purge of expired rows (default 60 s; 0 = only on open). */
  purgeIntervalMs?: number;
  /** The shared tier (cache.shared) behind the two local levels, for sharedGet/sharedSet; closed with the cache. */
  sharedTier?: SharedTier;
  /** Failures nobody awaits: background flushes, purges, a damaged file replaced, a throwing validator. */
  onError?: (err: unknown, context: string) => void;
}

export interface ValidateInfo {
  namespace: string;
  key: string;
  /** 1: found in memory; 2: restored from the SQLite level (for instance after a restart). */
  level: 1 | 2;
}

/**
 * Decides whether a cached value may still be served (a file's stat, say). False (or a throw) deletes the
 * entry from both levels and counts a miss.
 */
export type Validator<T = any> = (value: T, info: ValidateInfo) => boolean | Promise<boolean>;

export interface SetOptions {
  /** Time to live in seconds (> 0; Infinity = no expiry). Default: the namespace's, else cache.ttl_seconds. */
  ttlSeconds?: number;
}

export interface GetOptions<T = any> {
  /** Replaces the namespace's validator for this read. */
  validate?: Validator<T>;
}

export interface NamespaceOptions {
  ttlSeconds?: number;
  validate?: Validator;
}

export interface CachedOptions<A extends unknown[], R> {
  /** The cache key of one call. */
  key: (...args: A) => string;
  ttlSeconds?: number;
  /** Whether a cached value may answer this call (a file's stat, say); replaces the namespace's validator. */
  validate?: (value: R, ...args: A) => boolean | Promise<boolean>;
  /** Whether a result of `fn` is cached. Default: every result but undefined. */
  store?: (value: R, ...args: A) => boolean;
}

export type CachedFunction<A extends unknown[], R> = (...args: A) => Promise<R>;

/** One namespace's view of the cache: what a plugin gets as `ctx.cache`. */
export interface CacheNamespace {
  readonly name: string;
  get<T = unknown>(key: string, options?: GetOptions<T>): Promise<T | undefined>;
  set<T = unknown>(key: string, value: T, options?: SetOptions): Promise<void>;
  delete(key: string): Promise<boolean>;
  /** A live entry exists (no validation, not counted as a hit or miss). */
  has(key: string): Promise<boolean>;
  /** Clears this namespace in both levels; answers how many live entries went. */
  clear(): Promise<number>;
  cached<A extends unknown[], R>(options: CachedOptions<A, R>, fn: (...args: A) => R | Promise<R>): CachedFunction<A, R>;
  /** Whether a shared tier (cache.shared) is behind the local levels: sharedGet/sharedSet reach other daemons. */
  readonly sharing: boolean;
  /**
   * Content-addressed entries only (keyed by what the value was computed from, never validated by local file
   * identity): level 1, level 2, then one round trip to the shared tier for the keys still missing (bounded by
   * cache.shared_timeout_ms; a hit there is kept locally). Without a shared tier, a local get of each key.
   */
  sharedGet<T = unknown>(keys: string[]): Promise<Array<T | undefined>>;
  /** Content-addressed entries only: set locally (as `set`), and written to the shared tier in the background. */
  sharedSet(entries: Array<[string, unknown]>, options?: SetOptions): Promise<void>;
}

export interface NamespaceStats {
  hits: number;
  misses: number;
  /** hits / (hits + misses), 0 when there was no read. */
  hit_rate: number;
  /** Its entries in level 1. */
  size: number;
  /** Its LRU evictions from level 1. */
  evictions: number;
}

export interface CacheStats {
  /** Entries in level 1. */
  size: number;
  max_size: number;
  ttl_seconds: number;
  hits: number;
  misses: number;
  /** hits / (hits + misses), 0 when there was no read. */
  hit_rate: number;
  /** LRU evictions from level 1. */
  evictions: number;
  /** Entries found expired (in level 1, or when read from level 2). */
  expired_count: number;
  store: 'sqlite' | 'memory';
  /** Rows committed to level 2 (0 with the memory store). */
  persisted: number;
  namespaces: Record<string, NamespaceStats>;
  /** The shared tier's figures, only when cache.shared is configured. */
  shared?: SharedTierStats;
}

interface Entry {
  value: unknown;
  /** Epoch ms, or null for no expiry. */
  expires: number | null;
}

const NAMESPACE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const noop = (): void => {};
/** Reads of level 2 overtaken by writes are retried this many times, then answered as a miss. */
const READ_ATTEMPTS = 4;

function checkNamespace(name: string): void {
  if (!NAMESPACE.test(name)) throw new TypeError(`invalid cache namespace ${JSON.stringify(name)}: letters, digits, _ . - only`);
}

function ttlMs(seconds: number): number {
  if (!(seconds > 0)) throw new TypeError(`ttlSeconds must be > 0 (Infinity for no expiry), got ${seconds}`);
  return seconds === Infinity ? 0 : Math.max(1, Math.round(seconds * 1000));
}

export class CacheService {
  readonly settings: Readonly<CacheSettings>;
  readonly #l1: LRUCache<string, Entry>;
  readonly #l2: PersistentLevel | undefined;
  readonly #store: SqliteStore | undefined;
  readonly #onError: (err: unknown, context: string) => void;
  readonly #defaultTtlMs: number;
  readonly #shared: SharedTier | undefined;

  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #expired = 0;
  readonly #perNamespace = new Map<string, NamespaceStats>();
  /**
   * No level-1 entry can be stale before this moment (performance.now() ms, a lower bound kept on every
   * set): stats() purges level 1 (a walk over every entry) only once something may have expired.
   */
  #noneStaleBefore = Infinity;
  #closing: Promise<void> | undefined;

  private constructor(
    settings: CacheSettings,
    store: SqliteStore | undefined,
    onError: (err: unknown, context: string) => void,
    level2: Pick<CacheOpenOptions, 'flushDelayMs'> = {},
    shared?: SharedTier,
  ) {
    this.settings = Object.freeze({ ...settings });
    this.#shared = shared;
    this.#onError = onError;
    this.#defaultTtlMs = ttlMs(settings.ttl_seconds);
    this.#l1 = new LRUCache<string, Entry>({
      max: settings.max_size,
      ttl: this.#defaultTtlMs,
      updateAgeOnGet: false,
      allowStale: false,
      // Ages from performance.now() itself rather than a reading cached for 1 ms, so #noneStaleBefore
      // (taken before each set) is never later than the moment lru-cache finds an entry stale.
      ttlResolution: 0,
      dispose: (entry, key, reason) => {
        // 'set' replaces a value under the same key: the entry stays.
        const ns = reason === 'set' ? undefined : this.#count(key.slice(0, key.indexOf(':')));
        if (ns) ns.size--;
        if (reason === 'expire' || (reason === 'evict' && entry.expires !== null && entry.expires <= Date.now())) {
          this.#expired++;
          // Its level-2 copy has the same expiry: drop it now so that it is not found (and counted) again.
          this.#l2?.drop(key);
        } else if (reason === 'evict') {
          this.#evictions++;
          ns!.evictions++;
        }
      },
    });
    if (store) {
      this.#store = store;
      const keyv = new Keyv({
        store,
        namespace: undefined,
        useKeyPrefix: false,
        // Failures reach level 2 as rejections (a failed flush is retried; an unreadable row is a miss).
        throwOnErrors: true,
        // Values are JSON: the plain codec is several times faster than Keyv's default one.
        serialize: JSON.stringify,
        deserialize: JSON.parse,
      });
      this.#l2 = new PersistentLevel(keyv, store, { ...level2, onError });
    }
  }

  /** Opens the cache; with store "sqlite", opens (or creates) `<stateDir>/cache.sqlite` and purges expired rows. */
  static async open(options: CacheOpenOptions): Promise<CacheService> {
    const onError = options.onError ?? noop;
    const settings: CacheSettings = {
      ttl_seconds: options.ttl_seconds,
      max_size: options.max_size,
      store: options.store,
      max_store_entries: options.max_store_entries,
    };
    if (settings.store === 'memory') return new CacheService(settings, undefined, onError, {}, options.sharedTier);
    if (!options.stateDir) throw new TypeError('cache store "sqlite" needs a stateDir');
    const store = await SqliteStore.open({
      path: join(options.stateDir, options.fileName ?? 'cache.sqlite'),
      maxEntries: settings.max_store_entries,
      ...(options.purgeIntervalMs !== undefined ? { purgeIntervalMs: options.purgeIntervalMs } : {}),
      onError,
    });
    return new CacheService(settings, store, onError, options.flushDelayMs !== undefined ? { flushDelayMs: options.flushDelayMs } : {}, options.sharedTier);
  }

  /** The level-2 store (undefined with the memory store): for benches, tests and diagnostics. */
  get store(): SqliteStore | undefined {
    return this.#store;
  }

  // ---- namespaces --------------------------------------------------------------------------------

  /** A view of one namespace, with its own default TTL and validator. */
  namespace(name: string, options: NamespaceOptions = {}): CacheNamespace {
    checkNamespace(name);
    const defaults: SetOptions = options.ttlSeconds !== undefined ? { ttlSeconds: options.ttlSeconds } : {};
    if (options.ttlSeconds !== undefined) ttlMs(options.ttlSeconds);
    const view: CacheNamespace = {
      name,
      get: <T>(key: string, opts?: GetOptions<T>) =>
        this.get<T>(name, key, opts?.validate ? opts : options.validate ? { validate: options.validate } : {}),
      set: <T>(key: string, value: T, opts?: SetOptions) => this.set(name, key, value, { ...defaults, ...opts }),
      delete: (key: string) => this.delete(name, key),
      has: (key: string) => this.has(name, key),
      clear: () => this.clear(name),
      cached: <A extends unknown[], R>(opts: CachedOptions<A, R>, fn: (...args: A) => R | Promise<R>) =>
        cached({ ...opts, cache: view }, fn),
      sharing: this.#shared !== undefined,
      sharedGet: <T>(keys: string[]) => this.sharedGet<T>(name, keys),
      sharedSet: (entries: Array<[string, unknown]>, opts?: SetOptions) => this.sharedSet(name, entries, { ...defaults, ...opts }),
    };
    return view;
  }

  /** `cached` on a namespace given by name. */
  cached<A extends unknown[], R>(
    options: CachedOptions<A, R> & { namespace: string },
    fn: (...args: A) => R | Promise<R>,
  ): CachedFunction<A, R> {
    const { namespace, ...rest } = options;
    return cached({ ...rest, cache: this.namespace(namespace) }, fn);
  }

  // ---- operations --------------------------------------------------------------------------------

  async get<T = unknown>(namespace: string, key: string, options: GetOptions<T> = {}): Promise<T | undefined> {
    checkNamespace(namespace);
    const k = `${namespace}:${key}`;
    const validate = options.validate;
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      const entry = this.#l1.get(k);
      if (entry !== undefined) {
        if (!validate) return this.#hit(namespace, entry.value as T);
        const ok = await this.#validate(validate, entry.value as T, { namespace, key, level: 1 });
        if (this.#l1.peek(k) !== entry) continue; // written or deleted meanwhile
        if (ok) return this.#hit(namespace, entry.value as T);
        this.#drop(k);
        return this.#miss(namespace);
      }
      const l2 = this.#l2;
      if (!l2 || this.#closing) return this.#miss(namespace);

      const mark = l2.mark(k);
      let found;
      try {
        found = await l2.get(k);
      } catch (err) {
        // An unreadable row (not JSON, say) is a miss, and goes.
        this.#onError(err, 'read');
        if (!l2.overtaken(mark, k)) this.#drop(k);
        return this.#miss(namespace);
      }
      if (l2.overtaken(mark, k)) continue;
      if (found === undefined) return this.#miss(namespace);
      const value = found.value as T;
      if (validate) {
        const ok = await this.#validate(validate, value, { namespace, key, level: 2 });
        if (l2.overtaken(mark, k)) continue;
        if (!ok) {
          this.#drop(k);
          return this.#miss(namespace);
        }
      }
      const remaining = found.expires === null ? 0 : Math.ceil(found.expires - Date.now());
      if (found.expires !== null && remaining <= 0) {
        this.#expired++;
        this.#drop(k);
        return this.#miss(namespace);
      }
      this.#noteTtl(remaining);
      this.#setL1(namespace, k, { value, expires: found.expires }, remaining);
      return this.#hit(namespace, value);
    }
    return this.#miss(namespace);
  }

  /**
   * Stores `value` in both levels. Resolves once level 1 has it and its level-2 write is queued (committed
   * within ~100 ms; `flush()` waits for the commit). Reads see it at once.
   */
  async set<T = unknown>(namespace: string, key: string, value: T, options: SetOptions = {}): Promise<void> {
    checkNamespace(namespace);
    if (value === undefined) throw new TypeError('cannot cache undefined');
    const ms = options.ttlSeconds === undefined ? this.#defaultTtlMs : ttlMs(options.ttlSeconds);
    const k = `${namespace}:${key}`;
    this.#noteTtl(ms);
    this.#setL1(namespace, k, { value, expires: ms === 0 ? null : Date.now() + ms }, ms);
    // Level 2 buffers it; a set waits only when many writes do (the store is pushing back).
    const backPressure = this.#closing ? undefined : this.#l2?.set(k, value, ms === 0 ? null : Date.now() + ms);
    if (backPressure) await backPressure;
  }

  /** See CacheNamespace.sharedGet: content-addressed entries, local levels first, then the shared tier. */
  async sharedGet<T = unknown>(namespace: string, keys: string[]): Promise<Array<T | undefined>> {
    const out: Array<T | undefined> = await Promise.all(keys.map((key) => this.get<T>(namespace, key)));
    const missing = out.flatMap((value, i) => (value === undefined ? [i] : []));
    if (!this.#shared || this.#closing || missing.length === 0) return out;
    const found = await this.#shared.getMany(missing.map((i) => `${namespace}:${keys[i]}`));
    await Promise.all(
      missing.map(async (at, j) => {
        const value = found[j] as T | undefined;
        if (value === undefined) return;
        out[at] = value;
        await this.set(namespace, keys[at]!, value);
      }),
    );
    return out;
  }

  /** See CacheNamespace.sharedSet: set locally; the shared write is not awaited (its failures are counted). */
  async sharedSet(namespace: string, entries: Array<[string, unknown]>, options: SetOptions = {}): Promise<void> {
    for (const [key, value] of entries) await this.set(namespace, key, value, options);
    if (this.#shared && !this.#closing && entries.length > 0) void this.#shared.setMany(entries.map(([key, value]) => [`${namespace}:${key}`, value]));
  }

  /** Removes the entry from both levels; answers whether a live one was there. */
  async delete(namespace: string, key: string): Promise<boolean> {
    checkNamespace(namespace);
    const k = `${namespace}:${key}`;
    const inMemory = this.#l1.peek(k) !== undefined;
    this.#l1.delete(k);
    if (!this.#l2 || this.#closing) return inMemory;
    const stored = await this.#l2.delete(k);
    return inMemory || stored;
  }

  async has(namespace: string, key: string): Promise<boolean> {
    checkNamespace(namespace);
    const k = `${namespace}:${key}`;
    if (this.#l1.has(k)) return true;
    // An expired entry still in level 1: a get drops it and counts it (level 2's copy goes with it).
    if (this.#l1.peek(k, { allowStale: true }) !== undefined) this.#l1.get(k);
    if (!this.#l2 || this.#closing) return false;
    return this.#l2.has(k);
  }

  /** Clears one namespace (both levels) or, without one, everything. Answers how many live entries went. */
  async clear(namespace?: string): Promise<number> {
    if (namespace !== undefined) checkNamespace(namespace);
    const prefix = namespace === undefined ? '' : `${namespace}:`;
    this.#l1.purgeStale();
    const removed = new Set<string>();
    for (const k of [...this.#l1.keys()]) {
      if (!k.startsWith(prefix)) continue;
      removed.add(k);
      this.#l1.delete(k);
    }
    if (!this.#l2 || this.#closing) return removed.size;
    for (const k of await this.#l2.clear(prefix)) removed.add(k);
    return removed.size;
  }

  /** Everything here is kept up to date as the cache works: reading it walks nothing and awaits nothing. */
  stats(): CacheStats {
    this.#purgeIfStale();
    const lookups = this.#hits + this.#misses;
    // Kept exact by the store as it commits: no count(*) per read.
    const persisted = this.#store && !this.#closing ? this.#store.rowCount : 0;
    const namespaces: Record<string, NamespaceStats> = {};
    for (const name of [...this.#perNamespace.keys()].sort()) {
      const ns = this.#perNamespace.get(name)!;
      const reads = ns.hits + ns.misses;
      namespaces[name] = { ...ns, hit_rate: reads === 0 ? 0 : ns.hits / reads };
    }
    return {
      size: this.#l1.size,
      max_size: this.settings.max_size,
      ttl_seconds: this.settings.ttl_seconds,
      hits: this.#hits,
      misses: this.#misses,
      hit_rate: lookups === 0 ? 0 : this.#hits / lookups,
      evictions: this.#evictions,
      expired_count: this.#expired + (this.#store?.expiredCount ?? 0),
      store: this.settings.store,
      persisted,
      namespaces,
      ...(this.#shared ? { shared: this.#shared.stats() } : {}),
    };
  }

  /**
   * Why the cache is not well, for /health's reasons: its SQLite writes failing (a full disk, a read-only
   * state dir). Empty again once a write commits (failed writes are retried every second).
   */
  reasons(): string[] {
    const shared = this.#shared && !this.#closing ? this.#shared.reasons() : [];
    const failure = this.#l2?.writeFailure;
    if (!failure || this.#closing) return shared;
    const code = (failure as { code?: unknown }).code;
    const what = typeof code === 'string' && !failure.message.startsWith(code) ? `${code}: ${failure.message}` : failure.message;
    return [`cache store writes failing: ${what} (${this.#store!.path})`, ...shared];
  }

  /** Resolves once every write made before the call is committed to level 2. Safe to call any time. */
  async flush(): Promise<void> {
    if (this.#l2 && !this.#closing) await this.#l2.flush();
  }

  /**
   * Flushes pending writes and closes the SQLite file. Idempotent (a second call returns the same promise);
   * the caller bounds it in time. Level 1 keeps answering afterwards; level 2 is no longer used.
   */
  close(): Promise<void> {
    this.#closing ??= Promise.all([this.#l2?.close(), this.#shared?.close()]).then(() => undefined);
    return this.#closing;
  }

  // ---- internals ---------------------------------------------------------------------------------

  /** Called before a level-1 set with its TTL in ms (0: none). */
  #noteTtl(ms: number): void {
    if (ms > 0) this.#noneStaleBefore = Math.min(this.#noneStaleBefore, performance.now() + ms);
  }

  /** Purges stale level-1 entries (counting them as expired) when some may be; else does nothing. */
  #purgeIfStale(): void {
    if (performance.now() < this.#noneStaleBefore) return;
    this.#l1.purgeStale();
    // The next bound: the soonest expiry among what is left, measured from before the walk.
    const now = performance.now();
    let soonest = Infinity;
    for (const k of this.#l1.keys()) soonest = Math.min(soonest, this.#l1.getRemainingTTL(k));
    this.#noneStaleBefore = now + soonest;
  }

  #hit<T>(namespace: string, value: T): T {
    this.#hits++;
    this.#count(namespace).hits++;
    return value;
  }

  #miss(namespace: string): undefined {
    this.#misses++;
    this.#count(namespace).misses++;
    return undefined;
  }

  /** Sets a level-1 entry, counting a new key in its namespace's size (dispose counts it out). */
  #setL1(namespace: string, k: string, entry: Entry, ttl: number): void {
    if (this.#l1.peek(k, { allowStale: true }) === undefined) this.#count(namespace).size++;
    this.#l1.set(k, entry, { ttl });
  }

  #count(namespace: string): NamespaceStats {
    let stats = this.#perNamespace.get(namespace);
    if (!stats) {
      stats = { hits: 0, misses: 0, hit_rate: 0, size: 0, evictions: 0 };
      this.#perNamespace.set(namespace, stats);
    }
    return stats;
  }

  async #validate<T>(validate: Validator<T>, value: T, info: ValidateInfo): Promise<boolean> {
    try {
      return (await validate(value, info)) === true;
    } catch (err) {
      this.#onError(err, `validate ${info.namespace}`);
      return false;
    }
  }

  /** Deletes a key from both levels (an entry that failed validation or could not be read). */
  #drop(k: string): void {
    this.#l1.delete(k);
    this.#l2?.drop(k);
  }
}

/**
 * Wraps `fn` so that its results are cached under `key(...args)` in `options.cache`. A call that throws
 * caches nothing; a result of `undefined` is returned but not cached, nor is one that `store` refuses.
 * Concurrent calls with the same key share one lookup and at most one call of `fn`. With `validate`, a
 * value may answer one call and not another: a call that finds one of its key in flight waits for it, then
 * looks the key up itself.
 */
export function cached<A extends unknown[], R>(
  options: CachedOptions<A, R> & { cache: CacheNamespace },
  fn: (...args: A) => R | Promise<R>,
): CachedFunction<A, R> {
  const { cache, validate, store } = options;
  const inflight = new Map<string, Promise<R>>();
  const setOptions: SetOptions = options.ttlSeconds !== undefined ? { ttlSeconds: options.ttlSeconds } : {};
  const lookup = async (key: string, args: A): Promise<R> => {
    const hit = await cache.get<R>(key, validate ? { validate: (value) => validate(value, ...args) } : {});
    if (hit !== undefined) return hit;
    const value = await fn(...args);
    if (value !== undefined && (!store || store(value, ...args))) await cache.set(key, value, setOptions);
    return value;
  };
  return (...args: A): Promise<R> => {
    const key = options.key(...args);
    const running = inflight.get(key);
    if (running) return validate ? running.then(() => lookup(key, args)) : running;
    const call = lookup(key, args);
    inflight.set(key, call);
    const done = (): void => {
      if (inflight.get(key) === call) inflight.delete(key);
    };
    call.then(done, done);
    return call;
  };
}
