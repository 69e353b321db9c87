// loadConfig: defaults, where state_dir and the socket come from, precedence (flag > env > file > defaults),
// every environment variable, validation errors that name the JSON path, freezing, merge().
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import t, { type Test } from 'tap';
import { ENV_VARIABLES, checkConfigDocument, loadConfig, merge, packageRoot, type ConfigFlags, type HearthConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { cleanEnv, root, tempDir } from './helpers/daemon.js';

type Env = Record<string, string | undefined>;

const defaultJson = JSON.parse(readFileSync(join(root, 'config/default.json'), 'utf8')) as Record<string, any>;
const schemaJson = JSON.parse(readFileSync(join(root, 'config/schema.json'), 'utf8')) as Record<string, any>;

/** An environment with no hearth variables, no XDG_STATE_HOME and no user config file. */
function env(extra: Env = {}): Env {
  return cleanEnv({ XDG_STATE_HOME: undefined, ...extra });
}

/** Writes `doc` (an object, or raw text) as a config file in a fresh temp dir and returns its path. */
function configFile(doc: unknown, name = 'config.json'): string {
  const path = join(tempDir('hearth-cfg-'), name);
  writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return path;
}

function load(flags: ConfigFlags = {}, extraEnv: Env = {}): Readonly<HearthConfig> {
  return loadConfig(flags, env(extraEnv)).config;
}

/** Runs fn, expects a ConfigError, and returns it. */
function configError(t: Test, fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    t.type(err, ConfigError, 'throws a ConfigError');
    return err as ConfigError;
  }
  t.fail('expected a ConfigError, nothing was thrown');
  return new ConfigError('not thrown');
}

t.test('defaults come from config/default.json', async (t) => {
  const loaded = loadConfig({}, env());
  const c = loaded.config;
  t.equal(loaded.file, undefined, 'no config file when none is given and none exists');
  t.equal(loaded.baseDir, process.cwd());
  t.same(c.server.allowed_hosts, ['localhost', '127.0.0.1', '[::1]']);
  t.equal(c.server.host, '127.0.0.1');
  t.equal(c.server.port, 7433);
  t.equal(c.server.body_limit_bytes, 1048576);
  t.equal(c.server.close_timeout_ms, 10000);
  t.equal(c.server.idle_shutdown_seconds, 0);
  t.equal(c.log.level, 'info');
  t.same(c.cache, { ttl_seconds: 300, max_size: 2000, store: 'sqlite', max_store_entries: 100000, shared_timeout_ms: 50, shared_ttl_seconds: 604800 });
  t.same(c.watcher.ignore, ['**/node_modules/**', '**/.git/objects/**']);
  t.same(c.pool, { max_threads: availableParallelism(), max_queue: 1000, task_timeout_ms: 60000, worker_nice: 10 });
  t.same(c.circuit_breaker, { failure_threshold: 3, reset_timeout_seconds: 30 });
  t.same(c.plugins, { stats: {}, files: {}, git: {}, batch: {}, dashboard: {} });
  // Every value of default.json arrives unchanged.
  for (const [section, values] of Object.entries(defaultJson)) {
    t.same((c as any)[section], { ...(c as any)[section], ...values }, `section ${section} holds default.json's values`);
  }
});

t.test('state_dir: $HEARTH_STATE_DIR, else $XDG_STATE_HOME/hearth, else ~/.local/state/hearth', async (t) => {
  const xdg = tempDir('hearth-xdgstate-');
  const own = join(tempDir('hearth-own-'), 'state');
  t.equal(load().state_dir, join(homedir(), '.local', 'state', 'hearth'), 'no variable: under the home directory');
  t.equal(load({}, { XDG_STATE_HOME: xdg }).state_dir, join(xdg, 'hearth'), 'XDG_STATE_HOME/hearth');
  t.equal(load({}, { XDG_STATE_HOME: xdg, HEARTH_STATE_DIR: own }).state_dir, own, 'HEARTH_STATE_DIR beats XDG_STATE_HOME');
  t.equal(load({}, { HEARTH_STATE_DIR: 'rel/state' }).state_dir, resolve('rel/state'), 'a relative HEARTH_STATE_DIR is made absolute');
  t.equal(load({}, { XDG_STATE_HOME: '' }).state_dir, join(homedir(), '.local', 'state', 'hearth'), 'an empty XDG_STATE_HOME is unset');
});

t.test('server.socket defaults to <state_dir>/hearth.sock, whichever source state_dir came from', async (t) => {
  const base = tempDir('hearth-sock-');
  t.equal(load({}, { XDG_STATE_HOME: base }).server.socket, join(base, 'hearth', 'hearth.sock'));
  t.equal(load({}, { HEARTH_STATE_DIR: join(base, 'env') }).server.socket, join(base, 'env', 'hearth.sock'));
  t.equal(load({ config: configFile({ state_dir: join(base, 'file') }) }).server.socket, join(base, 'file', 'hearth.sock'));
  t.equal(load({ stateDir: join(base, 'flag') }, { HEARTH_STATE_DIR: join(base, 'env') }).server.socket, join(base, 'flag', 'hearth.sock'));
  const explicit = join(base, 'elsewhere.sock');
  t.equal(load({ stateDir: join(base, 'flag'), config: configFile({ server: { socket: explicit } }) }).server.socket, explicit, 'a configured socket is kept');
  t.equal(load({ socket: 'rel.sock', config: configFile({ server: { socket: explicit } }) }).server.socket, resolve('rel.sock'), '--socket beats the file, made absolute');
});

t.test('pool.max_threads defaults to the number of cores; a configured value is kept', async (t) => {
  t.equal(load().pool.max_threads, availableParallelism());
  t.equal(load({ config: configFile({ pool: { max_threads: 3 } }) }).pool.max_threads, 3);
});

t.test('precedence: flag > environment > file > defaults, for each pair', async (t) => {
  const file = configFile({ server: { port: 1111, host: '127.0.0.2' }, state_dir: '/tmp/from-file' });
  const cases: Array<{ name: string; flags: ConfigFlags; env: Env; port: number; host: string; stateDir: string }> = [
    { name: 'defaults alone', flags: {}, env: {}, port: 7433, host: '127.0.0.1', stateDir: join(homedir(), '.local', 'state', 'hearth') },
    { name: 'file > defaults', flags: { config: file }, env: {}, port: 1111, host: '127.0.0.2', stateDir: '/tmp/from-file' },
    {
      name: 'env > defaults',
      flags: {},
      env: { HEARTH_PORT: '2222', HEARTH_HOST: '127.0.0.3', HEARTH_STATE_DIR: '/tmp/from-env' },
      port: 2222,
      host: '127.0.0.3',
      stateDir: '/tmp/from-env',
    },
    {
      name: 'env > file',
      flags: { config: file },
      env: { HEARTH_PORT: '2222', HEARTH_HOST: '127.0.0.3', HEARTH_STATE_DIR: '/tmp/from-env' },
      port: 2222,
      host: '127.0.0.3',
      stateDir: '/tmp/from-env',
    },
    {
      name: 'flag > defaults',
      flags: { port: 3333, host: '127.0.0.4', stateDir: '/tmp/from-flag' },
      env: {},
      port: 3333,
      host: '127.0.0.4',
      stateDir: '/tmp/from-flag',
    },
    {
      name: 'flag > file',
      flags: { config: file, port: '3333', host: '127.0.0.4', stateDir: '/tmp/from-flag' },
      env: {},
      port: 3333,
      host: '127.0.0.4',
      stateDir: '/tmp/from-flag',
    },
    {
      name: 'flag > env',
      flags: { port: 3333, host: '127.0.0.4', stateDir: '/tmp/from-flag' },
      env: { HEARTH_PORT: '2222', HEARTH_HOST: '127.0.0.3', HEARTH_STATE_DIR: '/tmp/from-env' },
      port: 3333,
      host: '127.0.0.4',
      stateDir: '/tmp/from-flag',
    },
    {
      name: 'flag > env > file, all three',
      flags: { config: file, port: 3333 },
      env: { HEARTH_PORT: '2222', HEARTH_HOST: '127.0.0.3' },
      port: 3333,
      host: '127.0.0.3',
      stateDir: '/tmp/from-file',
    },
  ];
  for (const c of cases) {
    const config = load(c.flags, c.env);
    t.same({ port: config.server.port, host: config.server.host, state_dir: config.state_dir }, { port: c.port, host: c.host, state_dir: c.stateDir }, c.name);
  }
});

t.test('environment beats the file for the PERFORMANCE_* keys too, and the rest of the section is kept', async (t) => {
  const file = configFile({ cache: { ttl_seconds: 10, max_size: 50, store: 'memory' }, circuit_breaker: { failure_threshold: 9 } });
  const config = load({ config: file }, { PERFORMANCE_CACHE_TTL: '42.5', PERFORMANCE_CIRCUIT_BREAKER_TIMEOUT: '7' });
  t.same(config.cache, { ttl_seconds: 42.5, max_size: 50, store: 'memory', max_store_entries: 100000, shared_timeout_ms: 50, shared_ttl_seconds: 604800 });
  t.same(config.circuit_breaker, { failure_threshold: 9, reset_timeout_seconds: 7 });
});

// Every variable loadConfig reads, with a value and where it must land.
const ENV_CASES: Array<{ name: string; value: string; path: string[]; expected: unknown; numeric: 'number' | 'integer' | false }> = [
  { name: 'HEARTH_STATE_DIR', value: '/tmp/hearth-env-state', path: ['state_dir'], expected: '/tmp/hearth-env-state', numeric: false },
  { name: 'HEARTH_HOST', value: '::1', path: ['server', 'host'], expected: '::1', numeric: false },
  { name: 'HEARTH_PORT', value: '8123', path: ['server', 'port'], expected: 8123, numeric: 'integer' },
  { name: 'HEARTH_LOG_LEVEL', value: 'debug', path: ['log', 'level'], expected: 'debug', numeric: false },
  { name: 'PERFORMANCE_CACHE_TTL', value: '12.5', path: ['cache', 'ttl_seconds'], expected: 12.5, numeric: 'number' },
  { name: 'PERFORMANCE_CACHE_MAX_SIZE', value: '77', path: ['cache', 'max_size'], expected: 77, numeric: 'integer' },
  { name: 'PERFORMANCE_BATCH_SIZE', value: '33', path: ['plugins', 'batch', 'batch_size'], expected: 33, numeric: 'integer' },
  { name: 'PERFORMANCE_MAX_CONCURRENT', value: '4', path: ['plugins', 'batch', 'max_concurrent'], expected: 4, numeric: 'integer' },
  { name: 'PERFORMANCE_CIRCUIT_BREAKER_THRESHOLD', value: '6', path: ['circuit_breaker', 'failure_threshold'], expected: 6, numeric: 'integer' },
  { name: 'PERFORMANCE_CIRCUIT_BREAKER_TIMEOUT', value: '2.5', path: ['circuit_breaker', 'reset_timeout_seconds'], expected: 2.5, numeric: 'number' },
];

const at = (obj: unknown, path: string[]): unknown => path.reduce<any>((node, key) => (node == null ? undefined : node[key]), obj);

t.test('every environment variable lands on its key', async (t) => {
  t.same(
    [...ENV_VARIABLES].sort(),
    ['HEARTH_CONFIG', ...ENV_CASES.map((c) => c.name)].sort(),
    'this test covers every variable loadConfig reads (add a case when adding a variable)',
  );
  // The batch variables only tune a configured batch plugin, so give them one.
  const withBatch = configFile({ plugins: { batch: {} } });
  for (const c of ENV_CASES) {
    const before = at(load({ config: withBatch }), c.path);
    t.not(before, c.expected, `${c.name}: the test value differs from what the key holds without it`);
    t.same(at(load({ config: withBatch }, { [c.name]: c.value }), c.path), c.expected, `${c.name} sets ${c.path.join('.')}`);
  }
  t.equal(load({}, { HEARTH_PORT: '' }).server.port, 7433, 'an empty variable counts as unset');
  t.equal(load({}, { HEARTH_PORT: ' 8124 ' }).server.port, 8124, 'surrounding blanks are ignored');
});

t.test('HEARTH_CONFIG names the config file; --config beats it; XDG_CONFIG_HOME/hearth/config.json is the fallback', async (t) => {
  const viaEnv = configFile({ server: { port: 1001 } });
  const viaFlag = configFile({ server: { port: 1002 } });
  const xdg = tempDir('hearth-xdgcfg-');
  mkdirSync(join(xdg, 'hearth'));
  writeFileSync(join(xdg, 'hearth', 'config.json'), JSON.stringify({ server: { port: 1003 } }));

  const fromEnv = loadConfig({}, env({ HEARTH_CONFIG: viaEnv }));
  t.equal(fromEnv.config.server.port, 1001);
  t.equal(fromEnv.file, viaEnv);
  t.equal(fromEnv.baseDir, dirname(viaEnv), 'the file anchors relative plugin paths');
  t.equal(load({ config: viaFlag }, { HEARTH_CONFIG: viaEnv }).server.port, 1002, '--config beats HEARTH_CONFIG');
  const fromXdg = loadConfig({}, env({ XDG_CONFIG_HOME: xdg }));
  t.equal(fromXdg.config.server.port, 1003, 'the XDG file is read when nothing names a file');
  t.equal(fromXdg.file, join(xdg, 'hearth', 'config.json'));
  t.equal(load({}, { XDG_CONFIG_HOME: xdg, HEARTH_CONFIG: viaEnv }).server.port, 1001, 'HEARTH_CONFIG beats the XDG file');
});

t.test('PERFORMANCE_BATCH_SIZE and PERFORMANCE_MAX_CONCURRENT only tune a configured batch plugin', async (t) => {
  const vars = { PERFORMANCE_BATCH_SIZE: '50', PERFORMANCE_MAX_CONCURRENT: '3' };
  t.same(load({}, vars).plugins.batch, { batch_size: 50, max_concurrent: 3 }, 'on by default (config/default.json): tuned');
  t.same(load({ config: configFile({ plugins: { batch: false } }) }, vars).plugins.batch, false, 'disabled: it stays disabled');
  t.same(load({ config: configFile({ plugins: { batch: {} } }) }, vars).plugins.batch, { batch_size: 50, max_concurrent: 3 }, 'configured: tuned');
  t.same(
    load({ config: configFile({ plugins: { batch: { batch_size: 5, max_items: 9 } } }) }, vars).plugins.batch,
    { batch_size: 50, max_concurrent: 3, max_items: 9 },
    'the environment beats the file, the other options are kept',
  );
});

t.test('"batch": true (enabled with its defaults) is configured, so PERFORMANCE_BATCH_SIZE tunes it', async (t) => {
  const config = load({ config: configFile({ plugins: { batch: true } }) }, { PERFORMANCE_BATCH_SIZE: '50' });
  t.same(config.plugins.batch, { batch_size: 50 }, 'the variable is not silently ignored for a plugin enabled with true');
});

t.test('a non-numeric value of a numeric variable is a ConfigError that names the variable', async (t) => {
  const withBatch = configFile({ plugins: { batch: {} } });
  for (const c of ENV_CASES.filter((c) => c.numeric)) {
    for (const bad of ['abc', '12abc', c.numeric === 'integer' ? '1.5' : 'NaN']) {
      const err = configError(t, () => load({ config: withBatch }, { [c.name]: bad }));
      t.match(err.message, c.name, `${c.name}=${bad}: the message names the variable`);
      t.match(err.message, bad, `${c.name}=${bad}: the message shows the value`);
      t.match(err.details, [{ path: c.name }], `${c.name}=${bad}: so do the details`);
    }
  }
  const flag = configError(t, () => load({ port: 'eighty' }));
  t.match(flag.message, '--port', 'a bad --port names the flag');
});

t.test('an environment value the schema refuses is a ConfigError with the JSON path', async (t) => {
  const err = configError(t, () => load({}, { HEARTH_PORT: '70000' }));
  t.match(err.details, [{ path: '/server/port', message: /65535/ }]);
  const level = configError(t, () => load({}, { HEARTH_LOG_LEVEL: 'loud' }));
  t.match(level.details, [{ path: '/log/level', message: /must be one of/ }]);
});

t.test('an unknown key in the file is a ConfigError naming the key and its JSON path', async (t) => {
  const file = configFile({ server: { prot: 7433 } });
  const err = configError(t, () => load({ config: file }));
  t.match(err.details, [{ path: '/server/prot', message: 'unknown key "prot"' }]);
  t.match(err.message, '/server/prot');
  t.match(err.message, 'unknown key "prot"');
  t.match(err.message, file, 'the message names the file');

  const top = configError(t, () => load({ config: configFile({ sever: {} }) }));
  t.match(top.details, [{ path: '/sever', message: 'unknown key "sever"' }], 'top level too');
  const deep = configError(t, () => load({ config: configFile({ cache: { ttl: 5 } }) }));
  t.match(deep.details, [{ path: '/cache/ttl', message: 'unknown key "ttl"' }]);
});

t.test('a value of the wrong type or range is a ConfigError with the path and what was expected', async (t) => {
  const cases: Array<[object, string, RegExp]> = [
    [{ server: { port: 'abc' } }, '/server/port', /must be integer/],
    [{ server: { port: 70000 } }, '/server/port', /must be <= 65535/],
    [{ server: { port: -1 } }, '/server/port', /must be >= 0/],
    [{ log: { level: 'loud' } }, '/log/level', /must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"/],
    [{ cache: { store: 'redis' } }, '/cache/store', /must be one of "sqlite", "memory"/],
    [{ cache: { ttl_seconds: 0 } }, '/cache/ttl_seconds', /must be > 0/],
    [{ server: { allowed_hosts: [] } }, '/server/allowed_hosts', /must NOT have fewer than 1 items/],
    [{ watcher: { ignore: 'node_modules' } }, '/watcher/ignore', /must be array/],
    [{ plugins: { stats: 'yes' } }, '/plugins/stats', /must be boolean,object/],
    [{ state_dir: '' }, '/state_dir', /must NOT have fewer than 1 characters/],
  ];
  for (const [doc, path, expected] of cases) {
    const err = configError(t, () => load({ config: configFile(doc) }));
    t.match(err.details, [{ path, message: expected }], `${JSON.stringify(doc)} → ${path}`);
    t.match(err.message, path, `${JSON.stringify(doc)}: the message has the path`);
  }
  // All problems are reported at once.
  const both = configError(t, () => load({ config: configFile({ server: { port: 'abc' }, log: { level: 'loud' } }) }));
  t.same(both.details.map((d) => d.path).sort(), ['/log/level', '/server/port']);
});

t.test('a config file that is not valid JSON, or not an object', async (t) => {
  const broken = configFile('{"server": {"port": 1,}}');
  const err = configError(t, () => load({ config: broken }));
  t.match(err.message, broken, 'names the file');
  t.match(err.message, /not valid JSON/);
  t.ok(err.cause instanceof SyntaxError, 'keeps the parser error as cause');

  const list = configError(t, () => load({ config: configFile('[1, 2]') }));
  t.match(list.details, [{ path: '/', message: /must be object/ }]);
  const nul = configError(t, () => load({ config: configFile('null') }));
  t.match(nul.details, [{ path: '/', message: /must be object/ }]);
});

t.test('a config file that was asked for but does not exist is an error, a missing XDG one is not', async (t) => {
  const missing = join(tempDir('hearth-missing-'), 'nope.json');
  const viaFlag = configError(t, () => load({ config: missing }));
  t.match(viaFlag.message, missing);
  t.match(viaFlag.message, /cannot read config file/);
  const viaEnv = configError(t, () => load({}, { HEARTH_CONFIG: missing }));
  t.match(viaEnv.message, missing);
  const relative = configError(t, () => load({ config: 'no/such/hearth.json' }));
  t.match(relative.message, resolve('no/such/hearth.json'), 'a relative path is reported absolute');
  t.doesNotThrow(() => load({}, { XDG_CONFIG_HOME: tempDir('hearth-emptyxdg-') }), 'no file in XDG_CONFIG_HOME: defaults');
});

t.test('the loaded config is deeply frozen, and loading never changes the defaults', async (t) => {
  const config = load({ config: configFile({ watcher: { ignore: ['only-this'] }, plugins: { extra: { module: './x.js', options: { a: [1] } } } }) });
  const frozen: Array<[string, unknown]> = [
    ['config', config],
    ['server', config.server],
    ['server.allowed_hosts', config.server.allowed_hosts],
    ['cache', config.cache],
    ['watcher.ignore', config.watcher.ignore],
    ['pool', config.pool],
    ['plugins', config.plugins],
    ['plugins.stats', config.plugins.stats],
    ['plugins.extra.options.a', at(config, ['plugins', 'extra', 'options', 'a'])],
  ];
  for (const [name, value] of frozen) t.ok(Object.isFrozen(value), `${name} is frozen`);
  t.throws(() => {
    (config.server as { port: number }).port = 1;
  }, TypeError);
  t.throws(() => {
    (config.watcher.ignore as string[]).push('more');
  }, TypeError);
  t.equal(config.server.port, 7433);

  const again = load();
  t.same(again.watcher.ignore, ['**/node_modules/**', '**/.git/objects/**'], 'a file\'s array did not leak into the defaults');
  t.notOk('extra' in again.plugins, 'nor did its plugins');
  t.not(again.server, load().server, 'every load returns its own objects');
});

t.test('merge(): objects merge key by key, arrays and scalars are replaced, inputs are untouched', async (t) => {
  const base = { a: 1, list: [1, 2, 3], nested: { x: 1, y: { deep: true, keep: 'me' } }, gone: { k: 1 } };
  const over = { a: 2, list: [9], nested: { y: { deep: false }, z: 3 }, gone: false, added: { n: [1] } };
  const baseCopy = structuredClone(base);
  const overCopy = structuredClone(over);
  const out = merge(base, over) as any;
  t.same(out, {
    a: 2,
    list: [9],
    nested: { x: 1, y: { deep: false, keep: 'me' }, z: 3 },
    gone: false,
    added: { n: [1] },
  });
  t.same(base, baseCopy, 'base is not changed');
  t.same(over, overCopy, 'over is not changed');
  t.not(out.list, over.list, 'arrays are copied, not shared');
  t.not(out.added, over.added, 'objects from over are copied');
  t.not(out.nested.y, base.nested.y, 'objects from base are copied');
  t.same(merge({ a: [1, 2] }, { a: [] }), { a: [] }, 'an empty array replaces too');
  t.same(merge({ a: { b: 1 } }, { a: undefined }), { a: { b: 1 } }, 'undefined keeps the base value');
  t.same(merge({ a: { b: 1 } }, { a: null }), { a: null }, 'null replaces');
  t.same(merge([1, 2], { a: 1 }), { a: 1 }, 'an object replaces an array');
  t.same(merge({ a: 1 }, [1]), [1], 'an array replaces an object');
  t.same(merge({ a: 1 }, undefined), { a: 1 });

  // Through loadConfig: a file's array replaces the default array, a file's object merges into the defaults.
  const config = load({ config: configFile({ server: { allowed_hosts: ['hearth.test'], port: 1 } }) });
  t.same(config.server.allowed_hosts, ['hearth.test']);
  t.equal(config.server.body_limit_bytes, 1048576, 'the other defaults of the section are kept');
});

t.test('config/default.json is valid against config/schema.json, and every key in it is in the schema', async (t) => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const validate = ajv.compile(schemaJson);
  t.ok(validate(structuredClone(defaultJson)), `default.json validates: ${JSON.stringify(validate.errors)}`);
  t.doesNotThrow(() => checkConfigDocument(structuredClone(defaultJson), 'default.json'));
  t.equal(packageRoot, root, 'the schema and defaults are read from this package');

  const missing: string[] = [];
  const walk = (doc: Record<string, unknown>, schema: Record<string, any>, path: string): void => {
    for (const [key, value] of Object.entries(doc)) {
      const sub = schema.properties?.[key] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      if (!sub) {
        missing.push(`${path}/${key}`);
        continue;
      }
      if (value && typeof value === 'object' && !Array.isArray(value) && sub.properties) walk(value as Record<string, unknown>, sub, `${path}/${key}`);
    }
  };
  walk(defaultJson, schemaJson, '');
  t.same(missing, [], 'no key of default.json is unknown to the schema');

  // And the other way round: every schema key has a default, except those computed at load time and the
  // shared cache tier's Redis and secret (absent = no shared tier).
  const computed = new Set(['/state_dir', '/server/socket', '/pool/max_threads', '/cache/shared', '/cache/shared_secret_file']);
  const noDefault: string[] = [];
  const back = (schema: Record<string, any>, doc: unknown, path: string): void => {
    for (const [key, sub] of Object.entries<Record<string, any>>(schema.properties ?? {})) {
      const value = (doc as Record<string, unknown> | undefined)?.[key];
      if (value === undefined && !computed.has(`${path}/${key}`)) noDefault.push(`${path}/${key}`);
      if (sub.properties && value !== undefined) back(sub, value, `${path}/${key}`);
    }
  };
  back(schemaJson, defaultJson, '');
  t.same(noDefault, [], 'every schema key has a default in default.json (or is computed)');
});

t.test("config/schema.json's cache.shared is the Redis target schema the code parses by", async (t) => {
  const { REDIS_TARGET_SCHEMA } = await import('../src/redis-target.js');
  t.same(schemaJson.properties.cache.properties.shared, REDIS_TARGET_SCHEMA);
});

t.test('a Redis target that is wrong says what is wrong with the branch of its type, not every oneOf branch', async (t) => {
  const { REDIS_TARGET_SCHEMA } = await import('../src/redis-target.js');
  const { QUEUE_SCHEMA } = await import('../plugins/batch/queue-options.js');
  const { compileSchema, describeDetails, errorDetails } = await import('../src/validation.js');
  const said = (schema: object, value: unknown) => {
    const validate = compileSchema(schema);
    t.notOk(validate(value), `${JSON.stringify(value)} is refused`);
    return describeDetails(errorDetails(validate.errors, '/x'));
  };
  t.equal(said(REDIS_TARGET_SCHEMA, 'http://example.com'), '/x: must match pattern "^rediss?://"');
  t.equal(said(REDIS_TARGET_SCHEMA, { socket: 'relative.sock' }), '/x/socket: must match pattern "^/"');
  t.equal(said(REDIS_TARGET_SCHEMA, 5), '/x: must be string or object');
  t.equal(said(QUEUE_SCHEMA, 42), '/x: must be string or object');
  t.equal(said(QUEUE_SCHEMA, { socket: '/r.sock', url: 'redis://h:1' }), '/x: matches several of its alternatives; it must match exactly one');
  t.equal(said(QUEUE_SCHEMA, { socket: '/r.sock', nme: 'a' }), '/x/nme: unknown key "nme"');
  // Through the config file, as hearth config check and the daemon say it.
  t.throws(() => checkConfigDocument({ cache: { shared: 'http://x.example' } }, 'test'), { message: 'invalid config (test): /cache/shared: must match pattern "^rediss?://"' });
});
