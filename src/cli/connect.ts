// How the CLI reaches its daemon: starting one in the background (`hearth start`, and on demand like
// Watchman), stopping it, and checking on the first request that it runs this install's build.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client, DaemonNotRunningError, type RawResponse } from '../client.js';
import { loadConfig, type ConfigFlags, type HearthConfig } from '../config.js';
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

function daemonArgs(flags: ConfigFlags, config: Readonly<HearthConfig>): string[] {
  const args = ['daemon', '--state-dir', config.state_dir, '--socket', config.server.socket];
  if (flags.config) args.push('--config', flags.config);
  if (flags.host) args.push('--host', flags.host);
  if (flags.port !== undefined) args.push('--port', String(flags.port));
  return args;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What another daemon of this state dir is, if one holds its pid file. */
function runningPid(config: Readonly<HearthConfig>): number | undefined {
  const pid = readPid(stateFiles(config.state_dir).pid);
  return pid !== undefined && isHearthDaemon(pid) ? pid : undefined;
}

/**
 * Starts `hearth daemon` detached, its output appended to `<state_dir>/hearth.log`, and resolves with its
 * `/health` once it answers. With `raceOk`, a daemon that another command started at the same moment (ours
 * then exits "already running") is as good as ours: what two commands spawning on demand at once want.
 */
export async function startInBackground(
  flags: ConfigFlags,
  config: Readonly<HearthConfig>,
  timeoutMs: number,
  raceOk = false,
): Promise<Health> {
  const files = stateFiles(config.state_dir);
  const holder = runningPid(config);
  if (holder !== undefined && !raceOk) throw new AlreadyRunningError(holder, config.state_dir);
  ensurePrivateDir(config.state_dir);
  const log = openSync(files.log, 'a', 0o600);
  const child = spawn(process.execPath, [...process.execArgv, cliPath, ...daemonArgs(flags, config)], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  child.unref();
  const client = new Client({ socket: config.server.socket, timeoutMs: 2000 });
  const deadline = Date.now() + timeoutMs;
  const another = () => raceOk && exited === 1 && runningPid(config) !== undefined;
  try {
    while (Date.now() < deadline && (exited === null || another())) {
      try {
        return await client.call<Health>('GET', '/health');
      } catch (err) {
        if (!(err instanceof DaemonNotRunningError)) throw err;
        await sleep(50);
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
export async function stopDaemon(config: Readonly<HearthConfig>): Promise<number | undefined> {
  const pid = runningPid(config);
  if (pid === undefined) return undefined;
  process.kill(pid, 'SIGTERM');
  const limit = config.server.close_timeout_ms + 5000;
  const deadline = Date.now() + limit;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) throw new StartFailedError(`pid ${pid} did not exit within ${limit} ms`, EXIT.failure);
  return pid;
}

/** The line a command prints when the daemon it reached runs another build than this CLI. */
export function buildMismatch(health: Health): string | undefined {
  const mine = buildId();
  const theirs = health.build ?? `${health.version} (no build id)`;
  return theirs === mine ? undefined : `hearth: the running daemon is build ${theirs}, this CLI is build ${mine}; run hearth restart\n`;
}

/** How long a command waits for a daemon it starts on demand. */
const SPAWN_TIMEOUT_MS = 30_000;

/**
 * The client of commands that need the daemon. Before its first request it asks `/health`: a daemon of another
 * build is reported on stderr (the command still runs), and no daemon at all is started in the background
 * unless `spawn` is false (`--no-spawn`), when the request fails as "not running".
 */
export class CliClient extends Client {
  #flags: ConfigFlags;
  #config: Readonly<HearthConfig>;
  #spawn: boolean;
  #ready: Promise<void> | undefined;

  constructor(flags: ConfigFlags, spawnIfNeeded: boolean) {
    const { config } = loadConfig(flags);
    super({ socket: config.server.socket });
    this.#flags = flags;
    this.#config = config;
    this.#spawn = spawnIfNeeded;
  }

  override async raw(method: string, path: string, body?: unknown): Promise<RawResponse> {
    await (this.#ready ??= this.#connect());
    return super.raw(method, path, body);
  }

  async #connect(): Promise<void> {
    let health: Health;
    try {
      health = await this.#health();
    } catch (err) {
      if (!(err instanceof DaemonNotRunningError) || !this.#spawn) throw err;
      health = await startInBackground(this.#flags, this.#config, SPAWN_TIMEOUT_MS, true);
    }
    const mismatch = buildMismatch(health);
    if (mismatch) process.stderr.write(mismatch);
  }

  async #health(): Promise<Health> {
    const res = await super.raw('GET', '/health');
    return (JSON.parse(res.body) as { data: Health }).data;
  }
}
