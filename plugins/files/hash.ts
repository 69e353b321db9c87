// sha256 and the git blob id of files, streamed (no whole file in memory), cached by path and identity.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { CacheNamespace } from '../../src/services/cache.js';
import { identityOf, isFresh, sameIdentity, statFile, type Identity } from './content.js';

export interface FileHash {
  path: string;
  size: number;
  sha256: string;
  /** What `git hash-object` prints: sha1 of "blob <size>\0" and the bytes. */
  git_oid: string;
}

export async function hashFile(path: string, size: number): Promise<FileHash> {
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1').update(`blob ${size}\0`);
  let read = 0;
  for await (const chunk of createReadStream(path)) {
    sha256.update(chunk as Buffer);
    sha1.update(chunk as Buffer);
    read += (chunk as Buffer).length;
  }
  if (read !== size) throw new Error(`${path} changed while it was hashed`);
  return { path, size, sha256: sha256.digest('hex'), git_oid: sha1.digest('hex') };
}

interface Entry {
  hash: FileHash;
  identity: Identity;
  cachedAt: number;
}

/** Hashes a file of a known size: in this thread (hashFile), or on the worker pool. */
export type Hasher = (path: string, size: number) => Promise<FileHash>;

export async function cachedHash(cache: CacheNamespace, path: string, hasher: Hasher = hashFile): Promise<FileHash> {
  const now = identityOf(await statFile(path));
  const hit = await cache.get<Entry>(`hash:${path}`, { validate: (e) => isFresh(e.identity, e.cachedAt, now) });
  if (hit) return hit.hash;
  const cachedAt = Date.now();
  const hash = await hasher(path, now.size);
  const after = identityOf(await stat(path));
  // Cached only if the file did not change while it was hashed.
  if (sameIdentity(now, after)) {
    await cache.set<Entry>(`hash:${path}`, { hash, identity: after, cachedAt });
  }
  return hash;
}
