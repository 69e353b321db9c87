// Hashes of files for POST /files/hash (src/file-hash.ts streams them), cached by path and identity.
import { stat } from 'node:fs/promises';
import { hashFile, type FileHash } from '../../src/file-hash.js';
import type { CacheNamespace } from '../../src/services/cache.js';
import { identityOf, isFresh, sameIdentity, statFile, type Identity, type Stamped } from './content.js';

export { hashFile, type FileHash };

interface Entry extends Stamped {
  hash: FileHash;
}

/** Hashes a file of a known size: in this thread (hashFile), or on the worker pool. */
export type Hasher = (path: string, size: number) => Promise<FileHash>;

/** The answer for one path (its hashes, named by the path), cached while the file keeps its identity. */
export function cachedHashes(cache: CacheNamespace, hasher: Hasher = hashFile): (path: string) => Promise<FileHash & { path: string }> {
  const entry = cache.cached<[path: string, now: Identity], Entry>(
    {
      key: (path) => `hash:${path}`,
      validate: (e, _path, now) => isFresh(e, now),
      // Cached only if the file did not change while it was hashed.
      store: (e, _path, now) => sameIdentity(e.identity, now),
    },
    async (path, now) => {
      const cachedAt = Date.now();
      const hash = await hasher(path, now.size);
      return { hash, identity: identityOf(await stat(path)), cachedAt };
    },
  );
  return async (path) => {
    const now = identityOf(await statFile(path));
    return { path, ...(await entry(path, now)).hash };
  };
}
