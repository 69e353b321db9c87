// Boots real daemons on temp state dirs: in this process (fast, counted by coverage) or as a child
// process running the real CLI (for signals, locks and exit codes).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { request, type Dispatcher } from 'undici';
import { Client } from '../../src/client.js';
import { startDaemon, type Daemon } from '../../src/daemon.js';

export const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const cliPath = join(root, 'src/cli.ts');

export function tempDir(prefix = 'hearth-test-'): string {
  // Short paths: a unix socket path must stay under ~107 bytes.
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Environment with nothing from the caller's hearth setup leaking in. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('HEARTH_') || key.startsWith('PERFORMANCE_')) delete env[key];
  }
  env.XDG_CONFIG_HOME = join(tempDir('hearth-xdg-'), 'none');
  return { ...env, ...extra };
}

export interface TestDaemon {
  daemon: Daemon;
  stateDir: string;
  socket: string;
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  token: string;
  /** Over the unix socket. */
  client: Client;
  /** Over TCP with the token. */
  tcp: Client;
  /** Every log line the daemon wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  logText(): string;
  close(): Promise<void>;
}

export interface BootOptions {
  /** Written to <stateDir>/config.json and passed as --config. */
  config?: object;
  env?: Record<string, string | undefined>;
  setupTimeoutMs?: number;
  /** An existing state dir (a restart: the previous daemon on it closed first); default a new temp dir. */
  stateDir?: string;
}

/** Starts a daemon in this process on a temp state dir, TCP on a free loopback port. */
export async function bootDaemon(options: BootOptions = {}): Promise<TestDaemon> {
  const stateDir = options.stateDir ?? tempDir();
  const flags = { stateDir, port: 0, config: join(stateDir, 'config.json') };
  // Core tests see only the plugins they name (and stats): the files and batch plugins are on by default
  // (files with the user's home as its root, batch with worker threads) and are tested on their own.
  const config = options.config as { plugins?: Record<string, unknown> } | undefined;
  writeFileSync(flags.config, JSON.stringify({ ...config, plugins: { files: false, git: false, batch: false, dashboard: false, ...config?.plugins } }));
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const daemon = await startDaemon({
    flags,
    env: cleanEnv(options.env),
    logDestination: sink,
    ...(options.setupTimeoutMs ? { setupTimeoutMs: options.setupTimeoutMs } : {}),
  });
  const { socket, port } = daemon.listening;
  const url = `http://127.0.0.1:${port}`;
  const client = new Client({ socket });
  const tcp = new Client({ url, token: daemon.token });
  let closing: Promise<void> | undefined;
  return {
    daemon,
    stateDir,
    socket,
    url,
    port,
    token: daemon.token,
    client,
    tcp,
    get logs() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    logText: () => lines.join('\n'),
    /** Safe to call twice (a test may close early and its teardown again). */
    close() {
      closing ??= (async () => {
        await client.close();
        await tcp.close();
        await daemon.close();
      })();
      return closing;
    },
  };
}

export interface RawAnswer {
  status: number;
  /** Every response header, as undici gives them. */
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

export interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as is: a string, raw bytes, or a stream (sent chunked). */
  body?: string | Buffer | Readable;
}

/** Reads a whole answer: the status, all headers, the body as text and, when it parses, as JSON. */
async function readAnswer(res: Dispatcher.ResponseData): Promise<RawAnswer> {
  const text = await res.body.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

async function send(url: string, init: RequestInit, dispatcher?: Dispatcher): Promise<RawAnswer> {
  const res = await request(url, {
    method: (init.method ?? 'GET') as Dispatcher.HttpMethod,
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: init.body } : {}),
    ...(dispatcher ? { dispatcher } : {}),
  });
  return readAnswer(res);
}

/** One TCP request with full control over method, headers and body bytes. */
export function tcpRequest(url: string, path: string, init: RequestInit = {}): Promise<RawAnswer> {
  return send(`${url}${path}`, init);
}

/** The same over a unix socket, through an undici Agent connected to it (no token needed there). */
export function socketRequest(agent: Dispatcher, path: string, init: RequestInit = {}): Promise<RawAnswer> {
  return send(`http://localhost${path}`, init, agent);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `hearth` CLI (TypeScript sources, same loader as the tests) and waits for it to exit.
 * `input` is written to its standard input; `nodeArgs` go before the CLI's path.
 */
export function runCli(
  args: string[],
  env: Record<string, string | undefined> = cleanEnv(),
  timeoutMs = 30_000,
  options: { input?: string; nodeArgs?: string[] } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const stdin = options.input === undefined ? 'ignore' : 'pipe';
    const child = spawn(process.execPath, [...process.execArgv, ...(options.nodeArgs ?? []), cliPath, ...args], { env, stdio: [stdin, 'pipe', 'pipe'] });
    if (options.input !== undefined) child.stdin!.end(options.input);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hearth ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

export interface DaemonProcess {
  child: ChildProcess;
  pid: number;
  /** Everything the daemon wrote to stdout and stderr so far. */
  output(): string;
  /** Its JSON log lines so far, parsed. */
  logs(): Array<Record<string, unknown> & { level: number; msg: string }>;
  exited: Promise<number | null>;
}

/**
 * Starts `hearth daemon` as a child process (foreground) and resolves once it logs that it listens; on a
 * timeout the child is killed, so no daemon outlives a failed test. `onSpawn` sees the child before anything
 * can fail, to register it for cleanup.
 */
export function spawnDaemon(
  args: string[],
  env: Record<string, string | undefined> = cleanEnv(),
  timeoutMs = 30_000,
  onSpawn?: (child: ChildProcess) => void,
): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [...process.execArgv, cliPath, 'daemon', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  onSpawn?.(child);
  let out = '';
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const logs = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown> & { level: number; msg: string });
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`daemon did not listen within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    timer.unref();
    const onData = (d: Buffer) => {
      out += d;
      if (out.includes('hearth is listening')) {
        clearTimeout(timer);
        resolvePromise({ child, pid: child.pid!, output: () => out, logs, exited });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code} before listening:\n${out}`));
    });
  });
}
