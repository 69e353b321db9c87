// Where the config comes from, read without validating it: config/default.json < config file < environment
// < CLI flags. The CLI's client commands need only the state dir and the socket from it, and must not pay for
// compiling the config schema (src/config.ts validates, for the daemon and `hearth config`).
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './errors.js';

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
  cache: {
    ttl_seconds: number;
    max_size: number;
    store: 'sqlite' | 'memory';
    max_store_entries: number;
    /** The shared tier's Redis (src/redis-target.ts); absent = no shared tier. */
    shared?: string | { socket: string };
    /** The team secret signing shared entries; required with `shared`. */
    shared_secret_file?: string;
    shared_timeout_ms: number;
    shared_ttl_seconds: number;
  };
  watcher: { ignore: string[] };
  events: { ring_size: number };
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

export function readJson(path: string, what: string): unknown {
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

const defaults = readJson(join(packageRoot, 'config/default.json'), 'default config') as Record<string, unknown>;

export type Env = Record<string, string | undefined>;

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
export type Sources = Map<string, string>;

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

/** The merged document (not yet validated) and where it came from. */
export interface ConfigDocument {
  doc: Record<string, unknown>;
  file: string | undefined;
  /** Which variable or flag set a JSON path. */
  sources: Sources;
}

/**
 * Defaults, the config file, the environment and the flags, merged. `checkFile` sees the file's own document
 * before it is merged (the daemon validates it alone, so an error names the file's key, not a merged one).
 */
export function readConfigDocument(flags: ConfigFlags = {}, env: Env = process.env, checkFile?: (doc: unknown, file: string) => void): ConfigDocument {
  const file = configFilePath(flags, env);
  let doc = structuredClone(defaults);
  if (file) {
    const fromFile = readJson(file, 'config file') as Record<string, unknown>;
    checkFile?.(fromFile, file);
    if (!isObject(fromFile)) throw new ConfigError(`invalid config (${file}): the file must hold a JSON object; see hearth config check`);
    // Paths in a file are relative to the file, like its plugins' module paths.
    if (typeof fromFile.state_dir === 'string') fromFile.state_dir = resolve(dirname(file), fromFile.state_dir);
    const server = fromFile.server as Record<string, unknown> | undefined;
    if (isObject(server) && typeof server.socket === 'string') server.socket = resolve(dirname(file), server.socket);
    const cache = fromFile.cache as Record<string, unknown> | undefined;
    if (isObject(cache) && typeof cache.shared_secret_file === 'string') cache.shared_secret_file = resolve(dirname(file), cache.shared_secret_file);
    doc = merge(doc, fromFile) as Record<string, unknown>;
  }
  const sources: Sources = new Map();
  applyEnv(doc, env, sources);
  applyFlags(doc, flags, sources);
  return { doc, file, sources };
}

/** What a client needs to find the daemon, from a document that may not have been validated. */
export interface DaemonLocation {
  stateDir: string;
  socket: string;
  /** The config file, if one was read. */
  file: string | undefined;
  /** Anchors relative plugin module paths. */
  baseDir: string;
  doc: Record<string, unknown>;
}

/** A string from a document that may not have been validated (undefined when unset; another type is refused). */
export function stringAt(doc: Record<string, unknown>, path: string[]): string | undefined {
  const value = getPath(doc, path);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new ConfigError(`invalid config: /${path.join('/')} must be a string; see hearth config check`);
  return value;
}

export function locateDaemon(flags: ConfigFlags = {}, env: Env = process.env): DaemonLocation {
  const { doc, file } = readConfigDocument(flags, env);
  const configured = stringAt(doc, ['state_dir']);
  const stateDir = configured ? resolve(configured) : defaultStateDir(env);
  const socket = stringAt(doc, ['server', 'socket']);
  return { stateDir, socket: socket ? resolve(socket) : join(stateDir, 'hearth.sock'), file, baseDir: file ? dirname(file) : process.cwd(), doc };
}

/** A number from a document that may not have been validated, or the fallback. */
export function numberAt(doc: Record<string, unknown>, path: string[], fallback: number): number {
  const value = getPath(doc, path);
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}
