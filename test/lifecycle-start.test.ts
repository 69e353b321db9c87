// `hearth start` / `status` / `stop` through the real CLI on temp state dirs: the background daemon, the
// one-daemon-per-state-dir lock seen from `start`, and a pid file that names a process that is not hearth.
// (The foreground daemon is in lifecycle.test.ts; `start` with a bad config in lifecycle-config.test.ts.)
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Client } from '../src/client.js';
import { cleanEnv, cliPath, runCli as runCliHelper, tempDir } from './helpers/daemon.js';

t.jobs = 2;

const CLI_TIMEOUT_MS = 60_000;
const LISTEN_TIMEOUT_MS = 60_000;
const runCli = (args: string[], env = cleanEnv()) => runCliHelper(args, env, CLI_TIMEOUT_MS);

/** Alive and not a zombie waiting to be reaped (a `hearth start` daemon is an orphan once start exits). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return true;
  }
}

function killHard(pid: number | undefined): void {
  if (pid !== undefined && isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

const files = (dir: string) => ({
  socket: join(dir, 'hearth.sock'),
  pid: join(dir, 'hearth.pid'),
  runtime: join(dir, 'daemon.json'),
  token: join(dir, 'token'),
  log: join(dir, 'hearth.log'),
});

function readPidFile(dir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(files(dir).pid, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

// Background daemons are found through their state dir's pid file; teardowns kill them, and so does the
// exit of this process (tap's timeout skips teardowns).
const stateDirs = new Set<string>();
const pids = new Set<number>();
const killAll = () => {
  for (const dir of stateDirs) killHard(readPidFile(dir));
  for (const pid of pids) killHard(pid);
};
process.on('exit', killAll);

/** A temp state dir whose daemon, if any, is killed at teardown. */
function stateDir(t: Test): string {
  const dir = tempDir('hs-');
  stateDirs.add(dir);
  t.teardown(() => killHard(readPidFile(dir)));
  return dir;
}

async function health(socket: string): Promise<{ status: string }> {
  const client = new Client({ socket, timeoutMs: 5000 });
  try {
    return await client.call<{ status: string }>('GET', '/health');
  } finally {
    await client.close();
  }
}

t.test('hearth start, status, start again, stop, stop again, status', async (t) => {
  const dir = stateDir(t);
  const f = files(dir);

  const started = await runCli(['start', '--state-dir', dir, '--port', '0']);
  const pid = readPidFile(dir);
  if (pid !== undefined) pids.add(pid);
  t.equal(started.code, 0, `start exits 0 ${started.stderr}`);
  t.ok(pid !== undefined && isAlive(pid), 'the background daemon runs');
  const info = JSON.parse(readFileSync(f.runtime, 'utf8')) as { pid: number; port: number; socket: string };
  t.equal(info.pid, pid, 'daemon.json names the pid of the pid file');
  t.ok(info.port > 0, 'a real port was picked');
  t.match(started.stdout, f.socket, 'start prints the socket path');
  t.match(started.stdout, `http://127.0.0.1:${info.port}`, 'start prints the TCP url with the real port');
  t.match(started.stdout, `(pid ${pid})`, 'start prints the pid');
  t.equal((await health(f.socket)).status, 'ok', '/health answers as soon as start has returned');

  // Neither changes anything, so they run side by side.
  const [status, again] = await Promise.all([
    runCli(['status', '--state-dir', dir]),
    runCli(['start', '--state-dir', dir, '--port', '0']),
  ]);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /\brunning\b/);
  t.match(status.stdout, `(pid ${pid})`);
  t.match(status.stdout, f.socket);

  t.equal(again.code, 1, 'a second start exits 1');
  t.match(again.stderr, `pid ${pid}`, 'and names the pid that holds the state dir');
  t.equal(readPidFile(dir), pid, 'the pid file is untouched');
  t.equal((await health(f.socket)).status, 'ok', 'the first daemon still answers');

  const token = readFileSync(f.token, 'utf8').trim();
  const stopped = await runCli(['stop', '--state-dir', dir]);
  t.equal(stopped.code, 0, `stop exits 0 ${stopped.stderr}`);
  t.match(stopped.stdout, /stopped/);
  t.match(stopped.stdout, `pid ${pid}`);
  t.notOk(pid !== undefined && isAlive(pid), 'the daemon process is gone');
  t.notOk(existsSync(f.socket), 'socket removed');
  t.notOk(existsSync(f.pid), 'pid file removed');
  t.notOk(existsSync(f.runtime), 'daemon.json removed');
  const log = readFileSync(f.log, 'utf8');
  t.match(log, 'hearth is listening', 'the daemon log was written');
  t.notOk(log.includes(token), 'the daemon log does not contain the token');

  const [stopAgain, statusAfter] = await Promise.all([runCli(['stop', '--state-dir', dir]), runCli(['status', '--state-dir', dir])]);
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
  pids.add(otherPid);
  t.teardown(() => killHard(otherPid));

  // start first: it must not be fooled into "already running" by a pid that is not hearth.
  const forStart = stateDir(t);
  mkdirSync(forStart, { recursive: true });
  writeFileSync(files(forStart).pid, `${otherPid}\n`);
  const start = await runCli(['start', '--state-dir', forStart, '--port', '0']);
  const daemonPid = readPidFile(forStart);
  if (daemonPid !== undefined && daemonPid !== otherPid) pids.add(daemonPid);
  t.equal(start.code, 0, `hearth start treats the pid file as stale and starts: ${start.stderr.trim()}`);
  if (start.code === 0) {
    t.equal((await health(files(forStart).socket)).status, 'ok', 'and the daemon serves');
    t.not(daemonPid, otherPid, 'the pid file now names the daemon');
  }
  t.ok(isAlive(otherPid), 'the unrelated process is still alive after start');

  // stop must not signal a process it cannot tell is hearth.
  const forStop = stateDir(t);
  mkdirSync(forStop, { recursive: true });
  writeFileSync(files(forStop).pid, `${otherPid}\n`);
  const stop = await runCli(['stop', '--state-dir', forStop]);
  t.ok(isAlive(otherPid), 'hearth stop did not kill the unrelated process');
  t.equal(stop.code, 0);
  t.match(stop.stdout, 'not running', 'stop says hearth is not running');
});
