// Boot order, reload and graceful close. Everything that can refuse (config, plugins) is checked before
// anything is started or written.
import { existsSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DestinationStream } from 'pino';
import { loadConfig, type ConfigFlags, type HearthConfig, type LoadedConfig } from './config.js';
import { ConfigError } from './errors.js';
import { createApp, type AppSettings } from './http/app.js';
import { coreRoutes } from './http/core-routes.js';
import { RouteTable } from './http/routes.js';
import { listenBoth, type Listening } from './http/server.js';
import { loadPlugins, PluginHost } from './registry.js';
import { CacheService } from './services/cache.js';
import { readSharedSecret } from './services/shared-secret.js';
import type { SharedTier } from './services/shared-tier.js';
import { parseRedisTarget } from './redis-target.js';
import { EventBus } from './services/events.js';
import { MAX_BUFFERED } from './http/sse.js';
import { WatcherService } from './services/watcher.js';
import { Breakers } from './services/breakers.js';
import { eventsRoute } from './http/events-route.js';
import { createLogger, type Logger } from './services/logger.js';
import { BrowserSessions } from './http/sessions.js';
import { Metrics } from './services/metrics.js';
import { PoolService } from './services/pool.js';
import { withTimeout } from './timeout.js';
import { acquirePidLock, ensurePrivateDir, loadOrCreateToken, stateFiles, writeRuntimeInfo } from './state.js';
import { buildId, version } from './version.js';
import { notifySystemd } from './systemd.js';

export interface DaemonOptions {
  flags?: ConfigFlags;
  env?: Record<string, string | undefined>;
  /** Where logs go (tests pass a stream); default stderr. */
  logDestination?: DestinationStream;
  setupTimeoutMs?: number;
  /** Called once the idle limit is reached and the daemon has closed itself. */
  onIdleExit?: () => void;
}

export interface Daemon {
  readonly config: Readonly<HearthConfig>;
  readonly listening: Listening;
  readonly token: string;
  readonly log: Logger;
  readonly plugins: PluginHost;
  /** Re-reads the config file; a bad one is logged and the old config kept. Returns what waits for a restart. */
  reload(): Promise<{ applied: boolean; restartNeeded: string[]; error?: string }>;
  close(): Promise<void>;
}

function appSettings(config: Readonly<HearthConfig>, port: number): AppSettings {
  return {
    guard: { allowedHosts: new Set(config.server.allowed_hosts.map((h) => h.toLowerCase())), port },
    bodyLimitBytes: config.server.body_limit_bytes,
  };
}

/** The host a browser on this machine reaches the TCP listener by: a wildcard address is reached on loopback. */
function browserHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

// Keys a running daemon cannot change without restarting.
const RESTART_KEYS: Array<[string, (c: Readonly<HearthConfig>) => unknown]> = [
  ['state_dir', (c) => c.state_dir],
  ['server.host', (c) => c.server.host],
  ['server.port', (c) => c.server.port],
  ['server.socket', (c) => c.server.socket],
  ['cache', (c) => c.cache],
  ['watcher', (c) => c.watcher],
  ['pool', (c) => c.pool],
  ['circuit_breaker', (c) => c.circuit_breaker],
];

/** A started service and how it closes by `deadline` (a Date.now() time). */
interface Closer {
  name: string;
  close(deadline: number): unknown;
}

/** Closes in reverse start order; a step that fails is logged and the next one still runs. */
async function closeAll(started: Closer[], deadline: number, log: Logger): Promise<void> {
  for (const step of [...started].reverse()) {
    try {
      await step.close(deadline);
    } catch (err) {
      log.error({ err }, `${step.name} close failed`);
    }
  }
}

const left = (deadline: number): number => Math.max(0, deadline - Date.now());

export async function startDaemon(options: DaemonOptions = {}): Promise<Daemon> {
  const flags = options.flags ?? {};
  const env = options.env ?? process.env;
  const loaded: LoadedConfig = loadConfig(flags, env);
  const plugins = await loadPlugins(loaded);
  let config = loaded.config;

  ensurePrivateDir(config.state_dir);
  // Fixed at start: a reload that names another state dir takes effect only after a restart.
  const files = stateFiles(config.state_dir);
  if (!existsSync(dirname(config.server.socket))) ensurePrivateDir(dirname(config.server.socket));
  const log = createLogger(config.log.level, options.logDestination);
  const releaseLock = acquirePidLock(config.state_dir);
  // What is started, in order: a failed boot and close() both close it through closeAll.
  // A state dir gone read-only keeps the state files: the next start finds their pid gone and replaces them.
  const started: Closer[] = [
    { name: 'pid lock', close: releaseLock },
    { name: 'runtime file', close: () => rmSync(files.runtime, { force: true }) },
  ];
  try {
    const token = loadOrCreateToken(config.state_dir);
    const metrics = new Metrics();
    started.push({ name: 'metrics', close: () => metrics.close() });
    const breakers = new Breakers(config.circuit_breaker);
    started.push({ name: 'breakers', close: () => breakers.close() });
    metrics.provide('circuit_breakers', () => breakers.stats());
    const shared = config.cache.shared === undefined ? undefined : await openSharedTier(config, breakers, log);
    const cache = await CacheService.open({
      ...config.cache,
      stateDir: config.state_dir,
      ...(shared ? { sharedTier: shared } : {}),
      onError: (err, context) => log.warn({ err, context }, 'cache error'),
    });
    // Whatever the cache still buffers is committed before exit (bounded like every close step).
    started.push({ name: 'cache', close: (deadline) => withTimeout(cache.close(), Math.max(1000, left(deadline)), 'cache close') });
    metrics.provide('cache_stats', () => cache.stats());
    const bus = new EventBus({ ringSize: config.events.ring_size });
    // The ring's bound, and how far behind a client may fall before its stream is cut off.
    metrics.provide('events', () => ({ ...bus.stats(), cut_off_bytes: MAX_BUFFERED }));
    const watcher = new WatcherService({ ignore: config.watcher.ignore, bus, log: log.child({ service: 'watcher' }) });
    started.push({ name: 'watcher', close: () => watcher.close() });
    const pool = new PoolService(config.pool);
    // Closed after the plugins: their close may still let running tasks finish.
    started.push({ name: 'pool', close: () => pool.close() });
    metrics.provide('pool', () => pool.stats());
    const routes = new RouteTable();
    // In memory only: sessions end with the daemon.
    const sessions = new BrowserSessions();
    started.push({ name: 'sessions', close: () => sessions.clear() });
    metrics.provide('sessions', () => sessions.counts());
    const host = new PluginHost(plugins, {
      core: config,
      log,
      // Plugins add to the metrics; reading them all (and their retention) is the separate `stats` door.
      metrics: {
        timed: (name, fn) => metrics.timed(name, fn),
        record: (name, seconds) => metrics.record(name, seconds),
        provide: (key, section) => metrics.provide(key, section),
      },
      stats: metrics,
      cache: (namespace) => cache.namespace(namespace),
      watcher,
      breakers,
      events: bus,
      sessions,
      addRoute: (owner, route) => routes.add(owner, route),
      runTask: (module, input, runOptions) => pool.run(module, input, runOptions),
      pool,
      ...(options.setupTimeoutMs ? { setupTimeoutMs: options.setupTimeoutMs } : {}),
    });
    const startedAt = Date.now();
    const build = buildId(env);
    for (const route of coreRoutes(
      {
        version,
        build,
        startedAt,
        plugins: host,
        watcher: () => watcher.status(),
        // What /health says is degraded: the watcher fell back to polling, the cache cannot write, a plugin's
        // own check (ctx.onHealth).
        reasons: () => [...watcher.reasons(), ...cache.reasons(), ...host.healthReasons()],
        clearCache: (namespace) => cache.clear(namespace),
      },
      routes,
    )) {
      routes.add('core', route);
    }
    // The threads start with the first task (PoolService.run), not here: each idle thread costs ~10 MB of
    // RSS and its start-up competes with the boot for the CPU; the first task pays the spawn (its request took
    // 0.22-0.37 s here against 0.03-0.04 s, on a loaded 2-core machine).
    await host.setup();
    // After the plugins' setup: the scopes they added (git's `repo`) are parameters of the route.
    routes.add('core', eventsRoute(bus));
    started.push({ name: 'plugins', close: (deadline) => host.close(left(deadline)) });

    let settings = appSettings(config, config.server.port);
    let lastRequest = Date.now();
    const app = createApp({ routes, token, sessions, log, metrics, settings: () => settings, onRequest: () => (lastRequest = Date.now()) });
    // We hold the lock, so a socket file here is a leftover of a daemon that died.
    rmSync(config.server.socket, { force: true });
    const listening = await listenBoth(app, config.server.socket, config.server.host, config.server.port);
    started.push({ name: 'listeners', close: (deadline) => listening.close(left(deadline)) });
    // Event streams never finish by themselves: they end before the listeners wait for requests in flight.
    started.push({ name: 'event streams', close: () => bus.close() });
    settings = appSettings(config, listening.port);
    sessions.listening(`http://${browserHost(listening.host)}:${listening.port}`, listening.port);
    writeRuntimeInfo(config.state_dir, {
      pid: process.pid,
      version,
      build,
      socket: listening.socket,
      host: listening.host,
      port: listening.port,
      started_at: new Date(startedAt).toISOString(),
    });
    log.info({ socket: listening.socket, host: listening.host, port: listening.port, version, build }, 'hearth is listening');
    // Under systemd (Type=notify) the unit is "started" only now that both listeners answer.
    notifySystemd(env, ['--ready', `--status=listening on ${listening.socket}`], log);

    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        const deadline = Date.now() + config.server.close_timeout_ms;
        log.info('closing');
        notifySystemd(env, ['STOPPING=1'], log);
        await closeAll(started, deadline, log);
        log.info('closed');
        await new Promise<void>((done) => log.flush(() => done()));
      })());

    // Checked each second only when there is an idle limit (a daemon with none keeps no timer for it).
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdleTimer = () => {
      clearInterval(idleTimer);
      idleTimer = undefined;
      if (config.server.idle_shutdown_seconds <= 0) return;
      idleTimer = setInterval(() => {
        const idle = config.server.idle_shutdown_seconds;
        if (Date.now() - lastRequest >= idle * 1000) {
          log.info({ idle_shutdown_seconds: idle }, 'idle limit reached');
          void close().then(() => options.onIdleExit?.());
        }
      }, 1000);
      idleTimer.unref();
    };
    armIdleTimer();
    started.push({ name: 'idle timer', close: () => clearInterval(idleTimer) });

    const reload: Daemon['reload'] = async () => {
      try {
        const next = loadConfig(flags, env);
        const nextPlugins = await loadPlugins(next);
        const restartNeeded = RESTART_KEYS.filter(([, get]) => JSON.stringify(get(next.config)) !== JSON.stringify(get(config))).map(
          ([key]) => key,
        );
        restartNeeded.push(...host.reconfigure(nextPlugins));
        log.level = next.config.log.level;
        settings = appSettings(next.config, listening.port);
        config = next.config;
        armIdleTimer();
        if (restartNeeded.length > 0) log.warn({ keys: restartNeeded }, 'config reloaded; these changes take effect after a restart');
        else log.info('config reloaded');
        return { applied: true, restartNeeded };
      } catch (err) {
        const message = err instanceof ConfigError ? err.message : String(err);
        log.error({ err: message }, 'config reload refused; keeping the old config');
        return { applied: false, restartNeeded: [], error: message };
      }
    };

    return {
      get config() {
        return config;
      },
      listening,
      token,
      log,
      plugins: host,
      reload,
      close,
    };
  } catch (err) {
    await closeAll(started, Date.now() + config.server.close_timeout_ms, log);
    throw err;
  }
}

/**
 * The shared cache tier of cache.shared (checked by loadConfig): connecting goes on in the background. Its
 * Redis client (~0.15 s and ~15 MB of a start) is loaded only by a daemon that has the tier.
 */
async function openSharedTier(config: HearthConfig, breakers: Breakers, log: Logger): Promise<SharedTier> {
  const { cache } = config;
  const { SharedTier } = await import('./services/shared-tier.js');
  return SharedTier.open({
    target: parseRedisTarget(cache.shared),
    secret: readSharedSecret(cache.shared_secret_file!),
    timeoutMs: cache.shared_timeout_ms,
    ttlSeconds: cache.shared_ttl_seconds,
    breakers,
    onError: (err, context) => (err === undefined ? log.info(context) : log.warn({ err }, context)),
    onWarning: (message) => log.warn(message),
  });
}
