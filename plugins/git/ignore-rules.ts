// Which untracked paths git ignores: each directory's `.gitignore` (deeper files win), then
// `.git/info/exclude`, then the excludes file (`core.excludesFile` as GitConfig.excludesFile resolves it,
// default `$XDG_CONFIG_HOME/git/ignore`). Patterns are matched by the `ignore` package, which follows the
// gitignore spec; the precedence across files is ours.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { fileId, type GitConfig } from './git-config.js';

function readRules(path: string): Ignore | null {
  try {
    return ignore({ allowRelativePaths: true }).add(readFileSync(path, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
    throw err;
  }
}

export class IgnoreRules {
  readonly #worktree: string;
  /** info/exclude, then the global excludes file: lowest precedence last. */
  readonly #repoWide: Ignore[];
  /** Directory (relative, '' for the root) -> its .gitignore rules, null when it has none. */
  readonly #perDir = new Map<string, Ignore | null>();
  /** The files whose change means every decision must be made again. */
  readonly sources: string[];
  /** The identity of each source file when it was read ('' when missing). */
  readonly #sourceIds: string[];

  constructor(worktree: string, commondir: string, config: GitConfig) {
    this.#worktree = worktree;
    this.sources = [join(commondir, 'info', 'exclude'), config.excludesFile()];
    this.#sourceIds = this.sources.map(fileId);
    this.#repoWide = this.sources.map(readRules).filter((r): r is Ignore => r !== null);
  }

  /**
   * Whether `info/exclude` or the excludes file changed since they were read. The excludes file lives
   * outside the repository, where no watch reports it, so this is asked on every update (two stats).
   */
  sourcesChanged(): boolean {
    return this.sources.some((path, i) => fileId(path) !== this.#sourceIds[i]);
  }

  /** Reads (again) the `.gitignore` of directory `dir` (relative to the worktree). */
  loadDir(dir: string, present = true): void {
    this.#perDir.set(dir, present ? readRules(join(this.#worktree, dir, '.gitignore')) : null);
  }

  /** Forgets the rules of `dir` and of every directory below it. */
  forgetDir(dir: string): void {
    for (const d of this.#perDir.keys()) if (d === dir || dir === '' || d.startsWith(`${dir}/`)) this.#perDir.delete(d);
  }

  /** Whether git ignores `path` (relative to the worktree); `isDir` matters for patterns ending in `/`. */
  isIgnored(path: string, isDir: boolean): boolean {
    const suffix = isDir ? '/' : '';
    // Each directory above the path, deepest first, to the root ('').
    for (let slash = path.lastIndexOf('/'); ; slash = path.lastIndexOf('/', slash - 1)) {
      const key = slash < 0 ? '' : path.slice(0, slash);
      const rules = this.#perDir.get(key);
      if (rules) {
        const r = rules.test((key ? path.slice(key.length + 1) : path) + suffix);
        if (r.ignored) return true;
        if (r.unignored) return false;
      }
      if (slash <= 0) break;
    }
    for (const rules of this.#repoWide) {
      const r = rules.test(path + suffix);
      if (r.ignored) return true;
      if (r.unignored) return false;
    }
    return false;
  }
}
