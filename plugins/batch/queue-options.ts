// The batch queue's config (plugins.batch.queue): its schema, the settings with defaults filled, the
// daemon's id on the queue.
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { describeRedisTarget, parseRedisTarget, REDIS_TARGET_SCHEMA, type RedisTarget } from '../../src/redis-target.js';

export type QueueConfig =
  | string
  | { url?: string; socket?: string; name?: string; lock_ms?: number; stalled_interval_ms?: number; max_stalls?: number; heartbeat_ms?: number; concurrency?: number };

export interface QueueSettings {
  target: RedisTarget;
  /** The target for logs and /health (no password). */
  where: string;
  /** Prefix of every key (and of BullMQ's queues); daemons with the same Redis and name share jobs. */
  name: string;
  lockMs: number;
  stalledIntervalMs: number;
  /** Times a chunk may be found stalled and run again before it is given up (its items recorded as failed). */
  maxStalls: number;
  heartbeatMs: number;
  /** Chunks this daemon runs at once per queue it consumes; 0: it submits but runs none. */
  concurrency: number;
}

const ms = (description: string) => ({ type: 'integer', minimum: 100, description });

export const QUEUE_SCHEMA = {
  description: 'A Redis (URL or {"socket": path}) whose BullMQ queue sends job chunks to every daemon on it; absent: jobs run on this daemon only.',
  oneOf: [
    ...REDIS_TARGET_SCHEMA.oneOf.slice(0, 1),
    {
      type: 'object',
      additionalProperties: false,
      oneOf: [{ required: ['url'] }, { required: ['socket'] }],
      properties: {
        url: REDIS_TARGET_SCHEMA.oneOf[0],
        socket: REDIS_TARGET_SCHEMA.oneOf[1].properties.socket,
        name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,40}$', description: 'Key prefix and queue name (default "hearth").' },
        lock_ms: ms('How long a chunk is locked by the daemon running it before it counts as stalled (default 30000).'),
        stalled_interval_ms: ms('How often stalled chunks are looked for and handed to another daemon (default 30000).'),
        max_stalls: {
          type: 'integer',
          minimum: 0,
          description: 'Times a chunk may be found stalled (its daemon died or hung) and run again before its items are recorded as failed: a chunk that kills every daemon it runs on does not go round for ever (default 5).',
        },
        heartbeat_ms: ms('How often this daemon says it is alive in the registry (default 5000).'),
        concurrency: { type: 'integer', minimum: 0, description: 'Chunks run at once per queue (default pool.max_threads; 0: submit only).' },
      },
    },
  ],
};

export const SHARED_ROOTS_SCHEMA = {
  type: 'array',
  items: { type: 'string', pattern: '^/', minLength: 2 },
  description: 'Absolute paths that are the same on every daemon of the queue (a network mount, a CI workspace): path jobs under them go through the queue.',
};

export function queueSettings(config: QueueConfig, maxThreads: number): QueueSettings {
  const o = typeof config === 'string' ? { url: config } : config;
  if ((o.url === undefined) === (o.socket === undefined)) throw new TypeError('plugins.batch.queue needs one of "url" or "socket"');
  const target = parseRedisTarget(o.url ?? { socket: o.socket });
  return {
    target,
    where: describeRedisTarget(target),
    name: o.name ?? 'hearth',
    lockMs: o.lock_ms ?? 30_000,
    stalledIntervalMs: o.stalled_interval_ms ?? 30_000,
    maxStalls: o.max_stalls ?? 5,
    heartbeatMs: o.heartbeat_ms ?? 5000,
    concurrency: o.concurrency ?? maxThreads,
  };
}

/** `<hostname>-<8 hex>`: the same for a state dir across restarts, different for two state dirs. */
export function daemonId(stateDir: string): string {
  let dir = stateDir;
  try {
    dir = realpathSync(stateDir);
  } catch {
    // Not there yet: its name as given.
  }
  return `${hostname()}-${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`;
}
