// Where a Redis is, as the config says it: a `redis://` / `rediss://` URL, or `{"socket": "/abs/path"}`
// for a unix socket (the form the tests and a local Redis use). One schema and one parser for every part
// of the daemon that talks to Redis.

export type RedisTarget = { kind: 'url'; url: string } | { kind: 'socket'; path: string };

/** The JSON-schema fragment of a Redis target in the config. */
export const REDIS_TARGET_SCHEMA = {
  oneOf: [
    { type: 'string', pattern: '^rediss?://', description: 'redis://[user:pass@]host:port[/db] or rediss://…' },
    {
      type: 'object',
      required: ['socket'],
      additionalProperties: false,
      properties: { socket: { type: 'string', pattern: '^/', description: 'absolute path of the unix socket' } },
    },
  ],
} as const;

/** The target a config value names; throws a TypeError naming what is wrong. */
export function parseRedisTarget(value: unknown): RedisTarget {
  if (typeof value === 'string') {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new TypeError(`not a Redis URL: ${JSON.stringify(value)}`);
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new TypeError(`a Redis URL starts with redis:// or rediss://, not ${url.protocol}//`);
    if (!url.hostname) throw new TypeError(`the Redis URL ${JSON.stringify(value)} has no host`);
    return { kind: 'url', url: value };
  }
  const socket = (value as { socket?: unknown } | null)?.socket;
  if (typeof value === 'object' && value !== null && typeof socket === 'string') {
    if (!socket.startsWith('/')) throw new TypeError(`the Redis socket path must be absolute: ${JSON.stringify(socket)}`);
    return { kind: 'socket', path: socket };
  }
  throw new TypeError('a Redis target is a redis:// URL or {"socket": "/path/redis.sock"}');
}

/** The target for logs, /health and stats: `unix:/path`, or the URL without its password. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.kind === 'socket') return `unix:${target.path}`;
  const url = new URL(target.url);
  if (url.password) url.password = '';
  return url.toString().replace(/\/$/, '');
}
