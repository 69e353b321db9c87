// Hashes of files for POST /files/hash (src/file-hash.ts streams them), cached by path and identity.
import { stat } from 'node:fs/promises';
import { hashFile, type FileHash } from '../../src/file-hash.js';
import type { CacheNamespace } from '../../src/services/cache.js';
import { identityOf, isFresh, sameIdentity, statFile, type Identity } from './content.js';

export { hashFile, type FileHash };

interface Entry {
  hash: FileHash;
  identity: Identity;
  cachedAt: number;
}

/** Hashes a file of a known size: in this thread (hashFile), or on the worker pool. */
export type Hasher = (path: string, size: number) => Promise<FileHash>;

/** The answer for one path: its hashes, named by the path. */
export async function cachedHash(cache: CacheNamespace, path: string, hasher: Hasher = hashFile): Promise<FileHash & { path: string }> {
  const now = identityOf(await statFile(path));
  const hit = await cache.get<Entry>(`hash:${path}`, { validate: (e) => isFresh(e.identity, e.cachedAt, now) });
  if (hit) return { path, ...hit.hash };
  const cachedAt = Date.now();
  const hash = await hasher(path, now.size);
  const after = identityOf(await stat(path));
  // Cached only if the file did not change while it was hashed.
  if (sameIdentity(now, after)) {
    await cache.set<Entry>(`hash:${path}`, { hash, identity: after, cachedAt });
  }
  return { path, ...hash };
}
