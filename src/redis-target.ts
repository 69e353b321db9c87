// Where a Redis is, as the config says it: a `redis://[user:pass@]host:port[/db]` (or `rediss://`) URL, or
// `{"socket": "/abs/path/redis.sock"}` for a unix socket. One schema fragment and one parser for every part
// of hearth that talks to Redis (the shared cache tier, the batch queue).

export type RedisTarget = { kind: 'url'; url: string } | { kind: 'socket'; path: string };

/** The JSON-schema fragment of a Redis target (config/schema.json's cache.shared holds the same; a test checks). */
export const REDIS_TARGET_SCHEMA = {
  description: 'A Redis: "redis://[user:pass@]host:port[/db]" or "rediss://…", or {"socket": "/absolute/path/redis.sock"}.',
  oneOf: [
    { type: 'string', pattern: '^rediss?://', minLength: 9, maxLength: 2048 },
    {
      type: 'object',
      additionalProperties: false,
      required: ['socket'],
      properties: { socket: { type: 'string', pattern: '^/', minLength: 2, maxLength: 1024 } },
    },
  ],
} as const;

/** Parses a config value; throws a TypeError saying what is wrong (the caller adds where it came from). */
export function parseRedisTarget(value: unknown): RedisTarget {
  if (typeof value === 'string') {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new TypeError(`${JSON.stringify(redact(value))} is not a URL`);
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new TypeError(`${JSON.stringify(url.protocol)} is not a Redis URL scheme (redis:// or rediss://; a unix socket is {"socket": "/path"})`);
    }
    if (!url.hostname) throw new TypeError(`${JSON.stringify(redact(value))} names no host`);
    const db = url.pathname.replace(/^\//, '');
    if (db !== '' && !/^\d+$/.test(db)) throw new TypeError(`the database in ${JSON.stringify(redact(value))} must be a number`);
    return { kind: 'url', url: value };
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const socket = (value as { socket?: unknown }).socket;
    if (keys.length !== 1 || typeof socket !== 'string') throw new TypeError('a socket target is {"socket": "/absolute/path"} and nothing else');
    if (!socket.startsWith('/')) throw new TypeError(`the socket path ${JSON.stringify(socket)} must be absolute`);
    return { kind: 'socket', path: socket };
  }
  throw new TypeError('a Redis target is a redis:// URL or {"socket": "/absolute/path"}');
}

/** For logs, /health and stats: `unix:/path`, or the URL without its password. */
export function describeRedisTarget(target: RedisTarget): string {
  return target.kind === 'socket' ? `unix:${target.path}` : redact(target.url);
}

function redact(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = '***';
    return url.toString().replace(/\/$/, '');
  } catch {
    return text.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}

/** The `maxmemory_policy` of an `INFO memory` reply, or 'unknown'. */
export function evictionPolicyIn(infoMemory: string): string {
  return /maxmemory_policy:(\S+)/.exec(infoMemory)?.[1] ?? 'unknown';
}
