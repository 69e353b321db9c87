// `hash_file`: paths under the roots → {size, sha256, git_oid} (git_oid is what `git hash-object` prints).
import { stat } from 'node:fs/promises';
import { hashFile as hashContent, type FileHash } from '../../../src/file-hash.js';
import { perItem } from '../task-kit.js';
import { containedPath, type PathContext } from './paths.js';

export async function hashFile(input: string, context: PathContext): Promise<FileHash> {
  const path = await containedPath(input, context);
  return hashContent(path, (await stat(path)).size);
}

export default perItem(hashFile);
