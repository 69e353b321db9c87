// The plugin contract. A plugin is a plain object; importing it has no side effects.
import type { Context } from 'koa';
import type { HearthConfig } from './config.js';
import type { Logger } from './services/logger.js';
import type { StatsSection } from './services/metrics.js';
import type { CacheNamespace } from './services/cache.js';
import type { EventBus } from './services/events.js';
import type { BrowserSessions } from './http/sessions.js';
import type { WatcherService } from './services/watcher.js';
import type { Breakers } from './services/breakers.js';
import type { PoolService, RunOptions } from './services/pool.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteSchema {
  query?: object;
  params?: object;
  body?: object;
  /** The `data` of a successful answer, for /openapi.json. */
  response?: object;
}

export interface RouteRequest<Q = any, P = any, B = any> {
  query: Q;
  params: P;
  body: B;
  koa: Context;
}

export interface RouteDefinition<Q = any, P = any, B = any> {
  method: HttpMethod;
  /** A full path (`/git/status`), with `:name` parameters. */
  path: string;
  summary?: string;
  schema?: RouteSchema;
  /** Default true. Only the health check answers without a token on TCP. */
  auth?: boolean;
  /** When given, the route also answers `?format=text` with these plain lines (for shells). */
  text?: (data: any) => string;
  /** Default 200. */
  status?: number;
  /**
   * The content type of a route that answers outside the envelope (bytes, text, `text/event-stream`):
   * /openapi.json says so, and the client library's typed method reads the answer accordingly.
   */
  produces?: string;
  /**
   * Returns the `data` of the envelope. A handler that sets `koa.body` itself (bytes, text, a stream)
   * answers outside the envelope.
   */
  handler(req: RouteRequest<Q, P, B>): unknown | Promise<unknown>;
}

/** What a plugin adds to the daemon's metrics: timings of its operations and a section of /optimization/stats. */
export interface PluginMetrics {
  timed<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  record(name: string, seconds: number): void;
  provide(key: string, section: StatsSection): void;
}

/** The daemon's metrics as a whole and their retention: what the plugin serving them (the built-in stats) reads. */
export interface MetricsReport {
  /** Timings per operation: over the retention, or over the last `windowSeconds`. */
  snapshot(windowSeconds?: number): Record<string, unknown>;
  sections(): Promise<Record<string, unknown>>;
  prometheus(): Promise<string>;
  readonly prometheusContentType: string;
  setRetention(retention: { retention_seconds: number; max_samples: number }): void;
}

export interface PluginContext<Options = unknown> {
  readonly name: string;
  /** This plugin's options, validated against its configSchema with defaults filled, frozen. */
  readonly config: Readonly<Options>;
  /** The core config (frozen). */
  readonly core: Readonly<HearthConfig>;
  readonly log: Logger;
  readonly metrics: PluginMetrics;
  /** Every plugin's and service's metrics, for the plugin that serves them; other plugins use `metrics`. */
  readonly stats: MetricsReport;
  /** This plugin's namespace of the two-level cache (memory LRU in front of SQLite). */
  readonly cache: CacheNamespace;
  /** Watches directories (one level each) and reports changes; see src/services/watcher.ts. */
  readonly watcher: Pick<WatcherService, 'watchDir' | 'onChange' | 'watchDirs' | 'ignored'>;
  /** Circuit breakers by name (shared by all plugins; name them `<plugin>:<thing>`). */
  readonly breakers: Pick<Breakers, 'run' | 'state'>;
  /**
   * The event bus behind GET /events: publish, subscribe, the clock (and its counter, `seq`), whether an event would reach anyone
   * (`wanted`, for events that cost something to compute), and scopes (query parameters of GET /events).
   */
  readonly events: Pick<EventBus, 'publish' | 'subscribe' | 'wanted' | 'addScope' | 'clock' | 'seq' | 'sequence'>;
  /**
   * Browser sessions (a page the daemon serves, authorised by a cookie rather than the token): one-time
   * login URLs, redeeming them, which routes a session may call (`grant`), ending one. The session that
   * authorised a request is its `koa.state.session`.
   */
  readonly sessions: Pick<BrowserSessions, 'grant' | 'issueLogin' | 'redeem' | 'end' | 'clearCookie'>;
  /**
   * Runs one of this plugin's `tasks` on the shared worker pool: the task module's default export gets
   * `input` (structured-cloned) in a worker thread. Rejects with QUEUE_FULL when the pool queue is full,
   * TIMEOUT past pool.task_timeout_ms (the thread is stopped), an AbortError when `signal` aborts, or the
   * task's own error (a task that throws or exits fails alone).
   */
  runTask<T = unknown>(task: string, input: unknown, options?: RunOptions): Promise<T>;
  /** The shared pool's state: whether a new task would be refused now, and its stats. */
  readonly pool: Pick<PoolService, 'full' | 'stats'>;
  /** Adds a route to the control API. */
  route(definition: RouteDefinition): void;
  /** The API of a plugin named in `dependsOn`. */
  use<Api = unknown>(name: string): Api;
  /** The API of a plugin named in `optionalDependsOn`, or undefined when that plugin is not configured. */
  useOptional<Api = unknown>(name: string): Api | undefined;
  /** Registers cleanup at the moment a resource is acquired; runs in reverse order at close. */
  onClose(fn: () => unknown | Promise<unknown>): void;
  /**
   * Adds what /health should say while something this plugin relies on is unwell (a remote service
   * unreachable, say): the function answers the reasons now (empty when all is well) and must be cheap.
   */
  onHealth(fn: () => string[]): void;
  /** Takes new, valid options on SIGHUP; a plugin that registers none keeps its options until a restart. */
  onReconfigure(fn: (options: Readonly<Options>) => void): void;
}

export interface Plugin<Options = any, Api = unknown> {
  name: string;
  dependsOn?: string[];
  /** Plugins whose API it uses when they are configured: those are set up before it. */
  optionalDependsOn?: string[];
  configSchema: object;
  /** Worker modules this plugin runs on the shared pool with ctx.runTask(name, ...), by name. */
  tasks?: Record<string, URL>;
  setup(ctx: PluginContext<Options>): Promise<Api> | Api;
  close?(): Promise<void> | void;
}

export function definePlugin<Options = any, Api = unknown>(plugin: Plugin<Options, Api>): Plugin<Options, Api> {
  return plugin;
}

export function isPlugin(value: unknown): value is Plugin {
  const p = value as Plugin | undefined;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.name === 'string' &&
    typeof p.setup === 'function' &&
    typeof p.configSchema === 'object' &&
    p.configSchema !== null
  );
}
