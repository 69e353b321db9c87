// The CLI and its daemon agree on a build: a daemon of another build is reported, and `hearth restart`
// replaces it. (Starting on demand and --no-spawn are in lifecycle-spawn.test.ts.)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cleanEnv, tempDir } from './helpers/daemon.js';
import { checkCleanedUp, healthOverSocket, isAlive, killAtExit, readPidFile, runHearth, stateDir } from './helpers/processes.js';

t.jobs = 2;

function lightConfig(): string {
  const file = join(tempDir('hsr-cfg-'), 'config.json');
  writeFileSync(file, JSON.stringify({ server: { port: 0 }, plugins: { files: false, git: false, batch: false } }));
  return file;
}

t.test('a daemon of another build is reported; hearth restart replaces it', async (t) => {
  const dir = stateDir(t, 'hsr-');
  const config = lightConfig();
  const args = ['--state-dir', dir, '--config', config];
  // The build id of an older install, as HEARTH_BUILD_ID lets a packager stamp it.
  const started = await runHearth(['start', ...args], cleanEnv({ HEARTH_BUILD_ID: '0.0.1+oldbuild' }));
  const oldPid = readPidFile(dir);
  if (oldPid !== undefined) killAtExit(oldPid);
  t.equal(started.code, 0, started.stderr);
  t.match(started.stdout, 'build   0.0.1+oldbuild', 'start prints the build');

  const [clear, status] = await Promise.all([runHearth(['cache', 'clear', ...args]), runHearth(['status', ...args])]);
  t.equal(clear.code, 0, 'the command still runs');
  t.match(clear.stdout, 'cleared');
  t.match(
    clear.stderr,
    /^hearth: the running daemon is build 0\.0\.1\+oldbuild, this CLI is build \S+\+[0-9a-f]{12}; run hearth restart\n$/,
    'and says the daemon is of another build',
  );
  t.equal(status.code, 0);
  t.match(status.stderr, 'run hearth restart', 'status says so too');

  const restart = await runHearth(['restart', ...args]);
  const newPid = readPidFile(dir);
  if (newPid !== undefined) killAtExit(newPid);
  t.equal(restart.code, 0, restart.stderr);
  t.match(restart.stdout, `hearth stopped (pid ${oldPid})`);
  t.notOk(isAlive(oldPid!), 'the old daemon is gone');
  t.ok(newPid !== undefined && newPid !== oldPid && isAlive(newPid), 'a new one runs');
  t.match(restart.stdout, `(pid ${newPid})`);
  const health = (await healthOverSocket(join(dir, 'hearth.sock'))) as unknown as { build: string };
  t.match(health.build, /^\d+\.\d+\.\d+\S*\+[0-9a-f]{12}$/, '/health has its build id: version + code hash');

  const again = await runHearth(['cache', 'clear', ...args]);
  t.equal(again.code, 0, again.stderr);
  t.equal(again.stderr, '', 'the new daemon is this build: nothing to report');

  const stop = await runHearth(['stop', ...args]);
  t.equal(stop.code, 0, stop.stderr);
  checkCleanedUp(t, dir);
});

t.test('restart with nothing running starts one', async (t) => {
  const dir = stateDir(t, 'hsr-');
  const config = lightConfig();
  const args = ['--state-dir', dir, '--config', config];
  const fresh = await runHearth(['restart', ...args]);
  const freshPid = readPidFile(dir);
  if (freshPid !== undefined) killAtExit(freshPid);
  t.equal(fresh.code, 0, fresh.stderr);
  t.notMatch(fresh.stdout, 'stopped');
  t.ok(freshPid !== undefined && isAlive(freshPid), 'restart with nothing running starts one');
  const stop = await runHearth(['stop', ...args]);
  t.equal(stop.code, 0, stop.stderr);
  checkCleanedUp(t, dir);
});

