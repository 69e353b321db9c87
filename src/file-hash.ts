// Content hashes of files: sha256 and git's blob id. One helper for the git status engine, the files API
// and the batch operation (a plugin may not import another plugin's files; worker threads import it too).
import { createHash, type Hash } from 'node:crypto';
import { readPieces } from './read-pieces.js';

export interface FileHash {
  size: number;
  sha256: string;
  /** What `git hash-object` prints: sha1 of "blob <size>\0" and the bytes. */
  git_oid: string;
}

/** git's object header comes before the bytes, so the size must be known before the first one. */
function blobHash(size: number): Hash {
  return createHash('sha1').update(`blob ${size}\0`);
}

/** The id git gives `content` as a blob. */
export function gitBlobId(content: Buffer): string {
  return blobHash(content.length).update(content).digest('hex');
}

/** Both hashes of a file of a known size in one streamed read; a file that is not `size` bytes changed meanwhile. */
export async function hashFile(path: string, size: number): Promise<FileHash> {
  const sha256 = createHash('sha256');
  const sha1 = blobHash(size);
  const read = await readPieces(path, (piece) => {
    sha256.update(piece);
    sha1.update(piece);
  });
  if (read !== size) throw new Error(`${path} changed while it was hashed`);
  return { size, sha256: sha256.digest('hex'), git_oid: sha1.digest('hex') };
}
