// `hearth start` / `status` / `stop` through the real CLI on temp state dirs: the background daemon, the
// one-daemon-per-state-dir lock seen from `start`, and a pid file that names a process that is not hearth.
// (The foreground daemon is in lifecycle.test.ts; `start` with a bad config in lifecycle-config.test.ts.)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import t from 'tap';
import {
  checkCleanedUp,
  healthOverSocket,
  isAlive,
  killAtExit,
  killAtTeardown,
  readPidFile,
  runHearth,
  stateDir,
  stateFiles,
} from './helpers/processes.js';

t.jobs = 2;

t.test('hearth start, status, start again, stop, stop again, status', async (t) => {
  const dir = stateDir(t, 'hs-');
  const f = stateFiles(dir);

  const started = await runHearth(['start', '--state-dir', dir, '--port', '0']);
  const pid = readPidFile(dir);
  if (pid !== undefined) killAtExit(pid);
  t.equal(started.code, 0, `start exits 0 ${started.stderr}`);
  t.ok(pid !== undefined && isAlive(pid), 'the background daemon runs');
  const info = JSON.parse(readFileSync(f.runtime, 'utf8')) as { pid: number; port: number; socket: string };
  t.equal(info.pid, pid, 'daemon.json names the pid of the pid file');
  t.ok(info.port > 0, 'a real port was picked');
  t.match(started.stdout, f.socket, 'start prints the socket path');
  t.match(started.stdout, `http://127.0.0.1:${info.port}`, 'start prints the TCP url with the real port');
  t.match(started.stdout, `(pid ${pid})`, 'start prints the pid');
  t.equal((await healthOverSocket(f.socket)).status, 'ok', '/health answers as soon as start has returned');

  // Neither changes anything, so they run side by side.
  const [status, again] = await Promise.all([
    runHearth(['status', '--state-dir', dir]),
    runHearth(['start', '--state-dir', dir, '--port', '0']),
  ]);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /\brunning\b/);
  t.match(status.stdout, `(pid ${pid})`);
  t.match(status.stdout, f.socket);

  t.equal(again.code, 1, 'a second start exits 1');
  t.match(again.stderr, `pid ${pid}`, 'and names the pid that holds the state dir');
  t.equal(readPidFile(dir), pid, 'the pid file is untouched');
  t.equal((await healthOverSocket(f.socket)).status, 'ok', 'the first daemon still answers');

  const token = readFileSync(f.token, 'utf8').trim();
  const stopped = await runHearth(['stop', '--state-dir', dir]);
  t.equal(stopped.code, 0, `stop exits 0 ${stopped.stderr}`);
  t.match(stopped.stdout, /stopped/);
  t.match(stopped.stdout, `pid ${pid}`);
  t.notOk(pid !== undefined && isAlive(pid), 'the daemon process is gone');
  checkCleanedUp(t, dir);
  const log = readFileSync(f.log, 'utf8');
  t.match(log, 'hearth is listening', 'the daemon log was written');
  t.notOk(log.includes(token), 'the daemon log does not contain the token');

  const [stopAgain, statusAfter] = await Promise.all([runHearth(['stop', '--state-dir', dir]), runHearth(['status', '--state-dir', dir])]);
  t.equal(stopAgain.code, 0, 'stop with nothing running exits 0');
  t.match(stopAgain.stdout, 'not running');
  t.equal(statusAfter.code, 3, 'status with nothing running exits 3');
  t.match(statusAfter.stdout, 'not running');
});

// A pid file outlives a crash, and after a reboot (the state dir is persistent) its pid may belong to any
// process. "A stale socket or pid file left by a crash is cleaned up": such a pid file is stale too.
t.test('a pid file naming a live process that is not hearth is stale, and that process is never signalled', async (t) => {
  const other: ChildProcess = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const otherPid = other.pid!;
  killAtTeardown(t, otherPid);

  // start first: it must not be fooled into "already running" by a pid that is not hearth.
  const forStart = stateDir(t, 'hs-');
  mkdirSync(forStart, { recursive: true });
  writeFileSync(stateFiles(forStart).pid, `${otherPid}\n`);
  const start = await runHearth(['start', '--state-dir', forStart, '--port', '0']);
  const daemonPid = readPidFile(forStart);
  if (daemonPid !== undefined && daemonPid !== otherPid) killAtExit(daemonPid);
  t.equal(start.code, 0, `hearth start treats the pid file as stale and starts: ${start.stderr.trim()}`);
  if (start.code === 0) {
    t.equal((await healthOverSocket(stateFiles(forStart).socket)).status, 'ok', 'and the daemon serves');
    t.not(daemonPid, otherPid, 'the pid file now names the daemon');
  }
  t.ok(isAlive(otherPid), 'the unrelated process is still alive after start');

  // stop must not signal a process it cannot tell is hearth.
  const forStop = stateDir(t, 'hs-');
  mkdirSync(forStop, { recursive: true });
  writeFileSync(stateFiles(forStop).pid, `${otherPid}\n`);
  const stop = await runHearth(['stop', '--state-dir', forStop]);
  t.ok(isAlive(otherPid), 'hearth stop did not kill the unrelated process');
  t.equal(stop.code, 0);
  t.match(stop.stdout, 'not running', 'stop says hearth is not running');
});
