// The plugin registry through the real daemon: external plugins from config, their options, routes and CLI
// subcommands, dependency order, failures at load and setup, time limits, close order; and the CLI's config
// commands. Fixture plugins (plain ESM, as a user outside the package writes them) are in fixtures/plugins.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { startDaemon, type Daemon } from '../src/daemon.js';
import { ConfigError, PluginError } from '../src/errors.js';
import { orderByDependencies } from '../src/registry.js';
import { bootDaemon, cleanEnv, root, runCli, spawnDaemon, tempDir } from './helpers/daemon.js';

// Each CLI run starts a fresh node with the TypeScript loader: seconds on a busy machine.
const CLI_TIMEOUT = 60_000;
const fixture = (name: string): string => join(root, 'test/fixtures/plugins', name, 'index.js');
const ext = (name: string, options?: object) => ({ module: fixture(name), ...(options ? { options } : {}) });
const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

interface Attempt {
  error: unknown;
  stateDir: string;
  logs: string[];
}

/**
 * Starts a daemon that is expected to refuse, on a state dir that does not exist yet (so a test can see
 * what was left behind). A daemon that starts anyway is closed and `error` is undefined.
 */
async function startExpectingFailure(config: object): Promise<Attempt> {
  const dir = tempDir('hearth-reg-');
  const stateDir = join(dir, 'state');
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  let daemon: Daemon | undefined;
  try {
    daemon = await startDaemon({
      flags: { config: file, stateDir, port: 0 },
      env: cleanEnv(),
      logDestination: sink,
    });
  } catch (err) {
    return { error: err, stateDir, logs };
  }
  await daemon.close();
  return { error: undefined, stateDir, logs };
}

t.test('an external plugin: its route answers over the socket with its option, defaults filled', async (t) => {
  const configured = await bootDaemon({ config: { plugins: { good: ext('good', { greeting: 'hi there' }) } } });
  t.teardown(() => configured.close());
  const data = await configured.client.call<{ greeting: string; plugin: string }>('GET', '/good/hello');
  t.same(data, { greeting: 'hi there', plugin: 'good' });

  const plugins = await configured.client.call<Array<{ name: string; state: string; source: string }>>('GET', '/plugins');
  t.match(plugins, [
    { name: 'stats', state: 'ready', source: 'builtin' },
    { name: 'good', state: 'ready', source: fixture('good') },
  ]);
  t.equal(plugins.length, 2);
  const stats = await configured.client.raw('GET', '/optimization/stats');
  t.equal(stats.status, 200, 'the built-in stats plugin is on by default');

  // No "options" at all: the schema's default is filled in.
  const defaulted = await bootDaemon({ config: { plugins: { good: { module: fixture('good') } } } });
  t.teardown(() => defaulted.close());
  t.same(await defaulted.client.call('GET', '/good/hello'), { greeting: 'hello from good', plugin: 'good' });
});

t.test('invalid plugin options are a ConfigError with the JSON path, before anything is created', async (t) => {
  const wrongType = await startExpectingFailure({ plugins: { good: ext('good', { greeting: 42 }) } });
  t.type(wrongType.error, ConfigError);
  const err = wrongType.error as ConfigError;
  t.match(err.details, [{ path: '/plugins/good/options/greeting', message: /must be string/ }]);
  t.match(err.message, 'plugin good');
  t.match(err.message, '/plugins/good/options/greeting');
  t.notOk(existsSync(wrongType.stateDir), 'the state dir was not even created');

  const unknown = await startExpectingFailure({ plugins: { good: ext('good', { greting: 'typo' }) } });
  t.match((unknown.error as ConfigError).details, [{ path: '/plugins/good/options/greting', message: 'unknown key "greting"' }]);

  const builtin = await startExpectingFailure({ plugins: { stats: { retention_seconds: -1 } } });
  t.type(builtin.error, ConfigError);
  t.match((builtin.error as ConfigError).details, [{ path: '/plugins/stats/retention_seconds' }], 'a built-in\'s options sit right under its name');

  const extraKey = await startExpectingFailure({ plugins: { good: { module: fixture('good'), opts: {} } } });
  t.type(extraKey.error, ConfigError);
  t.match((extraKey.error as ConfigError).details, [{ path: '/plugins/good/opts', message: 'unknown key "opts"' }]);
});

t.test('a plugin that throws in setup: PluginError with the cause, what started is closed, nothing is left listening', async (t) => {
  const dir = tempDir('hearth-broken-');
  const record = join(dir, 'record.txt');
  const attempt = await startExpectingFailure({
    plugins: { good: ext('good', { record_file: record }), broken: ext('broken', { record_file: record }) },
  });
  t.type(attempt.error, PluginError);
  const err = attempt.error as PluginError;
  t.equal(err.message, 'plugin broken, setup: cannot reach the frobnicator');
  t.equal(err.plugin, 'broken');
  t.equal(err.phase, 'setup');
  t.type(err.cause, Error, 'the original error is kept as cause');
  t.equal((err.cause as Error).message, 'cannot reach the frobnicator');

  t.same(lines(record), ['setup good', 'cleanup broken', 'close good'], 'the failed plugin\'s cleanups ran, then those of what had started');
  t.notOk(existsSync(join(attempt.stateDir, 'hearth.pid')), 'no pid file');
  t.notOk(existsSync(join(attempt.stateDir, 'hearth.sock')), 'no socket');
  t.notOk(existsSync(join(attempt.stateDir, 'daemon.json')), 'no runtime info');

  // The lock was released: a good config starts on the same state dir.
  const again = await startDaemon({
    flags: { stateDir: attempt.stateDir, port: 0 },
    env: cleanEnv(),
    logDestination: new Writable({ write: (_c, _e, done) => done() }),
  });
  await again.close();
  t.pass('a daemon starts on the same state dir afterwards');
});

t.test('a missing dependency names both plugins', async (t) => {
  const missing = await startExpectingFailure({ plugins: { 'missing-dep': ext('missing-dep') } });
  t.type(missing.error, ConfigError);
  t.match((missing.error as Error).message, /plugin missing-dep depends on "good"/);
  t.notOk(existsSync(missing.stateDir), 'nothing was created');

  const disabled = await startExpectingFailure({ plugins: { good: false, 'missing-dep': ext('missing-dep') } });
  t.type(disabled.error, ConfigError);
  t.match((disabled.error as Error).message, /missing-dep.*"good"/, 'a disabled dependency counts as missing');
});

t.test('a circular dependency names the chain', async (t) => {
  const attempt = await startExpectingFailure({ plugins: { 'cycle-a': ext('cycle-a'), 'cycle-b': ext('cycle-b') } });
  t.type(attempt.error, ConfigError);
  t.match((attempt.error as Error).message, 'circular dependency cycle-a -> cycle-b -> cycle-a');
});

t.test('an optional dependency is set up first when it is configured, and is not required', async (t) => {
  const item = (name: string, plugin: { dependsOn?: string[]; optionalDependsOn?: string[] } = {}) => ({ name, plugin });
  const names = (items: Array<{ name: string }>) => items.map((p) => p.name);
  t.same(names(orderByDependencies([item('batch', { optionalDependsOn: ['files'] }), item('files')])), ['files', 'batch']);
  t.same(names(orderByDependencies([item('batch', { optionalDependsOn: ['files'] })])), ['batch']);
  t.throws(() => orderByDependencies([item('a', { optionalDependsOn: ['b'] }), item('b', { dependsOn: ['a'] })]), /circular dependency a -> b -> a/);
});

t.test('modules that are not the plugin they are configured as are refused with the plugin\'s name', async (t) => {
  const cases: Array<[string, object, RegExp]> = [
    ['wrong name', { 'wrong-name': ext('wrong-name') }, /plugin wrong-name, load: .* is the plugin "someone-else", not "wrong-name"/],
    ['not a plugin', { 'not-a-plugin': ext('not-a-plugin') }, /plugin not-a-plugin, load: .*not-a-plugin\/index\.js does not export a plugin/],
    ['no such module', { ghost: { module: join(root, 'test/fixtures/plugins/ghost/index.js') } }, /plugin ghost, load: .*ghost\/index\.js/],
    ['unknown built-in', { nosuch: {} }, /plugin nosuch: there is no built-in plugin named "nosuch"/],
    ['bad name', { Shouty: {} }, /plugin name "Shouty" must be lower-case/],
  ];
  for (const [name, plugins, message] of cases) {
    const attempt = await startExpectingFailure({ plugins });
    t.type(attempt.error, ConfigError, `${name}: ConfigError`);
    t.match((attempt.error as Error).message, message, name);
    t.notOk(existsSync(attempt.stateDir), `${name}: nothing was created`);
  }
  const unknown = await startExpectingFailure({ plugins: { nosuch: {} } });
  t.match((unknown.error as ConfigError).details, [{ path: '/plugins/nosuch' }]);
});

t.test('a setup that never finishes is cut off: PluginError naming phase setup', async (t) => {
  // The daemon's own limit timer does not hold the process open (see the next test); this one does, so
  // this test can look at the error.
  const keepAlive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(keepAlive));
  const started = Date.now();
  const error = await bootDaemon({
    config: { server: { close_timeout_ms: 300 }, plugins: { 'hanging-setup': ext('hanging-setup') } },
    setupTimeoutMs: 200,
  }).then(
    async (d) => {
      await d.close();
      return undefined;
    },
    (err: unknown) => err,
  );
  const elapsed = Date.now() - started;
  t.type(error, PluginError);
  const err = error as PluginError;
  t.equal(err.plugin, 'hanging-setup');
  t.equal(err.phase, 'setup');
  t.match(err.message, /^plugin hanging-setup, setup: .*200 ms/);
  t.ok(elapsed >= 190 && elapsed < 2000, `gave up after the limit (${elapsed} ms)`);
});

t.test('a setup that never finishes is reported even when nothing else keeps the process alive', async (t) => {
  // As in `hearth daemon`: startDaemon is all the process does. A setup waiting on a promise that never
  // settles (no timer, no socket) must still end in the PluginError, not in a silent exit.
  const dir = tempDir('hearth-hangproc-');
  const cfg = join(dir, 'config.json');
  const stateDir = join(dir, 'state');
  writeFileSync(cfg, JSON.stringify({ server: { close_timeout_ms: 300 }, plugins: { 'hanging-setup': ext('hanging-setup') } }));
  const script = join(dir, 'start.mjs');
  writeFileSync(
    script,
    [
      "import { Writable } from 'node:stream';",
      'const [daemonUrl, config, stateDir] = process.argv.slice(2);',
      'const { startDaemon } = await import(daemonUrl);',
      'const logDestination = new Writable({ write: (_c, _e, done) => done() });',
      'try {',
      '  const d = await startDaemon({ flags: { config, stateDir, port: 0 }, env: process.env, logDestination, setupTimeoutMs: 200 });',
      "  console.log('started');",
      '  await d.close();',
      '  process.exit(5);',
      '} catch (err) {',
      '  console.log(JSON.stringify({ name: err.name, plugin: err.plugin, phase: err.phase }));',
      '  process.exit(7);',
      '}',
    ].join('\n'),
  );
  const result = await new Promise<{ code: number | null; out: string }>((resolvePromise) => {
    const child = spawn(process.execPath, [...process.execArgv, script, pathToFileURL(join(root, 'src/daemon.ts')).href, cfg, stateDir], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => resolvePromise({ code, out }));
  });
  t.equal(result.code, 7, `startDaemon rejected instead of the process exiting early (exit ${result.code}): ${result.out}`);
  t.match(result.out, '{"name":"PluginError","plugin":"hanging-setup","phase":"setup"}');
  t.notOk(existsSync(join(stateDir, 'hearth.pid')), 'no pid file left behind');
});

t.test('a close that hangs: daemon.close() still finishes in about close_timeout_ms, logs it, and closes the rest', async (t) => {
  // As with setup, the close limit's timer does not hold the process open (see the CLI test below).
  const keepAlive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(keepAlive));
  const dir = tempDir('hearth-hang-');
  const record = join(dir, 'record.txt');
  // Setup order stats, good, hanging-close; close order hanging-close (hangs), good, stats.
  const d = await bootDaemon({
    config: {
      server: { close_timeout_ms: 300 },
      plugins: { good: ext('good', { record_file: record }), 'hanging-close': ext('hanging-close') },
    },
  });
  t.same(await d.client.call('GET', '/good/hello'), { greeting: 'hello from good', plugin: 'good' });
  const started = Date.now();
  await d.close();
  const elapsed = Date.now() - started;
  // The hanging close gets the budget less a reserve (50 ms here) for each of the two plugins after it.
  t.ok(elapsed >= 180, `waited for the hanging close (${elapsed} ms)`);
  t.ok(elapsed < 2500, `but not much longer than close_timeout_ms (${elapsed} ms)`);

  const errors = d.logs.filter((l) => l.level === 50);
  t.equal(errors.length, 1, 'one error logged');
  t.match(JSON.stringify(errors[0]), 'hanging-close', 'the error names the plugin');
  t.match(errors[0], { msg: /close/, err: { message: /plugin hanging-close, close: / } });
  t.same(lines(record), ['setup good', 'close good'], 'the plugin closed after the hanging one still closed');
  t.notOk(existsSync(join(d.stateDir, 'hearth.pid')), 'the pid file is gone');
  t.notOk(existsSync(d.socket), 'the socket is gone');
});

t.test('"stats": false disables the built-in stats plugin', async (t) => {
  const d = await bootDaemon({ config: { plugins: { stats: false } } });
  t.teardown(() => d.close());
  const res = await d.client.raw('GET', '/optimization/stats');
  t.equal(res.status, 404);
  t.equal(JSON.parse(res.body).error.code, 'NOT_FOUND');
  t.equal((await d.client.raw('GET', '/metrics')).status, 404);
  t.same(await d.client.call('GET', '/plugins'), []);
});

t.test('dependency order, ctx.use, and close in reverse order of setup', async (t) => {
  const dir = tempDir('hearth-order-');
  const record = join(dir, 'record.txt');
  // Listed before its dependency: the registry still sets good up first.
  const d = await bootDaemon({
    config: {
      plugins: {
        user: ext('user', { record_file: record }),
        good: ext('good', { record_file: record, greeting: 'hey' }),
      },
    },
  });
  const plugins = await d.client.call<Array<{ name: string; depends_on: string[] }>>('GET', '/plugins');
  t.same(
    plugins.map((p) => p.name),
    ['stats', 'good', 'user'],
  );
  t.same(plugins.find((p) => p.name === 'user')?.depends_on, ['good']);
  const info = await d.client.call<{ greeting: string; undeclared: string }>('GET', '/user/info');
  t.equal(info.greeting, 'hey, user', 'ctx.use("good") gave the API good\'s setup returned');
  t.match(info.undeclared, 'plugin user uses "stats" without listing it in dependsOn', 'using an undeclared plugin throws');
  t.same(lines(record), ['setup good', 'setup user']);
  await d.close();
  t.same(lines(record), ['setup good', 'setup user', 'close user', 'close good'], 'closed in reverse order');
});

t.test('CLI: a plugin\'s subcommand talks to a running daemon', async (t) => {
  // The daemon runs in this process; the CLI finds its socket through the same config and --state-dir.
  const d = await bootDaemon({ config: { plugins: { good: ext('good', { greeting: 'hello over the socket' }) } } });
  t.teardown(() => d.close());
  const res = await runCli(['--config', join(d.stateDir, 'config.json'), '--state-dir', d.stateDir, 'good', 'hello'], cleanEnv(), CLI_TIMEOUT);
  t.equal(res.code, 0, res.stderr);
  t.equal(res.stdout, 'hello over the socket\n');
});

t.test('CLI: SIGTERM to a daemon whose plugin close hangs still exits 0, cleanly, in about close_timeout_ms', async (t) => {
  const dir = tempDir('hearth-termhang-');
  const cfg = join(dir, 'config.json');
  const stateDir = join(dir, 'state');
  writeFileSync(
    cfg,
    JSON.stringify({ state_dir: stateDir, server: { port: 0, close_timeout_ms: 300 }, plugins: { 'hanging-close': ext('hanging-close') } }),
  );
  const daemon = await spawnDaemon(['--config', cfg]);
  t.teardown(() => {
    if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
  });
  t.ok(existsSync(join(stateDir, 'hearth.pid')), 'running: the pid file is there');
  const started = Date.now();
  daemon.child.kill('SIGTERM');
  const code = await daemon.exited;
  const elapsed = Date.now() - started;
  t.equal(code, 0, `exit 0 after SIGTERM:\n${daemon.output()}`);
  // 300 ms of close, then the process exits; generous for a busy machine, far below the 10 s default limit.
  t.ok(elapsed < 5000, `within about close_timeout_ms (${elapsed} ms)`);
  t.match(daemon.output(), /plugin hanging-close, close: /, 'the hanging close is logged with the plugin\'s name');
  t.notOk(existsSync(join(stateDir, 'hearth.pid')), 'the pid file is removed');
  t.notOk(existsSync(join(stateDir, 'daemon.json')), 'the runtime info is removed');
  t.notOk(existsSync(join(stateDir, 'hearth.sock')), 'the socket is removed');
});

t.test('CLI: a bad config is refused with exit 2 and the JSON path, and nothing is started', async (t) => {
  const dir = tempDir('hearth-clibad-');
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ server: { prot: 7433 } }));
  const badOption = join(dir, 'bad-option.json');
  writeFileSync(badOption, JSON.stringify({ plugins: { good: ext('good', { greeting: 42 }) } }));
  const good = join(dir, 'good.json');
  // A module path relative to the config file, which is not where the CLI runs.
  writeFileSync(good, JSON.stringify({ server: { port: 7999 }, plugins: { good: { module: `./${relative(dir, fixture('good'))}` } } }));
  const stateDir = join(dir, 'state');

  const [daemon, check, checkGood] = await Promise.all([
    runCli(['daemon', '--config', bad, '--state-dir', stateDir], cleanEnv(), CLI_TIMEOUT),
    runCli(['config', 'check', badOption], cleanEnv(), CLI_TIMEOUT),
    runCli(['config', 'check', good], cleanEnv(), CLI_TIMEOUT),
  ]);
  t.equal(daemon.code, 2, 'hearth daemon with a bad config exits 2');
  t.match(daemon.stderr, '/server/prot');
  t.match(daemon.stderr, 'unknown key "prot"');
  t.notOk(existsSync(stateDir), 'nothing was created: no state dir, pid file or socket');

  t.equal(check.code, 2, 'config check of a bad file exits 2 (plugin options are checked too)');
  t.match(check.stderr, 'invalid config for plugin good: /plugins/good/options/greeting: must be string');
  t.equal(checkGood.code, 0, checkGood.stderr);
  t.equal(checkGood.stdout, `${good}: valid\n`);
});

t.test('CLI: config print shows the effective config (flags and environment applied, plugin defaults filled)', async (t) => {
  const dir = tempDir('hearth-print-');
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ server: { port: 1234 }, cache: { ttl_seconds: 5 }, plugins: { good: ext('good') } }));
  const res = await runCli(
    ['--config', cfg, 'config', 'print', '--port', '9999'],
    cleanEnv({ PERFORMANCE_CACHE_TTL: '17', HEARTH_STATE_DIR: join(dir, 'st') }),
    CLI_TIMEOUT,
  );
  t.equal(res.code, 0, res.stderr);
  const printed = JSON.parse(res.stdout);
  t.equal(printed.server.port, 9999, '--port beats the file');
  t.equal(printed.cache.ttl_seconds, 17, 'PERFORMANCE_CACHE_TTL beats the file');
  t.equal(printed.cache.max_size, 2000, 'defaults are shown');
  t.equal(printed.state_dir, join(dir, 'st'));
  t.equal(printed.server.socket, join(dir, 'st', 'hearth.sock'));
  t.same(printed.plugins.stats, { retention_seconds: 3600, max_samples: 10000 }, 'a built-in\'s defaults are filled');
  t.same(printed.plugins.good, { module: fixture('good'), options: { greeting: 'hello from good' } }, 'an external one\'s too');
  t.notOk(existsSync(join(dir, 'st')), 'printing creates nothing');
});

t.test('CLI: a core command works even when the config lists a plugin that cannot load', async (t) => {
  // main.ts: "A config that cannot load its plugins is reported only when a plugin's command is asked for."
  const dir = tempDir('hearth-corecmd-');
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ state_dir: join(dir, 'state'), plugins: { 'not-a-plugin': ext('not-a-plugin') } }));
  // The global flag before the command, as in `hearth --config cfg good hello`.
  const res = await runCli(['--config', cfg, 'stop'], cleanEnv(), CLI_TIMEOUT);
  t.equal(res.code, 0, `hearth --config cfg stop: ${res.stderr}`);
  t.match(res.stdout, 'hearth is not running');
});
