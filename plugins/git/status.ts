// The status engine of one worktree, kept warm. The first answer builds everything (index, staged changes,
// a stat of every tracked file, a walk for untracked files, a watch on every directory it walked); later
// answers first settle the watches (a cookie) and then redo only what the events named. Correctness is
// defined by `git status --porcelain=v1` and `--porcelain=v2`, with or without renames, with each of git's
// -u<mode> and --ignored=<mode>. Renames between HEAD and the index are found from the staged changes;
// their scores are kept by blob pair.
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { readdirSync, type BigIntStats, type Dirent } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { configBool, loadGitConfig, type GitConfig, type SubmoduleIgnore } from './git-config.js';
import { IgnoreRules } from './ignore-rules.js';
import { parseIndex, type GitIndex, type IndexEntry } from './index-file.js';
import type { Head, ObjectReader } from './objects.js';
import type { RepoPaths } from './repo.js';
import { DEFAULT_RENAME_LIMIT, DEFAULT_RENAME_SCORE, findRenames, RenameScorer, similarityIndex, type RenameOptions, type RenamePair, type RenameSide } from './renames.js';
import { sameType, stagedChanges, type StagedChange } from './staged.js';
import { indexTimeMs, KIND_DIR, KIND_FILE, KIND_MISSING, KIND_SYMLINK, lstatData, statData, unpackStat, type StatData } from './stat-data.js';
import { HearthError } from '../../src/errors.js';
import { gitBlobId } from '../../src/file-hash.js';
import { COOKIE_PREFIX, type DirEventListener, type DirWatchSet } from '../../src/services/dir-watch.js';

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

/** What a worktree's state uses from outside: the core's directory watches, and the worker pool. */
export interface RepoServices {
  watcher: { watchDirs(onEvent: DirEventListener): DirWatchSet };
  /** lstat of many paths under `root` at once (on the worker pool), packed as stat-data.ts packs them. */
  statMany?: (root: string, paths: string[]) => Promise<Float64Array>;
}

/** Called for a submodule's worktree: whether it has changes of its own (anything git would list). */
export type SubmoduleCheck = (worktree: string) => Promise<{ head: string | null; changed: boolean; untracked: boolean }>;

const GITLINK = 0o160000;
const SYMLINK = 0o120000;
const TYPE_MASK = 0o170000;
/** More dirty paths than this at once and the whole worktree is compared again instead. */
const MAX_DIRTY = 2000;
const STAT_BATCH = 512;
/** From this many tracked files on, the cold path takes its stats on the worker pool, in this many tasks. */
const POOL_STAT_MIN = 4096;
const POOL_STAT_CHUNKS = 4;

/** By code point, which is UTF-8 byte order: git's path order. */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // A surrogate (half of a code point above U+FFFF) sorts after every other UTF-16 unit.
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb) return sa ? 1 : -1;
    return ca - cb;
  }
  return a.length - b.length;
}

const ZERO_OID = '0'.repeat(40);
const octal = (mode: number): string => mode.toString(8).padStart(6, '0');

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

const CONFLICT_LETTERS: Record<number, string> = { 1: 'DD', 2: 'AU', 3: 'UD', 4: 'UA', 5: 'DU', 6: 'AA', 7: 'UU' };

const BILLION = 1_000_000_000n;

function statMatches(e: IndexEntry, d: StatData): boolean {
  return (
    d.mtimeMs === indexTimeMs(e.mtimeSec, e.mtimeNsec) &&
    d.ctimeMs === indexTimeMs(e.ctimeSec, e.ctimeNsec) &&
    d.ino === e.ino &&
    d.uid === e.uid &&
    d.gid === e.gid
  );
}

function under(path: string, prefix: string): boolean {
  return prefix === '' || path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47);
}


export class RepoState {
  readonly paths: RepoPaths;
  readonly #reader: ObjectReader;
  readonly #submodule: SubmoduleCheck;
  readonly #watch: DirWatchSet;
  readonly #statMany: RepoServices['statMany'];
  #config!: GitConfig;
  #fileMode = true;
  #rules!: IgnoreRules;

  #indexId = '';
  /** Index entries are racily clean when not older than the index file (git's racy-git rule). */
  #indexMtimeNs = 0n;
  #index: GitIndex = { version: 2, entries: [], trees: new Map() };
  #stage0 = new Map<string, IndexEntry>();
  #conflicts = new Map<string, number>();
  /** The stage 1-3 entries of each unmerged path. */
  #stages = new Map<string, IndexEntry[]>();
  /** Every tracked path (any stage), sorted, for "entries under this directory". */
  #tracked: string[] = [];
  #trackedDirs = new Set<string>();
  #gitlinks: IndexEntry[] = [];
  #head: Head = { branch: null, ref: null, oid: null };
  #staged = new Map<string, StagedChange>();
  #stagedKey = '';
  /** Rename scores by blob pair, and the last pairing (valid while HEAD's tree, the index and the options are). */
  readonly #scorer: RenameScorer;
  #renameKey = '';
  #renamePairs: RenamePair[] = [];
  /** Each gitlink's state as its last comparison found it. */
  #subState = new Map<string, { commits: boolean; modified: boolean; untracked: boolean }>();
  /** The second letter (worktree against index) of every stage-0 entry that is not clean. */
  #worktree = new Map<string, string>();
  /**
   * Checked-out submodules listed as modified, by what changed: their commit, their tracked content, or
   * only untracked content. Which of these count is decided per answer (config, options).
   */
  #subChange = new Map<string, 'commit' | 'dirty' | 'untracked'>();
  #untracked = new Set<string>();
  #ignoredFiles = new Set<string>();
  /** Ignored directories not walked (their files are listed only when asked for). */
  #ignoredDirs = new Set<string>();
  /**
   * What answers derive from the sets above and #trackedDirs (the sorted listings of each untracked mode,
   * the directories holding untracked files), kept until one of them changes: a warm answer does not
   * collapse or sort again.
   */
  #untrackedViews = new Map<string, string[] | Set<string>>();
  /** Walked directories -> whether they are ignored (walked only because they hold tracked files). */
  #dirs = new Map<string, boolean>();

  /** Directories found real (not links) in this update, for #realLeading. */
  #leadingDirs = new Map<string, Promise<boolean>>();

  #built = false;
  #dirty = new Set<string>();
  #metaDirty = true;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(paths: RepoPaths, reader: ObjectReader, submodule: SubmoduleCheck, services: RepoServices) {
    this.paths = paths;
    this.#reader = reader;
    this.#submodule = submodule;
    this.#statMany = services.statMany;
    this.#watch = services.watcher.watchDirs(this.#onEvent);
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
    return this.#stage0.size;
  }

  close(): void {
    this.#watch.close();
  }

  /** What the watches report: a field rather than a method, so it is handed to them as it is. */
  readonly #onEvent: DirEventListener = (dir, name) => {
    if (dir === this.paths.gitdir || dir === this.paths.commondir || dir.startsWith(`${this.paths.commondir}/`) || dir.startsWith(`${this.paths.gitdir}/`)) {
      this.#metaDirty = true;
      return;
    }
    const rel = relative(this.paths.worktree, dir);
    if (name === null) {
      this.#dirty.add(rel);
      return;
    }
    const path = rel ? `${rel}/${name}` : name;
    this.#dirty.add(path);
  };

  /** Brings the state up to date and answers. Calls are serialized. */
  status(options: StatusOptions): Promise<RepoStatus> {
    const run = this.#queue.then(async () => {
      try {
        await this.#update();
      } catch (err) {
        this.#built = false; // half-updated state is never answered from: the next call starts over
        throw err;
      }
      return { head: this.#head, entries: await this.#entries(options) };
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  async #update(): Promise<void> {
    this.#leadingDirs.clear();
    const settled = this.#built && this.#watch.failed === null && (await this.#watch.settle(this.paths.gitdir));
    if (!settled || this.#dirty.size > MAX_DIRTY || this.#rules.sourcesChanged()) {
      await this.#build();
      return;
    }
    // Config files (and included ones) outside the repository make no event: a stat of each tells.
    if (this.#config.changed()) this.#metaDirty = true;
    if (this.#metaDirty) await this.#refreshMeta();
    const dirty = [...this.#dirty].sort(comparePaths);
    this.#dirty.clear();
    for (const path of dirty) await this.#refreshPath(path);
    // A submodule's own changes make no event here: its state (warm itself) is asked every time.
    for (const entry of this.#gitlinks) await this.#compareEntry(entry);
    await this.#refreshStaged();
  }

  /** Everything from scratch: the cold path, and the answer to lost or too many events. */
  async #build(): Promise<void> {
    this.#dirty.clear();
    this.#metaDirty = false;
    this.#config = loadGitConfig(this.paths);
    this.#fileMode = configBool(this.#config, 'core.filemode', true);
    this.#rules = new IgnoreRules(this.paths.worktree, this.paths.commondir, this.#config);
    this.#head = await this.#reader.head(this.paths.gitdir);
    await this.#loadIndex();
    this.#worktree.clear();
    this.#untracked.clear();
    this.#untrackedViews.clear();
    this.#ignoredFiles.clear();
    this.#ignoredDirs.clear();
    this.#dirs.clear();
    for (const dir of this.#metaDirs()) this.#watch.add(dir);
    // The three are independent: the walk's directory reads run on libuv's threads while this thread
    // compares stats, and HEAD's tree is read meanwhile.
    this.#stagedKey = '';
    await Promise.all([this.#compareAll([...this.#stage0.values()]), this.#walk('', false), this.#refreshStaged()]);
    // The stats above follow links: a tracked file whose directory the walk did not find as a directory
    // (now a symlink) is compared again, and git does not follow that link.
    for (const e of this.#stage0.values()) {
      const slash = e.path.lastIndexOf('/');
      if (slash > 0 && !this.#worktree.has(e.path) && !this.#dirs.has(e.path.slice(0, slash))) await this.#compareEntry(e);
    }
    this.#built = true;
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

  async #refreshMeta(): Promise<void> {
    this.#metaDirty = false;
    const config = loadGitConfig(this.paths);
    if (!config.equals(this.#config)) {
      await this.#build();
      return;
    }
    this.#config = config; // the same values, the files' identities of now
    this.#head = await this.#reader.head(this.paths.gitdir);
    for (const dir of this.#metaDirs()) this.#watch.add(dir);
    const before = this.#index;
    const changed = await this.#loadIndex();
    if (!changed) return;
    // Entries whose index data changed are compared again; paths that joined or left the index move
    // between tracked and untracked.
    const old = new Map<string, IndexEntry>();
    for (const e of before.entries) old.set(`${e.stage}:${e.path}`, e);
    const touched = new Set<string>();
    for (const e of this.#index.entries) {
      const o = old.get(`${e.stage}:${e.path}`);
      old.delete(`${e.stage}:${e.path}`);
      // An entry whose data is unchanged keeps its answer: the worktree file's own changes come as events.
      if (!o || o.oid !== e.oid || o.mode !== e.mode || o.mtimeNsec !== e.mtimeNsec || o.mtimeSec !== e.mtimeSec || o.size !== e.size || o.ctimeSec !== e.ctimeSec || o.ctimeNsec !== e.ctimeNsec || o.intentToAdd !== e.intentToAdd || o.skipWorktree !== e.skipWorktree || o.assumeValid !== e.assumeValid) touched.add(e.path);
    }
    for (const o of old.values()) touched.add(o.path);
    if (touched.size > MAX_DIRTY) {
      await this.#build();
      return;
    }
    for (const path of [...touched].sort(comparePaths)) await this.#refreshPath(path);
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
      this.#setIndex({ version: 2, entries: [], trees: new Map() }, 0n);
      return true;
    }
    const id = `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    if (id === this.#indexId) return false;
    this.#setIndex(parseIndex(await readFile(file), this.#config.get('extensions.objectformat') === 'sha256' ? 32 : 20), s.mtimeNs);
    this.#indexId = id;
    return true;
  }

  #setIndex(index: GitIndex, mtimeNs: bigint): void {
    this.#index = index;
    this.#indexMtimeNs = mtimeNs;
    this.#stage0.clear();
    this.#conflicts.clear();
    this.#stages.clear();
    this.#trackedDirs.clear();
    this.#untrackedViews.clear();
    this.#gitlinks = [];
    const tracked: string[] = [];
    for (const e of index.entries) {
      if (e.stage === 0 && e.mode === GITLINK) this.#gitlinks.push(e);
      if (e.stage === 0) this.#stage0.set(e.path, e);
      else {
        this.#conflicts.set(e.path, (this.#conflicts.get(e.path) ?? 0) | (1 << (e.stage - 1)));
        const list = this.#stages.get(e.path);
        if (list) list.push(e);
        else this.#stages.set(e.path, [e]);
      }
      if (tracked[tracked.length - 1] !== e.path) tracked.push(e.path);
      for (let i = e.path.lastIndexOf('/'); i > 0; i = e.path.lastIndexOf('/', i - 1)) {
        const dir = e.path.slice(0, i);
        if (this.#trackedDirs.has(dir)) break;
        this.#trackedDirs.add(dir);
      }
    }
    this.#tracked = tracked.sort(comparePaths);
    for (const path of this.#worktree.keys()) if (!this.#stage0.has(path)) this.#worktree.delete(path);
  }

  async #refreshStaged(): Promise<void> {
    const tree = this.#head.oid ? await this.#reader.commitTree(this.#head.oid) : null;
    const key = `${tree}:${this.#indexId}`;
    if (key === this.#stagedKey) return;
    this.#staged = await stagedChanges(this.#reader, tree, this.#index, this.#stage0, this.#conflicts);
    this.#stagedKey = key;
  }

  #racy(e: IndexEntry): boolean {
    return this.#indexMtimeNs !== 0n && BigInt(e.mtimeSec) * BILLION + BigInt(e.mtimeNsec) >= this.#indexMtimeNs;
  }

  /**
   * Every entry compared. The stats are taken on the worker pool when there are many (in parallel, while
   * this thread walks for untracked files), else here in synchronous slices (a sync lstat is ~3x cheaper
   * than a promise per file, and a slice of STAT_BATCH keeps the event loop free between slices). Content
   * is read only for the few entries the stat cannot decide.
   */
  async #compareAll(entries: IndexEntry[]): Promise<void> {
    const compared = entries.filter((e) => !e.skipWorktree && !e.assumeValid);
    for (const e of entries) if (e.skipWorktree || e.assumeValid) this.#worktree.delete(e.path);
    const undecided: Array<Promise<void>> = [];
    const decide = (e: IndexEntry, d: StatData): void => {
      const letter = this.#fromStat(e, d);
      if (letter === null) undecided.push(this.#compareEntry(e));
      else if (letter === ' ') this.#worktree.delete(e.path);
      else this.#worktree.set(e.path, letter);
    };
    if (this.#statMany && compared.length >= POOL_STAT_MIN) {
      const size = Math.ceil(compared.length / POOL_STAT_CHUNKS);
      const chunks = [];
      for (let i = 0; i < compared.length; i += size) chunks.push(compared.slice(i, i + size));
      const packed = await Promise.all(chunks.map((c) => this.#statMany!(this.paths.worktree, c.map((e) => e.path)).catch(() => null)));
      for (let c = 0; c < chunks.length; c++) {
        const stats = packed[c];
        chunks[c]!.forEach((e, i) => decide(e, stats ? unpackStat(stats, i) : lstatData(join(this.paths.worktree, e.path))));
      }
    } else {
      for (let i = 0; i < compared.length; i += STAT_BATCH) {
        for (const e of compared.slice(i, i + STAT_BATCH)) decide(e, lstatData(join(this.paths.worktree, e.path)));
        await new Promise((r) => setImmediate(r));
      }
    }
    await Promise.all(undecided);
  }

  /** The second status letter of one stage-0 entry, from a stat and, when the stat cannot tell, its content. */
  async #compareEntry(e: IndexEntry): Promise<void> {
    const letter = e.skipWorktree || e.assumeValid ? ' ' : await this.#worktreeLetter(e);
    if (letter !== 'M') this.#subChange.delete(e.path);
    if (letter !== 'M') this.#subState.delete(e.path);
    if (letter === ' ') this.#worktree.delete(e.path);
    else this.#worktree.set(e.path, letter);
  }

  /** What a stat alone tells of an entry: its letter, or null when only the content (or the submodule) can. */
  #fromStat(e: IndexEntry, d: StatData): string | null {
    if (d.kind === KIND_MISSING) return 'D';
    if (e.mode === GITLINK) return d.kind === KIND_DIR ? null : 'T';
    // A file that is now a directory, fifo or socket is gone as far as the index is concerned.
    if (d.kind !== KIND_FILE && d.kind !== KIND_SYMLINK) return 'D';
    const mode = d.kind === KIND_SYMLINK ? SYMLINK : !this.#fileMode ? e.mode : d.mode & 0o100 ? 0o100755 : 0o100644;
    if (!sameType(mode, e.mode)) return 'T';
    if (e.intentToAdd) return 'A';
    if (mode !== e.mode) return 'M';
    if (d.size !== e.size && e.size !== 0) return 'M';
    if (d.size === e.size && statMatches(e, d) && !this.#racy(e)) return ' ';
    return null;
  }

  /**
   * Whether every directory leading to `path` is a real directory: git does not follow a symlink on the
   * way to a tracked file (a directory replaced by a link deletes the files below it). Answers are kept
   * for one update.
   */
  #realLeading(path: string): Promise<boolean> {
    const i = path.lastIndexOf('/');
    if (i < 0) return Promise.resolve(true);
    const dir = path.slice(0, i);
    let known = this.#leadingDirs.get(dir);
    if (!known) {
      known = this.#realLeading(dir).then(async (real) => real && (await lstat(join(this.paths.worktree, dir)).then((s) => s.isDirectory(), () => false)));
      this.#leadingDirs.set(dir, known);
    }
    return known;
  }

  async #worktreeLetter(e: IndexEntry): Promise<string> {
    const abs = join(this.paths.worktree, e.path);
    if (!(await this.#realLeading(e.path))) return 'D';
    const d = statData(await lstat(abs).catch(() => undefined));
    if (e.mode === GITLINK && d.kind === KIND_DIR) {
      const sub = await this.#submodule(abs);
      this.#subChange.delete(e.path);
      this.#subState.set(e.path, { commits: sub.head !== null && sub.head !== e.oid, modified: sub.changed, untracked: sub.untracked });
      if (sub.head === null) return ' ';
      const change = sub.head !== e.oid ? 'commit' : sub.changed ? 'dirty' : sub.untracked ? 'untracked' : null;
      if (change === null) return ' ';
      this.#subChange.set(e.path, change);
      return 'M';
    }
    const decided = this.#fromStat(e, d);
    if (decided !== null) return decided;
    const content = (e.mode & TYPE_MASK) === SYMLINK ? Buffer.from(await readlink(abs, 'buffer')) : await readFile(abs).catch(() => null);
    if (content === null) return 'D';
    return gitBlobId(content) === e.oid ? ' ' : 'M';
  }

  /** After an event on `path`: its tracked entries compared again, its untracked standing decided again. */
  async #refreshPath(path: string): Promise<void> {
    for (const p of this.#trackedUnder(path)) {
      const e = this.#stage0.get(p);
      if (e) await this.#compareEntry(e);
    }
    if (path === '') {
      await this.#rewalk('');
      return;
    }
    const parent = posix.dirname(path) === '.' ? '' : posix.dirname(path);
    // A `.git` made or removed in a directory without tracked files: whether that directory is a nested
    // repository (listed as `dir/`, not walked) changed.
    if (posix.basename(path) === '.git' && parent !== '' && !this.#trackedDirs.has(parent)) {
      await this.#refreshPath(parent);
      return;
    }
    const parentIgnored = this.#dirs.get(parent);
    if (parentIgnored === undefined) {
      this.#forgetUntracked(path);
      return; // inside a directory that is not walked (ignored, or gone)
    }
    // A .gitignore made, changed or removed: everything below its directory is decided again.
    if (posix.basename(path) === '.gitignore') {
      await this.#rewalk(parent);
      return;
    }
    this.#forgetUntracked(path);
    let s;
    try {
      s = await lstat(join(this.paths.worktree, path));
    } catch {
      return;
    }
    await this.#classify(path, posix.basename(path), s.isDirectory(), parentIgnored);
  }

  async #rewalk(dir: string): Promise<void> {
    this.#forgetUntracked(dir, true);
    this.#rules.forgetDir(dir);
    const ignored = this.#dirs.get(dir) ?? false;
    await this.#walk(dir, ignored);
  }

  #trackedUnder(path: string): string[] {
    const list = this.#tracked;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (comparePaths(list[mid]!, path) < 0) lo = mid + 1;
      else hi = mid;
    }
    const out: string[] = [];
    // `path` itself, then `path/...`; names like `path.c` or `path-x` sort between them and are skipped.
    for (let i = lo; i < list.length; i++) {
      const p = list[i]!;
      if (p === path || under(p, path)) out.push(p);
      else if (!p.startsWith(path)) break;
    }
    return out;
  }

  /** Drops what is known of `path` and below it (with `keepSelf`, only below it). */
  #forgetUntracked(path: string, keepSelf = false): void {
    const below = path === '' ? '' : `${path}/`;
    this.#untrackedViews.clear();
    for (const set of [this.#untracked, this.#ignoredFiles, this.#ignoredDirs]) {
      for (const p of set) {
        if ((!keepSelf && (p === path || p === below)) || (p.startsWith(below) && p !== below)) {
          set.delete(p);
          // A nested repository's own watch (see #walkUntrackedDir).
          if (set === this.#untracked && p.endsWith('/')) this.#watch?.delete(join(this.paths.worktree, p.slice(0, -1)));
        }
      }
    }
    for (const d of [...this.#dirs.keys()]) {
      if ((!keepSelf && d === path) || (d.startsWith(below) && d !== path)) {
        this.#dirs.delete(d);
        this.#watch.delete(join(this.paths.worktree, d));
      }
    }
  }

  /** Reads directory `dir`, watches it and classifies its entries. */
  async #walk(dir: string, ignored: boolean): Promise<void> {
    const abs = dir ? join(this.paths.worktree, dir) : this.paths.worktree;
    // Watched before it is read: an entry made after the listing is reported, one made before is listed.
    this.#watch.add(abs);
    let list: Dirent[];
    try {
      list = await readdir(abs, { withFileTypes: true });
    } catch {
      this.#watch.delete(abs);
      return;
    }
    this.#dirs.set(dir, ignored);
    if (!ignored) this.#rules.loadDir(dir, list.some((e) => e.name === '.gitignore'));
    const subdirs: Array<Promise<void>> = [];
    for (const e of list) {
      if (e.name === '.git' && dir === '') continue;
      const path = dir ? `${dir}/${e.name}` : e.name;
      const work = this.#classify(path, e.name, e.isDirectory(), ignored);
      if (work) subdirs.push(work);
    }
    await Promise.all(subdirs);
  }

  /** Decides what an entry of a walked directory is; returns the walk of a subdirectory when there is one. */
  #classify(path: string, name: string, isDir: boolean, parentIgnored: boolean): Promise<void> | undefined {
    this.#untrackedViews.clear();
    if (!isDir) {
      if (this.#stage0.has(path) || this.#conflicts.has(path) || name.startsWith(COOKIE_PREFIX)) return;
      if (parentIgnored || this.#rules.isIgnored(path, false)) this.#ignoredFiles.add(path);
      else this.#untracked.add(path);
      return;
    }
    const entry = this.#stage0.get(path);
    if (entry?.mode === GITLINK) return;
    const ignored = parentIgnored || this.#rules.isIgnored(path, true);
    if (this.#trackedDirs.has(path)) return this.#walk(path, ignored);
    if (ignored) {
      this.#ignoredDirs.add(path);
      return;
    }
    return this.#walkUntrackedDir(path);
  }

  /** A directory with no tracked files: a nested repository is listed as `dir/`, anything else is walked. */
  async #walkUntrackedDir(path: string): Promise<void> {
    if (await this.#isNestedRepo(path)) {
      this.#untracked.add(`${path}/`);
      this.#untrackedViews.clear();
      // Watched itself (not walked): its `.git` removed makes it a plain directory again.
      this.#watch?.add(join(this.paths.worktree, path));
    } else await this.#walk(path, false);
  }

  async #isNestedRepo(path: string): Promise<boolean> {
    try {
      await lstat(join(this.paths.worktree, path, '.git'));
      return true;
    } catch {
      return false;
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
        const e = this.#stage0.get(path);
        if (e) dests.push({ path, mode: e.mode, oid: e.oid });
      }
    }
    const byPath = (a: RenameSide, b: RenameSide) => comparePaths(a.path, b.path);
    this.#renamePairs = await findRenames(sources.sort(byPath), dests.sort(byPath), rename, this.#scorer);
    this.#renameKey = key;
    return this.#renamePairs;
  }

  /** The worktree file's mode as git's diff sees it (ce_mode_from_stat), 0 when there is none. */
  async #worktreeMode(path: string, indexMode: number): Promise<number> {
    const s = await lstat(join(this.paths.worktree, path)).catch(() => null);
    if (!s) return 0;
    if (s.isSymbolicLink()) return SYMLINK;
    if (s.isDirectory()) return indexMode === GITLINK ? GITLINK : 0;
    if (!s.isFile()) return 0;
    if (!this.#fileMode) return (indexMode & TYPE_MASK) === 0o100000 ? indexMode : 0o100644;
    return s.mode & 0o100 ? 0o100755 : 0o100644;
  }

  /** What porcelain v2's submodule token shows of a listed gitlink: new commits, modified and untracked content. */
  #submoduleBits(path: string, options: StatusOptions, untrackedListed: boolean): { commits: boolean; modified: boolean; untracked: boolean } {
    const mode = this.#config.ignoreSubmodules(path, options.ignoreSubmodules, untrackedListed);
    const state = this.#subState.get(path) ?? { commits: false, modified: false, untracked: false };
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
    const changed = new Set<string>([...this.#staged.keys(), ...this.#worktree.keys(), ...this.#conflicts.keys()]);
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
      const e = this.#stage0.get(path);
      let y = this.#worktree.get(path) ?? ' ';
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
        const worktreeMode = y === ' ' ? indexMode : y === 'D' ? 0 : await this.#worktreeMode(path, e?.mode ?? 0);
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
    for (const path of this.#untrackedPaths(untracked)) entries.push({ path, x: '?', y: '?' });
    if (ignored !== 'no') for (const path of (await this.#ignoredPaths(untracked, ignored)).filter(this.#listable).sort(comparePaths)) entries.push({ path, x: '!', y: '!' });
    return entries;
  }

  /** Stage 1, 2 and 3 of an unmerged path, and its worktree mode. */
  async #unmergedDetail(entry: StatusEntry): Promise<void> {
    const stages = [1, 2, 3].map(() => ({ mode: octal(0), oid: ZERO_OID }));
    let mode = 0;
    for (const e of this.#stages.get(entry.path) ?? []) {
      stages[e.stage - 1] = { mode: octal(e.mode), oid: e.oid };
      mode = e.mode;
    }
    entry.stages = stages;
    entry.mode_worktree = octal(await this.#worktreeMode(entry.path, mode));
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
    const change = this.#subChange.get(path);
    if (letter !== 'M' || change === undefined || mode === 'none') return true;
    return mode === 'dirty' ? change === 'commit' : change !== 'untracked';
  }

  /**
   * The outermost directory above `path` (a file, or a directory written `dir/`) that holds no tracked file:
   * what normal mode lists in its place. Null when `path` is directly in a directory with tracked files.
   */
  #outermostUntracked(path: string): string | null {
    for (let i = path.indexOf('/'); i > 0 && i < path.length - 1; i = path.indexOf('/', i + 1)) {
      const dir = path.slice(0, i);
      if (!this.#trackedDirs.has(dir)) return dir;
    }
    return null;
  }

  /**
   * Sorted. `all`: every untracked file (a nested repository as `dir/`); `normal`: a directory without
   * tracked files as `dir/`.
   */
  #untrackedPaths(untracked: 'normal' | 'all'): string[] {
    let view = this.#untrackedViews.get(untracked) as string[] | undefined;
    if (view) return view;
    if (untracked === 'all') view = [...this.#untracked];
    else {
      const out = new Set<string>();
      for (const path of this.#untracked) {
        const top = this.#outermostUntracked(path);
        out.add(top === null ? path : `${top}/`);
      }
      view = [...out];
    }
    view = view.filter(this.#listable).sort(comparePaths);
    this.#untrackedViews.set(untracked, view);
    return view;
  }

  /** A directory entry (`dir/`) whose path the index has as a file is not listed, as git drops it. */
  readonly #listable = (path: string): boolean => {
    if (!path.endsWith('/')) return true;
    const name = path.slice(0, -1);
    return !this.#stage0.has(name) && !this.#conflicts.has(name);
  };

  /** Every directory with untracked files (or a nested repository) somewhere below it. */
  #holdingUntracked(): Set<string> {
    let holding = this.#untrackedViews.get('holding') as Set<string> | undefined;
    if (holding) return holding;
    holding = new Set<string>();
    for (const path of this.#untracked) {
      for (let i = path.indexOf('/'); i > 0 && i < path.length - 1; i = path.indexOf('/', i + 1)) holding.add(path.slice(0, i));
    }
    this.#untrackedViews.set('holding', holding);
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
  async #ignoredPaths(untracked: 'normal' | 'all', ignored: 'traditional' | 'matching'): Promise<string[]> {
    if (ignored === 'matching') return [...this.#ignoredFiles, ...[...this.#ignoredDirs].map((d) => `${d}/`)];
    if (untracked === 'all') {
      const out = [...this.#ignoredFiles];
      for (const dir of this.#ignoredDirs) out.push(...(await this.#filesUnder(dir)));
      return out;
    }
    const holding = this.#holdingUntracked();
    const out = new Set<string>();
    const place = (path: string, isDir: boolean): void => {
      const written = isDir ? `${path}/` : path;
      const top = this.#outermostUntracked(written);
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
    for (const path of this.#ignoredFiles) place(path, false);
    const dirs = [...this.#ignoredDirs];
    const filled = await Promise.all(dirs.map((d) => this.#holdsFile(d)));
    dirs.forEach((d, i) => filled[i] && place(d, true));
    return [...out];
  }

  /** Whether a file (or a nested repository) is anywhere below directory `dir`: read until the first is found. */
  async #holdsFile(dir: string): Promise<boolean> {
    if (await this.#isNestedRepo(dir)) return true;
    let list: Dirent[];
    try {
      list = await readdir(join(this.paths.worktree, dir), { withFileTypes: true });
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
    if (await this.#isNestedRepo(dir)) return [`${dir}/`];
    let list: Dirent[];
    try {
      list = await readdir(join(this.paths.worktree, dir), { withFileTypes: true });
    } catch {
      return [];
    }
    const out: string[] = [];
    for (const e of list) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory()) out.push(...(await this.#filesUnder(path)));
      else if (!this.#stage0.has(path)) out.push(path);
    }
    return out;
  }
}
