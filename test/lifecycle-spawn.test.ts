// The CLI and its daemon: commands that start the daemon on demand (and the idle limit that ends it), --no-spawn,
// `status` and `stop` that never start one. (The build id check and `hearth restart` are in
// lifecycle-restart.test.ts.)
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cleanEnv, tempDir } from './helpers/daemon.js';
import {
  checkCleanedUp,
  isAlive,
  killAtExit,
  readPidFile,
  runHearth,
  stateDir,
  stateFiles,
  waitFor,
} from './helpers/processes.js';

t.jobs = 2;

/** A light config (no worker threads, no roots to watch), with extra server settings. */
function lightConfig(server: object = {}): string {
  const file = join(tempDir('hsp-cfg-'), 'config.json');
  // port 0: a daemon started on demand takes its port from the config (no --port flag reaches it).
  writeFileSync(file, JSON.stringify({ server: { port: 0, ...server }, plugins: { files: false, git: false, batch: false } }));
  return file;
}

t.test('a command that needs the daemon starts it; the idle limit ends a daemon started so', async (t) => {
  const dir = stateDir(t, 'hsp-');
  const config = lightConfig({ idle_shutdown_seconds: 5 });
  const stats = await runHearth(['stats', '--json', '--state-dir', dir, '--config', config]);
  const pid = readPidFile(dir);
  if (pid !== undefined) killAtExit(pid);
  t.equal(stats.code, 0, `hearth stats started the daemon and answered: ${stats.stderr}`);
  t.ok(JSON.parse(stats.stdout), 'the stats answer');
  t.equal(stats.stderr, '', 'nothing on stderr: same build, started quietly');
  t.ok(pid !== undefined && isAlive(pid), 'the daemon runs in the background after the command exited');

  // Started on demand, it goes away by itself once nobody asks (5 s here; no request from the test, which
  // would reset the clock).
  await waitFor('the idle exit', () => !isAlive(pid!), 30_000, 100);
  checkCleanedUp(t, dir);
});

t.test('--no-spawn: a command fails with exit 3 instead; status and stop never start a daemon', async (t) => {
  const dir = stateDir(t, 'hsp-');
  const config = lightConfig();
  const [before, after, status, stop] = await Promise.all([
    runHearth(['--no-spawn', 'cache', 'clear', '--state-dir', dir, '--config', config]),
    runHearth(['stats', '--no-spawn', '--state-dir', dir, '--config', config]),
    runHearth(['status', '--state-dir', dir, '--config', config]),
    runHearth(['stop', '--state-dir', dir, '--config', config]),
  ]);
  t.equal(before.code, 3, `--no-spawn before the command: exit 3 ${before.stderr}`);
  t.match(before.stderr, 'hearth is not running');
  t.equal(after.code, 3, `--no-spawn after a plugin's command: exit 3 ${after.stderr}`);
  t.match(after.stderr, 'hearth is not running');
  t.equal(status.code, 3, 'status: exit 3');
  t.match(status.stdout, 'not running');
  t.equal(stop.code, 0);
  t.match(stop.stdout, 'not running');
  t.equal(readPidFile(dir), undefined, 'no daemon was started');
  t.notOk(existsSync(stateFiles(dir).socket), 'no socket');
});

t.test('two commands that start the daemon at once share one daemon', async (t) => {
  const dir = stateDir(t, 'hsp-');
  const config = lightConfig();
  const args = ['--state-dir', dir, '--config', config];
  const [a, b] = await Promise.all([runHearth(['cache', 'clear', ...args]), runHearth(['cache', 'clear', ...args])]);
  const pid = readPidFile(dir);
  if (pid !== undefined) killAtExit(pid);
  t.equal(a.code, 0, a.stderr);
  t.equal(b.code, 0, b.stderr);
  t.ok(pid !== undefined && isAlive(pid), 'one daemon runs');
  const stop = await runHearth(['stop', '--state-dir', dir, '--config', config]);
  t.equal(stop.code, 0, stop.stderr);
});
