// Loads the plugins the config lists (built-ins by name, external ones by module), validates their options,
// orders them by dependsOn, and runs setup and close in that order and its reverse, each time-limited.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ConfigError, PluginError } from './errors.js';
import { deepFreeze, type HearthConfig, type LoadedConfig, type PluginEntry } from './config.js';
import { builtinPluginPath, resolveModule } from './plugin-paths.js';
import { isPlugin, type MetricsReport, type Plugin, type PluginContext, type PluginMetrics, type RouteDefinition } from './plugin.js';
import type { CacheNamespace } from './services/cache.js';
import type { Logger } from './services/logger.js';
import type { RunOptions } from './services/pool.js';
import { withTimeout } from './timeout.js';
import { compileSchema, describeDetails, errorDetails } from './validation.js';

export type PluginState = 'loaded' | 'starting' | 'ready' | 'failed' | 'closing' | 'closed';

export interface LoadedPlugin {
  name: string;
  plugin: Plugin;
  options: Readonly<Record<string, unknown>>;
  /** `builtin` or the module's absolute path. */
  source: string;
  state: PluginState;
  api?: unknown;
}

async function importPlugin(name: string, file: string): Promise<Plugin> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`plugin ${name}, load: ${(err as Error).message}`, [], { cause: err });
  }
  const plugin = mod.default ?? mod.plugin;
  if (!isPlugin(plugin)) {
    throw new ConfigError(
      `plugin ${name}, load: ${file} does not export a plugin (a default export made with definePlugin, with name, configSchema and setup)`,
    );
  }
  if (plugin.name !== name) {
    throw new ConfigError(`plugin ${name}, load: the module at ${file} is the plugin "${plugin.name}", not "${name}"`);
  }
  return plugin;
}

const NAME = /^[a-z][a-z0-9_-]*$/;

/** Imports one enabled plugin of the config and validates its options; a ConfigError names what is wrong. */
async function loadPluginEntry(name: string, entry: PluginEntry, baseDir: string): Promise<LoadedPlugin | undefined> {
  if (entry === false) return undefined;
  if (!NAME.test(name)) {
    throw new ConfigError(`plugin name "${name}" must be lower-case letters, digits, - or _`, [
      { path: `/plugins/${name}`, message: 'invalid plugin name' },
    ]);
  }
  const section = entry === true ? {} : entry;
  const external = typeof section.module === 'string';
  let file: string;
  let options: unknown;
  let optionsPath: string;
  if (external) {
    const extra = Object.keys(section).filter((k) => k !== 'module' && k !== 'options');
    if (extra.length > 0) {
      throw new ConfigError(`plugin ${name}: unknown key "${extra[0]}" (an external plugin takes "module" and "options")`, [
        { path: `/plugins/${name}/${extra[0]}`, message: `unknown key "${extra[0]}"` },
      ]);
    }
    file = resolveModule(section.module as string, baseDir);
    options = structuredClone(section.options ?? {});
    optionsPath = `/plugins/${name}/options`;
  } else {
    file = builtinPluginPath(name);
    if (!existsSync(file)) {
      throw new ConfigError(
        `plugin ${name}: there is no built-in plugin named "${name}"; an external plugin needs {"module": "./path/to/plugin.js"}`,
        [{ path: `/plugins/${name}`, message: 'unknown built-in plugin' }],
      );
    }
    options = structuredClone(section);
    optionsPath = `/plugins/${name}`;
  }
  const plugin = await importPlugin(name, file);
  const validate = compileSchema(plugin.configSchema);
  if (!validate(options)) {
    const details = errorDetails(validate.errors, optionsPath);
    throw new ConfigError(`invalid config for plugin ${name}: ${describeDetails(details)}`, details);
  }
  return {
    name,
    plugin,
    options: deepFreeze(options as Record<string, unknown>),
    source: external ? file : 'builtin',
    state: 'loaded',
  };
}

/** Imports and validates every enabled plugin of the config, in dependency order. */
export async function loadPlugins(loaded: Pick<LoadedConfig, 'config' | 'baseDir'>): Promise<LoadedPlugin[]> {
  const out: LoadedPlugin[] = [];
  for (const [name, entry] of Object.entries(loaded.config.plugins)) {
    const item = await loadPluginEntry(name, entry, loaded.baseDir);
    if (item) out.push(item);
  }
  return orderByDependencies(out);
}

/** Every problem of a plugins section at once, not only the first (what `hearth config check` reports). */
export async function pluginProblems(plugins: Record<string, PluginEntry>, baseDir: string): Promise<ConfigError[]> {
  const problems: ConfigError[] = [];
  const out: LoadedPlugin[] = [];
  for (const [name, entry] of Object.entries(plugins)) {
    try {
      const item = await loadPluginEntry(name, entry, baseDir);
      if (item) out.push(item);
    } catch (err) {
      problems.push(err instanceof ConfigError ? err : new ConfigError(`plugin ${name}: ${(err as Error).message}`));
    }
  }
  if (problems.length === 0) {
    try {
      orderByDependencies(out);
    } catch (err) {
      problems.push(err as ConfigError);
    }
  }
  return problems;
}

/** Topological order; a missing or circular dependency is a ConfigError that names the chain. */
export function orderByDependencies<T extends { name: string; plugin: { dependsOn?: string[]; optionalDependsOn?: string[] } }>(items: T[]): T[] {
  const byName = new Map(items.map((p) => [p.name, p]));
  const ordered: T[] = [];
  const done = new Set<string>();
  const visiting: string[] = [];
  const visit = (item: T): void => {
    if (done.has(item.name)) return;
    const cycleAt = visiting.indexOf(item.name);
    if (cycleAt >= 0) {
      const chain = [...visiting.slice(cycleAt), item.name].join(' -> ');
      throw new ConfigError(`plugin ${item.name}: circular dependency ${chain}`);
    }
    visiting.push(item.name);
    for (const dep of item.plugin.dependsOn ?? []) {
      const target = byName.get(dep);
      if (!target) {
        throw new ConfigError(`plugin ${item.name} depends on "${dep}", which is not configured (or is disabled)`);
      }
      visit(target);
    }
    for (const dep of item.plugin.optionalDependsOn ?? []) {
      const target = byName.get(dep);
      if (target) visit(target);
    }
    visiting.pop();
    done.add(item.name);
    ordered.push(item);
  };
  for (const item of items) visit(item);
  return ordered;
}

export interface HostServices {
  core: Readonly<HearthConfig>;
  log: Logger;
  metrics: PluginMetrics;
  stats: MetricsReport;
  cache(namespace: string): CacheNamespace;
  watcher: PluginContext['watcher'];
  breakers: PluginContext['breakers'];
  events: PluginContext['events'];
  sessions: PluginContext['sessions'];
  addRoute(plugin: string, route: RouteDefinition): void;
  /** Runs a task module on the shared worker pool. */
  runTask(module: URL, input: unknown, options?: RunOptions): Promise<unknown>;
  pool: PluginContext['pool'];
  setupTimeoutMs?: number;
}

/** Runs the plugins' lifecycles. */
export class PluginHost {
  readonly plugins: LoadedPlugin[];
  #services: HostServices;
  #cleanups = new Map<string, Array<() => unknown>>();
  #reconfigurers = new Map<string, (options: Readonly<Record<string, unknown>>) => void>();
  #health = new Map<string, () => string[]>();

  constructor(plugins: LoadedPlugin[], services: HostServices) {
    this.plugins = plugins;
    this.#services = services;
  }

  #context(item: LoadedPlugin): PluginContext {
    const { name } = item;
    const cleanups: Array<() => unknown> = [];
    this.#cleanups.set(name, cleanups);
    return {
      name,
      config: item.options,
      core: this.#services.core,
      log: this.#services.log.child({ plugin: name }),
      metrics: this.#services.metrics,
      stats: this.#services.stats,
      cache: this.#services.cache(name),
      watcher: this.#services.watcher,
      breakers: this.#services.breakers,
      events: this.#services.events,
      sessions: this.#services.sessions,
      route: (route) => this.#services.addRoute(name, route),
      runTask: <T>(task: string, input: unknown, options?: RunOptions): Promise<T> => {
        const module = item.plugin.tasks?.[task];
        if (!module) return Promise.reject(new Error(`plugin ${name} has no task "${task}" (declare it in the plugin's tasks)`));
        return this.#services.runTask(module, input, options) as Promise<T>;
      },
      pool: this.#services.pool,
      use: <Api>(other: string): Api => {
        if (!(item.plugin.dependsOn ?? []).includes(other)) {
          throw new Error(`plugin ${name} uses "${other}" without listing it in dependsOn`);
        }
        return this.#api(other) as Api;
      },
      useOptional: <Api>(other: string): Api | undefined => {
        if (!(item.plugin.optionalDependsOn ?? []).includes(other)) {
          throw new Error(`plugin ${name} uses "${other}" without listing it in optionalDependsOn`);
        }
        return this.plugins.some((p) => p.name === other) ? (this.#api(other) as Api) : undefined;
      },
      onClose: (fn) => {
        cleanups.push(fn);
      },
      onReconfigure: (fn) => {
        this.#reconfigurers.set(name, fn as (options: Readonly<Record<string, unknown>>) => void);
      },
      onHealth: (fn) => {
        this.#health.set(name, fn);
      },
    };
  }

  #api(name: string): unknown {
    const target = this.plugins.find((p) => p.name === name);
    if (!target || target.state !== 'ready') throw new Error(`plugin "${name}" is not ready`);
    return target.api;
  }

  /** Sets every plugin up in dependency order; the first failure closes what started and rejects. */
  async setup(): Promise<void> {
    const limit = this.#services.setupTimeoutMs ?? 10_000;
    for (const item of this.plugins) {
      item.state = 'starting';
      try {
        item.api = await withTimeout(item.plugin.setup(this.#context(item)), limit, 'setup');
        item.state = 'ready';
      } catch (err) {
        item.state = 'failed';
        await this.close(this.#services.core.server.close_timeout_ms);
        // A setting the plugin found wrong (its Redis's, say) is reported as the config error it is.
        if (err instanceof ConfigError) throw new ConfigError(`plugin ${item.name}: ${err.message}`, err.details, { cause: err });
        throw new PluginError(item.name, 'setup', err);
      }
    }
  }

  /** Closes in reverse order within `budgetMs` in all; a close that hangs is abandoned and logged. */
  async close(budgetMs: number): Promise<void> {
    const deadline = Date.now() + budgetMs;
    const open = [...this.plugins].reverse().filter((p) => p.state === 'ready' || p.state === 'failed');
    for (const [index, item] of open.entries()) {
      // A close that hangs may use what is left, less a reserve for each plugin still to close after it.
      const later = open.length - index - 1;
      const reserve = Math.min(100, budgetMs / (2 * open.length)) * later;
      const until = deadline - reserve;
      item.state = 'closing';
      const cleanups = (this.#cleanups.get(item.name) ?? []).reverse();
      const steps: Array<() => unknown> = [...cleanups];
      if (item.plugin.close) steps.push(() => item.plugin.close!());
      for (const step of steps) {
        try {
          await withTimeout(Promise.resolve().then(step), Math.max(0, until - Date.now()), 'close');
        } catch (err) {
          this.#services.log.error({ err: new PluginError(item.name, 'close', err) }, 'plugin close failed');
        }
      }
      item.state = 'closed';
    }
  }

  /** The reasons the ready plugins give for /health to say degraded (a failing check is a reason itself). */
  healthReasons(): string[] {
    const reasons: string[] = [];
    for (const p of this.plugins) {
      const check = p.state === 'ready' ? this.#health.get(p.name) : undefined;
      if (!check) continue;
      try {
        reasons.push(...check());
      } catch (err) {
        reasons.push(`plugin ${p.name}: health check failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return reasons;
  }

  /** Applies new options on SIGHUP; a plugin without reconfigure keeps its old ones until a restart. */
  reconfigure(next: LoadedPlugin[]): string[] {
    const pending: string[] = [];
    for (const item of this.plugins) {
      const fresh = next.find((p) => p.name === item.name);
      if (!fresh || JSON.stringify(fresh.options) === JSON.stringify(item.options)) continue;
      const reconfigure = this.#reconfigurers.get(item.name);
      if (reconfigure) {
        try {
          reconfigure(fresh.options);
          item.options = fresh.options;
        } catch (err) {
          this.#services.log.error({ err: new PluginError(item.name, 'reconfigure', err) }, 'plugin reconfigure failed');
        }
      } else pending.push(`plugins.${item.name}`);
    }
    const names = (list: LoadedPlugin[]): string => list.map((p) => p.name).sort().join(',');
    if (names(next) !== names(this.plugins)) pending.push('plugins (the set of plugins)');
    return pending;
  }

  list(): Array<{ name: string; state: PluginState; source: string; depends_on: string[] }> {
    return this.plugins.map((p) => ({ name: p.name, state: p.state, source: p.source, depends_on: p.plugin.dependsOn ?? [] }));
  }
}
