// The repositories hearth keeps warm: found from any path inside them, at most `max_watched_repos` at
// once (the least recently asked about is released: watches closed, memory freed), and released after
// `idle_release_seconds` without a question. Both are lru-cache's: `max`, and `ttl` renewed by each
// question (`updateAgeOnGet`) with `ttlAutopurge`, whose timer releases an idle repository without waiting
// for another question; `dispose` runs on eviction, expiry and close alike. A released repository's warm
// state is written to the state dir first (see warm-state.ts), and the repositories warm at close are
// listed there, so the next start brings them up before anyone asks.
import { lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { HearthError } from '../../src/errors.js';
import type { Roots } from '../../src/roots.js';
import { ObjectReader } from './objects.js';
import { findRepo, notARepository, type RepoPaths } from './repo.js';
import { RepoState, type RepoServices, type RepoStatus, type StatusOptions } from './status.js';

export interface ManagerOptions extends RepoServices {
  roots: Roots;
  maxRepos: number;
  idleMs: number;
  /** Starts the worker pool's threads ahead of the first scan. */
  warmPool?: () => void;
  /**
   * Told when a worktree's warm state is released (evicted, idle, closed); `heldEvicted` when something
   * pinned it and the `max_watched_repos` bound pushed it out anyway.
   */
  onRelease?: (worktree: string, heldEvicted: boolean) => void;
}

/** setTimeout's limit (less the 1 ms lru-cache adds): a longer idle time would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 2;

export class RepoManager {
  readonly roots: Roots;
  readonly #options: ManagerOptions;
  readonly #states: LRUCache<string, RepoState>;
  /** One reader per object store, shared by the worktrees that use it (linked worktrees share one). */
  readonly #readers = new Map<string, ObjectReader>();
  /**
   * Directories known to be in no repository, with the change time of each directory looked at: a
   * `git init` (or a new `.git` file) in any of them changes that time, so a hit is checked by stats alone.
   */
  readonly #outside = new LRUCache<string, Array<[string, number]>>({ max: 4096 });
  /** Inputs located before, checked again by #stillThere. */
  readonly #located = new LRUCache<string, Located>({ max: 1024 });
  /** Releases still writing their state: close() waits for them. */
  readonly #closing = new Set<Promise<void>>();
  /** Worktrees held (an event subscriber's): not released for being idle, only by the `max_watched_repos` bound. */
  readonly #pins = new Map<string, number>();
  readonly #idleMs: number;

  constructor(options: ManagerOptions) {
    this.roots = options.roots;
    this.#options = options;
    this.#idleMs = Math.min(MAX_TIMER_MS, Math.ceil(options.idleMs));
    this.#states = new LRUCache<string, RepoState>({
      max: options.maxRepos,
      ttl: this.#idleMs,
      updateAgeOnGet: true,
      ttlAutopurge: true,
      dispose: (state, worktree, reason) => {
        options.onRelease?.(worktree, reason === 'evict' && this.#pins.has(worktree));
        const closing = state.close().finally(() => this.#closing.delete(closing));
        this.#closing.add(closing);
      },
      // After the entry is gone, so the worktrees still kept are what decides whether its reader stays.
      disposeAfter: (state) => this.#releaseReader(state.paths.commondir),
    });
  }

  /** The repository of `input` (any path inside a worktree under the roots). */
  async locate(input: string): Promise<RepoPaths> {
    const hit = this.#located.get(input);
    if (hit && this.#stillThere(input, hit)) return hit.paths;
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
    const dotGit = lstatSync(join(paths.worktree, '.git'), { throwIfNoEntry: false });
    if (dotGit) this.#located.set(input, { real, paths, dotGit: identity(dotGit) });
    return paths;
  }

  /**
   * Whether `input` still names the repository it named (what the walk up would find again), by synchronous
   * stats of a few microseconds each where the walk costs several round trips to libuv's threads: it resolves
   * to the same real path, no directory between that and the worktree has a `.git` of its own, the
   * worktree's `.git` is the same entry (a directory: the same inode; a file: the same inode, size and mtime),
   * and HEAD is there.
   */
  #stillThere(input: string, hit: Located): boolean {
    try {
      if (input.includes('\0') || realpathSync(this.roots.absolute(input)) !== hit.real || !this.roots.contains(hit.real)) return false;
      for (let d = hit.real; d !== hit.paths.worktree; d = dirname(d)) {
        if (dirname(d) === d || lstatSync(join(d, '.git'), { throwIfNoEntry: false })) return false;
      }
      const dotGit = lstatSync(join(hit.paths.worktree, '.git'), { throwIfNoEntry: false });
      return dotGit !== undefined && identity(dotGit) === hit.dotGit && statSync(join(hit.paths.gitdir, 'HEAD')).isFile();
    } catch {
      return false;
    }
  }

  reader(paths: RepoPaths): ObjectReader {
    let reader = this.#readers.get(paths.commondir);
    if (!reader) {
      reader = new ObjectReader(paths.commondir);
      this.#readers.set(paths.commondir, reader);
    }
    return reader;
  }

  /** The warm state of a worktree; asking for it makes it the most recent and renews its idle time. */
  state(paths: RepoPaths): RepoState {
    let state = this.#states.get(paths.worktree);
    if (!state) {
      state = new RepoState(paths, this.reader(paths), (worktree) => this.#submodule(worktree), this.#options);
      this.#states.set(paths.worktree, state, { ttl: this.#pins.has(paths.worktree) ? 0 : this.#idleMs });
    }
    return state;
  }

  /**
   * Keeps a worktree warm while something holds it (no idle release: lru-cache's ttl 0 for the entry);
   * the returned function lets it go, from when its idle time counts again.
   */
  pin(paths: RepoPaths): () => void {
    const key = paths.worktree;
    this.#pins.set(key, (this.#pins.get(key) ?? 0) + 1);
    this.#states.set(key, this.state(paths), { ttl: 0 });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.#pins.get(key) ?? 1) - 1;
      if (n > 0) return void this.#pins.set(key, n);
      this.#pins.delete(key);
      const state = this.#states.peek(key);
      if (state) this.#states.set(key, state, { ttl: this.#idleMs });
    };
  }

  /**
   * The warm states, most recently asked about first, with whether something holds each and how long until
   * it is released for being idle (null while held). Listing them renews nothing.
   */
  list(): Array<{ state: RepoState; held: boolean; releaseInMs: number | null }> {
    return [...this.#states.entries()].map(([worktree, state]) => {
      const held = this.#pins.has(worktree);
      return { state, held, releaseInMs: held ? null : Math.max(0, this.#states.getRemainingTTL(worktree)) };
    });
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

  #releaseReader(commondir: string): void {
    for (const s of this.#states.values()) if (s.paths.commondir === commondir) return;
    void this.#readers.get(commondir)?.close();
    this.#readers.delete(commondir);
  }

  stats(): { repos: number; watched_dirs: number; tracked_files: number; degraded: string[]; persisted: Record<string, unknown> } {
    let watched = 0;
    let tracked = 0;
    const degraded: string[] = [];
    const persisted = { restored: 0, discarded: {} as Record<string, number>, dirs_reused: 0, dirs_read: 0, files_hashed: 0 };
    for (const s of this.#states.values()) {
      watched += s.watchedDirs;
      tracked += s.trackedFiles;
      if (s.degraded) degraded.push(`${s.paths.worktree}: ${s.degraded}`);
      const p = s.persist;
      if (p.restored) persisted.restored++;
      if (p.discarded && p.discarded !== 'missing') persisted.discarded[p.discarded] = (persisted.discarded[p.discarded] ?? 0) + 1;
      persisted.dirs_reused += p.dirs_reused;
      persisted.dirs_read += p.dirs_read;
      persisted.files_hashed += p.files_hashed;
    }
    return { repos: this.#states.size, watched_dirs: watched, tracked_files: tracked, degraded, persisted };
  }

  /** Brings up the repositories that were warm when the daemon last stopped (listed in the state dir). */
  async prewarm(): Promise<void> {
    if (!this.#options.stateDir) return;
    let list: unknown;
    try {
      list = JSON.parse(await readFile(warmList(this.#options.stateDir), 'utf8'));
    } catch {
      return; // none yet, or unreadable: nothing is warmed ahead
    }
    if (!Array.isArray(list) || list.length === 0) return;
    // The pool's threads start (and load the scan task) while the rest of the daemon does.
    this.#options.warmPool?.();
    for (const worktree of list.slice(0, this.#options.maxRepos)) {
      if (typeof worktree !== 'string') continue;
      const paths = await this.locate(worktree).catch(() => null);
      if (paths) void this.state(paths).prewarm();
    }
  }

  async close(): Promise<void> {
    const warm = [...this.#states.keys()];
    this.#states.clear();
    await Promise.all(this.#closing);
    if (this.#options.stateDir) {
      const file = warmList(this.#options.stateDir);
      await mkdir(dirname(file), { recursive: true, mode: 0o700 })
        .then(() => writeFile(file, JSON.stringify(warm), { mode: 0o600 }))
        .catch((err) => this.#options.onPersistError?.(err));
    }
  }
}

interface Located {
  real: string;
  paths: RepoPaths;
  dotGit: string;
}

const identity = (s: Stats): string => (s.isDirectory() ? `d:${s.ino}` : `f:${s.ino}:${s.size}:${s.mtimeMs}`);

const warmList = (stateDir: string): string => join(stateDir, 'git', 'warm.json');

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
