// Config through the real CLI: `hearth start` with a bad config, SIGHUP reload (applied, refused, needing
// a restart), idle shutdown, and the top-level command line. (The foreground daemon is in
// lifecycle.test.ts, start/stop in lifecycle-start.test.ts.)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { bootDaemon, tcpRequest, tempDir } from './helpers/daemon.js';
import {
  checkCleanedUp,
  healthOverSocket,
  isAlive,
  launchDaemon,
  packageVersion,
  readPidFile,
  runHearth,
  sleep,
  stateDir,
  stateFiles,
  waitFor,
  within,
} from './helpers/processes.js';

t.jobs = 2;

// pino levels
const WARN = 40;
const ERROR = 50;

t.test('hearth start with a bad config or a port in use exits 2 and leaves no daemon', async (t) => {
  const top = stateDir(t, 'hc-');
  const plugin = stateDir(t, 'hc-');
  const configs = tempDir('hc-cfg-');
  const unknownTop = join(configs, 'bad.json');
  writeFileSync(unknownTop, JSON.stringify({ server: { idle_shutdown_seconds: 0 }, no_such_key: true }));
  // Valid for the core, invalid for a plugin: only the daemon itself (a child of start) finds out.
  const unknownPluginKey = join(configs, 'bad-plugin.json');
  writeFileSync(unknownPluginKey, JSON.stringify({ plugins: { stats: { no_such_option: 1 } } }));

  // A TCP port someone else holds: said so, with what to change.
  const busy = stateDir(t, 'hc-');
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => holder.close(() => r())));
  const taken = String((holder.address() as AddressInfo).port);

  const [a, b, c] = await Promise.all([
    runHearth(['start', '--state-dir', top, '--port', '0', '--config', unknownTop]),
    runHearth(['start', '--state-dir', plugin, '--port', '0', '--config', unknownPluginKey]),
    runHearth(['start', '--state-dir', busy, '--port', taken]),
  ]);
  t.equal(a.code, 2, 'an unknown top-level key: exit 2');
  t.match(a.stderr, 'no_such_key', 'the message names the key');
  t.equal(b.code, 2, 'an unknown plugin option: exit 2');
  t.match(b.stderr, 'no_such_option', 'the message names the key');
  t.equal(c.code, 2, 'a port in use: exit 2');
  t.match(c.stderr, `127.0.0.1:${taken} is in use`, 'the message names the address');
  t.match(c.stderr, '--port', 'and what to change');
  t.notMatch(c.stderr, 'at Server.', 'no stack trace');
  for (const dir of [top, plugin, busy]) {
    const f = stateFiles(dir);
    const pid = readPidFile(dir);
    t.notOk(pid !== undefined && isAlive(pid), `no daemon runs for ${dir}`);
    t.notOk(existsSync(f.pid), 'no pid file');
    t.notOk(existsSync(f.socket), 'no socket');
    t.notOk(existsSync(f.runtime), 'no daemon.json');
  }
});

t.test('SIGHUP reloads the config file: applied, refused when invalid, restart-needed changes logged', async (t) => {
  const dir = tempDir('hc-');
  const f = stateFiles(dir);
  const config = join(tempDir('hc-cfg-'), 'config.json');
  const write = (doc: unknown) => writeFileSync(config, typeof doc === 'string' ? doc : JSON.stringify(doc));
  // The port comes from the file (0: a free one), not from --port, so that a change of server.port in the
  // file is a change (a flag would override it).
  const v1 = { log: { level: 'info' }, server: { port: 0, allowed_hosts: ['localhost'] } };
  write(v1);
  const d = await launchDaemon(t, ['--state-dir', dir, '--config', config]);
  const { port } = JSON.parse(readFileSync(f.runtime, 'utf8')) as { port: number };
  const token = readFileSync(f.token, 'utf8').trim();
  t.ok(port > 0, `listening on TCP port ${port}`);
  const url = `http://127.0.0.1:${port}`;
  const get = (host: string) => tcpRequest(url, '/plugins', { headers: { host: `${host}:${port}`, authorization: `Bearer ${token}` } });
  const count = (pred: (l: { level: number; msg: string }) => boolean) => d.logs().filter(pred).length;
  const hup = async (what: string, pred: (l: Record<string, unknown> & { level: number; msg: string }) => boolean) => {
    const before = count(pred);
    d.child.kill('SIGHUP');
    await waitFor(what, () => count(pred) > before, 5000);
    return d.logs().filter(pred).at(-1)!;
  };

  const before = await get('127.0.0.1');
  t.equal(before.status, 403, 'before: Host 127.0.0.1 is refused');
  t.equal(before.json?.error?.code, 'HOST_NOT_ALLOWED');
  t.equal((await get('localhost')).status, 200, 'before: Host localhost passes (the token is right)');

  // Valid: allowed_hosts gains 127.0.0.1, and the log level goes to debug.
  const v2 = { log: { level: 'debug' }, server: { port: 0, allowed_hosts: ['localhost', '127.0.0.1'] } };
  write(v2);
  const applied = await hup('"config reloaded"', (l) => l.msg === 'config reloaded');
  t.ok(applied.level < WARN, 'a reload with nothing waiting for a restart is logged at info');
  const after = await get('127.0.0.1');
  t.equal(after.status, 200, 'after SIGHUP: Host 127.0.0.1 passes the host guard');
  t.equal(after.json?.success, true);
  await waitFor('a debug line for a request (the new log level)', () => d.logs().some((l) => l.msg === 'request' && l.level === 20), 3000).catch(
    () => undefined,
  );
  t.ok(
    d.logs().some((l) => l.msg === 'request' && l.level === 20),
    'the new log level took effect: requests are logged at debug',
  );

  // Invalid: an unknown key. Logged as an error; the previous (v2) settings stay.
  write({ ...v2, server: { ...v2.server, allowed_hosts: ['localhost'], no_such_key: 1 } });
  const refused = await hup('a refused reload', (l) => l.level === ERROR && /keep/i.test(l.msg) && /old config/i.test(l.msg));
  t.match(String(refused.err), 'no_such_key', 'the error names the bad key');
  t.ok(isAlive(d.pid), 'the daemon is still running');
  t.equal((await get('127.0.0.1')).status, 200, 'the previous settings are kept (Host 127.0.0.1 still passes)');
  t.equal((await healthOverSocket(f.socket)).status, 'ok', 'and it serves over the socket');

  // Invalid: not JSON at all.
  write('{"server": ');
  const broken = await hup('a refused reload of broken JSON', (l) => l.level === ERROR && /old config/i.test(l.msg));
  t.match(String(broken.err), /JSON/, 'the error says the file is not JSON');
  t.equal((await get('127.0.0.1')).status, 200, 'the previous settings are still kept');

  // Valid, but the port cannot change without a restart.
  write({ ...v2, server: { ...v2.server, port: 1 } });
  const restart = await hup('a restart-needed warning', (l) => l.level === WARN && /restart/i.test(l.msg));
  t.ok(Array.isArray(restart.keys) && (restart.keys as string[]).includes('server.port'), `the warning names server.port: ${JSON.stringify(restart)}`);
  const same = await get('127.0.0.1');
  t.equal(same.status, 200, 'the daemon still answers on its old port');

  t.notOk(d.output().includes(token), 'the token never appears in the daemon output, debug lines included');

  d.child.kill('SIGTERM');
  t.equal(await within(d.exited, 5000, 'exit after SIGTERM'), 0, 'exit code 0');
  checkCleanedUp(t, dir);
});

// state_dir needs a restart; until then the daemon must keep cleaning up where it really runs.
t.test('a SIGHUP that changes state_dir (restart needed) does not change where the daemon cleans up', async (t) => {
  const dir = tempDir('hc-');
  const elsewhere = tempDir('hc-');
  const f = stateFiles(dir);
  const config = join(tempDir('hc-cfg-'), 'config.json');
  writeFileSync(config, JSON.stringify({ state_dir: dir, server: { port: 0 } }));
  const d = await launchDaemon(t, ['--config', config]);
  t.ok(existsSync(f.runtime), 'daemon.json is in the configured state dir');
  writeFileSync(config, JSON.stringify({ state_dir: elsewhere, server: { port: 0 } }));
  const count = () => d.logs().filter((l) => l.level === WARN && /restart/i.test(l.msg)).length;
  d.child.kill('SIGHUP');
  await waitFor('a restart-needed warning', () => count() > 0, 5000);
  const warning = d.logs().filter((l) => l.level === WARN && /restart/i.test(l.msg)).at(-1)!;
  t.ok((warning.keys as string[]).includes('state_dir'), 'the warning names state_dir');
  t.equal((await healthOverSocket(f.socket)).status, 'ok', 'the daemon still serves on its socket');

  d.child.kill('SIGTERM');
  t.equal(await within(d.exited, 5000, 'exit after SIGTERM'), 0, 'exit code 0');
  checkCleanedUp(t, dir, 'daemon.json removed from the state dir the daemon ran in');
});

t.test('idle shutdown: requests keep the daemon up; without them it exits 0 by itself', async (t) => {
  const dir = tempDir('hc-');
  const f = stateFiles(dir);
  const config = join(tempDir('hc-cfg-'), 'config.json');
  writeFileSync(config, JSON.stringify({ server: { idle_shutdown_seconds: 2 } }));
  const d = await launchDaemon(t, ['--state-dir', dir, '--port', '0', '--config', config]);
  let code: number | null | undefined;
  void d.exited.then((c) => (code = c));

  // Busy for 3.5 s (longer than the limit) with a request every 250 ms: the daemon stays.
  const busyUntil = Date.now() + 3500;
  while (Date.now() < busyUntil && code === undefined) {
    await healthOverSocket(f.socket).catch(() => undefined);
    await sleep(250);
  }
  t.equal(code, undefined, 'still running after 3.5 s of requests with a 2 s idle limit');

  const idleFrom = Date.now();
  t.equal(await within(d.exited, 12_000, 'idle exit'), 0, 'exits 0 by itself once idle');
  const took = Date.now() - idleFrom;
  // At least the limit less one check interval; the upper bound is a liveness bound (a loaded CI machine).
  t.ok(took >= 1000 && took < 10_000, `exited ${took} ms after the last request (limit 2 s, checked each second)`);
  t.ok(
    d.logs().some((l) => /idle/.test(l.msg)),
    'it logs why it exits',
  );
  checkCleanedUp(t, dir);
});

t.test('an idle limit set by a reload starts counting', async (t) => {
  const d = await bootDaemon({ config: { server: { idle_shutdown_seconds: 0 } } });
  t.teardown(() => d.close());
  const config = join(d.stateDir, 'config.json');
  writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), server: { idle_shutdown_seconds: 1 } }));
  t.match(await d.daemon.reload(), { applied: true, restartNeeded: [] });
  // No request from here (each would renew the idle time): the daemon closes itself within a few seconds.
  await sleep(3000);
  await t.rejects(d.client.raw('GET', '/health'), 'the daemon closed itself once idle');
});

t.test('the command line: --version, an unknown command', async (t) => {
  const [version, unknown] = await Promise.all([runHearth(['--version']), runHearth(['nosuchcommand'])]);
  t.equal(version.code, 0);
  t.equal(version.stdout.trim(), packageVersion, '--version prints the package.json version');
  t.equal(unknown.code, 2, 'an unknown command exits 2');
  t.match(unknown.stderr, "unknown command 'nosuchcommand'");
});
