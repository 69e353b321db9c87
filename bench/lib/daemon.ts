// The built daemon as a child process on a bench's own state dir (TCP port 0), answering on its socket.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '../../src/client.js';
import { cliPath } from './env.js';
import { startChild, waitForHealth, type Child } from './proc.js';

export interface BenchDaemon {
  child: Child;
  client: Client;
  socket: string;
  pid: number;
  /** Its state dir. */
  state: string;
  stop(): Promise<void>;
}

/** Starts `hearth daemon` with these plugins (the rest of the config is the defaults) and waits for /health. */
export async function startBenchDaemon(work: string, plugins: Record<string, unknown>, nodeFlags: string[] = []): Promise<BenchDaemon> {
  const state = join(work, 'state');
  mkdirSync(state, { recursive: true });
  const config = join(work, 'config.json');
  writeFileSync(config, JSON.stringify({ log: { level: 'warn' }, plugins }));
  const env = { ...process.env, HEARTH_LOG_LEVEL: 'warn' };
  const child = startChild(process.execPath, [...nodeFlags, cliPath, 'daemon', '--config', config, '--state-dir', state, '--port', '0'], { env });
  const socket = join(state, 'hearth.sock');
  const client = new Client({ socket, timeoutMs: 60_000 });
  const stop = async () => {
    await client.close();
    await child.stop();
  };
  try {
    await waitForHealth(client, child);
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, client, socket, pid: child.proc.pid!, state, stop };
}
