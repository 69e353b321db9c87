// The worktree against the index: the second status letter (Y) of each stage-0 entry. A stat decides
// almost every entry (git's rule: same size, times, inode and owner as the index recorded, and the entry
// not racily clean, i.e. not as new as the index file); the few it cannot decide are read and hashed, and
// what the hash found is kept with the stat it was taken under (a verdict), so the same file is not read
// again while its stat holds, across restarts too. Stats of many entries run on worker threads
// (scanEntries), which send back only the entries a stat did not find clean.
import { lstatSync } from 'node:fs';
import { lstat, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { gitBlobId } from '../../src/file-hash.js';
import { F_ASSUME_VALID, F_INTENT_TO_ADD, F_SKIP_WORKTREE, type IndexTable, S_CTIME, S_CTIME_NS, S_GID, S_INO, S_MODE, S_MTIME, S_MTIME_NS, S_SIZE, S_UID, STAT_FIELDS } from './index-file.js';
import { GITLINK, isRegular, REGULAR, sameType, SYMLINK, TYPE_MASK } from './modes.js';
import { KIND_DIR, KIND_FILE, KIND_MISSING, KIND_SYMLINK, MISSING, statData, type StatData } from './stat-data.js';

/** Called for a submodule's worktree: whether it has changes of its own (anything git would list). */
export type SubmoduleCheck = (worktree: string) => Promise<{ head: string | null; changed: boolean; untracked: boolean }>;

/** Files read for hashing at once. */
const READS_AT_ONCE = 32;

/** The filesystem's time now (the mtime of a file written now), as git's racy rule compares with the index's mtime. */
export type FsStamp = () => Promise<number>;

/**
 * What a hash found for a file against the index's blob `oid`, the stat taken before it was read, and the
 * filesystem's time between the two (`takenAt`).
 */
export interface Verdict {
  stat: StatData;
  oid: string;
  letter: string;
  takenAt: number;
}

/**
 * What a comparison needs besides the index: core.filemode, core.trustctime, core.checkStat (`minimal`:
 * only mtime and size count, as git's match_stat_data), and the index file's mtime (the racy rule).
 */
export interface CompareRules {
  fileMode: boolean;
  trustCtime: boolean;
  checkStat: boolean;
  indexMtimeSec: number;
  indexMtimeNsec: number;
}

const timeMs = (sec: number, nsec: number): number => sec * 1000 + nsec / 1_000_000;

function sameStat(a: StatData, b: StatData): boolean {
  return a.kind === b.kind && a.mode === b.mode && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.uid === b.uid && a.gid === b.gid;
}

/**
 * Whether what was seen after the filesystem time `takenAt` (a file's content, a directory's listing) goes
 * with `stat` for as long as the stat holds: when the stat's times are older than `takenAt`, any later change
 * gets newer times (git's racy rule, with the index's mtime as `takenAt`). The same clock as the stat's, so
 * a coarse filesystem (2 s on FAT) or a clock's tick needs no margin.
 */
export function settledBefore(stat: StatData, takenAt: number): boolean {
  return stat.mtimeMs < takenAt && stat.ctimeMs < takenAt;
}

/**
 * What a stat alone tells of entry `i`: its letter, or null when only the content (or, for a gitlink, the
 * submodule) can. Plain functions of the columns, so worker threads run the same code.
 */
export function fromStat(index: { stat: Uint32Array; flags: Uint8Array }, i: number, d: StatData, rules: CompareRules): string | null {
  const s = index.stat;
  const o = i * STAT_FIELDS;
  const mode = s[o + S_MODE]!;
  if (d.kind === KIND_MISSING) return 'D';
  if (mode === GITLINK) return d.kind === KIND_DIR ? null : 'T';
  // A file that is now a directory, fifo or socket is gone as far as the index is concerned.
  if (d.kind !== KIND_FILE && d.kind !== KIND_SYMLINK) return 'D';
  // Without core.filemode a file keeps the index's mode when that is a regular file's (ce_mode_from_stat).
  const now = d.kind === KIND_SYMLINK ? SYMLINK : !rules.fileMode ? (isRegular(mode) ? mode : 0o100644) : d.mode & 0o100 ? 0o100755 : 0o100644;
  if (!sameType(now, mode)) return 'T';
  if (index.flags[i]! & F_INTENT_TO_ADD) return 'A';
  if (now !== mode) return 'M';
  const size = s[o + S_SIZE]!;
  if (d.size !== size && size !== 0) return 'M';
  const mtimeSec = s[o + S_MTIME]!;
  const mtimeNsec = s[o + S_MTIME_NS]!;
  const matches =
    d.size === size &&
    d.mtimeMs === timeMs(mtimeSec, mtimeNsec) &&
    (!rules.trustCtime || !rules.checkStat || d.ctimeMs === timeMs(s[o + S_CTIME]!, s[o + S_CTIME_NS]!)) &&
    (!rules.checkStat || (d.ino === s[o + S_INO] && d.uid === s[o + S_UID] && d.gid === s[o + S_GID]));
  // Racily clean: written in the same instant as the index (or after), its stat cannot vouch for it.
  const racy = (rules.indexMtimeSec !== 0 || rules.indexMtimeNsec !== 0) && (mtimeSec > rules.indexMtimeSec || (mtimeSec === rules.indexMtimeSec && mtimeNsec >= rules.indexMtimeNsec));
  return matches && !racy ? ' ' : null;
}

/** Whether the worktree does not look at entry `i` at all (skip-worktree, assume-unchanged). */
const notCompared = (index: { flags: Uint8Array }, i: number): boolean => (index.flags[i]! & (F_ASSUME_VALID | F_SKIP_WORKTREE)) !== 0;

const FIELDS = 9;

export interface ScanTask {
  root: string;
  /** The paths of entries `from` to `from + starts.length - 1`, and their offsets in it. */
  names: string;
  starts: Uint32Array;
  from: number;
  /** The whole index's columns (shared memory). */
  stat: Uint32Array;
  flags: Uint8Array;
  rules: CompareRules;
}

export interface ScanResult {
  /** Per entry a stat did not find clean: its number, then its stat (kind, mode, size, mtime, ctime, ino, uid, gid). */
  entries: Float64Array;
}

export function lstatAt(path: string): StatData {
  try {
    return statData(lstatSync(path, { throwIfNoEntry: false }));
  } catch {
    return MISSING;
  }
}

function put(out: Float64Array, at: number, d: StatData): void {
  out[at] = d.kind;
  out[at + 1] = d.mode;
  out[at + 2] = d.size;
  out[at + 3] = d.mtimeMs;
  out[at + 4] = d.ctimeMs;
  out[at + 5] = d.ino;
  out[at + 6] = d.uid;
  out[at + 7] = d.gid;
}

function unpack(packed: Float64Array, at: number): StatData {
  return { kind: packed[at]!, mode: packed[at + 1]!, size: packed[at + 2]!, mtimeMs: packed[at + 3]!, ctimeMs: packed[at + 4]!, ino: packed[at + 5]!, uid: packed[at + 6]!, gid: packed[at + 7]! };
}

/** The worker task (and its fallback on this thread): the stats of a range of entries. */
export function scanEntries(task: ScanTask): ScanResult {
  const n = task.starts.length - 1;
  let found = new Float64Array(Math.min(n, 64) * FIELDS);
  let count = 0;
  const prefix = task.root.endsWith('/') ? task.root : `${task.root}/`;
  for (let k = 0; k < n; k++) {
    const i = task.from + k;
    if (notCompared(task, i)) continue;
    const d = lstatAt(prefix + task.names.slice(task.starts[k]!, task.starts[k + 1]!));
    if (fromStat(task, i, d, task.rules) === ' ') continue;
    if ((count + 1) * FIELDS > found.length) {
      const grown = new Float64Array(found.length * 2);
      grown.set(found);
      found = grown;
    }
    found[count * FIELDS] = i;
    put(found, count * FIELDS + 1, d);
    count++;
  }
  return { entries: found.slice(0, count * FIELDS) };
}

/** Each entry of a scan result: its number and stat. */
export function* scanned(result: ScanResult): Generator<[number, StatData]> {
  for (let at = 0; at < result.entries.length; at += FIELDS) yield [result.entries[at]!, unpack(result.entries, at + 1)];
}

/** The comparison results of one worktree: the Y letter of each entry that is not clean, and what explains them. */
export class WorktreeCompare {
  readonly #root: string;
  readonly #submodule: SubmoduleCheck;
  rules: CompareRules = { fileMode: true, trustCtime: true, checkStat: true, indexMtimeSec: 0, indexMtimeNsec: 0 };
  /** The second letter of every stage-0 entry that is not clean, by path. */
  readonly letters = new Map<string, string>();
  /**
   * Checked-out submodules listed as modified, by what changed: their commit, their tracked content, or
   * only untracked content. Which of these count is decided per answer (config, options).
   */
  readonly subChange = new Map<string, 'commit' | 'dirty' | 'untracked'>();
  /** Each gitlink's state as its last comparison found it. */
  readonly subState = new Map<string, { commits: boolean; modified: boolean; untracked: boolean }>();
  /** What hashing found, by path (only entries a stat could not decide). */
  readonly verdicts = new Map<string, Verdict>();
  /** Paths whose verdict changed since the last time they were taken (for the persisted state). */
  readonly changedVerdicts = new Set<string>();
  /** Files read and hashed so far. */
  hashed = 0;
  #reading = 0;
  readonly #waiting: Array<() => void> = [];
  /** Directories found real (not links) in this update, for realLeading. */
  readonly #leadingDirs = new Map<string, boolean>();

  readonly #stamp: FsStamp;
  #updateStamp: Promise<number> | null = null;

  constructor(root: string, submodule: SubmoduleCheck, stamp: FsStamp) {
    this.#root = root;
    this.#submodule = submodule;
    this.#stamp = stamp;
  }

  /** A new update: directories may have become links since the last, and the time moved on. */
  startUpdate(): void {
    this.#leadingDirs.clear();
    this.#updateStamp = null;
  }

  /** Sets an entry's letter (' ' for clean). */
  set(path: string, letter: string): void {
    if (letter !== 'M') {
      this.subChange.delete(path);
      this.subState.delete(path);
    }
    if (letter === ' ') this.letters.delete(path);
    else this.letters.set(path, letter);
  }

  /** Forgets a path that left the index. */
  forget(path: string): void {
    this.set(path, ' ');
    if (this.verdicts.delete(path)) this.changedVerdicts.add(path);
  }

  /**
   * Entry `i` compared from scratch: a stat, and the content or the submodule when the stat cannot tell.
   * The stat is synchronous (a few microseconds, where a promise on libuv's threads costs tens): a burst of
   * thousands of paths is compared in milliseconds.
   */
  compare(index: IndexTable, i: number): Promise<void> {
    const path = index.path(i);
    if (notCompared(index, i)) {
      this.set(path, ' ');
      return Promise.resolve();
    }
    if (!this.#realLeading(path)) {
      this.set(path, 'D');
      return Promise.resolve();
    }
    return this.decide(index, i, lstatAt(join(this.#root, path)), false);
  }

  /**
   * Entry `i` with a stat taken now: decided by it, by a verdict that still holds, or by reading the file.
   * `checkLeading`: whether the directories above it must still be checked for links.
   */
  async decide(index: IndexTable, i: number, d: StatData, checkLeading: boolean): Promise<void> {
    const path = index.path(i);
    if (checkLeading && !this.#realLeading(path)) {
      this.set(path, 'D');
      return;
    }
    const mode = index.mode(i);
    if (mode === GITLINK && d.kind === KIND_DIR) {
      this.set(path, await this.#compareSubmodule(path, index.oid(i)));
      return;
    }
    const letter = fromStat(index, i, d, this.rules);
    if (letter !== null) {
      this.set(path, letter);
      return;
    }
    const known = this.verdicts.get(path);
    if (known && known.oid === index.oid(i) && sameStat(known.stat, d) && settledBefore(d, known.takenAt)) {
      this.set(path, known.letter);
      return;
    }
    // One stamp an update, taken before the first file is read (a stat taken before it, content after).
    const takenAt = await (this.#updateStamp ??= this.#stamp());
    const content = await this.#read(join(this.#root, path), (mode & TYPE_MASK) === SYMLINK);
    this.hashed++;
    const found = content === null ? 'D' : gitBlobId(content) === index.oid(i) ? ' ' : 'M';
    this.set(path, found);
    if (content !== null) {
      this.verdicts.set(path, { stat: d, oid: index.oid(i), letter: found, takenAt });
      this.changedVerdicts.add(path);
    }
  }

  /**
   * A file's content (a link's target), null when it is gone. At most READS_AT_ONCE at a time: a worktree
   * whose every stat changed (a copy, a restore from backup) must not run out of file descriptors, and an
   * error other than "gone" fails the answer instead of making the file look deleted.
   */
  async #read(abs: string, link: boolean): Promise<Buffer | null> {
    while (this.#reading >= READS_AT_ONCE) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#reading++;
    try {
      return link ? Buffer.from(await readlink(abs, 'buffer')) : await readFile(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EINVAL') return null;
      throw err;
    } finally {
      this.#reading--;
      this.#waiting.shift()?.();
    }
  }

  async #compareSubmodule(path: string, oid: string): Promise<string> {
    const sub = await this.#submodule(join(this.#root, path));
    this.subChange.delete(path);
    this.subState.set(path, { commits: sub.head !== null && sub.head !== oid, modified: sub.changed, untracked: sub.untracked });
    if (sub.head === null) return ' ';
    const change = sub.head !== oid ? 'commit' : sub.changed ? 'dirty' : sub.untracked ? 'untracked' : null;
    if (change === null) return ' ';
    this.subChange.set(path, change);
    return 'M';
  }

  /** The worktree file's mode as git's diff sees it (ce_mode_from_stat), 0 when there is none. */
  async worktreeMode(path: string, indexMode: number): Promise<number> {
    const s = await lstat(join(this.#root, path)).catch(() => null);
    if (!s) return 0;
    if (s.isSymbolicLink()) return SYMLINK;
    if (s.isDirectory()) return indexMode === GITLINK ? GITLINK : 0;
    if (!s.isFile()) return 0;
    if (!this.rules.fileMode) return (indexMode & TYPE_MASK) === REGULAR ? indexMode : 0o100644;
    return s.mode & 0o100 ? 0o100755 : 0o100644;
  }

  /**
   * Whether every directory leading to `path` is a real directory: git does not follow a symlink on the
   * way to a tracked file (a directory replaced by a link deletes the files below it). Answers are kept
   * for one update.
   */
  #realLeading(path: string): boolean {
    const i = path.lastIndexOf('/');
    if (i < 0) return true;
    const dir = path.slice(0, i);
    let known = this.#leadingDirs.get(dir);
    if (known === undefined) {
      known = this.#realLeading(dir) && lstatAt(join(this.#root, dir)).kind === KIND_DIR;
      this.#leadingDirs.set(dir, known);
    }
    return known;
  }

}
