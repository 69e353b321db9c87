// A file of keyed records, written incrementally: the warm state of one git repository kept across daemon
// restarts. The records are hints (the caller revalidates them), so a crash may lose the last flush, but the
// file must never hand back damaged or foreign data.
//
// Format: one JSON header line `{"magic":"hearth-record-file","format":1,"kind","version","identity"}\n`
// (plain text so tests and people can edit it), then binary batches, each appended with one write:
//   u32 body length | u32 CRC32 of the body | body = records: 0x01 u32 keyLen u32 valueLen key value (put)
//                                                             0x02 u32 keyLen key                   (delete)
// (integers big-endian, keys UTF-8). Reading: a header that does not match is discarded with its reason; a
// bad last batch is a torn append (a crash mid-write) and is cut off; any other damage discards the file.
//
// The live records are kept in memory with their values: ~7,000 records of 50-500 bytes is a few MB, and
// holding them lets a compaction rewrite the file without reading it back (no second parse, no window where
// the file and memory disagree). Values read at open are zero-copy views of the read buffer; it stays
// alive while any of them does, which the compaction threshold bounds to ~2x the live size.
import { mkdir, open, rename, rm, truncate, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';

export interface RecordFileOptions {
  /** e.g. <state_dir>/git/<hash>.state */
  file: string;
  /** What the file holds, e.g. 'hearth-git-state'. */
  kind: string;
  /** The format version of the caller's records. */
  version: number;
  /** What the records belong to (e.g. a repository's path and identity). */
  identity: string;
  /** Compaction waits until the file is at least this big. Default 64 KiB. */
  compactMinBytes?: number;
}

export type Discard = 'missing' | 'damaged' | 'version' | 'kind' | 'identity';

export interface RecordFileStats {
  live_records: number;
  /** The encoded size of the live records: what a compaction writes, besides the header. */
  live_bytes: number;
  file_bytes: number;
  batches_written: number;
  compactions: number;
}

const MAGIC = 'hearth-record-file';
const FORMAT = 1;
const PUT = 1;
const DELETE = 2;
const BATCH_HEAD = 8;

const recordSize = (key: string, value: Buffer | undefined): number =>
  value ? 9 + Buffer.byteLength(key) + value.length : 5 + Buffer.byteLength(key);

/** Encodes records as one batch (head included); a missing value is a delete. */
function encodeBatch(entries: Iterable<[string, Buffer | undefined]>): Buffer {
  const list = [...entries];
  let size = BATCH_HEAD;
  for (const [key, value] of list) size += recordSize(key, value);
  const buf = Buffer.allocUnsafe(size);
  let pos = BATCH_HEAD;
  for (const [key, value] of list) {
    const start = pos;
    pos += value ? 9 : 5;
    const keyLen = buf.write(key, pos); // Exactly byteLength: put() refuses keys that are not well-formed.
    buf[start] = value ? PUT : DELETE;
    buf.writeUInt32BE(keyLen, start + 1);
    pos += keyLen;
    if (value) {
      buf.writeUInt32BE(value.length, start + 5);
      pos += value.copy(buf, pos);
    }
  }
  buf.writeUInt32BE(size - BATCH_HEAD, 0);
  buf.writeUInt32BE(crc32(buf.subarray(BATCH_HEAD)), 4);
  return buf;
}

type Parsed = { discarded: Exclude<Discard, 'missing'> } | { discarded: null; live: Map<string, Buffer>; good: number };

/** Reads a whole file: its live records and the length of its good part (a torn last batch excluded). */
function parse(buf: Buffer, options: RecordFileOptions): Parsed {
  const eol = buf.indexOf(0x0a);
  let header: unknown;
  try {
    header = eol < 0 ? undefined : JSON.parse(buf.toString('utf8', 0, eol));
  } catch {
    // Not JSON: damaged, below.
  }
  const h = header as Record<string, unknown> | undefined;
  if (typeof h !== 'object' || h === null || h.magic !== MAGIC || h.format !== FORMAT) return { discarded: 'damaged' };
  if (h.kind !== options.kind) return { discarded: 'kind' };
  if (h.version !== options.version) return { discarded: 'version' };
  if (h.identity !== options.identity) return { discarded: 'identity' };

  const live = new Map<string, Buffer>();
  let pos = eol + 1;
  while (pos < buf.length) {
    const end = pos + BATCH_HEAD + (buf.length - pos >= BATCH_HEAD ? buf.readUInt32BE(pos) : 0);
    const whole = buf.length - pos >= BATCH_HEAD && end <= buf.length;
    const empty = end === pos + BATCH_HEAD; // Never written: a flush with no changes writes nothing.
    if (!whole || empty || buf.readUInt32BE(pos + 4) !== crc32(buf.subarray(pos + BATCH_HEAD, end))) {
      // The last append may be cut short (a crash mid-write), or be zeros (the size grew, the data never
      // landed): drop it, keep the batches before it. A bad batch with data after it is real damage. (A
      // damaged length that points past the end looks torn too: what is kept is still whole and ours.)
      const torn = !whole || end === buf.length || buf.subarray(pos).every((byte) => byte === 0);
      return torn ? { discarded: null, live, good: pos } : { discarded: 'damaged' };
    }
    // The CRC matched: the records must fill the body exactly, or the writer was broken.
    for (let at = pos + BATCH_HEAD; at < end; ) {
      const op = buf[at];
      const small = end - at < (op === PUT ? 9 : 5);
      if ((op !== PUT && op !== DELETE) || small) return { discarded: 'damaged' };
      const keyStart = at + (op === PUT ? 9 : 5);
      const keyEnd = keyStart + buf.readUInt32BE(at + 1);
      const valueEnd = op === PUT ? keyEnd + buf.readUInt32BE(at + 5) : keyEnd;
      if (valueEnd > end) return { discarded: 'damaged' };
      const key = buf.toString('utf8', keyStart, keyEnd);
      if (op === PUT) live.set(key, buf.subarray(keyEnd, valueEnd));
      else live.delete(key);
      at = valueEnd;
    }
    pos = end;
  }
  return { discarded: null, live, good: pos };
}

export interface OpenedRecordFile {
  file: RecordFile;
  records: Map<string, Buffer>;
  discarded: Discard | null;
}

/** One object per file: two writers of one file would interleave their batches and compactions. */
export class RecordFile {
  /** Opens (creating when missing). `records`: the live records, each value a Buffer (treat as read-only);
   * empty when the file was missing or discarded, and then `discarded` says why ('missing' for none). A
   * discarded file is replaced by a fresh one. */
  static async open(options: RecordFileOptions): Promise<OpenedRecordFile> {
    await mkdir(dirname(options.file), { recursive: true, mode: 0o700 });
    let buf: Buffer | undefined;
    try {
      // One read of the known size: readFile() reads in 512 KiB chunks, a thread pool round trip each.
      const input = await open(options.file, 'r');
      try {
        const { size } = await input.stat();
        // Not from the shared pool: the values are views of this buffer, and keep it alive.
        const { bytesRead, buffer } = await input.read(Buffer.allocUnsafeSlow(size), 0, size, 0);
        buf = buffer.subarray(0, bytesRead);
      } finally {
        await input.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const parsed: Parsed | { discarded: 'missing' } = buf ? parse(buf, options) : { discarded: 'missing' };
    const rf = new RecordFile(options, parsed.discarded ? new Map() : parsed.live);
    if (parsed.discarded) {
      await rf.rewrite();
    } else {
      if (parsed.good !== buf!.length) await truncate(options.file, parsed.good); // Cut a torn last batch.
      rf.handle = await open(options.file, 'a', 0o600);
      rf.fileBytes = parsed.good;
    }
    return { file: rf, records: new Map(rf.live), discarded: parsed.discarded };
  }

  private handle: FileHandle | undefined;
  private readonly header: Buffer;
  /** Keys put or deleted since the last flush; their current state is in `live`. */
  private pending = new Set<string>();
  /** Set when the file's tail is unknown (a write failed): the next flush rewrites the whole file. */
  private rewriteNeeded = false;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private liveBytes = 0;
  private fileBytes = 0;
  private batches = 0;
  private compactions = 0;

  private constructor(
    private readonly options: RecordFileOptions,
    private readonly live: Map<string, Buffer>,
  ) {
    const { kind, version, identity } = options;
    this.header = Buffer.from(JSON.stringify({ magic: MAGIC, format: FORMAT, kind, version, identity }) + '\n');
    for (const [key, value] of live) this.liveBytes += recordSize(key, value);
  }

  get stats(): RecordFileStats {
    return {
      live_records: this.live.size,
      live_bytes: this.liveBytes,
      file_bytes: this.fileBytes,
      batches_written: this.batches,
      compactions: this.compactions,
    };
  }

  /** Recorded in memory at once (a copy: the caller may reuse its buffer); written by the next flush. */
  put(key: string, value: Buffer): void {
    if (this.closed) return;
    // A lone surrogate would come back as U+FFFD: a key nobody put.
    if (/\p{Cs}/u.test(key)) throw new TypeError('record key is not well-formed UTF-16');
    this.set(key, Buffer.from(value));
  }

  delete(key: string): void {
    if (this.closed || !this.live.has(key)) return;
    this.set(key, undefined);
  }

  /** Writes what changed since the last flush as one appended batch, or compacts; never two at once. An I/O
   * error rejects and leaves the object usable: the next flush rewrites the whole file. */
  flush(): Promise<void> {
    return this.closed ? Promise.resolve() : this.enqueue(() => this.write());
  }

  /** Flushes and closes. Later put/delete/flush are ignored. */
  async close(): Promise<void> {
    if (this.closed) return this.queue.then(() => undefined);
    this.closed = true;
    await this.enqueue(async () => {
      try {
        await this.write();
      } finally {
        await this.handle?.close().catch(() => undefined);
      }
    });
  }

  /** Closes without writing and deletes the file (a released repository's state is not wanted any more). */
  async remove(): Promise<void> {
    this.closed = true;
    this.pending.clear();
    await this.enqueue(async () => {
      await this.handle?.close().catch(() => undefined);
      await rm(this.options.file, { force: true });
      await rm(`${this.options.file}.tmp`, { force: true }).catch(() => undefined); // Left by a failed rewrite.
    });
  }

  private set(key: string, value: Buffer | undefined): void {
    const old = this.live.get(key);
    if (old) this.liveBytes -= recordSize(key, old);
    if (value) {
      this.live.set(key, value);
      this.liveBytes += recordSize(key, value);
    } else this.live.delete(key);
    this.pending.add(key);
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0 && !this.rewriteNeeded) return;
    // Taken synchronously: puts made while this write is under way go to the next flush.
    const keys = this.pending;
    this.pending = new Set();
    const batch = encodeBatch([...keys].map((key): [string, Buffer | undefined] => [key, this.live.get(key)]));
    const compacted = this.header.length + BATCH_HEAD + this.liveBytes;
    const grown = this.fileBytes + batch.length;
    if (this.rewriteNeeded || (grown > 2 * compacted && grown > (this.options.compactMinBytes ?? 64 * 1024))) {
      await this.rewrite();
      this.compactions++;
      return;
    }
    try {
      const { bytesWritten } = await this.handle!.write(batch, 0, batch.length);
      if (bytesWritten !== batch.length) throw new Error(`short write to ${this.options.file}`);
      this.fileBytes += batch.length;
      this.batches++;
    } catch (err) {
      // Part of the batch may be on disk: appending after it would leave damage mid-file, so rewrite.
      this.rewriteNeeded = true;
      throw err;
    }
  }

  /** Writes the header and all live records to a temp file and renames it over the file (atomic). */
  private async rewrite(): Promise<void> {
    const body = this.live.size ? encodeBatch(this.live) : Buffer.alloc(0);
    const temp = `${this.options.file}.tmp`;
    this.rewriteNeeded = true;
    let out: FileHandle | undefined;
    try {
      out = await open(temp, 'w', 0o600);
      const { bytesWritten } = await out.writev([this.header, body]);
      if (bytesWritten !== this.header.length + body.length) throw new Error(`short write to ${temp}`);
      await out.sync(); // Else a crash soon after the rename may leave an empty file in place of both.
      await out.close();
      out = undefined;
      await rename(temp, this.options.file);
      const handle = await open(this.options.file, 'a', 0o600);
      await this.handle?.close().catch(() => undefined); // The old file's handle: nothing left to lose.
      this.handle = handle;
    } catch (err) {
      await out?.close().catch(() => undefined);
      await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
    this.rewriteNeeded = false;
    this.fileBytes = this.header.length + body.length;
  }
}
