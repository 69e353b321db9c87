// Atomic writes: a temp file in the same directory, fsync, rename over the target. Readers see the old
// file or the new one, never a part. Writes to one path wait for each other (a per-path lock), so an
// `if_match` check and the write it guards cannot interleave with another writer of this daemon.
import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { HearthError } from '../../src/errors.js';
import { ContentCache, describe, identityOf } from './content.js';

const locks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier holder of `key` is done. */
export async function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = locks.get(key) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.catch(() => {});
  locks.set(key, tail);
  try {
    return await run;
  } finally {
    if (locks.get(key) === tail) locks.delete(key);
  }
}

export interface WriteRequest {
  path: string;
  bytes: Buffer;
  ifMatch?: string;
}

/** A full disk or quota is the machine's state, not a bug: 507 NO_SPACE rather than a 500. */
function noSpace(path: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT' ? new HearthError('NO_SPACE', `${path} was not written: no space left on the device (the file is unchanged)`) : err;
}

export async function writeAtomic(files: ContentCache, request: WriteRequest): Promise<{ path: string; size: number; sha256: string }> {
  return write(files, request).catch((err: unknown) => {
    throw noSpace(request.path, err);
  });
}

async function write(files: ContentCache, { path, bytes, ifMatch }: WriteRequest): Promise<{ path: string; size: number; sha256: string }> {
  return withLock(path, async () => {
    let mode = 0o644;
    try {
      const current = await stat(path);
      if (!current.isFile()) throw new HearthError('NOT_A_FILE', `${path} is not a regular file`);
      mode = current.mode & 0o7777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (ifMatch !== undefined) throw new HearthError('CONFLICT', `${path} does not exist, so it cannot match ${ifMatch}`);
    }
    if (ifMatch !== undefined) {
      const current = await files.read(path, Number.MAX_SAFE_INTEGER);
      if (current.sha256 !== ifMatch) {
        throw new HearthError('CONFLICT', `${path} changed: its sha256 is ${current.sha256}, not ${ifMatch}`);
      }
    }
    const temp = join(dirname(path), `.${basename(path)}.hearth-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(bytes);
      await handle.chmod(mode); // the umask may have narrowed it
      await handle.sync();
    } catch (err) {
      await handle.close();
      await rm(temp, { force: true });
      throw err;
    }
    await handle.close();
    try {
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    const after = await stat(path);
    const data = describe(path, bytes, after);
    await files.remember(path, data, identityOf(after));
    return { path, size: data.size, sha256: data.sha256 };
  });
}
