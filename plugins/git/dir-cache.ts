// The directory cache and the walk for untracked and ignored files. Every directory walked is kept with
// its listing less the tracked files (the untracked and ignored names, and every subdirectory as `name/`):
// what git's untracked cache keeps, and what is persisted so a restart re-reads only the directories
// whose identity changed. What the listings mean (untracked, ignored, not walked) is decided from them
// with the ignore rules of now, so a changed .gitignore or excludes file needs no directory read again.
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import { join, resolve } from 'node:path';
import { comparePaths } from './index-file.js';
import type { IgnoreRules } from './ignore-rules.js';
import { COOKIE_PREFIX } from '../../src/services/dir-watch.js';

/** What the cache asks of the index. */
export interface Tracked {
  /** A tracked file (any stage) or gitlink at `path`. */
  isTracked(path: string): boolean;
  isGitlink(path: string): boolean;
  /** A directory with tracked files below it. */
  hasDir(dir: string): boolean;
}

export interface Watches {
  add(dir: string): boolean;
  delete(dir: string): void;
}

/** A directory's identity, stated before its listing was known, and the hash of its tracked names then. */
export interface DirId {
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  takenAt: number;
  tracked: string;
}

export interface DirNode {
  /** Walked only because it holds tracked files: everything untracked in it is ignored. */
  ignored: boolean;
  /** The listing less tracked files: file names, and subdirectories as `name/`. */
  entries: Set<string>;
  gitignore: boolean;
  /** The identity its listing is known to go with; none while the listing changed since it was stated. */
  id?: DirId;
}

/** A listing known good from before (the persisted state), used instead of reading the directory. */
export type Listed = (dir: string) => { entries: string[]; gitignore: boolean; id?: DirId } | undefined;

/** git's is_git_directory: HEAD, objects/ and refs/ (or a commondir file standing for the last two). */
async function isGitDir(dir: string): Promise<boolean> {
  const [head, objects, refs, common] = await Promise.all(['HEAD', 'objects', 'refs', 'commondir'].map((name) => stat(join(dir, name)).catch(() => null)));
  return head !== null && head !== undefined && head.isFile() && ((objects?.isDirectory() && refs?.isDirectory()) || common?.isFile() === true);
}

export class DirCache {
  readonly #root: string;
  readonly #tracked: Tracked;
  readonly #watch: Watches;
  rules!: IgnoreRules;
  /** Walked directories (relative, '' for the root). */
  readonly dirs = new Map<string, DirNode>();
  readonly untracked = new Set<string>();
  readonly ignoredFiles = new Set<string>();
  /** Ignored directories not walked (their files are listed only when asked for). */
  readonly ignoredDirs = new Set<string>();
  /** Directories read from the disk (not from a listing known before), since the cache was made. */
  reads = 0;
  /**
   * What answers derive from the sets above and the tracked directories (the sorted listings of each
   * untracked mode, the directories holding untracked files), kept until one of them changes.
   */
  readonly views = new Map<string, string[] | Set<string>>();

  constructor(root: string, tracked: Tracked, watch: Watches) {
    this.#root = root;
    this.#tracked = tracked;
    this.#watch = watch;
  }

  /**
   * Walks the whole worktree again, taking a directory's listing from `listed` where it has one. The
   * watches of directories walked before stay (a watch dropped and made again would miss what happened
   * in between); those of directories no longer walked are closed after.
   */
  async walkAll(listed?: Listed): Promise<void> {
    const before = [...this.dirs.keys(), ...[...this.untracked].filter((p) => p.endsWith('/')).map((p) => p.slice(0, -1))];
    this.dirs.clear();
    this.untracked.clear();
    this.ignoredFiles.clear();
    this.ignoredDirs.clear();
    this.views.clear();
    await this.#walk('', false, listed);
    for (const dir of before) if (!this.dirs.has(dir) && !this.untracked.has(`${dir}/`)) this.#watch.delete(join(this.#root, dir));
  }

  /** Reads directory `dir` (or takes its listing from `listed`), watches it and classifies its entries. */
  async #walk(dir: string, ignored: boolean, listed?: Listed): Promise<void> {
    const abs = dir ? join(this.#root, dir) : this.#root;
    // Watched before it is read: an entry made after the listing is reported, one made before is listed.
    this.#watch.add(abs);
    const known = listed?.(dir);
    let entries: string[];
    let gitignore: boolean;
    if (known) {
      // Files tracked now (added to the index since the listing was taken) are not listed.
      entries = known.entries.filter((name) => name.endsWith('/') || !this.#tracked.isTracked(dir ? `${dir}/${name}` : name));
      gitignore = known.gitignore;
    }
    else {
      let list: Dirent[];
      try {
        list = await readdir(abs, { withFileTypes: true });
      } catch {
        this.#watch.delete(abs);
        return;
      }
      this.reads++;
      entries = [];
      gitignore = false;
      for (const e of list) {
        if (e.name === '.gitignore') gitignore = true;
        // git never lists an entry named `.git`: the repository's own, or one made inside a tracked directory.
        if (e.name === '.git') continue;
        if (e.isDirectory()) entries.push(`${e.name}/`);
        else if (!e.name.startsWith(COOKIE_PREFIX) && !this.#tracked.isTracked(dir ? `${dir}/${e.name}` : e.name)) entries.push(e.name);
      }
    }
    const node: DirNode = { ignored, entries: new Set(entries), gitignore, ...(known?.id ? { id: known.id } : {}) };
    this.dirs.set(dir, node);
    if (!ignored) this.rules.loadDir(dir, gitignore);
    const subdirs: Array<Promise<void>> = [];
    for (const name of entries) {
      const isDir = name.endsWith('/');
      const base = isDir ? name.slice(0, -1) : name;
      const path = dir ? `${dir}/${base}` : base;
      const work = this.#classify(path, isDir, ignored, listed);
      if (work) subdirs.push(work);
    }
    await Promise.all(subdirs);
  }

  /** Decides what an entry of a walked directory is; returns the walk of a subdirectory when there is one. */
  #classify(path: string, isDir: boolean, parentIgnored: boolean, listed?: Listed): Promise<void> | undefined {
    this.views.clear();
    if (!isDir) {
      if (this.#tracked.isTracked(path)) return;
      if (parentIgnored || this.rules.isIgnored(path, false)) this.ignoredFiles.add(path);
      else this.untracked.add(path);
      return;
    }
    const tracked = this.#tracked.hasDir(path);
    if (!tracked && this.#tracked.isGitlink(path)) return;
    const ignored = parentIgnored || this.rules.isIgnored(path, true);
    if (tracked) return this.#walk(path, ignored, listed);
    if (ignored) {
      this.ignoredDirs.add(path);
      return;
    }
    return this.#walkUntrackedDir(path, listed);
  }

  /** A directory with no tracked files: a nested repository is listed as `dir/`, anything else is walked. */
  async #walkUntrackedDir(path: string, listed?: Listed): Promise<void> {
    if (await this.isNestedRepo(path)) {
      this.untracked.add(`${path}/`);
      this.views.clear();
      // Watched itself (not walked): its `.git` removed makes it a plain directory again.
      this.#watch.add(join(this.#root, path));
    } else await this.#walk(path, false, listed);
  }

  /**
   * Whether `path` holds a repository of its own (git's is_nonbare_repository_dir): a `.git` directory that
   * is a git directory, or a `.git` file naming one. Anything else named `.git` leaves it a plain directory.
   */
  async isNestedRepo(path: string): Promise<boolean> {
    const dotGit = join(this.#root, path, '.git');
    const s = await lstat(dotGit).catch(() => null);
    if (!s) return false;
    if (s.isDirectory()) return isGitDir(dotGit);
    if (!s.isFile()) return false;
    const text = await readFile(dotGit, 'utf8').catch(() => '');
    const m = /^gitdir: (.+?)\s*$/m.exec(text);
    return m !== null && isGitDir(resolve(join(this.#root, path), m[1]!));
  }

  /**
   * After an event on `path` (tracked entries are the caller's): its untracked standing decided again.
   * `isDir`: what a stat of it taken after the event found (null: gone), when the caller has one.
   */
  async refresh(path: string, isDir?: boolean | null): Promise<void> {
    if (path === '') {
      await this.rewalk('');
      return;
    }
    const slash = path.lastIndexOf('/');
    const parent = slash < 0 ? '' : path.slice(0, slash);
    const name = path.slice(slash + 1);
    // A `.git` made or removed in a directory without tracked files: whether that directory is a nested
    // repository (listed as `dir/`, not walked) changed.
    if (name === '.git' && parent !== '' && !this.#tracked.hasDir(parent)) {
      await this.refresh(parent);
      return;
    }
    const node = this.dirs.get(parent);
    if (node === undefined) {
      this.#forget(path);
      return; // inside a directory that is not walked (ignored, or gone)
    }
    // git never lists an entry named `.git` (a repository made inside a tracked directory included).
    if (name === '.git') return;
    if (name !== '.gitignore') this.#forget(path);
    node.entries.delete(name);
    node.entries.delete(`${name}/`);
    delete node.id;
    if (isDir === undefined) isDir = await lstat(join(this.#root, path)).then((st) => st.isDirectory(), () => null);
    if (isDir) node.entries.add(`${name}/`);
    else if (isDir === false && !this.#tracked.isTracked(path)) node.entries.add(name);
    // A .gitignore made, changed or removed: everything below its directory is decided again, from the
    // listings as they are (a rule changes what an entry means, not which entries there are).
    if (name === '.gitignore') {
      node.gitignore = isDir === false;
      await this.rewalk(parent, true);
      return;
    }
    if (isDir !== null) await this.#classify(path, isDir, node.ignored);
  }

  /** `dir` walked again: read again, or (`reuse`) classified again from the listings it and its subdirectories have now. */
  async rewalk(dir: string, reuse = false): Promise<void> {
    const ignored = this.dirs.get(dir)?.ignored ?? false;
    let listed: Listed | undefined;
    if (reuse) {
      const now = new Map<string, { entries: string[]; gitignore: boolean; id?: DirId }>();
      const below = dir === '' ? '' : `${dir}/`;
      for (const [d, node] of this.dirs) if (d === dir || d.startsWith(below)) now.set(d, { entries: [...node.entries], gitignore: node.gitignore, ...(node.id ? { id: node.id } : {}) });
      listed = (d) => now.get(d);
    }
    this.#forget(dir, true);
    this.rules.forgetDir(dir);
    await this.#walk(dir, ignored, listed);
  }

  /** Drops what is known of `path` and below it (with `keepSelf`, only below it). */
  #forget(path: string, keepSelf = false): void {
    this.views.clear();
    if (!keepSelf) {
      this.untracked.delete(path);
      this.ignoredFiles.delete(path);
      this.ignoredDirs.delete(path);
      if (this.untracked.delete(`${path}/`)) this.#watch.delete(join(this.#root, path));
    }
    // Only a directory has anything below it: a file's event costs no scan of the sets.
    if (path !== '' && !this.dirs.has(path)) return;
    const below = path === '' ? '' : `${path}/`;
    for (const set of [this.untracked, this.ignoredFiles, this.ignoredDirs]) {
      for (const p of set) {
        if (p.startsWith(below) && p !== below) {
          set.delete(p);
          // A nested repository's own watch (see #walkUntrackedDir).
          if (set === this.untracked && p.endsWith('/')) this.#watch.delete(join(this.#root, p.slice(0, -1)));
        }
      }
    }
    for (const d of [...this.dirs.keys()]) {
      if ((!keepSelf && d === path) || (d.startsWith(below) && d !== path)) {
        this.dirs.delete(d);
        this.#watch.delete(join(this.#root, d));
      }
    }
  }

  /**
   * The outermost directory above `path` (a file, or a directory written `dir/`) that holds no tracked file:
   * what normal mode lists in its place. Null when `path` is directly in a directory with tracked files.
   */
  outermostUntracked(path: string): string | null {
    for (let i = path.indexOf('/'); i > 0 && i < path.length - 1; i = path.indexOf('/', i + 1)) {
      const dir = path.slice(0, i);
      if (!this.#tracked.hasDir(dir)) return dir;
    }
    return null;
  }

  /**
   * Sorted. `all`: every untracked file (a nested repository as `dir/`); `normal`: a directory without
   * tracked files as `dir/`.
   */
  untrackedPaths(untracked: 'normal' | 'all'): string[] {
    let view = this.views.get(untracked) as string[] | undefined;
    if (view) return view;
    if (untracked === 'all') view = [...this.untracked];
    else {
      const out = new Set<string>();
      for (const path of this.untracked) {
        const top = this.outermostUntracked(path);
        out.add(top === null ? path : `${top}/`);
      }
      view = [...out];
    }
    view = view.filter(this.listable).sort(comparePaths);
    this.views.set(untracked, view);
    return view;
  }

  /** A directory entry (`dir/`) whose path the index has as a file is not listed, as git drops it. */
  readonly listable = (path: string): boolean => !path.endsWith('/') || !this.#tracked.isTracked(path.slice(0, -1));

  /** Every directory with untracked files (or a nested repository) somewhere below it. */
  #holdingUntracked(): Set<string> {
    let holding = this.views.get('holding') as Set<string> | undefined;
    if (holding) return holding;
    holding = new Set<string>();
    for (const path of this.untracked) {
      for (let i = path.indexOf('/'); i > 0 && i < path.length - 1; i = path.indexOf('/', i + 1)) holding.add(path.slice(0, i));
    }
    this.views.set('holding', holding);
    return holding;
  }

  /**
   * The ignored entries, as git lists them:
   * - `matching`: ignored files one by one, and a directory that is ignored itself (by a pattern, or by being
   *   in an ignored directory) as `dir/`, even an empty one; the same for both untracked modes.
   * - `traditional` with `all`: every ignored file one by one, the ones below ignored directories too.
   * - `traditional` with `normal`: inside a directory without tracked files, the outermost directory that holds
   *   no untracked file stands for the ignored files below it (`dir/`); an ignored directory with no file
   *   below it is not listed.
   */
  async ignoredPaths(untracked: 'normal' | 'all', ignored: 'traditional' | 'matching'): Promise<string[]> {
    if (ignored === 'matching') return [...this.ignoredFiles, ...[...this.ignoredDirs].map((d) => `${d}/`)];
    if (untracked === 'all') {
      const out = [...this.ignoredFiles];
      for (const dir of this.ignoredDirs) out.push(...(await this.#filesUnder(dir)));
      return out;
    }
    const holding = this.#holdingUntracked();
    const out = new Set<string>();
    const place = (path: string, isDir: boolean): void => {
      const written = isDir ? `${path}/` : path;
      const top = this.outermostUntracked(written);
      if (top !== null) {
        for (let i = top.length; i > 0 && i < written.length - 1; i = written.indexOf('/', i + 1)) {
          const dir = written.slice(0, i);
          if (!holding.has(dir)) {
            out.add(`${dir}/`);
            return;
          }
        }
      }
      out.add(written);
    };
    for (const path of this.ignoredFiles) place(path, false);
    const dirs = [...this.ignoredDirs];
    const filled = await Promise.all(dirs.map((d) => this.#holdsFile(d)));
    dirs.forEach((d, i) => filled[i] && place(d, true));
    return [...out];
  }

  /** Whether a file (or a nested repository) is anywhere below directory `dir`: read until the first is found. */
  async #holdsFile(dir: string): Promise<boolean> {
    if (await this.isNestedRepo(dir)) return true;
    let list: Dirent[];
    try {
      list = await readdir(join(this.#root, dir), { withFileTypes: true });
    } catch {
      return false;
    }
    if (list.some((e) => !e.isDirectory())) return true;
    for (const e of list) if (await this.#holdsFile(`${dir}/${e.name}`)) return true;
    return false;
  }

  /** Every file below an ignored directory (listed only for traditional ignored with untracked `all`, not kept warm). */
  async #filesUnder(dir: string): Promise<string[]> {
    // A nested repository is listed as itself (`dir/`), as git lists an untracked one.
    if (await this.isNestedRepo(dir)) return [`${dir}/`];
    let list: Dirent[];
    try {
      list = await readdir(join(this.#root, dir), { withFileTypes: true });
    } catch {
      return [];
    }
    const out: string[] = [];
    for (const e of list) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory()) out.push(...(await this.#filesUnder(path)));
      else if (!this.#tracked.isTracked(path)) out.push(path);
    }
    return out;
  }
}
