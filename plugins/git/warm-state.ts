// A worktree's warm state on disk, so a restarted daemon revalidates instead of rebuilding: per walked
// directory its identity (inode, mtime, ctime, taken before the listing was known) and its listing less
// tracked files, with a hash of the tracked names the listing left out; per file that a stat could not
// decide, the verdict its hash gave. One record file per worktree (src/services/record-file.ts): written
// as append-only batches of the records that changed, so a change costs its own records, not the state.
// Everything in it is a hint checked against the disk before use; a damaged, foreign-version or foreign
// file is discarded whole by the record file.
import { createHash } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { RecordFile, type Discard } from '../../src/services/record-file.js';
import type { IndexTable } from './index-file.js';
import { settledBefore, type Verdict } from './worktree-compare.js';
import { KIND_DIR, type StatData } from './stat-data.js';

/** The records' own format: a change of what they mean changes this, and old files are discarded. */
export const STATE_VERSION = 1;

export interface DirRecord {
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  takenAt: number;
  gitignore: boolean;
  /** trackedHashes' value for the directory when the listing was taken ('' for none tracked). */
  tracked: string;
  entries: string[];
}

export interface Restored {
  dirs: Map<string, DirRecord>;
  verdicts: Map<string, Verdict>;
  /** The index checksum the records were written against. */
  indexChecksum: string;
}

function sameRange(s: string, a: number, b: number, length: number): boolean {
  if (a === b) return true;
  for (let k = length - 1; k >= 0; k--) if (s.charCodeAt(a + k) !== s.charCodeAt(b + k)) return false;
  return true;
}

/** FNV-1a on two 32-bit lanes (64 bits): the tracked file names directly in each directory, by directory. */
export function trackedHashes(index: IndexTable): Map<string, string> {
  const lanes = new Map<string, Int32Array>();
  const { names, starts } = index;
  // Entries of one directory mostly come one after another: the last directory's lane is kept at hand.
  let lastFrom = 0;
  let lastLength = -1;
  let lane: Int32Array = new Int32Array(2);
  let previousFrom = -1;
  let previousTo = -1;
  for (let i = 0; i < index.count; i++) {
    const from = starts[i]!;
    const to = starts[i + 1]!;
    // The same path at several stages counts once.
    if (to - from === previousTo - previousFrom && sameRange(names, from, previousFrom, to - from)) continue;
    previousFrom = from;
    previousTo = to;
    const slash = names.lastIndexOf('/', to - 1);
    const length = slash >= from ? slash - from : 0;
    if (length !== lastLength || !sameRange(names, from, lastFrom, length)) {
      const dir = length > 0 ? names.slice(from, slash) : '';
      let found = lanes.get(dir);
      if (!found) {
        found = Int32Array.of(0x811c9dc5 | 0, 0x5bd1e995);
        lanes.set(dir, found);
      }
      lane = found;
      lastFrom = from;
      lastLength = length;
    }
    let a = lane[0]!;
    let b = lane[1]!;
    for (let c = slash >= from ? slash + 1 : from; c <= to; c++) {
      // The position past the name stands for its terminator, so `ab`+`c` and `a`+`bc` differ.
      const code = c === to ? 0 : names.charCodeAt(c);
      a = Math.imul(a ^ code, 0x01000193);
      b = Math.imul(b ^ code, 0x01000195);
    }
    lane[0] = a;
    lane[1] = b;
  }
  const out = new Map<string, string>();
  for (const [dir, l] of lanes) out.set(dir, (l[0]! >>> 0).toString(16).padStart(8, '0') + (l[1]! >>> 0).toString(16).padStart(8, '0'));
  return out;
}

/** What the records belong to: the worktree's path and its git directory's identity (a new repository at the same path differs). */
export async function repoIdentity(worktree: string, gitdir: string): Promise<string> {
  const s = await lstat(gitdir, { bigint: true });
  return `${worktree}\0${s.dev}:${s.ino}:${s.birthtimeNs}`;
}

export function stateFile(stateDir: string, worktree: string): string {
  return join(stateDir, 'git', `${createHash('sha256').update(worktree).digest('hex').slice(0, 32)}.state`);
}

const DIR = 'd:';
const VERDICT = 'v:';
const META = 'm';

export class WarmState {
  readonly #file: RecordFile;
  /** Directories with a record on disk. */
  readonly #written = new Set<string>();
  readonly discarded: Discard | null;

  private constructor(file: RecordFile, discarded: Discard | null) {
    this.#file = file;
    this.discarded = discarded;
  }

  static async open(stateDir: string, worktree: string, gitdir: string): Promise<{ state: WarmState; restored: Restored | null }> {
    const { file, records, discarded } = await RecordFile.open({ file: stateFile(stateDir, worktree), kind: 'hearth-git-state', version: STATE_VERSION, identity: await repoIdentity(worktree, gitdir) });
    const state = new WarmState(file, discarded);
    return { state, restored: records.size > 0 ? state.#decode(records) : null };
  }

  #decode(records: Map<string, Buffer>): Restored | null {
    const dirs = new Map<string, DirRecord>();
    const verdicts = new Map<string, Verdict>();
    let indexChecksum = '';
    try {
      for (const [key, value] of records) {
        const v = JSON.parse(value.toString('utf8'));
        if (key.startsWith(DIR)) {
          const dir = key.slice(DIR.length);
          if (!Array.isArray(v) || v.length !== 7 || !Array.isArray(v[6]) || !v[6].every((e: unknown) => typeof e === 'string')) return null;
          dirs.set(dir, { ino: v[0], mtimeMs: v[1], ctimeMs: v[2], takenAt: v[3], gitignore: v[4] === 1, tracked: v[5], entries: v[6] });
          this.#written.add(dir);
        } else if (key.startsWith(VERDICT)) {
          if (!Array.isArray(v) || v.length !== 11) return null;
          const [kind, mode, size, mtimeMs, ctimeMs, ino, uid, gid, oid, letter, takenAt] = v;
          verdicts.set(key.slice(VERDICT.length), { stat: { kind, mode, size, mtimeMs, ctimeMs, ino, uid, gid }, oid, letter, takenAt });
        } else if (key === META) indexChecksum = v.index;
      }
    } catch {
      return null; // a record the record file kept whole but this version cannot read: rebuilt
    }
    return { dirs, verdicts, indexChecksum };
  }

  /** The listing of `dir` when its identity now (`now`, stated after it was watched) proves it unchanged. */
  static valid(record: DirRecord | undefined, now: StatData | undefined, tracked: string): boolean {
    return (
      record !== undefined &&
      now !== undefined &&
      now.kind === KIND_DIR &&
      now.ino === record.ino &&
      now.mtimeMs === record.mtimeMs &&
      now.ctimeMs === record.ctimeMs &&
      settledBefore(now, record.takenAt) &&
      tracked === record.tracked
    );
  }

  putDir(dir: string, record: DirRecord): void {
    this.#file.put(DIR + dir, Buffer.from(JSON.stringify([record.ino, record.mtimeMs, record.ctimeMs, record.takenAt, record.gitignore ? 1 : 0, record.tracked, record.entries])));
    this.#written.add(dir);
  }

  /** Directories with a record. */
  get dirRecords(): number {
    return this.#written.size;
  }

  dropDir(dir: string): void {
    if (this.#written.delete(dir)) this.#file.delete(DIR + dir);
  }

  /** Drops the records of directories no longer walked. */
  keepDirs(walked: Map<string, unknown>): void {
    for (const dir of this.#written) {
      if (walked.has(dir)) continue;
      this.#file.delete(DIR + dir);
      this.#written.delete(dir);
    }
  }

  putVerdict(path: string, verdict: Verdict | undefined): void {
    if (!verdict) {
      this.#file.delete(VERDICT + path);
      return;
    }
    const s = verdict.stat;
    this.#file.put(VERDICT + path, Buffer.from(JSON.stringify([s.kind, s.mode, s.size, s.mtimeMs, s.ctimeMs, s.ino, s.uid, s.gid, verdict.oid, verdict.letter, verdict.takenAt])));
  }

  putMeta(indexChecksum: string): void {
    this.#file.put(META, Buffer.from(JSON.stringify({ index: indexChecksum })));
  }

  flush(): Promise<void> {
    return this.#file.flush();
  }

  close(): Promise<void> {
    return this.#file.close();
  }

  get stats(): RecordFile['stats'] {
    return this.#file.stats;
  }
}
