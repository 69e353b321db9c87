// Config: config/default.json < config file < environment < CLI flags, validated by one schema, then frozen.
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, type ErrorDetail } from './errors.js';
import { compileSchema, describeDetails, errorDetails } from './validation.js';
import { parseRedisTarget } from './redis-target.js';
import { readSharedSecret } from './services/shared-secret.js';
import { defaultStateDir, packageRoot, readConfigDocument, readJson, type ConfigFlags, type Env, type HearthConfig, type LoadedConfig, type Sources } from './config-source.js';

export {
  ENV_VARIABLES,
  configFilePath,
  defaultStateDir,
  merge,
  packageRoot,
  type ConfigFlags,
  type HearthConfig,
  type LoadedConfig,
  type LogLevel,
  type PluginEntry,
} from './config-source.js';

export const configSchema = readJson(join(packageRoot, 'config/schema.json'), 'config schema') as object;
const validateConfig = compileSchema(configSchema);

export function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Validates a whole config document (as a file would hold it) and throws a ConfigError naming every bad key. */
export function checkConfigDocument(doc: unknown, source: string, sources: Sources = new Map()): void {
  const details = configDocumentErrors(doc, sources);
  if (details.length > 0) throw new ConfigError(`invalid config (${source}): ${describeDetails(details)}`, details);
}

/** Every problem of a whole config document, as details (empty when it is valid). */
export function configDocumentErrors(doc: unknown, sources: Sources = new Map()): ErrorDetail[] {
  if (validateConfig(doc)) return [];
  return errorDetails(validateConfig.errors).map((d) => {
    const from = d.path === undefined ? undefined : sources.get(d.path);
    return from ? { ...d, message: `${d.message} (from ${from})` } : d;
  });
}

export function loadConfig(flags: ConfigFlags = {}, env: Env = process.env): LoadedConfig {
  const { doc, file, sources } = readConfigDocument(flags, env, (fromFile, path) => checkConfigDocument(fromFile, path));
  checkConfigDocument(doc, file ? `${file} with environment and flags` : 'defaults with environment and flags', sources);

  const config = doc as unknown as HearthConfig;
  config.state_dir = config.state_dir ? resolve(config.state_dir) : defaultStateDir(env);
  config.server.socket = config.server.socket ? resolve(config.server.socket) : join(config.state_dir, 'hearth.sock');
  config.pool.max_threads ??= availableParallelism();
  checkSharedCache(config.cache);
  return { config: deepFreeze(config), file, baseDir: file ? dirname(file) : process.cwd() };
}

/** The shared cache tier's settings beyond what the schema says: a valid target, a readable secret of its own. */
export function checkSharedCache(cache: Pick<HearthConfig['cache'], 'shared' | 'shared_secret_file'>): void {
  if (cache.shared === undefined) {
    if (cache.shared_secret_file !== undefined) readSharedSecret(cache.shared_secret_file);
    return;
  }
  try {
    parseRedisTarget(cache.shared);
  } catch (err) {
    const message = (err as Error).message;
    throw new ConfigError(`invalid config: /cache/shared: ${message}`, [{ path: '/cache/shared', message }]);
  }
  if (cache.shared_secret_file === undefined) {
    throw new ConfigError(
      'invalid config: cache.shared is set but cache.shared_secret_file is not: entries of the shared tier are signed with a team secret (a file of at least 16 bytes)',
      [{ path: '/cache/shared_secret_file', message: 'is required with cache.shared' }],
    );
  }
  readSharedSecret(cache.shared_secret_file);
}
