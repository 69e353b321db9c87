// The client library: `import { connect } from '@hearthd/hearth/client'`. It finds the daemon as the CLI
// does (state dir from the options, the environment or the config file → its socket; or a TCP URL with the
// token from <state_dir>/token), optionally starts it, and offers one typed method per route (generated
// from the route schemas, see routes.gen.ts), call() for any other route, and subscribe() to the event
// stream with reconnection. It loads node:http and the config file reader only: no plugin, no validator,
// no server code.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { ApiError, Client, DaemonNotRunningError, envelopeError, type ClientOptions, type RawResponse } from '../client.js';
import { locateDaemon, type ConfigFlags } from '../config-source.js';
import { sseEvents, type HearthEvent } from './events.js';
import { ROUTES, type RouteMethods } from './routes.gen.js';

export { ApiError, DaemonNotRunningError } from '../client.js';
export type { RawResponse } from '../client.js';
export type { HearthEvent } from './events.js';
export * from './routes.gen.js';

export interface ConnectOptions {
  /** The daemon's state dir (default: $HEARTH_STATE_DIR, the config file's state_dir, else $XDG_STATE_HOME/hearth). */
  stateDir?: string;
  /** A config file to read state_dir and server.socket from (default: $HEARTH_CONFIG, else $XDG_CONFIG_HOME/hearth/config.json). */
  config?: string;
  /** The unix socket (default: the config's server.socket, else <state_dir>/hearth.sock). */
  socket?: string;
  /** Talk TCP instead, e.g. http://127.0.0.1:7433; the token is read from <state_dir>/token unless given. */
  url?: string;
  token?: string;
  /** Start the daemon in the background when a request finds none (as the CLI does), then send again. */
  start?: boolean;
  /** How long a start may take (default 30 s). */
  startTimeoutMs?: number;
  /** Per-request limit (default 30 s). */
  timeoutMs?: number;
}

export interface SubscribeOptions {
  /** Only these event types. */
  types?: string[];
  /** Only the events of this repository (a plugin scope of GET /events: sent only when given). */
  repo?: string;
  /** Only events whose path starts with this. */
  path?: string;
  /** A clock: the events after it first (as Last-Event-ID). */
  since?: string;
  /** Ends the iteration and closes the connection. */
  signal?: AbortSignal;
}

/** A row of ROUTES: how a typed method is sent. */
export interface RouteSpec {
  method: string;
  path: string;
  args: 'query' | 'body';
  answer: 'json' | 'document' | 'text' | 'bytes' | 'events';
}

/** The first wait before reconnecting, doubled after each failed attempt up to the second. */
export const RECONNECT_MS = { first: 100, max: 2000 };

/** The daemon sends a heartbeat every 15 s: a stream silent for three of them is taken for dead and reopened. */
export const SILENCE_MS = 45_000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function queryString(args: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(args)) {
    if (value === undefined) continue;
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(Array.isArray(value) ? value.join(',') : String(value))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

export interface HearthClientOptions extends ClientOptions {
  /** Called when a request finds no daemon (nothing was sent); the request is then sent once more. */
  onNotRunning?: () => Promise<unknown>;
}

// The typed methods are put on the prototype from ROUTES below; this merges their types into the class.
export interface HearthClient extends RouteMethods {}

export class HearthClient extends Client {
  #onNotRunning: (() => Promise<unknown>) | undefined;
  #subscriptions = new Set<AbortController>();

  constructor(options: HearthClientOptions) {
    super(options);
    this.#onNotRunning = options.onNotRunning;
  }

  /** Runs `send`; when it finds no daemon and one may be started, starts it and runs `send` again. */
  async #orStart<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      if (!(err instanceof DaemonNotRunningError) || !err.neverSent || !this.#onNotRunning) throw err;
      await this.#onNotRunning();
      return send();
    }
  }

  override raw(method: string, path: string, body?: unknown): Promise<RawResponse> {
    return this.#orStart(() => super.raw(method, path, body));
  }

  /** As Client's, and with `start` (the default) a daemon that is not running is started first when that was asked for. */
  override openStream(path: string, headers?: Record<string, string>, start = true): Promise<IncomingMessage> {
    return start ? this.#orStart(() => super.openStream(path, headers)) : super.openStream(path, headers);
  }

  /** Sends a typed method's request. */
  invoke(route: RouteSpec, args: Record<string, unknown> = {}): unknown {
    const rest = { ...args };
    const path = route.path.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => {
      const value = rest[name];
      delete rest[name];
      if (value === undefined) throw new ApiError(0, 'VALIDATION_FAILED', `${route.method} ${route.path} needs ${name}`);
      return encodeURIComponent(String(value));
    });
    const target = route.args === 'query' ? `${path}${queryString(rest)}` : path;
    const body = route.args === 'body' ? rest : undefined;
    if (route.answer === 'events') return this.stream(target);
    if (route.answer === 'json') return this.call(route.method, target, body);
    return this.raw(route.method, target, body).then((res) => {
      if (res.status < 200 || res.status >= 300) throw envelopeError(res.status, res.body);
      return route.answer === 'bytes' ? res.bytes : route.answer === 'document' ? JSON.parse(res.body) : res.body;
    });
  }

  /** The events of one stream (GET `path`, an event-stream route) until it ends; no reconnection. */
  async *stream(path: string, headers?: Record<string, string>): AsyncGenerator<HearthEvent, void, undefined> {
    const res = await this.openStream(path, headers);
    try {
      yield* sseEvents(res);
    } finally {
      res.destroy();
    }
  }

  /**
   * The daemon's events (GET /events), filtered, for as long as the caller iterates. A dropped connection is
   * opened again with Last-Event-ID = the last event seen (waiting 100 ms, doubling to 2 s, for as long as it
   * takes): the daemon replays what came in between, or, when it cannot (it restarted, or the gap is older
   * than its ring), sends a `reset` event (`is_fresh_instance: true`) first, and the caller re-reads what it
   * shows. `break`, return(), the signal or close() ends it and closes the connection. An answer that
   * refuses the request itself (a bad filter, no token) is thrown as an ApiError. With `start`, only the
   * first connection starts a daemon: one that goes away later (`hearth stop`) is waited for, not restarted.
   */
  async *subscribe(options: SubscribeOptions = {}): AsyncGenerator<HearthEvent, void, undefined> {
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) stop.abort();
    this.#subscriptions.add(stop);
    const query = queryString({ type: options.types?.length ? options.types : undefined, path: options.path, repo: options.repo });
    let last = options.since;
    let wait = RECONNECT_MS.first;
    let res: IncomingMessage | undefined;
    let first = true;
    const cut = () => res?.destroy();
    stop.signal.addEventListener('abort', cut, { once: true });
    try {
      while (!stop.signal.aborted) {
        try {
          const opening = this.openStream(`/events${query}`, last ? { 'last-event-id': last } : {}, first);
          first = false;
          res = await opening;
          if (stop.signal.aborted) break;
          const current = res;
          current.setTimeout(SILENCE_MS, () => current.destroy());
          wait = RECONNECT_MS.first;
          for await (const event of sseEvents(res)) {
            last = event.id;
            yield event;
          }
        } catch (err) {
          // The daemon refused the request itself: asking again cannot help.
          if (err instanceof ApiError && err.status >= 400 && err.status < 500) throw err;
          if (stop.signal.aborted) break;
        } finally {
          res?.destroy();
          res = undefined;
        }
        await sleep(wait, stop.signal);
        wait = Math.min(wait * 2, RECONNECT_MS.max);
      }
    } finally {
      stop.signal.removeEventListener('abort', cut);
      options.signal?.removeEventListener('abort', onAbort);
      this.#subscriptions.delete(stop);
    }
  }

  /** Ends the subscriptions and closes the connections. */
  override async close(): Promise<void> {
    for (const stop of this.#subscriptions) stop.abort();
    await super.close();
  }
}

for (const [name, route] of Object.entries(ROUTES as Record<string, RouteSpec>)) {
  Object.defineProperty(HearthClient.prototype, name, {
    value: function (this: HearthClient, args?: Record<string, unknown>) {
      return this.invoke(route, args);
    },
    writable: true,
    configurable: true,
  });
}

function readToken(stateDir: string): string | undefined {
  try {
    return readFileSync(join(stateDir, 'token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * A client of the daemon: over its unix socket by default, found as the CLI finds it; over TCP when `url`
 * is given (with `token`, else the one in the state dir). Nothing is sent until the first request.
 */
export async function connect(options: ConnectOptions = {}): Promise<HearthClient> {
  const flags: ConfigFlags = {};
  if (options.config) flags.config = options.config;
  if (options.stateDir) flags.stateDir = options.stateDir;
  if (options.socket) flags.socket = options.socket;
  const where = locateDaemon(flags);
  const onNotRunning = options.start
    ? async () => {
        const { startInBackground, SPAWN_TIMEOUT_MS } = await import('../cli/connect.js');
        await startInBackground(flags, where, options.startTimeoutMs ?? SPAWN_TIMEOUT_MS, true);
      }
    : undefined;
  const common = { ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}), ...(onNotRunning ? { onNotRunning } : {}) };
  if (options.url) {
    const token = options.token ?? readToken(where.stateDir);
    return new HearthClient({ url: options.url, ...(token ? { token } : {}), ...common });
  }
  return new HearthClient({ socket: where.socket, ...common });
}
