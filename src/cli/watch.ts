// `hearth events` and `hearth wait`: the event stream through the client library's subscribe(), which
// reconnects by itself (Last-Event-ID) when the connection drops or the daemon restarts.
import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { CLOCK } from '../clock.js';
import type { HearthEvent } from '../client/index.js';
import { EXIT } from './exit.js';
import { UsageError, type CommandContext } from './spec.js';

/** The fields every event has, not repeated in the readable line. */
const SHOWN = new Set(['id', 'clock', 'time', 'type', 'path', 'repo']);

/** `<time> <type> <path or repo> key=value ...`: the time of day (UTC, ms), then what the event is about. */
export function eventLine(event: HearthEvent): string {
  const time = typeof event.time === 'string' ? event.time.slice(11, 23) : '';
  const where = typeof event.path === 'string' ? event.path : typeof event.repo === 'string' ? event.repo : '';
  const rest = Object.entries(event)
    .filter(([key, value]) => !SHOWN.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return [time, event.type, where, ...rest].filter(Boolean).join(' ');
}

/** An AbortSignal that SIGINT and SIGTERM (and a closed stdout) fire: the commands then end with exit 0. */
function interrupted(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.stdout.once('error', stop);
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stdout.off('error', stop);
    },
  };
}

const str = (value: unknown) => (typeof value === 'string' ? value : undefined);

export async function eventsCommand(ctx: CommandContext): Promise<number> {
  const types = str(ctx.options.type)?.split(',').filter(Boolean);
  const repo = str(ctx.options.repo);
  const path = str(ctx.options.path);
  const since = str(ctx.options.since);
  if (since !== undefined && !CLOCK.test(since)) throw new UsageError(`option --since must be a clock c:<instance>:<n>, not "${since}"`, 'events');
  const stop = interrupted();
  const client = ctx.client();
  try {
    // Not running (with --no-spawn) is said at once, exit 3, rather than waited for as a reconnection would.
    await client.health();
    const events = client.subscribe({
      ...(types?.length ? { types } : {}),
      ...(repo ? { repo: resolve(repo) } : {}),
      ...(path ? { path: resolve(path) } : {}),
      ...(since ? { since } : {}),
      signal: stop.signal,
    });
    for await (const event of events) process.stdout.write(`${ctx.options.json ? JSON.stringify(event) : eventLine(event)}\n`);
    return EXIT.ok;
  } finally {
    stop.dispose();
    await client.close();
  }
}

/** What `wait PATH` watches: a directory as the root, a file (or a name not there yet) through its directory. */
function target(path: string): { root: string; filter: string } {
  const absolute = resolve(path);
  let isDir = false;
  try {
    isDir = statSync(absolute).isDirectory();
  } catch {
    // not there (yet): its directory is watched for it
  }
  const dir = isDir ? absolute : dirname(absolute);
  let root: string;
  try {
    root = realpathSync(dir);
  } catch {
    throw new UsageError(`${dir} does not exist`, 'wait');
  }
  return { root, filter: isDir ? root : join(root, basename(absolute)) };
}

export const FILE_EVENTS = ['file.added', 'file.changed', 'file.removed'];

export async function waitCommand(ctx: CommandContext): Promise<number> {
  const raw = ctx.options.timeout;
  const seconds = raw === undefined ? undefined : Number(raw);
  if (seconds !== undefined && (!Number.isFinite(seconds) || seconds <= 0)) throw new UsageError(`option --timeout must be a positive number of seconds, not "${String(raw)}"`, 'wait');
  const { root, filter } = target(ctx.args[0] as string);
  const stop = interrupted();
  const timeout = new AbortController();
  const limit = seconds === undefined ? undefined : setTimeout(() => timeout.abort(), seconds * 1000);
  const signal = AbortSignal.any([stop.signal, timeout.signal]);
  const client = ctx.client();
  try {
    // Starts the watch of the root, and gives the clock from which its changes count.
    const { clock } = await client.call<{ clock: string }>('GET', `/files/changes?root=${encodeURIComponent(root)}`);
    const inside = (path: unknown) => typeof path === 'string' && (path === filter || path.startsWith(filter.endsWith(sep) ? filter : filter + sep));
    for await (const event of client.subscribe({ types: FILE_EVENTS, path: filter, since: clock, signal })) {
      // A restarted daemon cannot say what changed meanwhile: something may have.
      if (event.type === 'reset') return EXIT.ok;
      if (inside(event.path)) {
        process.stdout.write(`${String(event.path)}\n`);
        return EXIT.ok;
      }
    }
    // The time ran out (or the wait was interrupted) with nothing changed.
    return EXIT.failure;
  } finally {
    clearTimeout(limit);
    stop.dispose();
    await client.close();
  }
}
