// The state dir: 0700, one daemon per dir (a pid lock), the token (0600), and where a running daemon listens.
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export const stateFiles = (stateDir: string) => ({
  pid: join(stateDir, 'hearth.pid'),
  token: join(stateDir, 'token'),
  runtime: join(stateDir, 'daemon.json'),
  log: join(stateDir, 'hearth.log'),
});

/** Creates the dir (and parents) private to its owner; tightens a looser mode on the dir itself. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

export class AlreadyRunningError extends Error {
  readonly pid: number;
  constructor(pid: number, stateDir: string) {
    super(`hearth is already running for ${stateDir} (pid ${pid})`);
    this.name = 'AlreadyRunningError';
    this.pid = pid;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether `pid` is a running hearth daemon. A pid file outlives a crash or a reboot, and its pid may since
 * belong to another process: where /proc shows the command line, it must be `... hearth|cli.js daemon ...`.
 */
export function isHearthDaemon(pid: number): boolean {
  if (!isAlive(pid)) return false;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return true; // no /proc (macOS): liveness is all we can know
  }
  const args = cmdline.split('\0');
  return args.includes('daemon') && args.some((a) => /(^|\/)(hearth|cli\.[jt]s)$/.test(a));
}

export function readPid(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the state dir's pid lock (created with O_EXCL, so two starts cannot both win). A pid file whose
 * process is gone (left by kill -9 or a crash) is stale and replaced.
 */
export function acquirePidLock(stateDir: string): () => void {
  const path = stateFiles(stateDir).pid;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return () => {
        if (readPid(path) === process.pid) rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = readPid(path);
      if (pid !== undefined && pid !== process.pid && isHearthDaemon(pid)) throw new AlreadyRunningError(pid, stateDir);
      rmSync(path, { force: true });
    }
  }
  const pid = readPid(path);
  throw new AlreadyRunningError(pid ?? 0, stateDir);
}

/** The bearer token for TCP: made once, kept with mode 0600. */
export function loadOrCreateToken(stateDir: string): string {
  const path = stateFiles(stateDir).token;
  try {
    const fd = openSync(path, 'wx', 0o600);
    const token = process.getBuiltinModule('node:crypto').randomBytes(32).toString('base64url');
    try {
      writeSync(fd, `${token}\n`);
    } finally {
      closeSync(fd);
    }
    return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const token = readFileSync(path, 'utf8').trim();
  if (token.length < 16) throw new Error(`the token file ${path} is empty or too short; remove it to make a new one`);
  return token;
}

export interface RuntimeInfo {
  pid: number;
  version: string;
  build: string;
  socket: string;
  host: string;
  port: number;
  started_at: string;
}

export function writeRuntimeInfo(stateDir: string, info: RuntimeInfo): void {
  const path = stateFiles(stateDir).runtime;
  writeFileSync(`${path}.tmp`, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export function readRuntimeInfo(stateDir: string): RuntimeInfo | undefined {
  try {
    return JSON.parse(readFileSync(stateFiles(stateDir).runtime, 'utf8')) as RuntimeInfo;
  } catch {
    return undefined;
  }
}
