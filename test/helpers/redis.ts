// A real Redis for a test: Debian's redis-server on a temp unix socket (no TCP port, no persistence),
// started by the test and stopped by pid. `.ci/run` installs redis-server when it is missing; outside CI a
// machine without it skips the Redis tests (and says how to install it).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './daemon.js';

export const REDIS_SERVER = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();

/** A tap `skip` value: false when redis-server is here (always false in CI, where its absence must fail). */
export const skipWithoutRedis: false | string =
  REDIS_SERVER || process.env.CI === 'true' ? false : 'redis-server is not installed (apt-get install redis-server)';

export interface TestRedis {
  /** The unix socket path (`{"socket": path}` in hearth's config). */
  socket: string;
  dir: string;
  pid: number;
  /** Runs `redis-cli -s socket ARGS…` and answers its stdout (trimmed). */
  cli(...args: string[]): string;
  /** SIGSTOP: Redis stays connected but answers nothing (a hung server). */
  pause(): void;
  resume(): void;
  /** Stops it (SIGKILL, then waits for the exit); the socket file goes. */
  stop(): Promise<void>;
  /** Starts it again on the same socket (empty: nothing was saved). */
  restart(): Promise<void>;
}

export interface RedisOptions {
  /** Extra `redis-server` arguments, e.g. ['--maxmemory-policy', 'allkeys-lru']. */
  args?: string[];
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts redis-server on a new temp unix socket; resolves once it answers PING. */
export async function startRedis(options: RedisOptions = {}): Promise<TestRedis> {
  if (!REDIS_SERVER) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const dir = tempDir('hearth-redis-');
  const socket = join(dir, 'redis.sock');
  let child: ChildProcess;
  let exited: Promise<void>;
  let output = '';

  const cli = (...args: string[]): string => {
    const r = spawnSync('redis-cli', ['-s', socket, ...args], { encoding: 'utf8', timeout: 5000 });
    return (r.stdout ?? '').trim();
  };

  const launch = async () => {
    output = '';
    child = spawn(
      REDIS_SERVER,
      ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', dir, ...(options.args ?? [])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let gone = false;
    void exited.then(() => (gone = true));
    await waitFor(() => gone || (existsSync(socket) && cli('PING') === 'PONG'), 'redis-server to answer PING');
    if (gone) throw new Error(`redis-server exited at start:\n${output}`);
  };

  await launch();
  const redis: TestRedis = {
    socket,
    dir,
    get pid() {
      return child.pid!;
    },
    cli,
    pause: () => process.kill(child.pid!, 'SIGSTOP'),
    resume: () => process.kill(child.pid!, 'SIGCONT'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(child.pid!, 'SIGCONT');
      process.kill(child.pid!, 'SIGKILL');
      await exited;
      rmSync(socket, { force: true });
    },
    async restart() {
      await redis.stop();
      await launch();
    },
  };
  return redis;
}
