// The status engine of one worktree, kept warm: it ties the index (index-file.ts), the worktree comparison
// (worktree-compare.ts) and the directory cache (dir-cache.ts) to the watches and to answers. The first
// answer builds everything (from the persisted state where it proves unchanged, warm-state.ts); later
// answers first settle the watches (a cookie) and then redo only what the events named. Correctness is
// defined by `git status --porcelain=v1` and `--porcelain=v2`, with or without renames, with each of git's
// -u<mode> and --ignored=<mode>. Renames between HEAD and the index are found from the staged changes;
// their scores are kept by blob pair.
import { readFile, stat } from 'node:fs/promises';
import { readdirSync, rmSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import { join, relative } from 'node:path';
import { DirCache, type Listed, type Tracked } from './dir-cache.js';
import { configBool, loadGitConfig, type GitConfig, type SubmoduleIgnore } from './git-config.js';
import { IgnoreRules } from './ignore-rules.js';
import { compareRange, comparePaths, IndexTable, parseIndex, STAT_FIELDS } from './index-file.js';
import { GITLINK, octal } from './modes.js';
import type { Head, ObjectReader } from './objects.js';
import type { RepoPaths } from './repo.js';
import { DEFAULT_RENAME_LIMIT, DEFAULT_RENAME_SCORE, findRenames, RenameScorer, similarityIndex, type RenameOptions, type RenamePair, type RenameSide } from './renames.js';
import { stagedChanges, type StagedChange } from './staged.js';
import { KIND_DIR, KIND_MISSING, type StatData } from './stat-data.js';
import { trackedHashes, WarmState, type DirRecord, type Restored } from './warm-state.js';
import { lstatAt, scanEntries, scanned, settledBefore, WorktreeCompare, type ScanResult, type ScanTask, type SubmoduleCheck } from './worktree-compare.js';
import { HearthError } from '../../src/errors.js';
import { COOKIE_PREFIX, type DirEventListener, type DirWatchSet } from '../../src/services/dir-watch.js';

export { comparePaths } from './index-file.js';

export interface StatusEntry {
  path: string;
  x: string;
  y: string;
  /** A rename (x 'R'): the path in HEAD, and the similarity as a whole percentage. */
  orig_path?: string;
  score?: number;
  /** With `detail`: what `git status --porcelain=v2` prints, modes in octal and ids in hex. */
  mode_head?: string;
  mode_index?: string;
  mode_worktree?: string;
  oid_head?: string;
  oid_index?: string;
  /** `N...` or `S<c><m><u>`: a submodule with new commits, modified content, untracked content. */
  submodule?: string;
  /** Unmerged entries: stages 1, 2 and 3 (mode 000000 and a zero id for a stage that is absent). */
  stages?: Array<{ mode: string; oid: string }>;
}

/** git's -u<mode>; `config` is status.showUntrackedFiles from the repository's git config, else `normal`. */
export type UntrackedMode = 'normal' | 'all' | 'no' | 'config';
/** git's --ignored=<mode>. */
export type IgnoredMode = 'no' | 'traditional' | 'matching';

export interface StatusOptions {
  /** true is `all`, false is `no`. */
  untracked: UntrackedMode | boolean;
  /** true is `traditional`, false is `no`. */
  ignored: IgnoredMode | boolean;
  /** Renames between HEAD and the index: off, on, or as status.renames / diff.renames say (default on). */
  renames?: boolean | 'config';
  /** The rename threshold on MAX_SCORE's scale (git's -M<n>); renames are on when it is given. */
  renameScore?: number;
  /** Each entry with the modes, ids and submodule state of porcelain v2. */
  detail?: boolean;
  /** How submodules' changes count, over their config (`submodule.<name>.ignore`, `diff.ignoreSubmodules`). */
  ignoreSubmodules?: SubmoduleIgnore;
}

/** The modes of one answer, the booleans and `config` resolved (`showUntracked`: status.showUntrackedFiles, if set). */
export function resolveModes(options: StatusOptions, showUntracked: string | undefined): { untracked: 'normal' | 'all' | 'no'; ignored: IgnoredMode } {
  let untracked = options.untracked === true ? 'all' : options.untracked === false ? 'no' : options.untracked;
  if (untracked === 'config') {
    // git compares the value as it is written: `Normal`, `true` or an empty value make it refuse.
    if (showUntracked === undefined) untracked = 'normal';
    else if (showUntracked === 'normal' || showUntracked === 'all' || showUntracked === 'no') untracked = showUntracked;
    else throw new HearthError('GIT_FAILED', `bad config value for 'status.showuntrackedfiles': invalid untracked files mode '${showUntracked}'`);
  }
  const ignored = options.ignored === true ? 'traditional' : options.ignored === false ? 'no' : options.ignored;
  if (ignored === 'matching' && untracked === 'no') {
    throw new HearthError('VALIDATION_FAILED', 'unsupported combination of ignored and untracked-files modes: ignored "matching" needs untracked "normal" or "all"', {
      details: [{ path: 'ignored', message: 'must not be "matching" when untracked is "no"' }],
    });
  }
  return { untracked, ignored };
}

export interface RepoStatus {
  head: Head;
  entries: StatusEntry[];
}

/** git_config_int: a number with an optional k, m or g suffix. */
function configInt(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const m = /^\s*([-+]?\d+)\s*([kmg]?)\s*$/i.exec(value);
  if (!m) return fallback;
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * unit;
}

/** status.renames, else diff.renames (`copies` counts as on), else on. */
function configRenames(config: GitConfig): boolean {
  const value = config.get('status.renames') ?? config.get('diff.renames');
  if (value === undefined) return true;
  const v = value.toLowerCase();
  return v === 'copies' || v === 'copy' || configBool(config, config.has('status.renames') ? 'status.renames' : 'diff.renames', true);
}


/** The paths whose index data differ between two indexes (added, removed, or any field changed), in order. */
function changedEntries(a: IndexTable, b: IndexTable): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.count || j < b.count) {
    const order = i >= a.count ? 1 : j >= b.count ? -1 : compareRange(a.names, a.starts[i]!, a.starts[i + 1]!, b.path(j)) || a.stage(i) - b.stage(j);
    if (order < 0) out.push(a.path(i++));
    else if (order > 0) out.push(b.path(j++));
    else {
      if (!sameEntry(a, i, b, j)) out.push(b.path(j));
      i++;
      j++;
    }
  }
  return [...new Set(out)].sort(comparePaths);
}

function sameEntry(a: IndexTable, i: number, b: IndexTable, j: number): boolean {
  if (a.flags[i] !== b.flags[j]) return false;
  for (let k = 0; k < STAT_FIELDS; k++) if (a.stat[i * STAT_FIELDS + k] !== b.stat[j * STAT_FIELDS + k]) return false;
  return a.oids.compare(b.oids, j * b.oidLength, (j + 1) * b.oidLength, i * a.oidLength, (i + 1) * a.oidLength) === 0;
}

/** What a worktree's state uses from outside: the core's directory watches, the worker pool, the state dir. */
export interface RepoServices {
  watcher: { watchDirs(onEvent: DirEventListener): DirWatchSet };
  /** scanEntries on the worker pool; without it the scans run on this thread. */
  scan?: (task: ScanTask) => Promise<ScanResult>;
  /** Where warm states are persisted (`<state_dir>`); none: nothing is persisted. */
  stateDir?: string;
  /** Told when persisting failed (the state stays right; only the next restart is colder). */
  onPersistError?: (err: unknown) => void;
  /** Told each time the watches report a change in the worktree or its git dir (see repo-events.ts). */
  onChange?: (worktree: string) => void;
}

export type { SubmoduleCheck } from './worktree-compare.js';

/**
 * More changed paths than this at once (and a tenth of the tracked files) and the whole worktree is
 * revalidated instead (every stat again on the pool, only changed directories read): one path costs about
 * what ten stats on the pool do.
 */
const MAX_DIRTY = 2000;
/** From this many tracked files on, scans run on the worker pool, in this many tasks (pipelined with the watches). */
const POOL_SCAN_MIN = 4096;
const POOL_SCAN_TASKS = 8;
/** Entries a scan on this thread takes between two turns of the event loop. */
const SCAN_SLICE = 2048;
/** How long after a change the persisted state is brought up to date (changes in between are written together). */
const PERSIST_DELAY_MS = 1000;

const ZERO_OID = '0'.repeat(40);
let stampSeq = 0;
const CONFLICT_LETTERS: Record<number, string> = { 1: 'DD', 2: 'AU', 3: 'UD', 4: 'UA', 5: 'DU', 6: 'AA', 7: 'UU' };

export interface PersistStats {
  /** Whether this state was restored from disk, and why not when it was not ('missing', 'damaged', ...). */
  restored: boolean;
  discarded: string | null;
  dirs_reused: number;
  dirs_read: number;
  files_hashed: number;
}

export class RepoState {
  readonly paths: RepoPaths;
  readonly #reader: ObjectReader;
  readonly #watch: DirWatchSet;
  readonly #services: RepoServices;
  readonly #compare: WorktreeCompare;
  readonly #cache: DirCache;
  #config!: GitConfig;
  #rules!: IgnoreRules;

  #indexId = '';
  #index = IndexTable.empty();
  #conflicts = new Map<string, number>();
  #trackedDirs = new Set<string>();
  #gitlinks: number[] = [];
  #head: Head = { branch: null, ref: null, oid: null };
  #staged = new Map<string, StagedChange>();
  #stagedKey = '';
  /** Rename scores by blob pair, and the last pairing (valid while HEAD's tree, the index and the options are). */
  readonly #scorer: RenameScorer;
  #renameKey = '';
  #renamePairs: RenamePair[] = [];

  #built = false;
  #dirty = new Set<string>();
  #metaDirty = true;
  #queue: Promise<unknown> = Promise.resolve();

  /** The persisted state (opened at the first build), and the trackedHashes of the index it was computed for. */
  #warm: WarmState | null = null;
  #warmOpened = false;
  #hashes: { checksum: string; map: Map<string, string> } | null = null;
  #persistTimer: NodeJS.Timeout | null = null;
  /** The index checksum the persisted records were last written with. */
  #writtenChecksum = '';
  #closed = false;
  readonly persist: PersistStats = { restored: false, discarded: null, dirs_reused: 0, dirs_read: 0, files_hashed: 0 };

  constructor(paths: RepoPaths, reader: ObjectReader, submodule: SubmoduleCheck, services: RepoServices) {
    this.paths = paths;
    this.#prefix = `${paths.worktree}/`;
    this.#reader = reader;
    this.#services = services;
    this.#watch = services.watcher.watchDirs(this.#onEvent);
    this.#compare = new WorktreeCompare(paths.worktree, submodule, () => this.#fsStamp());
    const tracked: Tracked = {
      isTracked: (path) => this.#index.find(path) >= 0 || this.#conflicts.has(path),
      isGitlink: (path) => {
        const i = this.#index.find(path);
        return i >= 0 && this.#index.mode(i) === GITLINK;
      },
      hasDir: (dir) => this.#trackedDirs.has(dir),
    };
    this.#cache = new DirCache(paths.worktree, tracked, this.#watch);
    this.#scorer = new RenameScorer(async (oid) => {
      const object = await reader.odb.read(oid);
      return object.data;
    });
  }

  /** Rename scores kept, and blobs read for them so far. */
  get renameStats(): { scores: number; blobs_read: number } {
    return { scores: this.#scorer.cachedScores, blobs_read: this.#scorer.blobsRead };
  }

  get built(): boolean {
    return this.#built;
  }

  /** HEAD as of the last update. */
  get head(): Head {
    return this.#head;
  }

  /** When a status was last answered (Date.now()), null before the first. */
  lastStatusAt: number | null = null;

  /** Directories watched for this worktree. */
  get watchedDirs(): number {
    return this.#watch.size;
  }

  /** The repository's git config as of the last update. */
  get config(): GitConfig {
    return this.#config;
  }

  /** Why answers are computed without the help of events (the OS watch limit), or null. */
  get degraded(): string | null {
    return this.#watch.failed;
  }

  get trackedFiles(): number {
    return this.#index.count - this.#conflicts.size;
  }

  /** Stops watching; what is not persisted yet is written first. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#persistTimer) clearTimeout(this.#persistTimer);
    this.#persistTimer = null;
    if (this.#warm && this.#built) {
      // What is proven by now is written; directories whose listing changed since the last pass are not
      // (proving them takes an update) and are read again at the next start.
      await this.#enqueue(() => this.#persistNow(true)).catch((err) => this.#services.onPersistError?.(err));
    }
    this.#watch.close();
    await this.#warm?.close().catch((err) => this.#services.onPersistError?.(err));
  }

  /** What the watches report: a field rather than a method, so it is handed to them as it is. */
  readonly #prefix: string;
  readonly #onEvent: DirEventListener = (dir, name) => {
    this.#services.onChange?.(this.paths.worktree);
    if (dir === this.paths.gitdir || dir === this.paths.commondir || dir.startsWith(`${this.paths.commondir}/`) || dir.startsWith(`${this.paths.gitdir}/`)) {
      this.#metaDirty = true;
      return;
    }
    const rel = dir === this.paths.worktree ? '' : dir.startsWith(this.#prefix) ? dir.slice(this.#prefix.length) : relative(this.paths.worktree, dir);
    if (name === null) {
      this.#dirty.add(rel);
      return;
    }
    this.#dirty.add(rel ? `${rel}/${name}` : name);
  };

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Brings the state up to date and answers. Calls are serialized. */
  status(options: StatusOptions): Promise<RepoStatus> {
    return this.#enqueue(async () => {
      try {
        await this.#update();
      } catch (err) {
        this.#built = false; // half-updated state is never answered from: the next call starts over
        throw err;
      }
      this.#schedulePersist();
      const entries = await this.#entries(options);
      this.lastStatusAt = Date.now();
      return { head: this.#head, entries };
    });
  }

  /** Starts bringing the state up (at boot, for a repository that was warm before): the first status waits for it. */
  prewarm(): Promise<void> {
    return this.#enqueue(() => this.#update().then(() => {})).catch(() => {
      this.#built = false;
    });
  }

  /**
   * Brings the state up to date. With `rebuild` false (at close), returns false instead of building when
   * events alone cannot tell what changed.
   */
  async #update(rebuild = true): Promise<boolean> {
    this.#compare.startUpdate();
    const settled = this.#built && this.#watch.failed === null && (await this.#watch.settle(this.paths.gitdir));
    // Config files (and included ones) outside the repository make no event: a stat of each tells.
    if (settled && this.#config.changed()) this.#metaDirty = true;
    // A build keeps the listings (only their meaning is decided again) for a changed excludes file; it
    // takes stats of everything for lost or too many events.
    const build = !settled || this.#rules.sourcesChanged() || this.#dirty.size > this.#maxDirty();
    if (build || (this.#metaDirty && (await this.#refreshMeta(rebuild)))) {
      if (!rebuild) return false;
      if (build) await this.#build();
      return true;
    }
    const dirty = [...this.#dirty].sort(comparePaths);
    this.#dirty.clear();
    // The tracked entries at and below each changed path compared again, all at once (they are independent),
    // then each path's untracked standing decided again, in order (a directory before what is in it).
    const entries = new Set<number>();
    for (const path of dirty) for (const i of this.#entriesUnder(path)) if (this.#index.stage(i) === 0) entries.add(i);
    // A submodule's own changes make no event here: its state (warm itself) is asked every time.
    for (const i of this.#gitlinks) entries.add(i);
    await Promise.all([...entries].map((i) => this.#compare.compare(this.#index, i)));
    for (const path of dirty) {
      const kind = lstatAt(join(this.paths.worktree, path)).kind;
      await this.#cache.refresh(path, kind === KIND_MISSING ? null : kind === KIND_DIR);
    }
    await this.#refreshStaged();
    return true;
  }

  /**
   * Everything made right from what is known, read again only where it cannot be proven unchanged: every
   * tracked file stated (on the pool), every known directory stated, and only directories whose identity
   * changed read. What is known: the persisted state at the first build, the directory cache after that
   * (a burst too big for events, a changed excludes file or config). Without either, a full walk.
   */
  async #build(): Promise<void> {
    this.#dirty.clear();
    this.#metaDirty = false;
    for (const dir of this.#metaDirs()) this.#watch.add(dir);
    this.#config = loadGitConfig(this.paths);
    this.#compare.rules = {
      ...this.#compare.rules,
      fileMode: configBool(this.#config, 'core.filemode', true),
      trustCtime: configBool(this.#config, 'core.trustctime', true),
      checkStat: this.#config.get('core.checkstat')?.toLowerCase() !== 'minimal',
    };
    this.#rules = new IgnoreRules(this.paths.worktree, this.paths.commondir, this.#config);
    this.#cache.rules = this.#rules;
    this.#head = await this.#reader.head(this.paths.gitdir);
    let known = this.#built ? this.#knownFromCache() : null;
    if (!this.#warmOpened) known = (await this.#openWarm()) ?? known;
    // A build from a built state keeps the index when its file did not change (a burst that already read it).
    if (!this.#built) this.#indexId = '';
    this.#built = false;
    await this.#loadIndex();
    this.#compare.letters.clear();
    this.#stagedKey = '';
    await Promise.all([this.#scanAndWalk(known), this.#refreshStaged()]);
    this.#built = true;
  }

  /** The persisted state, opened once; null when there is none (or it was discarded). */
  async #openWarm(): Promise<Restored | null> {
    this.#warmOpened = true;
    if (!this.#services.stateDir) return null;
    try {
      const { state, restored } = await WarmState.open(this.#services.stateDir, this.paths.worktree, this.paths.gitdir);
      this.#warm = state;
      this.persist.discarded = state.discarded;
      this.persist.restored = restored !== null;
      this.#writtenChecksum = restored?.indexChecksum ?? '';
      if (restored) for (const [path, verdict] of restored.verdicts) this.#compare.verdicts.set(path, verdict);
      return restored;
    } catch (err) {
      this.#services.onPersistError?.(err);
      return null;
    }
  }

  /** The directory cache as known listings: the directories whose listing is proven to go with an identity. */
  #knownFromCache(): Restored | null {
    const dirs = new Map<string, DirRecord>();
    for (const [dir, node] of this.#cache.dirs) if (node.id) dirs.set(dir, { ...node.id, gitignore: node.gitignore, entries: [...node.entries] });
    if (dirs.size === 0 || !this.#hashes) return null;
    return { dirs, verdicts: new Map(), indexChecksum: this.#hashes.checksum };
  }

  #maxDirty(): number {
    return Math.max(MAX_DIRTY, Math.floor(this.#index.count / 10));
  }

  /** trackedHashes of the current index, computed once per index content. */
  #trackedHashes(): Map<string, string> {
    if (this.#hashes?.checksum !== this.#index.checksum) this.#hashes = { checksum: this.#index.checksum, map: trackedHashes(this.#index) };
    return this.#hashes.map;
  }

  /**
   * Every tracked file and every known directory stated, and the walk. The files' stats run in tasks over
   * ranges of the index, each sent once the directories up to its last path are watched (so a change after
   * a stat is reported), on the pool when the index is big; a known directory is stated here right after its
   * watch is made (a few microseconds each), so the walk, which takes the listings it proves unchanged and
   * reads the rest, runs on this thread while the pool states the files.
   */
  async #scanAndWalk(known: Restored | null): Promise<void> {
    const index = this.#index;
    const root = this.paths.worktree;
    const watchOrder = [...new Set(['', ...this.#trackedDirs, ...(known ? known.dirs.keys() : [])])].sort(comparePaths);
    const dirStats = new Map<string, StatData>();
    const pooled = this.#services.scan !== undefined && index.count >= POOL_SCAN_MIN;
    const size = pooled ? Math.ceil(index.count / POOL_SCAN_TASKS) : SCAN_SLICE;
    const scans: Array<Promise<ScanResult>> = [];
    // Slices on this thread run one a turn of the event loop, in order.
    let here: Promise<unknown> = Promise.resolve();
    let w = 0;
    for (let from = 0; from < index.count || scans.length === 0; from += size) {
      const to = Math.min(index.count, from + size);
      const last = to >= index.count ? null : index.path(to - 1);
      for (; w < watchOrder.length && (last === null || comparePaths(watchOrder[w]!, last) <= 0); w++) {
        const dir = watchOrder[w]!;
        const abs = dir ? join(root, dir) : root;
        this.#watch.add(abs);
        if (known?.dirs.has(dir)) dirStats.set(dir, lstatAt(abs));
      }
      const task: ScanTask = {
        root,
        names: index.names.slice(index.starts[from]!, index.starts[to]!),
        starts: index.starts.slice(from, to + 1).map((s) => s - index.starts[from]!),
        from,
        stat: index.stat,
        flags: index.flags,
        rules: this.#compare.rules,
      };
      if (pooled) scans.push(this.#services.scan!(task).catch(() => scanEntries(task)));
      else {
        const slice = here.then(() => new Promise((r) => setImmediate(r))).then(() => scanEntries(task));
        scans.push(slice);
        here = slice;
      }
      if (to >= index.count) break;
    }
    const decided: Array<Promise<void>> = [];
    const stated = Promise.all(scans.map((p) => p.then((result) => {
      for (const [i, d] of scanned(result)) decided.push(this.#compare.decide(index, i, d, false));
    })));
    let listed: Listed | undefined;
    if (known) {
      const hashes = known.indexChecksum === index.checksum ? null : this.#trackedHashes();
      listed = (dir) => {
        const record = known.dirs.get(dir);
        if (!record || !WarmState.valid(record, dirStats.get(dir), hashes ? (hashes.get(dir) ?? '') : record.tracked)) return undefined;
        this.persist.dirs_reused++;
        const { entries, gitignore, ...id } = record;
        return { entries, gitignore, id: hashes ? { ...id, tracked: hashes.get(dir) ?? '' } : id };
      };
    }
    // With nothing known the walk reads every directory, on libuv's threads, while the pool states the files.
    await Promise.all([stated, this.#cache.walkAll(listed)]);
    this.persist.dirs_read = this.#cache.reads;
    await Promise.all(decided);
    // Tracked files whose directory the walk did not find as a directory (gone, or now a link, which git
    // does not follow): compared again; their stats above followed the link.
    for (const dir of this.#trackedDirs) {
      if (this.#cache.dirs.has(dir)) continue;
      this.#watch.delete(join(root, dir));
      for (const i of this.#entriesUnder(dir)) if (this.#index.stage(i) === 0) await this.#compare.compare(index, i);
    }
    this.persist.files_hashed = this.#compare.hashed;
  }

  #schedulePersist(): void {
    if (!this.#warm || this.#persistTimer || this.#closed) return;
    this.#persistTimer = setTimeout(() => {
      this.#persistTimer = null;
      this.#enqueue(() => this.#persistNow()).catch((err) => this.#services.onPersistError?.(err));
    }, PERSIST_DELAY_MS);
    this.#persistTimer.unref();
  }

  /**
   * Writes the records that changed. A directory's identity is stated first, then the state is settled
   * (every change made before is applied): its listing is then at least as new as the identity, so a change
   * in between makes the identity differ at the next start and the directory is read again. An identity
   * too new to vouch for the listing (the racy rule) is stated again at a later pass.
   */
  async #persistNow(closing = false): Promise<void> {
    const warm = this.#warm;
    if (!warm || !this.#built) return;
    const pending = [...this.#cache.dirs].filter(([, node]) => !node.id).map(([dir]) => dir);
    // Nothing new since the last pass (the usual case while answers flow): nothing is written.
    if (pending.length === 0 && this.#compare.changedVerdicts.size === 0 && this.#index.checksum === this.#writtenChecksum && this.#cache.dirs.size === warm.dirRecords) return;
    const takenAt = pending.length > 0 ? await this.#fsStamp() : 0;
    const stats = pending.map((dir) => lstatAt(dir ? join(this.paths.worktree, dir) : this.paths.worktree));
    // Changes the update applies leave listings to prove at the next pass. At close no build is started
    // for it: then no listing (and no index checksum) is written, only what is proven on its own.
    const changing = this.#dirty.size > 0 || this.#metaDirty;
    const current = (await this.#update(!closing)) && this.#built;
    let racy = false;
    if (current) {
      const hashes = pending.length > 0 ? this.#trackedHashes() : new Map<string, string>();
      pending.forEach((dir, k) => {
        const node = this.#cache.dirs.get(dir);
        const s = stats[k]!;
        if (!node || node.id || s.kind !== KIND_DIR) return;
        if (!settledBefore(s, takenAt)) {
          racy = takenAt > 0;
          return;
        }
        node.id = { ino: s.ino, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, takenAt, tracked: hashes.get(dir) ?? '' };
        warm.putDir(dir, { ...node.id, gitignore: node.gitignore, entries: [...node.entries] });
      });
      // A listing not proven now has no record: the old one may leave out what the index no longer tracks,
      // and the index checksum written with this batch would vouch for it.
      for (const [dir, node] of this.#cache.dirs) if (!node.id) warm.dropDir(dir);
      warm.keepDirs(this.#cache.dirs);
      warm.putMeta(this.#index.checksum);
      this.#writtenChecksum = this.#index.checksum;
    }
    // Verdicts stand on their own: each names the blob and the stat it goes with.
    for (const path of this.#compare.changedVerdicts) warm.putVerdict(path, this.#compare.verdicts.get(path));
    this.#compare.changedVerdicts.clear();
    await warm.flush();
    if (!closing && (racy || changing)) this.#schedulePersist();
  }

  /**
   * The filesystem's time now: the mtime of a file made now in the git directory (as a cookie: no event is
   * made of it), synchronously like the settle cookie (microseconds, where three round trips cost more).
   */
  async #fsStamp(): Promise<number> {
    const file = join(this.paths.gitdir, `${COOKIE_PREFIX}stamp-${process.pid}-${++stampSeq}`);
    try {
      writeFileSync(file, '');
      return statSync(file).mtimeMs;
    } catch {
      return 0; // a git directory that cannot be written: nothing is proven settled, so nothing is trusted later
    } finally {
      rmSync(file, { force: true });
    }
  }

  /** The git directories whose changes matter: HEAD, index, refs, config, info/exclude. */
  #metaDirs(): string[] {
    const { gitdir, commondir } = this.paths;
    const dirs = new Set([gitdir, commondir, join(commondir, 'info'), join(commondir, 'refs')]);
    const addRefs = (dir: string, depth: number): void => {
      dirs.add(dir);
      if (depth > 8) return;
      // Ref directories are few and small; read synchronously once per build.
      try {
        for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) addRefs(join(dir, e.name), depth + 1);
      } catch {
        /* no such directory */
      }
    };
    addRefs(join(commondir, 'refs'), 0);
    return [...dirs];
  }

  /** HEAD, refs, config and the index again; true when that needs a build (done when `rebuild`). */
  async #refreshMeta(rebuild: boolean): Promise<boolean> {
    const config = loadGitConfig(this.paths);
    if (!config.equals(this.#config)) {
      this.#built = false; // everything from scratch: the object format, the ignore rules may have changed
      if (rebuild) await this.#build();
      return true;
    }
    this.#metaDirty = false;
    this.#config = config; // the same values, the files' identities of now
    this.#head = await this.#reader.head(this.paths.gitdir);
    for (const dir of this.#metaDirs()) this.#watch.add(dir);
    const before = this.#index;
    if (!(await this.#loadIndex())) return false;
    const touched = changedEntries(before, this.#index);
    // Too many for one by one: a build, with the directory cache as the known listings (not at close).
    if (touched.length > this.#maxDirty()) {
      if (rebuild) await this.#build();
      return true;
    }
    for (const path of touched) this.#dirty.add(path);
    return false;
  }

  /** Reads the index when its identity changed; returns whether it did. */
  async #loadIndex(): Promise<boolean> {
    const file = join(this.paths.gitdir, 'index');
    let s: BigIntStats;
    try {
      s = await stat(file, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (this.#indexId === 'none') return false;
      this.#indexId = 'none';
      this.#setIndex(IndexTable.empty(), 0n);
      return true;
    }
    const id = `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    if (id === this.#indexId) return false;
    this.#setIndex(parseIndex(await readFile(file), this.#config.get('extensions.objectformat') === 'sha256' ? 32 : 20), s.mtimeNs);
    this.#indexId = id;
    return true;
  }

  #setIndex(index: IndexTable, mtimeNs: bigint): void {
    this.#index = index;
    this.#compare.rules = { ...this.#compare.rules, indexMtimeSec: Number(mtimeNs / 1_000_000_000n), indexMtimeNsec: Number(mtimeNs % 1_000_000_000n) };
    this.#conflicts.clear();
    this.#trackedDirs.clear();
    this.#cache.views.clear();
    this.#gitlinks = [];
    const { names, starts } = index;
    for (let i = 0; i < index.count; i++) {
      const stage = index.stage(i);
      if (stage === 0 && index.mode(i) === GITLINK) this.#gitlinks.push(i);
      if (stage !== 0) {
        const path = index.path(i);
        this.#conflicts.set(path, (this.#conflicts.get(path) ?? 0) | (1 << (stage - 1)));
      }
      // Each directory above the path, innermost first, until one already known.
      for (let j = names.lastIndexOf('/', starts[i + 1]! - 1); j > starts[i]!; j = names.lastIndexOf('/', j - 1)) {
        const dir = names.slice(starts[i]!, j);
        if (this.#trackedDirs.has(dir)) break;
        this.#trackedDirs.add(dir);
      }
    }
    for (const path of this.#compare.letters.keys()) if (index.find(path) < 0) this.#compare.forget(path);
  }

  async #refreshStaged(): Promise<void> {
    const tree = this.#head.oid ? await this.#reader.commitTree(this.#head.oid) : null;
    const key = `${tree}:${this.#indexId}`;
    if (key === this.#stagedKey) return;
    this.#staged = await stagedChanges(this.#reader, tree, this.#index, this.#conflicts);
    this.#stagedKey = key;
  }

  /** The entries (any stage) at `path` and below it. */
  *#entriesUnder(path: string): Generator<number> {
    const index = this.#index;
    // `path` itself, then `path/...`; names like `path.c` or `path-x` sort between them and are skipped.
    for (let i = index.lowerBound(path); i < index.count; i++) {
      const from = index.starts[i]!;
      const to = index.starts[i + 1]!;
      if (!index.names.startsWith(path, from)) break;
      if (to - from === path.length || path === '' || index.names.charCodeAt(from + path.length) === 47) yield i;
    }
  }

  /** The rename options `options` ask for, with the repository's config where they defer to it; null for none. */
  #renameOptions(options: StatusOptions): RenameOptions | null {
    const on = options.renameScore !== undefined || (options.renames === 'config' ? configRenames(this.#config) : options.renames === true);
    if (!on) return null;
    const limit = configInt(this.#config.get('status.renamelimit') ?? this.#config.get('diff.renamelimit'), DEFAULT_RENAME_LIMIT);
    return { minScore: options.renameScore ?? DEFAULT_RENAME_SCORE, limit };
  }

  /** Renames among the staged deletions and additions; kept until HEAD's tree, the index or the options change. */
  async #renames(rename: RenameOptions): Promise<RenamePair[]> {
    const key = `${this.#stagedKey}|${rename.minScore}|${rename.limit}`;
    if (key === this.#renameKey) return this.#renamePairs;
    const sources: RenameSide[] = [];
    const dests: RenameSide[] = [];
    for (const [path, change] of this.#staged) {
      if (change.letter === 'D' && change.headOid) sources.push({ path, mode: change.headMode, oid: change.headOid });
      else if (change.letter === 'A') {
        const i = this.#index.find(path);
        if (i >= 0) dests.push({ path, mode: this.#index.mode(i), oid: this.#index.oid(i) });
      }
    }
    const byPath = (a: RenameSide, b: RenameSide) => comparePaths(a.path, b.path);
    this.#renamePairs = await findRenames(sources.sort(byPath), dests.sort(byPath), rename, this.#scorer);
    this.#renameKey = key;
    return this.#renamePairs;
  }

  /** What porcelain v2's submodule token shows of a listed gitlink: new commits, modified and untracked content. */
  #submoduleBits(path: string, options: StatusOptions, untrackedListed: boolean): { commits: boolean; modified: boolean; untracked: boolean } {
    const mode = this.#config.ignoreSubmodules(path, options.ignoreSubmodules, untrackedListed);
    const state = this.#compare.subState.get(path) ?? { commits: false, modified: false, untracked: false };
    return { commits: state.commits, modified: state.modified && mode !== 'dirty', untracked: state.untracked && mode === 'none' };
  }

  async #entries(options: StatusOptions): Promise<StatusEntry[]> {
    // status.showUntrackedFiles is read at each answer: a global config file is not watched.
    const { untracked, ignored } = resolveModes(options, options.untracked === 'config' ? this.#config.get('status.showuntrackedfiles') : undefined);
    const rename = this.#renameOptions(options);
    const pairs = rename ? await this.#renames(rename) : [];
    const renamed = new Map<string, RenamePair>();
    const renamedFrom = new Set<string>();
    for (const pair of pairs) {
      renamed.set(pair.dst.path, pair);
      renamedFrom.add(pair.src.path);
    }
    const changed = new Set<string>([...this.#staged.keys(), ...this.#compare.letters.keys(), ...this.#conflicts.keys()]);
    const entries: StatusEntry[] = [];
    for (const path of [...changed].sort(comparePaths)) {
      const mask = this.#conflicts.get(path);
      if (mask !== undefined) {
        const letters = CONFLICT_LETTERS[mask]!;
        const entry: StatusEntry = { path, x: letters[0]!, y: letters[1]! };
        if (options.detail) await this.#unmergedDetail(entry);
        entries.push(entry);
        continue;
      }
      if (renamedFrom.has(path)) continue;
      const staged = this.#staged.get(path);
      const found = this.#index.find(path);
      const e = found >= 0 ? this.#index.entry(found) : undefined;
      let y = this.#compare.letters.get(path) ?? ' ';
      // --ignore-submodules=all (the option, not the config) leaves gitlinks out, staged changes included.
      if (options.ignoreSubmodules === 'all' && (e?.mode === GITLINK || staged?.headMode === GITLINK)) continue;
      if (y !== ' ' && e?.mode === GITLINK && !this.#submoduleCounts(path, y, options, untracked !== 'no')) y = ' ';
      const pair = renamed.get(path);
      const x = pair ? 'R' : (staged?.letter ?? ' ');
      if (x === ' ' && y === ' ') continue;
      const entry: StatusEntry = { path, x, y };
      if (pair) {
        entry.orig_path = pair.src.path;
        entry.score = similarityIndex(pair.score);
      }
      if (options.detail) {
        const indexMode = e && !e.intentToAdd ? e.mode : 0;
        const indexOid = e && !e.intentToAdd ? e.oid : ZERO_OID;
        const head = pair ? { mode: pair.src.mode, oid: pair.src.oid } : staged ? { mode: staged.headMode, oid: staged.headOid ?? ZERO_OID } : { mode: indexMode, oid: indexOid };
        const worktreeMode = y === ' ' ? indexMode : y === 'D' ? 0 : await this.#compare.worktreeMode(path, e?.mode ?? 0);
        entry.mode_head = octal(head.mode);
        entry.mode_index = octal(indexMode);
        entry.mode_worktree = octal(worktreeMode);
        entry.oid_head = head.oid;
        entry.oid_index = indexOid;
        const gitlink = head.mode === GITLINK || indexMode === GITLINK || worktreeMode === GITLINK;
        const bits = e?.mode === GITLINK && y !== ' ' ? this.#submoduleBits(path, options, untracked !== 'no') : { commits: false, modified: false, untracked: false };
        entry.submodule = gitlink ? `S${bits.commits ? 'C' : '.'}${bits.modified ? 'M' : '.'}${bits.untracked ? 'U' : '.'}` : 'N...';
      }
      entries.push(entry);
    }
    if (untracked === 'no') return entries; // and with it, as git does, no ignored files either
    for (const path of this.#cache.untrackedPaths(untracked)) entries.push({ path, x: '?', y: '?' });
    if (ignored !== 'no') for (const path of (await this.#cache.ignoredPaths(untracked, ignored)).filter(this.#cache.listable).sort(comparePaths)) entries.push({ path, x: '!', y: '!' });
    return entries;
  }

  /** Stage 1, 2 and 3 of an unmerged path, and its worktree mode. */
  async #unmergedDetail(entry: StatusEntry): Promise<void> {
    const stages = [1, 2, 3].map(() => ({ mode: octal(0), oid: ZERO_OID }));
    let mode = 0;
    for (const i of this.#entriesUnder(entry.path)) {
      const e = this.#index.entry(i);
      if (e.path !== entry.path || e.stage === 0) continue;
      stages[e.stage - 1] = { mode: octal(e.mode), oid: e.oid };
      mode = e.mode;
    }
    entry.stages = stages;
    entry.mode_worktree = octal(await this.#compare.worktreeMode(entry.path, mode));
    entry.submodule = 'N...';
  }

  /**
   * Whether a submodule's worktree change is listed: `all` lists none (not even a deleted or replaced
   * submodule), `dirty` only a changed commit (or a deleted or replaced one), `untracked` all but
   * untracked content.
   */
  #submoduleCounts(path: string, letter: string, options: StatusOptions, untrackedListed: boolean): boolean {
    const mode = this.#config.ignoreSubmodules(path, options.ignoreSubmodules, untrackedListed);
    if (mode === 'all') return false;
    const change = this.#compare.subChange.get(path);
    if (letter !== 'M' || change === undefined || mode === 'none') return true;
    return mode === 'dirty' ? change === 'commit' : change !== 'untracked';
  }

}
