// The in-process event bus: services publish, subscribers (the /events stream, plugins) filter by type,
// path prefix and plugin scopes. Publishing never waits for a subscriber.
//
// Every event carries a clock `c:<instance>:<n>`: the instance is made at each start, n counts the events
// published by it. The last `ringSize` events are kept, so a client that reconnects with the clock of the
// last event it saw gets what it missed (Watchman's clocks, SSE's Last-Event-ID); a clock this bus cannot
// answer for (another instance, older than the ring, ahead of it) is told to start over.
import { randomBytes } from 'node:crypto';
import { CLOCK } from '../clock.js';

export interface HearthEvent {
  /** The clock, also the SSE `id`. */
  id: string;
  clock: string;
  type: string;
  time: string;
  [key: string]: unknown;
}

export interface EventFilter {
  types?: string[];
  /** Only events whose `path` starts with this. */
  pathPrefix?: string;
  /** Further tests (a plugin scope's, see EventScope). */
  match?: Array<(event: HearthEvent) => boolean>;
}

/** A query parameter of GET /events that a plugin adds (e.g. git's `repo`). */
export interface EventScope {
  /** The parameter's JSON schema. */
  schema: object;
  /**
   * Resolves the parameter's value (throwing a HearthError for a bad one) into a test on events, and what
   * to do when the stream ends (e.g. let a repository go).
   */
  open(value: string): Promise<{ match(event: HearthEvent): boolean; close(): void }>;
}

export interface EventStats {
  clock: string;
  instance: string;
  published: number;
  subscribers: number;
  ring: { size: number; held: number; oldest: string | null };
  /** Streams that reconnected and were given what they missed, and the events so replayed. */
  replays: number;
  replayed_events: number;
  /** Streams told to start over (`reset`): a clock from another instance or older than the ring. */
  resets: number;
  /** Streams ended because the client read slower than events came (see src/http/sse.ts). */
  cut_off: number;
}


type Listener = (event: HearthEvent) => void;

export function matches(filter: EventFilter, event: HearthEvent): boolean {
  if (filter.types && !filter.types.includes(event.type)) return false;
  if (filter.pathPrefix !== undefined && !(typeof event.path === 'string' && event.path.startsWith(filter.pathPrefix))) return false;
  return !filter.match || filter.match.every((test) => test(event));
}

export class EventBus {
  readonly instance: string;
  readonly scopes = new Map<string, EventScope>();
  #seq = 0;
  readonly #ring: HearthEvent[];
  #subscribers = new Set<{ filter: EventFilter; fn: Listener }>();
  #closers = new Set<() => void>();
  #counts = { replays: 0, replayed_events: 0, resets: 0, cut_off: 0 };

  constructor(options: { ringSize?: number; instance?: string } = {}) {
    this.instance = options.instance ?? randomBytes(6).toString('hex');
    this.#ring = new Array<HearthEvent>(Math.max(1, options.ringSize ?? 10_000));
  }

  /** The counter of the clock now: events published so far. */
  get seq(): number {
    return this.#seq;
  }

  /** The clock now: that of the last event published (n = 0 before the first). */
  get clock(): string {
    return `c:${this.instance}:${this.#seq}`;
  }

  /** The counter of a clock of this instance, or null for a clock of another (or no clock). */
  sequence(clock: string | undefined | null): number | null {
    if (!clock || !CLOCK.test(clock)) return null;
    const [, instance, n] = clock.split(':');
    return instance === this.instance ? Number(n) : null;
  }

  publish(type: string, data: Record<string, unknown> = {}): HearthEvent {
    const seq = ++this.#seq;
    const clock = `c:${this.instance}:${seq}`;
    const event: HearthEvent = { ...data, id: clock, clock, type, time: new Date().toISOString() };
    this.#ring[seq % this.#ring.length] = event;
    for (const sub of this.#subscribers) if (matches(sub.filter, event)) sub.fn(event);
    return event;
  }

  /**
   * The events published after `clock`, oldest first, or null when this bus cannot say (a clock of another
   * instance, one older than the ring holds, one ahead of it, or not a clock): the caller starts over.
   * Together with a subscribe() in the same tick, nothing is missed and nothing comes twice.
   */
  since(clock: string): HearthEvent[] | null {
    const from = this.sequence(clock);
    const held = Math.min(this.#seq, this.#ring.length);
    if (from === null || from > this.#seq || from < this.#seq - held) {
      this.#counts.resets++;
      return null;
    }
    const out: HearthEvent[] = [];
    for (let n = from + 1; n <= this.#seq; n++) out.push(this.#ring[n % this.#ring.length]!);
    this.#counts.replays++;
    this.#counts.replayed_events += out.length;
    return out;
  }

  /** Returns the unsubscribe function. `onClose` runs when the bus closes (a stream ends itself). */
  subscribe(filter: EventFilter, fn: Listener, onClose?: () => void): () => void {
    const sub = { filter, fn };
    this.#subscribers.add(sub);
    if (onClose) this.#closers.add(onClose);
    return () => {
      this.#subscribers.delete(sub);
      if (onClose) this.#closers.delete(onClose);
    };
  }

  /** Whether an event of `type` (with these fields) would reach any subscriber now: publishers that must compute an event first ask. */
  wanted(type: string, fields: Record<string, unknown> = {}): boolean {
    const probe = { ...fields, id: '', clock: '', type, time: '' } as HearthEvent;
    for (const sub of this.#subscribers) if (matches(sub.filter, probe)) return true;
    return false;
  }

  /** Adds a query parameter of GET /events (before the daemon serves). */
  addScope(name: string, scope: EventScope): void {
    if (this.scopes.has(name) || name === 'type' || name === 'path' || name === 'since') throw new Error(`the event scope ${JSON.stringify(name)} is taken`);
    this.scopes.set(name, scope);
  }

  /** A stream was ended because its client fell behind. */
  noteCutOff(): void {
    this.#counts.cut_off++;
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  stats(): EventStats {
    const held = Math.min(this.#seq, this.#ring.length);
    return {
      clock: this.clock,
      instance: this.instance,
      published: this.#seq,
      subscribers: this.#subscribers.size,
      ring: { size: this.#ring.length, held, oldest: held ? `c:${this.instance}:${this.#seq - held + 1}` : null },
      ...this.#counts,
    };
  }

  /** Ends every subscription (open streams end, so a graceful close is not held open by them). */
  close(): void {
    for (const close of [...this.#closers]) close();
    this.#subscribers.clear();
    this.#closers.clear();
  }
}
