// Finding the repository a path belongs to, as git does: walk up to the first directory with a `.git`
// directory, or a `.git` file pointing elsewhere (linked worktrees, submodules).
import { lstat, readFile, realpath, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { HearthError } from '../../src/errors.js';

export interface RepoPaths {
  /** The worktree's root. */
  worktree: string;
  /** Where this worktree's HEAD and index live. */
  gitdir: string;
  /** Where refs, objects and config live (the main `.git` for a linked worktree). */
  commondir: string;
}

async function gitdirAt(dir: string): Promise<string | null> {
  const dotgit = join(dir, '.git');
  let s;
  try {
    s = await lstat(dotgit);
  } catch {
    return null;
  }
  if (s.isDirectory()) return (await isGitdir(dotgit)) ? dotgit : null;
  if (!s.isFile()) return null;
  const text = await readFile(dotgit, 'utf8').catch(() => '');
  const m = /^gitdir: (.+?)\s*$/m.exec(text);
  if (!m) return null;
  const target = resolve(dir, m[1]!);
  return (await isGitdir(target)) ? target : null;
}

async function isGitdir(dir: string): Promise<boolean> {
  try {
    return (await stat(join(dir, 'HEAD'))).isFile();
  } catch {
    return false;
  }
}

/** The repository containing `path` (a file or directory), or null. `path` must be real (no links). */
export async function findRepo(path: string): Promise<RepoPaths | null> {
  let dir = path;
  try {
    if (!(await stat(dir)).isDirectory()) dir = dirname(dir);
  } catch {
    dir = dirname(dir);
  }
  for (;;) {
    if (dir.endsWith('/.git') || dir.includes('/.git/')) {
      dir = dir.slice(0, dir.indexOf('/.git')) || '/';
      continue;
    }
    const gitdir = await gitdirAt(dir);
    if (gitdir) {
      const realGitdir = await realpath(gitdir);
      let commondir = realGitdir;
      try {
        commondir = await realpath(resolve(realGitdir, (await readFile(join(realGitdir, 'commondir'), 'utf8')).trim()));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      return { worktree: dir, gitdir: realGitdir, commondir };
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

export function notARepository(input: string): HearthError {
  return new HearthError('NOT_A_REPOSITORY', `${JSON.stringify(input)} is not inside a git repository`);
}
