// The repositories hearth keeps warm: found from any path inside them, at most `max_watched_repos` at
// once (the least recently asked about is released: watches closed, memory freed), and released after
// `idle_release_seconds` without a question.
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { HearthError } from '../../src/errors.js';
import type { Roots } from '../../src/roots.js';
import type { DirEventListener, DirWatchSet } from '../../src/services/dir-watch.js';
import { ObjectReader } from './objects.js';
import { findRepo, notARepository, type RepoPaths } from './repo.js';
import { RepoState, type RepoStatus, type StatusOptions } from './status.js';

export interface ManagerOptions {
  roots: Roots;
  maxRepos: number;
  idleMs: number;
  watchDirs: (onEvent: DirEventListener) => DirWatchSet;
  /** lstat of many paths under `root` off this thread (the worker pool). */
  statMany?: (root: string, paths: string[]) => Promise<Float64Array>;
}

export class RepoManager {
  readonly roots: Roots;
  readonly #options: ManagerOptions;
  readonly #states = new Map<string, RepoState>();
  readonly #readers = new Map<string, ObjectReader>();
  /**
   * Directories known to be in no repository, with the change time of each directory looked at: a
   * `git init` (or a new `.git` file) in any of them changes that time, so a hit is checked by stats alone.
   */
  readonly #outside = new LRUCache<string, Array<[string, number]>>({ max: 4096 });
  readonly #timer: NodeJS.Timeout;

  constructor(options: ManagerOptions) {
    this.roots = options.roots;
    this.#options = options;
    this.#timer = setInterval(() => this.releaseIdle(), Math.min(60_000, Math.max(1000, options.idleMs / 2)));
    this.#timer.unref();
  }

  /** The repository of `input` (any path inside a worktree under the roots). */
  async locate(input: string): Promise<RepoPaths> {
    const real = await this.roots.resolve(input);
    const known = this.#outside.get(real);
    if (known && (await unchanged(known))) throw notARepository(input);
    const paths = await findRepo(real);
    if (!paths) {
      const times = await ancestorsTimes(real);
      // git's racy rule: a directory changed within the last 2 s could change again unseen in the same tick.
      if (times.every(([, ctime]) => ctime < Date.now() - 2000)) this.#outside.set(real, times);
      throw notARepository(input);
    }
    if (!this.roots.contains(paths.worktree)) {
      throw new HearthError('PATH_OUTSIDE_ROOTS', `the repository at ${JSON.stringify(paths.worktree)} is outside the configured roots`);
    }
    return paths;
  }

  reader(paths: RepoPaths): ObjectReader {
    let reader = this.#readers.get(paths.commondir);
    if (!reader) {
      reader = new ObjectReader(paths.commondir);
      this.#readers.set(paths.commondir, reader);
    }
    return reader;
  }

  state(paths: RepoPaths): RepoState {
    let state = this.#states.get(paths.worktree);
    if (state) {
      this.#states.delete(paths.worktree);
      this.#states.set(paths.worktree, state);
      return state;
    }
    const statMany = this.#options.statMany;
    state = new RepoState(
      paths,
      this.reader(paths),
      (worktree) => this.#submodule(worktree),
      (onEvent) => this.#options.watchDirs(onEvent),
      statMany && ((list) => statMany(paths.worktree, list)),
    );
    this.#states.set(paths.worktree, state);
    for (const [worktree, old] of this.#states) {
      if (this.#states.size <= this.#options.maxRepos) break;
      this.#release(worktree, old);
    }
    return state;
  }

  status(paths: RepoPaths, options: StatusOptions): Promise<RepoStatus> {
    return this.state(paths).status(options);
  }

  /** A submodule's HEAD and whether it has changes, tracked or untracked (git lists either as modified). */
  async #submodule(worktree: string): Promise<{ head: string | null; changed: boolean; untracked: boolean }> {
    const paths = await findRepo(worktree);
    if (!paths || paths.worktree !== worktree) return { head: null, changed: false, untracked: false }; // not checked out
    const { head, entries } = await this.status(paths, { untracked: true, ignored: false });
    return { head: head.oid, changed: entries.some((e) => e.x !== '?'), untracked: entries.some((e) => e.x === '?') };
  }

  releaseIdle(now = Date.now()): void {
    for (const [worktree, state] of this.#states) if (now - state.lastUsed >= this.#options.idleMs) this.#release(worktree, state);
  }

  #release(worktree: string, state: RepoState): void {
    state.close();
    this.#states.delete(worktree);
    if (![...this.#states.values()].some((s) => s.paths.commondir === state.paths.commondir)) {
      void this.#readers.get(state.paths.commondir)?.close();
      this.#readers.delete(state.paths.commondir);
    }
  }

  stats(): { repos: number; watched_dirs: number; tracked_files: number; degraded: string[] } {
    let watched = 0;
    let tracked = 0;
    const degraded: string[] = [];
    for (const s of this.#states.values()) {
      watched += s.watchedDirs;
      tracked += s.trackedFiles;
      if (s.degraded) degraded.push(`${s.paths.worktree}: ${s.degraded}`);
    }
    return { repos: this.#states.size, watched_dirs: watched, tracked_files: tracked, degraded };
  }

  close(): void {
    clearInterval(this.#timer);
    for (const [worktree, state] of this.#states) this.#release(worktree, state);
  }
}

async function ancestorsTimes(dir: string): Promise<Array<[string, number]>> {
  const out: Array<[string, number]> = [];
  for (let d = dir; ; d = dirname(d)) {
    try {
      out.push([d, (await stat(d)).ctimeMs]);
    } catch {
      out.push([d, -1]);
    }
    // A `.git` that is here but no repository (its HEAD missing or damaged) can be mended in place without
    // changing this directory's ctime: its own times and its HEAD's are part of the answer too.
    for (const p of [join(d, '.git'), join(d, '.git', 'HEAD')]) {
      const ctime = await stat(p).then((s) => s.ctimeMs, () => undefined);
      if (ctime !== undefined) out.push([p, ctime]);
    }
    if (dirname(d) === d) return out;
  }
}

async function unchanged(known: Array<[string, number]>): Promise<boolean> {
  for (const [dir, ctime] of known) {
    const now = await stat(dir).then((s) => s.ctimeMs, () => -1);
    if (now !== ctime) return false;
  }
  return true;
}
