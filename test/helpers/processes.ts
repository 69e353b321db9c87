// The real `hearth` CLI as child processes for the lifecycle tests: launching foreground daemons, temp state
// dirs, killing whatever they leave running, and waiting with tight bounds.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { Client } from '../../src/client.js';
import { cleanEnv, root, runCli, spawnDaemon, tempDir, type CliResult, type DaemonProcess } from './daemon.js';

export type { DaemonProcess } from './daemon.js';

// Generous per-process limits: a CLI child spends most of its time compiling TypeScript, which is slow on a
// loaded machine. The waits that matter (exits, closes) have their own tight bounds in the tests.
export const CLI_TIMEOUT_MS = 60_000;
export const LISTEN_TIMEOUT_MS = 60_000;

/** The helper's runCli with the generous limit above. */
export const runHearth = (args: string[], env = cleanEnv()): Promise<CliResult> => runCli(args, env, CLI_TIMEOUT_MS);

export const packageVersion = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns something truthy, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 5000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Alive and not a zombie waiting to be reaped (a `hearth start` daemon is an orphan once start exits). */
export function isAlive(pid: number): boolean {
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

/** SIGKILL for a live process; nothing for no pid, or one that is not a single process (0, -1: a group, all). */
export function killHard(pid: number | undefined): void {
  if (pid !== undefined && pid > 0 && isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** The files a daemon keeps in its state dir. */
export const stateFiles = (dir: string) => ({
  socket: join(dir, 'hearth.sock'),
  pid: join(dir, 'hearth.pid'),
  runtime: join(dir, 'daemon.json'),
  token: join(dir, 'token'),
  log: join(dir, 'hearth.log'),
});

/** The pid in the state dir's pid file; undefined when there is none or it holds no pid. */
export function readPidFile(dir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(stateFiles(dir).pid, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

// Every process and state dir handed to the functions below, so that no daemon survives a test file: the
// teardowns kill them, and so does the exit of the test process (tap's timeout skips teardowns).
const pids = new Set<number>();
const stateDirs = new Set<string>();
process.on('exit', () => {
  for (const dir of stateDirs) killHard(readPidFile(dir));
  for (const pid of pids) killHard(pid);
});

/** Kills `pid` when the test process exits, if it still runs. */
export function killAtExit(pid: number): void {
  pids.add(pid);
}

/** Kills `pid` at the teardown of `t`, and at exit. */
export function killAtTeardown(t: Test, pid: number): void {
  killAtExit(pid);
  t.teardown(() => killHard(pid));
}

/** A temp state dir whose daemon, if any (say, one `hearth start` left), is killed at teardown and at exit. */
export function stateDir(t: Test, prefix: string): string {
  const dir = tempDir(prefix);
  stateDirs.add(dir);
  t.teardown(() => killHard(readPidFile(dir)));
  return dir;
}

/**
 * `hearth daemon ARGS` in the foreground, resolved once it logs that it listens. The child is registered for
 * teardown before anything can fail, so a daemon that is slow to start is still killed.
 */
export function launchDaemon(t: Test, args: string[], env = cleanEnv()): Promise<DaemonProcess> {
  return spawnDaemon(args, env, LISTEN_TIMEOUT_MS, (child: ChildProcess) => {
    const pid = child.pid!;
    killAtTeardown(t, pid);
    child.once('exit', () => pids.delete(pid));
  });
}

export interface Health {
  status: string;
  version: string;
  plugins: Array<{ name: string; state: string }>;
}

/** GET /health over the unix socket. */
export async function healthOverSocket(socket: string): Promise<Health> {
  const client = new Client({ socket, timeoutMs: 5000 });
  try {
    return await client.call<Health>('GET', '/health');
  } finally {
    await client.close();
  }
}

/** What a daemon that closed cleanly leaves behind in its state dir: no socket, no pid file, no daemon.json. */
export function checkCleanedUp(t: Test, dir: string, runtimeMessage = 'daemon.json removed'): void {
  const f = stateFiles(dir);
  t.notOk(existsSync(f.socket), 'socket removed');
  t.notOk(existsSync(f.pid), 'pid file removed');
  t.notOk(existsSync(f.runtime), runtimeMessage);
}
