// Reads git objects (commits, trees, tags) from loose files and packs, looking each one up in the pack
// index by binary search and reading only its bytes from the pack. isomorphic-git parses a whole pack
// index into a Map before its first read and keeps the whole pack in memory: on a repository with 1.3M
// objects that was 11 s and ~400 MB before the first status; this reader answers in milliseconds and holds
// only the index files. Formats: Documentation/gitformat-pack.txt in git.
import { type FileHandle, open, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { inflateSync } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import { lazy } from '../../src/services/lazy.js';

export type ObjectType = 'commit' | 'tree' | 'blob' | 'tag';

export interface GitObject {
  type: ObjectType;
  data: Buffer;
}

/** Why an object could not be had: not in the repository, damaged bytes, or not the kind that was asked for. */
export type GitObjectReason = 'missing' | 'corrupt' | 'wrong_type';

/** An object of the repository could not be read as asked: the repository's failure, never the caller's. */
export class GitObjectError extends Error {
  override readonly name = 'GitObjectError';
  readonly reason: GitObjectReason;

  constructor(reason: GitObjectReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

const corrupt = (what: string, cause?: unknown): GitObjectError =>
  new GitObjectError('corrupt', `${what} is damaged${cause instanceof Error ? `: ${cause.message}` : ''}`, { cause });

const TYPES: Record<number, ObjectType> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' };
const KNOWN_TYPES = new Set<string>(Object.values(TYPES));
const OFS_DELTA = 6;
const REF_DELTA = 7;

interface Pack {
  idx: Buffer;
  count: number;
  file: string;
  handle: FileHandle | null;
  size: number;
}

/** Applies a git delta to its base. */
export function applyDelta(delta: Buffer, base: Buffer): Buffer {
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    let c: number;
    do {
      c = delta[pos++]!;
      value += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c & 0x80);
    return value;
  };
  if (varint() !== base.length) throw corrupt('a delta', new Error('its base size does not match'));
  const out = Buffer.allocUnsafe(varint());
  let at = 0;
  while (pos < delta.length) {
    const op = delta[pos++]!;
    if (op & 0x80) {
      let offset = 0;
      let size = 0;
      for (let i = 0; i < 4; i++) if (op & (1 << i)) offset |= delta[pos++]! << (8 * i);
      for (let i = 0; i < 3; i++) if (op & (0x10 << i)) size |= delta[pos++]! << (8 * i);
      offset >>>= 0;
      if (size === 0) size = 0x10000;
      at += base.copy(out, at, offset, offset + size);
    } else if (op > 0) {
      at += delta.copy(out, at, pos, pos + op);
      pos += op;
    } else throw corrupt('a delta', new Error('opcode 0'));
  }
  if (at !== out.length) throw corrupt('a delta', new Error('its result size does not match'));
  return out;
}

export class ObjectDatabase {
  readonly #dirs: string[] = [];
  /** The packs' indexes, read on first use (concurrent first reads share one load) and again after a miss. */
  readonly #packs = lazy(() => this.#loadPacks());
  /** Decoded pack entries by pack and offset: delta bases are read once. */
  readonly #byOffset = new LRUCache<string, GitObject>({ maxSize: 32 * 1024 * 1024, sizeCalculation: (o) => o.data.length + 64 });

  constructor(objectsDir: string) {
    this.#dirs.push(objectsDir);
  }

  async #loadPacks(): Promise<Pack[]> {
    const packs: Pack[] = [];
    const dirs = [this.#dirs[0]!];
    try {
      const alternates = await readFile(join(dirs[0]!, 'info', 'alternates'), 'utf8');
      for (const line of alternates.split('\n')) if (line.trim() && !line.startsWith('#')) dirs.push(resolve(dirs[0]!, line.trim()));
    } catch {
      /* no alternates */
    }
    this.#dirs.splice(0, this.#dirs.length, ...dirs);
    for (const dir of dirs) {
      let names: string[];
      try {
        names = await readdir(join(dir, 'pack'));
      } catch {
        continue;
      }
      for (const name of names) {
        if (!name.endsWith('.idx')) continue;
        const idx = await readFile(join(dir, 'pack', name));
        if (idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) continue; // only version 2 (git's default since 1.5.2)
        packs.push({ idx, count: idx.readUInt32BE(8 + 255 * 4), file: join(dir, 'pack', name.replace(/\.idx$/, '.pack')), handle: null, size: 0 });
      }
    }
    return packs;
  }

  /** Where `oid` is in `pack`, or -1. */
  #find(pack: Pack, oid: Buffer): number {
    const first = oid[0]!;
    let lo = first === 0 ? 0 : pack.idx.readUInt32BE(8 + (first - 1) * 4);
    let hi = pack.idx.readUInt32BE(8 + first * 4);
    const base = 8 + 256 * 4;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = pack.idx.compare(oid, 0, 20, base + mid * 20, base + mid * 20 + 20);
      if (c === 0) {
        const offsets = base + pack.count * 24;
        const small = pack.idx.readUInt32BE(offsets + mid * 4);
        if (!(small & 0x80000000)) return small;
        const big = offsets + pack.count * 4 + (small & 0x7fffffff) * 8;
        return pack.idx.readUInt32BE(big) * 2 ** 32 + pack.idx.readUInt32BE(big + 4);
      }
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  async read(oidHex: string): Promise<GitObject> {
    const oid = Buffer.from(oidHex, 'hex');
    for (let attempt = 0; attempt < 2; attempt++) {
      // Not found on the first pass: a pack may have been written (gc, fetch) since the list was read.
      if (attempt > 0) await this.#closePacks();
      const packs = await this.#packs();
      for (const pack of packs) {
        const offset = this.#find(pack, oid);
        if (offset >= 0) return this.#readPacked(pack, offset);
      }
      const loose = await this.#readLoose(oidHex);
      if (loose) return loose;
    }
    throw new GitObjectError('missing', `object ${oidHex} not found`);
  }

  async #readLoose(oid: string): Promise<GitObject | null> {
    for (const dir of this.#dirs) {
      let compressed: Buffer;
      try {
        compressed = await readFile(join(dir, oid.slice(0, 2), oid.slice(2)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      let raw: Buffer;
      try {
        raw = inflateSync(compressed);
      } catch (err) {
        throw corrupt(`the loose object ${oid}`, err);
      }
      const nul = raw.indexOf(0);
      const type = raw.toString('latin1', 0, raw.indexOf(32));
      if (nul < 0 || !KNOWN_TYPES.has(type)) throw corrupt(`the loose object ${oid}`, new Error('bad header'));
      return { type: type as ObjectType, data: raw.subarray(nul + 1) };
    }
    return null;
  }

  async #readPacked(pack: Pack, offset: number): Promise<GitObject> {
    const key = `${pack.file}:${offset}`;
    const cached = this.#byOffset.get(key);
    if (cached) return cached;
    if (!pack.handle) {
      pack.handle = await open(pack.file, 'r');
      pack.size = (await pack.handle.stat()).size;
    }
    // Header: type and size in a varint, then the base (an offset or an object id) for deltas.
    let chunk = Buffer.alloc(Math.min(4096, pack.size - offset));
    await pack.handle.read(chunk, 0, chunk.length, offset);
    let pos = 0;
    let c = chunk[pos++]!;
    const typeCode = (c >> 4) & 7;
    let size = c & 15;
    let shift = 4;
    while (c & 0x80) {
      c = chunk[pos++]!;
      size += (c & 0x7f) * 2 ** shift;
      shift += 7;
    }
    let baseOffset = -1;
    let baseOid: string | null = null;
    if (typeCode === OFS_DELTA) {
      c = chunk[pos++]!;
      let back = c & 0x7f;
      while (c & 0x80) {
        c = chunk[pos++]!;
        back = (back + 1) * 128 + (c & 0x7f);
      }
      baseOffset = offset - back;
    } else if (typeCode === REF_DELTA) {
      baseOid = chunk.toString('hex', pos, pos + 20);
      pos += 20;
    }
    // The compressed data follows; its length is not stored, so read generously and let zlib stop.
    const want = Math.min(pack.size - offset, pos + size + Math.ceil(size / 1000) + 1024);
    if (want > chunk.length) {
      chunk = Buffer.alloc(want);
      await pack.handle.read(chunk, 0, want, offset);
    }
    const where = `the object at ${offset} in ${pack.file}`;
    let body: Buffer;
    try {
      body = inflateSync(chunk.subarray(pos), { maxOutputLength: Math.max(size, 1) });
    } catch (err) {
      throw corrupt(where, err);
    }
    let object: GitObject;
    if (typeCode === OFS_DELTA || typeCode === REF_DELTA) {
      const base = baseOid ? await this.read(baseOid) : await this.#readPacked(pack, baseOffset);
      object = { type: base.type, data: applyDelta(body, base.data) };
    } else {
      const type = TYPES[typeCode];
      if (!type) throw corrupt(where, new Error(`unknown object type ${typeCode}`));
      object = { type, data: body };
    }
    this.#byOffset.set(key, object);
    return object;
  }

  async #closePacks(): Promise<void> {
    const packs = this.#packs.peek() ?? [];
    this.#packs.reset();
    for (const pack of packs) await pack.handle?.close().catch(() => {});
  }

  async close(): Promise<void> {
    await this.#closePacks();
    this.#byOffset.clear();
  }
}
