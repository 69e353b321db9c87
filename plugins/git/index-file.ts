// A reader for git's index file (`.git/index`), versions 2, 3 and 4, with or without its trailing hash
// (`index.skipHash`). isomorphic-git's reader refuses version 4 (what `feature.manyFiles` writes) and
// skipHash indexes, so status reads the index itself. Format: Documentation/gitformat-index.txt in git.
//
// The entries are kept in columns, not as an object per entry: every path in one string with an offset
// table, the stat data in one Uint32Array (on a SharedArrayBuffer, so worker threads read it without a
// copy), the object ids in one Buffer, the flags in one Uint8Array. A 100k-file index is ~9 MB this way
// against ~40 MB as objects, and the garbage collector has a handful of objects to trace instead of 300k.
import { hash } from 'node:crypto';

export interface IndexEntry {
  path: string;
  /** The object id, hex. */
  oid: string;
  /** 0o100644, 0o100755, 0o120000 (symlink) or 0o160000 (gitlink, a submodule). */
  mode: number;
  /** 0 normally; 1 (base), 2 (ours) or 3 (theirs) during a merge conflict. */
  stage: number;
  intentToAdd: boolean;
}

export class IndexFormatError extends Error {}

/** The stat columns of each entry, in this order (git's own order, less dev, which git does not compare). */
export const S_CTIME = 0;
export const S_CTIME_NS = 1;
export const S_MTIME = 2;
export const S_MTIME_NS = 3;
export const S_INO = 4;
export const S_MODE = 5;
export const S_UID = 6;
export const S_GID = 7;
export const S_SIZE = 8;
export const STAT_FIELDS = 9;

export const F_ASSUME_VALID = 4;
export const F_SKIP_WORKTREE = 8;
export const F_INTENT_TO_ADD = 16;

/** By code point, which is UTF-8 byte order: git's path order. `a` from `from` to `to`, against all of `b`. */
export function compareRange(a: string, from: number, to: number, b: string): number {
  const la = to - from;
  const n = Math.min(la, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(from + i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // A surrogate (half of a code point above U+FFFF) sorts after every other UTF-16 unit.
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb) return sa ? 1 : -1;
    return ca - cb;
  }
  return la - b.length;
}

export function comparePaths(a: string, b: string): number {
  return compareRange(a, 0, a.length, b);
}

type IndexColumns = Pick<IndexTable, 'version' | 'count' | 'names' | 'starts' | 'stat' | 'oids' | 'oidLength' | 'flags' | 'trees' | 'checksum'>;

export class IndexTable {
  readonly version: number;
  readonly count: number;
  /** Every path, one after the other; entry i is names.slice(starts[i], starts[i + 1]). */
  readonly names: string;
  readonly starts: Uint32Array;
  /** STAT_FIELDS numbers per entry, on a SharedArrayBuffer. */
  readonly stat: Uint32Array;
  readonly oids: Buffer;
  readonly oidLength: number;
  /** The stage in bits 0-1, and the F_ flags. */
  readonly flags: Uint8Array;
  /**
   * The cache-tree extension: the tree id of each directory ('' for the root) whose entries have not
   * changed since the tree was last computed. Directories without a valid id are absent.
   */
  readonly trees: Map<string, string>;
  /** What identifies this content: the file's trailing hash (or a hash of it when it has none, skipHash). */
  readonly checksum: string;

  constructor(c: IndexColumns) {
    this.version = c.version;
    this.count = c.count;
    this.names = c.names;
    this.starts = c.starts;
    this.stat = c.stat;
    this.oids = c.oids;
    this.oidLength = c.oidLength;
    this.flags = c.flags;
    this.trees = c.trees;
    this.checksum = c.checksum;
  }

  static empty(): IndexTable {
    return new IndexTable({ version: 2, count: 0, names: '', starts: new Uint32Array(1), stat: new Uint32Array(0), oids: Buffer.alloc(0), oidLength: 20, flags: new Uint8Array(0), trees: new Map(), checksum: 'none' });
  }

  path(i: number): string {
    return this.names.slice(this.starts[i]!, this.starts[i + 1]!);
  }

  oid(i: number): string {
    return this.oids.toString('hex', i * this.oidLength, (i + 1) * this.oidLength);
  }

  mode(i: number): number {
    return this.stat[i * STAT_FIELDS + S_MODE]!;
  }

  stage(i: number): number {
    return this.flags[i]! & 3;
  }

  has(i: number, flag: number): boolean {
    return (this.flags[i]! & flag) !== 0;
  }

  entry(i: number): IndexEntry {
    return { path: this.path(i), oid: this.oid(i), mode: this.mode(i), stage: this.stage(i), intentToAdd: this.has(i, F_INTENT_TO_ADD) };
  }

  /** The first entry whose path is not before `path`. */
  lowerBound(path: string): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareRange(this.names, this.starts[mid]!, this.starts[mid + 1]!, path) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The stage-0 entry of `path`, or -1. */
  find(path: string): number {
    const i = this.lowerBound(path);
    return i < this.count && this.stage(i) === 0 && compareRange(this.names, this.starts[i]!, this.starts[i + 1]!, path) === 0 ? i : -1;
  }
}

const decoder = new TextDecoder();

/** git's offset varint (varint.c): 7 bits a byte, each continuation adding one before the shift. */
function readVarint(buf: Buffer, pos: number): [value: number, next: number] {
  let c = buf[pos++]!;
  let value = c & 0x7f;
  while (c & 0x80) {
    c = buf[pos++]!;
    value = ((value + 1) << 7) | (c & 0x7f);
  }
  return [value, pos];
}

export function parseIndex(buf: Buffer, oidLength = 20): IndexTable {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'DIRC') throw new IndexFormatError('not a git index (bad signature)');
  const version = buf.readUInt32BE(4);
  if (version < 2 || version > 4) throw new IndexFormatError(`unsupported index version ${version}`);
  const count = buf.readUInt32BE(8);
  const end = buf.length - oidLength;
  if (count > (end - 12) / (42 + oidLength)) throw new IndexFormatError('index truncated');
  const stat = new Uint32Array(new SharedArrayBuffer(count * STAT_FIELDS * 4));
  const oids = Buffer.allocUnsafe(count * oidLength);
  const flagsOut = new Uint8Array(new SharedArrayBuffer(count));
  // Path bytes gathered in one buffer while the entries are read (byte by byte: ~30 bytes a path, where a
  // call per copy costs more than the loop), and decoded once: as latin1 when all are ASCII, so the
  // offsets stay byte offsets.
  let pathBytes = Buffer.allocUnsafe(Math.max(64, count * 40));
  const byteStarts = new Uint32Array(count + 1);
  let used = 0;
  let high = 0;
  let pos = 12;
  let prevStart = 0;
  let prevLength = 0;
  const u32 = (at: number): number => ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
  for (let i = 0; i < count; i++) {
    const start = pos;
    // 40 bytes of stat data, the object id, 16 bits of flags (and 16 more when extended), the path.
    const flagsAt = pos + 40 + oidLength;
    if (flagsAt + 2 > end) throw new IndexFormatError('index truncated');
    const flags = (buf[flagsAt]! << 8) | buf[flagsAt + 1]!;
    const extended = version >= 3 && (flags & 0x4000) !== 0;
    const extra = extended ? (buf[flagsAt + 2]! << 8) | buf[flagsAt + 3]! : 0;
    pos = flagsAt + (extended ? 4 : 2);
    let keep = 0;
    if (version === 4) {
      const [strip, next] = readVarint(buf, pos);
      if (strip > prevLength) throw new IndexFormatError('bad path in version 4 index');
      keep = prevLength - strip;
      pos = next;
    }
    // Room for the kept prefix and the longest name git allows (4096) at once; grown when short.
    if (used + keep + 4096 > pathBytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(pathBytes.length * 2, used + keep + 4096));
      pathBytes.copy(grown, 0, 0, used);
      pathBytes = grown;
    }
    // Version 4 keeps a prefix of the previous path: copied from where that path was put.
    if (keep > 0) pathBytes.copyWithin(used, prevStart, prevStart + keep);
    let w = used + keep;
    let c: number;
    while ((c = buf[pos]!) !== 0) {
      if (pos >= end || w - used >= 4096 + keep) throw new IndexFormatError('bad path in index');
      pathBytes[w++] = c;
      high |= c;
      pos++;
    }
    pos++;
    // Versions 2 and 3 pad each entry with 1-8 NULs to a multiple of 8 bytes.
    if (version !== 4) pos = start + ((pos - 1 - start + 8) & ~7);
    byteStarts[i] = used;
    prevStart = used;
    prevLength = w - used;
    used = w;
    const o = i * STAT_FIELDS;
    stat[o + S_CTIME] = u32(start);
    stat[o + S_CTIME_NS] = u32(start + 4);
    stat[o + S_MTIME] = u32(start + 8);
    stat[o + S_MTIME_NS] = u32(start + 12);
    stat[o + S_INO] = u32(start + 20);
    stat[o + S_MODE] = u32(start + 24);
    stat[o + S_UID] = u32(start + 28);
    stat[o + S_GID] = u32(start + 32);
    stat[o + S_SIZE] = u32(start + 36);
    for (let k = 0, at = i * oidLength, from = start + 40; k < oidLength; k++) oids[at + k] = buf[from + k]!;
    flagsOut[i] = ((flags >> 12) & 3) | (flags & 0x8000 ? F_ASSUME_VALID : 0) | (extra & 0x4000 ? F_SKIP_WORKTREE : 0) | (extra & 0x2000 ? F_INTENT_TO_ADD : 0);
  }
  byteStarts[count] = used;
  let names: string;
  let starts: Uint32Array;
  if (high < 0x80) {
    names = pathBytes.toString('latin1', 0, used);
    starts = byteStarts;
  } else {
    const parts: string[] = new Array(count);
    starts = new Uint32Array(count + 1);
    for (let i = 0; i < count; i++) {
      parts[i] = decoder.decode(pathBytes.subarray(byteStarts[i]!, byteStarts[i + 1]!));
      starts[i + 1] = starts[i]! + parts[i]!.length;
    }
    names = parts.join('');
  }
  const trees = new Map<string, string>();
  while (pos + 8 <= end) {
    const signature = buf.toString('latin1', pos, pos + 4);
    const size = buf.readUInt32BE(pos + 4);
    if (pos + 8 + size > end) throw new IndexFormatError(`index extension "${signature}" runs past the end`);
    const body = buf.subarray(pos + 8, pos + 8 + size);
    if (signature === 'TREE') readCacheTree(body, oidLength, trees);
    else if (signature === 'link' || signature === 'sdir') throw new IndexFormatError(`index extension "${signature}" (split or sparse index) is not supported`);
    pos += 8 + size;
  }
  if (pos !== end) throw new IndexFormatError('index truncated (bytes left before the trailing hash)');
  let checksum = buf.toString('hex', end);
  if (/^0+$/.test(checksum)) checksum = hash('sha1', buf);
  return new IndexTable({ version, count, names, starts, stat, oids, oidLength, flags: flagsOut, trees, checksum });
}

/** TREE: pre-order entries of `path NUL count SP subtrees LF [oid]`; count -1 means invalidated. */
function readCacheTree(body: Buffer, oidLength: number, out: Map<string, string>): void {
  const stack: Array<{ prefix: string; left: number }> = [];
  let pos = 0;
  while (pos < body.length) {
    const nul = body.indexOf(0, pos);
    const lf = body.indexOf(10, nul);
    if (nul < 0 || lf < 0) return;
    const name = decoder.decode(body.subarray(pos, nul));
    const [countText, subtreesText] = body.toString('latin1', nul + 1, lf).split(' ');
    const count = Number(countText);
    const subtrees = Number(subtreesText);
    pos = lf + 1;
    while (stack.length > 0 && stack[stack.length - 1]!.left === 0) stack.pop();
    const parent = stack[stack.length - 1];
    if (parent) parent.left--;
    const path = parent ? (parent.prefix ? `${parent.prefix}/${name}` : name) : '';
    if (count >= 0) {
      out.set(path, body.toString('hex', pos, pos + oidLength));
      pos += oidLength;
    }
    stack.push({ prefix: path, left: subtrees });
  }
}
