// Circuit breakers by name (one per repository, say), on opossum: OPEN after `failure_threshold`
// consecutive failures, fast-fail with 503 CIRCUIT_OPEN and Retry-After while open, one trial call after
// `reset_timeout_seconds` (HALF_OPEN), CLOSED again when it succeeds. opossum trips on an error
// percentage over a rolling window; the original design's consecutive count is kept here and opens the
// breaker itself. Client errors (4xx) are filtered: they never count and never trip.
import CircuitBreaker from 'opossum';
import { HearthError } from '../errors.js';

export interface BreakerSettings {
  failure_threshold: number;
  reset_timeout_seconds: number;
}

export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

interface Entry {
  breaker: CircuitBreaker<[() => Promise<unknown>], unknown>;
  consecutive: number;
  failures: number;
  successes: number;
  rejections: number;
  openedAt: number;
  lastUsed: number;
}

const isClientError = (err: unknown): boolean => err instanceof HearthError && err.isClientError;

export class Breakers {
  #settings: BreakerSettings;
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;

  constructor(settings: BreakerSettings, max = 1000) {
    this.#settings = { ...settings };
    this.#max = max;
  }

  /** New settings apply to breakers made from now on. */
  configure(settings: BreakerSettings): void {
    this.#settings = { ...settings };
  }

  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const entry = this.#entry(name);
    entry.lastUsed = Date.now();
    try {
      return (await entry.breaker.fire(fn)) as T;
    } catch (err) {
      if ((err as { code?: string }).code === 'EOPENBREAKER') {
        entry.rejections++;
        const wait = Math.max(1, Math.ceil((entry.openedAt + this.#settings.reset_timeout_seconds * 1000 - Date.now()) / 1000));
        throw new HearthError('CIRCUIT_OPEN', `too many consecutive failures for ${name}; retry in ${wait} s`, {
          headers: { 'Retry-After': String(wait) },
        });
      }
      throw err;
    }
  }

  state(name: string): BreakerState {
    const b = this.#entries.get(name)?.breaker;
    return !b || b.closed ? 'CLOSED' : b.halfOpen ? 'HALF_OPEN' : 'OPEN';
  }

  #entry(name: string): Entry {
    let entry = this.#entries.get(name);
    if (entry) return entry;
    const resetTimeout = this.#settings.reset_timeout_seconds * 1000;
    const threshold = this.#settings.failure_threshold;
    const breaker = new CircuitBreaker((fn: () => Promise<unknown>) => fn(), {
      timeout: false,
      resetTimeout,
      errorThresholdPercentage: 100, // never trips on its own rolling percentage; see failure below
      errorFilter: isClientError,
    });
    const e: Entry = { breaker, consecutive: 0, failures: 0, successes: 0, rejections: 0, openedAt: 0, lastUsed: Date.now() };
    breaker.on('success', (result: unknown) => {
      if (!isClientError(result)) e.successes++;
      e.consecutive = 0;
    });
    breaker.on('failure', () => {
      e.failures++;
      e.consecutive++;
      if (e.consecutive >= threshold && breaker.closed) breaker.open();
    });
    breaker.on('open', () => {
      e.openedAt = Date.now();
    });
    this.#entries.set(name, e);
    entry = e;
    if (this.#entries.size > this.#max) this.#dropOldestClosed();
    return entry;
  }

  /**
   * Past `max` breakers the least recently used CLOSED one goes. Not lru-cache: a plain LRU would also drop
   * an OPEN or HALF_OPEN breaker, and the next call would get a fresh CLOSED one, reaching the failing
   * repository again before reset_timeout_seconds. So those are never dropped (past `max` only if all are).
   */
  #dropOldestClosed(): void {
    let oldest: [string, Entry] | undefined;
    for (const pair of this.#entries) if (pair[1].breaker.closed && (!oldest || pair[1].lastUsed < oldest[1].lastUsed)) oldest = pair;
    if (oldest) {
      oldest[1].breaker.shutdown();
      this.#entries.delete(oldest[0]);
    }
  }

  /** For /optimization/stats: each breaker's state and counts. */
  stats(): Record<string, { state: BreakerState; consecutive_failures: number; failures: number; successes: number; rejections: number; failure_threshold: number; reset_timeout_seconds: number }> {
    const out: ReturnType<Breakers['stats']> = {};
    for (const [name, e] of this.#entries) {
      out[name] = {
        state: this.state(name),
        consecutive_failures: e.consecutive,
        failures: e.failures,
        successes: e.successes,
        rejections: e.rejections,
        failure_threshold: this.#settings.failure_threshold,
        reset_timeout_seconds: this.#settings.reset_timeout_seconds,
      };
    }
    return out;
  }

  close(): void {
    for (const e of this.#entries.values()) e.breaker.shutdown();
    this.#entries.clear();
  }
}
