// The shared cache tier (cache.shared): a Redis that several daemons read and write through Keyv's own
// adapter (@keyv/redis, node-redis inside), for content-addressed entries only (see CacheService.sharedGet).
//
// - Signed: each value is stored as `<hex HMAC-SHA256 of key + "\n" + JSON>.<JSON>` with the team secret;
//   an entry whose signature fails (written by someone without the secret, or copied to another key) is a
//   miss, counted as bad_signatures.
// - Bounded: a read waits at most cache.shared_timeout_ms, a write a little longer; past that it is a miss
//   (a timeout). The breaker `cache:shared` (the core's Breakers) opens after failure_threshold failures in
//   a row, and then nothing is sent until its trial call succeeds: a hung Redis costs nothing for a while.
// - Fail fast while disconnected: node-redis's offline queue is off (with it, a command sent while Redis is
//   down waits until it is back, however long that is); a command is not even tried while the client is
//   not ready. The client reconnects by itself (backoff up to 2 s, forever).
// - Its Redis's maxmemory-policy is read on each connection (INFO memory) and shown in stats: with
//   `noeviction` entries leave only by their TTL and a full Redis refuses writes (a queue's on the same
//   instance too); that is logged as a warning, once per policy seen (an LRU policy is the one to give it).
//
// Keys: Keyv's namespace defaults to "keyv" and both Keyv and the adapter apply it (`keyv::keyv:<key>`, or
// `ns::ns:<key>` with a namespace: seen with redis-cli KEYS). Here Keyv adds no prefix (useKeyPrefix false)
// and passes its namespace to the adapter, whose separator is ":", so a key lands as
// `hearth:cache:<namespace>:<key>` exactly.
import { createHmac, timingSafeEqual } from 'node:crypto';
import KeyvRedis, { createClient } from '@keyv/redis';
import { Keyv } from 'keyv';
import { isHearthError } from '../errors.js';
import { describeRedisTarget, evictionPolicyIn, type RedisTarget } from '../redis-target.js';
import { Breakers, type BreakerState } from './breakers.js';

export const SHARED_BREAKER = 'cache:shared';
export const SHARED_PREFIX = 'hearth:cache';

export interface SharedTierOptions {
  target: RedisTarget;
  /** The team secret (cache.shared_secret_file, trimmed). */
  secret: Buffer;
  /** Longest wait of a read (cache.shared_timeout_ms). */
  timeoutMs: number;
  /** Lifetime of what is written (cache.shared_ttl_seconds). */
  ttlSeconds: number;
  /** The core's breakers; default a set of its own (3 failures, 30 s). */
  breakers?: Breakers;
  /** Longest wait in open() for the first connection (default 1000 ms); it keeps trying afterwards. */
  connectWaitMs?: number;
  /** Connection lost or back (logged once per change, not per reconnect attempt). */
  onError?: (err: unknown, context: string) => void;
  /** A setting of the Redis that will hurt (its eviction policy), said once per value seen. */
  onWarning?: (message: string) => void;
}

export interface SharedTierStats {
  /** unix:/path, or the URL without its password. */
  target: string;
  connected: boolean;
  /** Keys found, with a good signature. */
  hits: number;
  /** Keys looked up and not found (bad signatures included). */
  misses: number;
  /** Reads and writes that failed (Redis answered an error, or the connection dropped under them). */
  errors: number;
  /** Reads and writes not answered in time. */
  timeouts: number;
  /** Reads and writes not sent: Redis unreachable, the breaker open, or too many writes pending. */
  skipped: number;
  /** Entries found whose signature failed (they count as misses). */
  bad_signatures: number;
  /** Entries written (acknowledged by Redis). */
  writes: number;
  breaker: BreakerState;
  timeout_ms: number;
  /** The Redis's maxmemory-policy as read on connecting ('unknown' when INFO does not say; null before). */
  eviction_policy: string | null;
}

class SharedTimeout extends Error {}

/** Writes that may wait for Redis at once; more are skipped (a slow Redis must not grow the heap). */
const MAX_PENDING_WRITES = 64;
const noop = (): void => {};

type Client = ReturnType<typeof createClient>;

function clientFor(target: RedisTarget, connectTimeout: number): Client {
  const socket = {
    connectTimeout,
    // Never gives up: a Redis that comes back is used again without a restart.
    reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000) + Math.floor(Math.random() * 50),
  };
  // A unix:// URL is refused by the client ("Invalid protocol"): a socket goes as socket.path.
  return target.kind === 'socket'
    ? createClient({ socket: { ...socket, path: target.path }, disableOfflineQueue: true })
    : createClient({ url: target.url, socket, disableOfflineQueue: true });
}

function deadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SharedTimeout(`no answer to a ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class SharedTier {
  readonly target: string;
  readonly timeoutMs: number;
  readonly ttlSeconds: number;
  readonly #client: Client;
  readonly #keyv: Keyv;
  readonly #secret: Buffer;
  readonly #breakers: Breakers;
  readonly #ownBreakers: boolean;
  readonly #onError: (err: unknown, context: string) => void;
  readonly #onWarning: (message: string) => void;
  #hits = 0;
  #misses = 0;
  #errors = 0;
  #timeouts = 0;
  #skipped = 0;
  #badSignatures = 0;
  #writes = 0;
  #pendingWrites = 0;
  #lastError: unknown;
  #wasReady = false;
  #policy: string | null = null;
  #closing: Promise<void> | undefined;

  private constructor(options: SharedTierOptions) {
    this.target = describeRedisTarget(options.target);
    this.timeoutMs = options.timeoutMs;
    this.ttlSeconds = options.ttlSeconds;
    this.#secret = options.secret;
    this.#ownBreakers = !options.breakers;
    this.#breakers = options.breakers ?? new Breakers({ failure_threshold: 3, reset_timeout_seconds: 30 });
    this.#onError = options.onError ?? noop;
    this.#onWarning = options.onWarning ?? noop;
    this.#client = clientFor(options.target, Math.max(1000, options.timeoutMs));
    this.#client.on('error', (err: unknown) => {
      this.#lastError = err;
      if (this.#wasReady && !this.#client.isReady) {
        this.#wasReady = false;
        this.#onError(err, `shared cache ${this.target} unreachable`);
      }
    });
    this.#client.on('ready', () => {
      if (this.#lastError !== undefined) this.#onError(undefined, `shared cache ${this.target} connected again`);
      this.#wasReady = true;
      this.#lastError = undefined;
      void this.#readPolicy();
    });
    const store = new KeyvRedis(this.#client as never, { keyPrefixSeparator: ':', throwOnErrors: true, throwOnConnectError: true });
    this.#keyv = new Keyv(store, {
      namespace: SHARED_PREFIX,
      useKeyPrefix: false,
      throwOnErrors: true,
      // The stored string is the signed envelope itself (its TTL is Redis's own, PX).
      serialize: (data: { value?: unknown }) => data.value as string,
      deserialize: (text: string) => ({ value: text }) as never,
    });
    // Failures reach the callers as rejections; the events only repeat them.
    this.#keyv.on('error', noop);
  }

  /** Starts connecting; resolves once connected, after a first failed attempt, or after connectWaitMs. */
  static async open(options: SharedTierOptions): Promise<SharedTier> {
    const tier = new SharedTier(options);
    await tier.#firstAttempt(options.connectWaitMs ?? 1000);
    return tier;
  }

  #firstAttempt(waitMs: number): Promise<void> {
    const client = this.#client;
    client.connect().catch(noop);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        client.off('ready', done);
        client.off('error', done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      client.once('ready', done);
      client.once('error', done);
    });
  }

  async #readPolicy(): Promise<void> {
    const info = await this.#call('policy read', Math.max(1000, this.timeoutMs), () => this.#client.info('memory'));
    if (info === undefined) return;
    const policy = evictionPolicyIn(info);
    if (policy === 'noeviction' && this.#policy !== policy) {
      this.#onWarning(
        `shared cache ${this.target}: maxmemory-policy is noeviction, so entries leave only by their TTL ` +
          `(${this.ttlSeconds} s) and a full Redis refuses writes (a batch queue's too, if one shares it); ` +
          'give the shared tier a Redis with maxmemory-policy allkeys-lru',
      );
    }
    this.#policy = policy;
  }

  get connected(): boolean {
    return this.#client.isReady;
  }

  /** Resolves once connected (true), or false after `ms`: for tests and benches. */
  async whenConnected(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    while (!this.connected && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    return this.connected;
  }

  /** The stored key of `key` (`<namespace>:<key>` as the cache gives it). */
  static redisKey(key: string): string {
    return `${SHARED_PREFIX}:${key}`;
  }

  #sign(key: string, json: string): string {
    return createHmac('sha256', this.#secret).update(`${SharedTier.redisKey(key)}\n${json}`).digest('hex');
  }

  /** The value of an envelope, or undefined when its signature fails. */
  #open(key: string, text: string): { value: unknown } | undefined {
    const dot = text.indexOf('.');
    if (dot !== 64) return undefined;
    const json = text.slice(dot + 1);
    const expected = Buffer.from(this.#sign(key, json), 'hex');
    const given = Buffer.from(text.slice(0, dot), 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      return { value: JSON.parse(json) };
    } catch {
      return undefined;
    }
  }

  /** Runs one round trip through the breaker within `ms`; undefined when it failed, timed out or was not sent. */
  async #call<T>(what: string, ms: number, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.#closing || !this.#client.isReady) {
      this.#skipped++;
      return undefined;
    }
    try {
      return await this.#breakers.run(SHARED_BREAKER, () => deadline(fn(), ms, what));
    } catch (err) {
      if (isHearthError(err) && err.code === 'CIRCUIT_OPEN') this.#skipped++;
      else if (err instanceof SharedTimeout) this.#timeouts++;
      else this.#errors++;
      if (!isHearthError(err)) this.#lastError = err;
      return undefined;
    }
  }

  /** One MGET for all `keys`; a key not found, badly signed, or not answered in time is undefined. Never throws. */
  async getMany(keys: string[]): Promise<unknown[]> {
    const out: unknown[] = new Array(keys.length).fill(undefined);
    if (keys.length === 0) return out;
    const raw = await this.#call('read', this.timeoutMs, () => this.#keyv.getMany<string>(keys));
    if (raw === undefined) return out;
    raw.forEach((text, i) => {
      if (typeof text !== 'string') {
        this.#misses++;
        return;
      }
      const opened = this.#open(keys[i]!, text);
      if (!opened) {
        this.#badSignatures++;
        this.#misses++;
        return;
      }
      this.#hits++;
      out[i] = opened.value;
    });
    return out;
  }

  /** Writes signed entries in one MULTI, each living `ttlMs` (default cache.shared_ttl_seconds). Never throws. */
  async setMany(entries: Array<[string, unknown]>, ttlMs = this.ttlSeconds * 1000): Promise<void> {
    if (entries.length === 0) return;
    if (this.#pendingWrites >= MAX_PENDING_WRITES) {
      this.#skipped++;
      return;
    }
    const rows = entries.map(([key, value]) => {
      const json = JSON.stringify(value);
      return { key, value: `${this.#sign(key, json)}.${json}`, ttl: ttlMs };
    });
    this.#pendingWrites++;
    try {
      const done = await this.#call('write', Math.max(1000, this.timeoutMs * 10), () => this.#keyv.setMany(rows).then(() => true));
      if (done !== undefined) this.#writes += rows.length;
    } finally {
      this.#pendingWrites--;
    }
  }

  stats(): SharedTierStats {
    return {
      target: this.target,
      connected: this.connected,
      hits: this.#hits,
      misses: this.#misses,
      errors: this.#errors,
      timeouts: this.#timeouts,
      skipped: this.#skipped,
      bad_signatures: this.#badSignatures,
      writes: this.#writes,
      breaker: this.#breakers.state(SHARED_BREAKER),
      timeout_ms: this.timeoutMs,
      eviction_policy: this.#policy,
    };
  }

  /**
   * For /health: why the tier is not in use (disconnected, or its breaker open). Once the breaker may try
   * again (HALF_OPEN), a PING is its trial, so a Redis that answers again is seen without waiting for a read.
   */
  reasons(): string[] {
    if (this.#closing) return [];
    const why = this.#lastError === undefined ? 'not connected yet' : messageOf(this.#lastError);
    if (!this.#client.isReady) return [`shared cache ${this.target} unreachable: ${why}`];
    const state = this.#breakers.state(SHARED_BREAKER);
    if (state === 'CLOSED') return [];
    if (state === 'HALF_OPEN') void this.#call('ping', this.timeoutMs, () => this.#client.ping());
    return [`shared cache ${this.target} unreachable: ${why} (circuit ${state.toLowerCase().replace('_', '-')})`];
  }

  /** Disconnects (gracefully if Redis answers, else at once). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        if (this.#client.isOpen) await deadline(this.#client.close(), 500, 'close');
      } catch {
        // A hung or absent Redis: drop the connection.
      } finally {
        if (this.#client.isOpen) this.#client.destroy();
        if (this.#ownBreakers) this.#breakers.close();
      }
    })();
    return this.#closing;
  }
}
