// A file's stat as the plain numbers status compares, so stats can be taken on worker threads and sent
// back packed in one Float64Array. Times are node's milliseconds (seconds * 1e3 + nanoseconds / 1e6,
// exact to a fraction of a microsecond): BigInt stats would be exact to the nanosecond but cost twice as
// much, and git itself compares whole seconds unless built with USE_NSEC. A difference below that
// resolution could only make a changed file look unchanged if its size, inode and ctime also held.
import type { Stats } from 'node:fs';

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

const U32 = 2 ** 32;
export const MISSING: StatData = { kind: KIND_MISSING, mode: 0, size: 0, mtimeMs: 0, ctimeMs: 0, ino: 0, uid: 0, gid: 0 };

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
