// Child processes for benches: free ports, waiting for a server to answer, CPU time, clean stops.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface Child {
  proc: ChildProcess;
  /** What the child wrote to stderr (kept for error reports). */
  stderr(): string;
  stop(): Promise<void>;
}

export function startChild(command: string, args: string[], options: SpawnOptions = {}): Child {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let err = '';
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err = (err + chunk).slice(-8000);
  });
  proc.stdout?.resume();
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    proc,
    stderr: () => err,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `url` until it answers 200, the child exits, or the time runs out. */
export async function waitForHttp(url: string, child: Child, name: string, init: RequestInit = {}, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`${name} exited (${child.proc.exitCode ?? child.proc.signalCode}) before answering:\n${child.stderr()}`);
    }
    try {
      const res = await fetch(url, init);
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = String((err as Error).message);
    }
    await sleep(50);
  }
  throw new Error(`${name} did not answer ${url} within ${timeoutMs} ms (${last}):\n${child.stderr()}`);
}

/** The same for a daemon over its unix socket: polls GET /health through `client` (hearth's own Client) every `pollMs`. */
export async function waitForHealth(client: { call(method: string, path: string): Promise<unknown> }, child: Child, timeoutMs = 20_000, pollMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.call('GET', '/health');
      return;
    } catch (err) {
      if (child.proc.exitCode !== null || Date.now() > deadline) throw new Error(`the daemon did not start: ${String(err)}\n${child.stderr()}`);
      await sleep(pollMs);
    }
  }
}

const CLOCK_TICKS = 100; // USER_HZ: 100 on every Linux Node supports

/** CPU seconds (user + system) a process has used so far, from /proc; undefined where there is no /proc. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** CPU seconds the whole machine has been busy (all cores, idle and iowait excluded); undefined where there is no /proc. */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [, ...values] = line.trim().split(/\s+/);
    const ticks = values.slice(0, 8).map(Number); // user nice system idle iowait irq softirq steal
    const busy = ticks.reduce((s, v) => s + v, 0) - ticks[3]! - ticks[4]!;
    return busy / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
