// How the CLI reaches its daemon: starting one in the background (`hearth start`, and on demand like
// Watchman), stopping it, and checking on the first request that it runs this install's build.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS } from '../node-flags.js';
import { numberAt, type ConfigFlags, type DaemonLocation } from '../config-source.js';
import { AlreadyRunningError, ensurePrivateDir, isAlive, isHearthDaemon, readPid, stateFiles } from '../state.js';
import { buildId } from '../version.js';
import { EXIT } from './exit.js';

export interface Health {
  status: string;
  version: string;
  /** Absent from daemons older than build ids. */
  build?: string;
  uptime_seconds: number;
  plugins: Array<{ name: string; state: string }>;
  reasons: string[];
}

/** The daemon could not be started; `exitCode` is what the CLI exits with (2 for a bad config). */
export class StartFailedError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = 'StartFailedError';
    this.exitCode = exitCode;
  }
}

const cliPath = fileURLToPath(new URL(`../cli${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/** Where the daemon of a config is: its state dir and socket. */
export type Where = Pick<DaemonLocation, 'stateDir' | 'socket'>;

function daemonArgs(flags: ConfigFlags, where: Where): string[] {
  const args = ['daemon', '--state-dir', where.stateDir, '--socket', where.socket];
  if (flags.config) args.push('--config', flags.config);
  if (flags.host) args.push('--host', flags.host);
  if (flags.port !== undefined) args.push('--port', String(flags.port));
  return args;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What another daemon of this state dir is, if one holds its pid file. */
function runningPid(where: Where): number | undefined {
  const pid = readPid(stateFiles(where.stateDir).pid);
  return pid !== undefined && isHearthDaemon(pid) ? pid : undefined;
}

/**
 * Starts `hearth daemon` detached, its output appended to `<state_dir>/hearth.log`, and resolves with its
 * `/health` once it answers. With `raceOk`, a daemon that another command started at the same moment (ours
 * then exits "already running") is as good as ours: what two commands spawning on demand at once want.
 */
export async function startInBackground(
  flags: ConfigFlags,
  where: Where,
  timeoutMs: number,
  raceOk = false,
): Promise<Health> {
  const files = stateFiles(where.stateDir);
  const holder = runningPid(where);
  if (holder !== undefined && !raceOk) throw new AlreadyRunningError(holder, where.stateDir);
  ensurePrivateDir(where.stateDir);
  const log = openSync(files.log, 'a', 0o600);
  const { spawn } = await import('node:child_process');
  // Ours first: a flag this node was itself given (process.execArgv) comes later and wins.
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...process.execArgv, cliPath, ...daemonArgs(flags, where)], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  child.unref();
  // Loaded here: `stop` and the help need no HTTP client.
  const { Client, DaemonNotRunningError } = await import('../client.js');
  const client = new Client({ socket: where.socket, timeoutMs: 2000 });
  const deadline = Date.now() + timeoutMs;
  const another = () => raceOk && exited === 1 && runningPid(where) !== undefined;
  try {
    while (Date.now() < deadline && (exited === null || another())) {
      try {
        return await client.call<Health>('GET', '/health');
      } catch (err) {
        if (!(err instanceof DaemonNotRunningError)) throw err;
        await sleep(20);
      }
    }
  } finally {
    await client.close();
  }
  let tail = '';
  try {
    tail = readFileSync(files.log, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    // no log to show
  }
  throw exited !== null
    ? new StartFailedError(`the daemon exited with code ${exited} before answering; the end of ${files.log}:\n${tail}`, exited === 2 ? EXIT.usage : EXIT.failure)
    : new StartFailedError(`the daemon did not answer within ${timeoutMs} ms; see ${files.log}`, EXIT.failure);
}

/**
 * SIGTERM to the daemon of this state dir, then waits for it to exit. Resolves with its pid, or undefined
 * when none was running; rejects when it outlives its close limit.
 */
export async function stopDaemon(where: DaemonLocation): Promise<number | undefined> {
  const pid = runningPid(where);
  if (pid === undefined) return undefined;
  process.kill(pid, 'SIGTERM');
  const limit = numberAt(where.doc, ['server', 'close_timeout_ms'], 10_000) + 5000;
  const deadline = Date.now() + limit;
  // Polled often: the wait is the daemon's close, and what the poll adds to it is the command's own cost.
  while (isAlive(pid) && Date.now() < deadline) await sleep(5);
  if (isAlive(pid)) throw new StartFailedError(`pid ${pid} did not exit within ${limit} ms`, EXIT.failure);
  return pid;
}

/** The line a command prints when the daemon it reached runs another build than this CLI. */
export function buildMismatch(health: Pick<Health, 'build' | 'version'>): string | undefined {
  const mine = buildId();
  const theirs = health.build ?? `${health.version} (no build id)`;
  return theirs === mine ? undefined : `hearth: the running daemon is build ${theirs}, this CLI is build ${mine}; run hearth restart\n`;
}

/** How long a command waits for a daemon it starts on demand (and `hearth start` by default). */
export const SPAWN_TIMEOUT_MS = 30_000;
