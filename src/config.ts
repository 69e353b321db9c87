// Config: config/default.json < config file < environment < CLI flags, validated by one schema, then frozen.
import { existsSync, readFileSync } from 'node:fs';
import { homedir, availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, type ErrorDetail } from './errors.js';
import { compileSchema, describeDetails, errorDetails } from './validation.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type PluginEntry = boolean | Record<string, unknown>;

export interface HearthConfig {
  state_dir: string;
  server: {
    host: string;
    port: number;
    socket: string;
    allowed_hosts: string[];
    body_limit_bytes: number;
    close_timeout_ms: number;
    idle_shutdown_seconds: number;
  };
  log: { level: LogLevel };
  cache: { ttl_seconds: number; max_size: number; store: 'sqlite' | 'memory'; max_store_entries: number };
  watcher: { ignore: string[] };
  pool: { max_threads: number; max_queue: number; task_timeout_ms: number; worker_nice: number };
  circuit_breaker: { failure_threshold: number; reset_timeout_seconds: number };
  plugins: Record<string, PluginEntry>;
}

/** Where the config came from: the file (if any) anchors relative plugin module paths. */
export interface LoadedConfig {
  config: Readonly<HearthConfig>;
  file: string | undefined;
  baseDir: string;
}

export interface ConfigFlags {
  config?: string;
  stateDir?: string;
  host?: string;
  port?: string | number;
  socket?: string;
}

export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), import.meta.url.includes('/dist/') ? '../..' : '..');

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${what} ${path}: ${(err as Error).message}`, [], { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${what} ${path} is not valid JSON: ${(err as Error).message}`, [], { cause: err });
  }
}

export const configSchema = readJson(join(packageRoot, 'config/schema.json'), 'config schema') as object;
const defaults = readJson(join(packageRoot, 'config/default.json'), 'default config') as Record<string, unknown>;
const validateConfig = compileSchema(configSchema);

type Env = Record<string, string | undefined>;

/** The config file to read: --config, $HEARTH_CONFIG, else $XDG_CONFIG_HOME/hearth/config.json when it exists. */
export function configFilePath(flags: ConfigFlags, env: Env = process.env): string | undefined {
  const explicit = flags.config ?? env.HEARTH_CONFIG;
  if (explicit) return resolve(explicit);
  const xdg = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  const candidate = join(xdg, 'hearth', 'config.json');
  return existsSync(candidate) ? candidate : undefined;
}

export function defaultStateDir(env: Env = process.env): string {
  if (env.XDG_STATE_HOME) return join(resolve(env.XDG_STATE_HOME), 'hearth');
  return join(homedir(), '.local', 'state', 'hearth');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; anything else (arrays included) is replaced. */
export function merge(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over === undefined ? structuredClone(base) : structuredClone(over);
  const out: Record<string, unknown> = structuredClone(base);
  for (const [k, v] of Object.entries(over)) out[k] = merge(out[k], v);
  return out;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isObject(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function getPath(target: Record<string, unknown>, path: string[]): unknown {
  let node: unknown = target;
  for (const key of path) node = isObject(node) ? node[key] : undefined;
  return node;
}

// The original design's variable names, kept so its users feel at home.
const ENV_KEYS: Array<{ name: string; path: string[]; type: 'string' | 'number' | 'integer' }> = [
  { name: 'HEARTH_STATE_DIR', path: ['state_dir'], type: 'string' },
  { name: 'HEARTH_HOST', path: ['server', 'host'], type: 'string' },
  { name: 'HEARTH_PORT', path: ['server', 'port'], type: 'integer' },
  { name: 'HEARTH_LOG_LEVEL', path: ['log', 'level'], type: 'string' },
  { name: 'PERFORMANCE_CACHE_TTL', path: ['cache', 'ttl_seconds'], type: 'number' },
  { name: 'PERFORMANCE_CACHE_MAX_SIZE', path: ['cache', 'max_size'], type: 'integer' },
  { name: 'PERFORMANCE_BATCH_SIZE', path: ['plugins', 'batch', 'batch_size'], type: 'integer' },
  { name: 'PERFORMANCE_MAX_CONCURRENT', path: ['plugins', 'batch', 'max_concurrent'], type: 'integer' },
  { name: 'PERFORMANCE_CIRCUIT_BREAKER_THRESHOLD', path: ['circuit_breaker', 'failure_threshold'], type: 'integer' },
  { name: 'PERFORMANCE_CIRCUIT_BREAKER_TIMEOUT', path: ['circuit_breaker', 'reset_timeout_seconds'], type: 'number' },
];

export const ENV_VARIABLES = ['HEARTH_CONFIG', ...ENV_KEYS.map((k) => k.name)];

function parseValue(raw: string, type: 'string' | 'number' | 'integer', source: string): unknown {
  if (type === 'string') return raw;
  const n = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(n) || (type === 'integer' && !Number.isInteger(n))) {
    throw new ConfigError(`${source} must be ${type === 'integer' ? 'an integer' : 'a number'}, got "${raw}"`, [
      { path: source, message: `must be ${type === 'integer' ? 'an integer' : 'a number'}` },
    ]);
  }
  return n;
}

/** Which variable or flag set a JSON path, so a bad value is reported under the name the user typed. */
type Sources = Map<string, string>;

function applyEnv(doc: Record<string, unknown>, env: Env, sources: Sources): void {
  for (const key of ENV_KEYS) {
    const raw = env[key.name];
    if (raw === undefined || raw === '') continue;
    // A plugin's variable only tunes a plugin that is configured; it never enables one.
    if (key.path[0] === 'plugins') {
      const section = getPath(doc, key.path.slice(0, 2));
      if (section === true) setPath(doc, key.path.slice(0, 2), {});
      else if (!isObject(section)) continue;
    }
    setPath(doc, key.path, parseValue(raw, key.type, key.name));
    sources.set(`/${key.path.join('/')}`, key.name);
  }
}

function applyFlags(doc: Record<string, unknown>, flags: ConfigFlags, sources: Sources): void {
  const set = (path: string[], value: unknown, flag: string) => {
    setPath(doc, path, value);
    sources.set(`/${path.join('/')}`, flag);
  };
  if (flags.stateDir !== undefined) set(['state_dir'], resolve(flags.stateDir), '--state-dir');
  if (flags.host !== undefined) set(['server', 'host'], flags.host, '--host');
  if (flags.port !== undefined) set(['server', 'port'], parseValue(String(flags.port), 'integer', '--port'), '--port');
  if (flags.socket !== undefined) set(['server', 'socket'], resolve(flags.socket), '--socket');
}

export function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Validates a whole config document (as a file would hold it) and throws a ConfigError naming every bad key. */
export function checkConfigDocument(doc: unknown, source: string, sources: Sources = new Map()): void {
  if (!validateConfig(doc)) {
    const details: ErrorDetail[] = errorDetails(validateConfig.errors).map((d) => {
      const from = d.path === undefined ? undefined : sources.get(d.path);
      return from ? { ...d, message: `${d.message} (from ${from})` } : d;
    });
    throw new ConfigError(`invalid config (${source}): ${describeDetails(details)}`, details);
  }
}

export function loadConfig(flags: ConfigFlags = {}, env: Env = process.env): LoadedConfig {
  const file = configFilePath(flags, env);
  let doc = structuredClone(defaults);
  if (file) {
    const fromFile = readJson(file, 'config file') as Record<string, unknown>;
    checkConfigDocument(fromFile, file);
    // Paths in a file are relative to the file, like its plugins' module paths.
    if (typeof fromFile.state_dir === 'string') fromFile.state_dir = resolve(dirname(file), fromFile.state_dir);
    const server = fromFile.server as Record<string, unknown> | undefined;
    if (typeof server?.socket === 'string') server.socket = resolve(dirname(file), server.socket);
    doc = merge(doc, fromFile) as Record<string, unknown>;
  }
  const sources: Sources = new Map();
  applyEnv(doc, env, sources);
  applyFlags(doc, flags, sources);
  checkConfigDocument(doc, file ? `${file} with environment and flags` : 'defaults with environment and flags', sources);

  const config = doc as unknown as HearthConfig;
  config.state_dir = config.state_dir ? resolve(config.state_dir) : defaultStateDir(env);
  config.server.socket = config.server.socket ? resolve(config.server.socket) : join(config.state_dir, 'hearth.sock');
  config.pool.max_threads ??= availableParallelism();
  return { config: deepFreeze(config), file, baseDir: file ? dirname(file) : process.cwd() };
}
