// Reading files through the cache without ever serving a stale answer. Every read stats the file; a cached
// entry is served only when the file's identity (size, mtime, ctime, inode, device) is what it was when
// the entry was made, and the entry is not racy: a file modified within RACY_MS before the entry was made
// could have changed again within the same timestamp tick without changing its identity (git's racy-git
// rule), so such an entry is re-read until it is older than that window. The lookup is the cache's cached():
// a read that comes while another of the same path is in flight is answered by it if the entry it leaves is
// fresh for this read's own stat.
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { HearthError } from '../../src/errors.js';
import type { CachedFunction, CacheNamespace } from '../../src/services/cache.js';

/** Coarsest timestamp granularity we allow for (FAT has 2 s; ext4/APFS/NTFS are far finer). */
export const RACY_MS = 2000;
/** Largest file answered as JSON content by /files/read. */
export const READ_LIMIT = 10 * 1024 * 1024;

export interface Identity {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  dev: number;
}

export interface FileContent {
  path: string;
  size: number;
  mtime: string;
  sha256: string;
  encoding: 'utf8' | 'base64';
  content: string;
}

/** What a cache entry made from a file keeps to tell whether it still describes the file. */
export interface Stamped {
  /** The file's identity when the entry was made (its stat after the read). */
  identity: Identity;
  /** Date.now() before the read. */
  cachedAt: number;
}

interface Entry extends Stamped {
  data: FileContent;
}

/** Set by a call that reads the file itself rather than answer from the cache. */
interface ReadFlag {
  read: boolean;
}

export const identityOf = (s: Stats): Identity => ({ size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino, dev: s.dev });

export const sameIdentity = (a: Identity, b: Identity): boolean =>
  a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.dev === b.dev;

/** Fresh: same identity, and last modified clearly before the entry was made. */
export function isFresh(entry: Stamped, now: Identity): boolean {
  return sameIdentity(entry.identity, now) && now.mtimeMs < entry.cachedAt - RACY_MS;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

export function describe(path: string, bytes: Buffer, s: Stats): FileContent {
  let encoding: FileContent['encoding'] = 'utf8';
  let content: string;
  try {
    content = decoder.decode(bytes);
  } catch {
    encoding = 'base64';
    content = bytes.toString('base64');
  }
  return {
    path,
    size: bytes.length,
    mtime: s.mtime.toISOString(),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    encoding,
    content,
  };
}

/** The stat of a regular file, or the catalogue's error for what it is instead. */
export async function statFile(path: string): Promise<Stats> {
  let s: Stats;
  try {
    s = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new HearthError('NOT_FOUND', `${path} does not exist`);
    throw err;
  }
  if (!s.isFile()) throw new HearthError('NOT_A_FILE', `${path} is not a regular file`);
  return s;
}

export class ContentCache {
  /** The entry of a path, given the identity its caller has just seen. */
  readonly #entry: CachedFunction<[path: string, now: Identity, flag: ReadFlag], Entry>;

  constructor(private readonly cache: CacheNamespace) {
    this.#entry = cache.cached<[path: string, now: Identity, flag: ReadFlag], Entry>(
      {
        key: (path) => `content:${path}`,
        validate: (e, _path, now) => isFresh(e, now),
        // Store only what is known whole: the file did not change while it was read.
        store: (e, _path, now) => sameIdentity(e.identity, now) && e.data.size === now.size,
      },
      async (path, _now, flag) => {
        flag.read = true;
        const cachedAt = Date.now();
        const bytes = await readFile(path);
        const after = await stat(path);
        return { data: describe(path, bytes, after), identity: identityOf(after), cachedAt };
      },
    );
  }

  /** The file's content and hash; `cached` says whether the bytes came from the cache. */
  async read(path: string, limit = READ_LIMIT): Promise<FileContent & { cached: boolean }> {
    const before = await statFile(path);
    if (before.size > limit) {
      throw new HearthError('PAYLOAD_TOO_LARGE', `${path} is ${before.size} bytes; at most ${limit} are answered here`);
    }
    const flag: ReadFlag = { read: false };
    const { data } = await this.#entry(path, identityOf(before), flag);
    return { ...data, cached: !flag.read };
  }

  async remember(path: string, data: FileContent, identity: Identity, cachedAt = Date.now()): Promise<void> {
    await this.cache.set<Entry>(`content:${path}`, { data, identity, cachedAt });
  }
}
