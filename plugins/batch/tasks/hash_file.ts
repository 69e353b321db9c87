// `hash_file`: paths under the roots → {sha256, git_oid, size} (git_oid is what `git hash-object` prints).
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { perItem } from '../task-kit.js';
import { containedPath, readPieces, type PathContext } from './paths.js';

export interface FileHash {
  sha256: string;
  git_oid: string;
  size: number;
}

export async function hashFile(input: string, context: PathContext): Promise<FileHash> {
  const path = await containedPath(input, context);
  const { size } = await stat(path);
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1').update(`blob ${size}\0`);
  const read = await readPieces(path, (piece) => {
    sha256.update(piece);
    sha1.update(piece);
  });
  if (read !== size) throw new Error(`${input} changed while it was hashed`);
  return { sha256: sha256.digest('hex'), git_oid: sha1.digest('hex'), size };
}

export default perItem(hashFile);
