// The stat data git keeps per index entry, as plain numbers, so stats can be taken on worker threads and
// sent back packed in one Float64Array. Times are node's milliseconds (seconds * 1e3 + nanoseconds / 1e6,
// exact to a fraction of a microsecond): BigInt stats would be exact to the nanosecond but cost twice as
// much, and git itself compares whole seconds unless built with USE_NSEC. A difference below that
// resolution could only make a changed file look unchanged if its size, inode and ctime also held.
import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';

export const KIND_MISSING = 0;
export const KIND_FILE = 1;
export const KIND_SYMLINK = 2;
export const KIND_DIR = 3;
export const KIND_OTHER = 4;

export interface StatData {
  kind: number;
  /** The permission bits and file type (st_mode). */
  mode: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  uid: number;
  gid: number;
}

const FIELDS = 8;
const U32 = 2 ** 32;
export const MISSING: StatData = { kind: KIND_MISSING, mode: 0, size: 0, mtimeMs: 0, ctimeMs: 0, ino: 0, uid: 0, gid: 0 };

/** An index entry's time as node reports it (the same arithmetic, so equal times give equal numbers). */
export function indexTimeMs(sec: number, nsec: number): number {
  return sec * 1000 + nsec / 1_000_000;
}

export function statData(s: Stats | undefined): StatData {
  if (!s) return MISSING;
  return {
    kind: s.isFile() ? KIND_FILE : s.isSymbolicLink() ? KIND_SYMLINK : s.isDirectory() ? KIND_DIR : KIND_OTHER,
    mode: s.mode,
    size: s.size % U32,
    mtimeMs: s.mtimeMs,
    ctimeMs: s.ctimeMs,
    ino: s.ino % U32,
    uid: s.uid,
    gid: s.gid,
  };
}

/** lstat without following a final link; a path that is gone (or whose parent became a file) is MISSING. */
export function lstatData(path: string): StatData {
  try {
    return statData(lstatSync(path, { throwIfNoEntry: false }));
  } catch {
    return MISSING;
  }
}

export function packStats(root: string, paths: string[]): Float64Array {
  const out = new Float64Array(paths.length * FIELDS);
  for (let i = 0; i < paths.length; i++) {
    const d = lstatData(join(root, paths[i]!));
    out.set([d.kind, d.mode, d.size, d.mtimeMs, d.ctimeMs, d.ino, d.uid, d.gid], i * FIELDS);
  }
  return out;
}

export function unpackStat(packed: Float64Array, i: number): StatData {
  const o = i * FIELDS;
  return {
    kind: packed[o]!,
    mode: packed[o + 1]!,
    size: packed[o + 2]!,
    mtimeMs: packed[o + 3]!,
    ctimeMs: packed[o + 4]!,
    ino: packed[o + 5]!,
    uid: packed[o + 6]!,
    gid: packed[o + 7]!,
  };
}
