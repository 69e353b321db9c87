// A redis-server for a bench: Debian's, on a unix socket in the bench's dir, nothing persisted, stopped by pid.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startChild, type Child } from './proc.js';

export interface BenchRedis {
  socket: string;
  child: Child;
  stop(): Promise<void>;
}

export async function startBenchRedis(dir: string): Promise<BenchRedis> {
  const server = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  if (!server) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const socket = join(dir, 'redis.sock');
  const child = startChild(server, ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', dir]);
  const until = Date.now() + 10_000;
  for (;;) {
    if (existsSync(socket) && spawnSync('redis-cli', ['-s', socket, 'PING'], { encoding: 'utf8' }).stdout.trim() === 'PONG') break;
    if (child.proc.exitCode !== null || Date.now() > until) throw new Error(`redis-server did not start:\n${child.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { socket, child, stop: () => child.stop() };
}
