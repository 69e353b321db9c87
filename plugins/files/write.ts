// Atomic writes: a temp file in the same directory, fsync, rename over the target. Readers see the old
// file or the new one, never a part. Writes to one path wait for each other (a per-path lock), so an
// `if_match` check and the write it guards cannot interleave with another writer of this daemon.
//
// A write killed between creating its temp file and the rename (kill -9, a crash) leaves the temp file
// beside its target. The roots default to the home directory, so the next start cannot look for them by
// walking the roots: each write names its temp file in a journal in the state dir before creating it, and
// the next start removes what the journal of a dead daemon names (sweepJournal).
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { HearthError } from '../../src/errors.js';
import { isHearthDaemon } from '../../src/state.js';
import { ContentCache, describe, identityOf } from './content.js';

/** The journal's directory in the state dir. */
export const journalDir = (stateDir: string): string => join(stateDir, 'files-journal');

/** The temp file of a write of `path` by process `pid`: `.<name>.hearth-<pid>-<8 hex>.tmp` beside it. */
export const tempPathFor = (path: string, pid: number, hex: string): string => join(dirname(path), `.${basename(path)}.hearth-${pid}-${hex}.tmp`);
const TEMP_NAME = /^\..+\.hearth-([1-9][0-9]*)-[0-9a-f]{8}\.tmp$/s;
/** Whether a file name is one of those temp files (which come and go within a write: never a change to report). */
export const isWriteTemp = (name: string): boolean => TEMP_NAME.test(name);
/** A journal segment: the writer's pid, an id of that process's run, a sequence number. */
const SEGMENT_NAME = /^([1-9][0-9]*)-[0-9a-f]{8}-[0-9]+\.log$/;
/** Writes recorded in one segment before the next is started. */
const SEGMENT_RECORDS = 1024;

type OnError = (err: unknown, context: string) => void;

interface Segment {
  path: string;
  handle: Promise<FileHandle>;
  /** Writes recorded in it. */
  records: number;
  /** Of those, the writes not yet done. */
  pending: number;
}

/**
 * The journal: append-only segment files in the state dir, each written by one daemon
 * (`<pid>-<run>-<n>.log`). A write appends `+"<temp path>"` (JSON: a path may hold a newline) before it
 * creates its temp file, and `-"<temp path>"` once that file is renamed or removed: what a segment names
 * with `+` and no `-` may be on disk. That is two appends to an open file per write. A file per write (a
 * create and an unlink in the state dir) was tried first: with five concurrent writers of 8 KiB it added
 * ~0.5-1 ms to a ~1.7 ms write on this machine's disk, where the appends stayed within the noise. Nothing
 * grows over weeks of uptime: after SEGMENT_RECORDS writes the next segment is started, and a full one is
 * removed once its last write is done. The run id keeps this daemon out of segments of a predecessor that
 * had the same pid (pids are reused after a reboot).
 *
 * Appends are not fsynced: after kill -9 or a crash the kernel still writes them out; only a power cut
 * could lose the record of a temp file that survives, and an fsync would double what a write costs.
 * A record that cannot be made (a read-only or full state dir) does not fail the write: the journal is a
 * cleanup aid, the write is atomic without it; the failure is reported, once per run of failures.
 */
export class WriteJournal {
  readonly dir: string;
  #onError: OnError;
  #segmentRecords: number;
  #run = randomBytes(4).toString('hex');
  #seq = 0;
  #current: Segment | undefined;
  #retiring = new Set<Promise<void>>();
  #failing = false;

  constructor(dir: string, onError: OnError, options: { segmentRecords?: number } = {}) {
    this.dir = dir;
    this.#onError = onError;
    this.#segmentRecords = options.segmentRecords ?? SEGMENT_RECORDS;
  }

  #segment(): Segment {
    const current = this.#current;
    if (current && current.records < this.#segmentRecords) return current;
    const path = join(this.dir, `${process.pid}-${this.#run}-${++this.#seq}.log`);
    // 'ax': appends only, and never into a file this run did not make.
    const handle = mkdir(this.dir, { recursive: true, mode: 0o700 }).then(() => open(path, 'ax', 0o600));
    handle.catch(() => {}); // reported by the records that wait for it
    this.#current = { path, handle, records: 0, pending: 0 };
    if (current) void this.#settle(current);
    return this.#current;
  }

  /** A segment that is no longer current and has no write in flight is closed and removed. */
  #settle(segment: Segment): Promise<void> | undefined {
    if (segment === this.#current || segment.pending > 0) return undefined;
    const retiring = (async () => {
      const handle = await segment.handle.catch(() => undefined);
      if (!handle) return; // never opened: nothing on disk
      try {
        await handle.close();
        await rm(segment.path, { force: true });
      } catch (err) {
        this.#onError(err, `removing the write journal segment ${segment.path}`);
      }
    })();
    this.#retiring.add(retiring);
    void retiring.then(() => this.#retiring.delete(retiring));
    return retiring;
  }

  /** Names `temp` in the journal; resolves once that is done (or failed) to the call that drops it. */
  async record(temp: string): Promise<() => Promise<void>> {
    const segment = this.#segment();
    segment.records++;
    segment.pending++;
    let handle: FileHandle;
    try {
      handle = await segment.handle;
      await handle.write(`+${JSON.stringify(temp)}\n`);
      this.#failing = false;
    } catch (err) {
      // A segment that could not be opened is dropped, so the next write tries again (the state dir may be
      // writable again, or its journal dir made again).
      const opened = await segment.handle.then(() => true, () => false);
      if (!opened && this.#current === segment) this.#current = undefined;
      segment.pending--;
      void this.#settle(segment);
      if (!this.#failing) this.#onError(err, `recording ${temp} in the write journal (writes go on without it)`);
      this.#failing = true;
      return async () => {};
    }
    return async () => {
      try {
        await handle.write(`-${JSON.stringify(temp)}\n`);
      } catch (err) {
        // Left as pending: the next start finds no file there (or removes it), which is harmless.
        this.#onError(err, `dropping ${temp} from the write journal`);
      }
      segment.pending--;
      await this.#settle(segment);
    };
  }

  /** At close: the current segment is removed when no write is in flight (one still running removes it when done). */
  async close(): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    if (current) void this.#settle(current);
    await Promise.allSettled([...this.#retiring]);
  }
}

export interface SweepResult {
  /** Temp files removed. */
  removed: string[];
  /** Segments left for later: their writer is a live hearth daemon. */
  kept: number;
}

/** The temp paths a segment names with `+` and no `-` after it, and how many lines made no sense (a torn last line). */
function pendingIn(text: string): { pending: Set<string>; bad: number } {
  const pending = new Set<string>();
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let path: unknown;
    try {
      path = JSON.parse(line.slice(1));
    } catch {
      path = undefined;
    }
    if (typeof path !== 'string' || (line[0] !== '+' && line[0] !== '-')) bad++;
    else if (line[0] === '+') pending.add(path);
    else pending.delete(path);
  }
  return { pending, bad };
}

/**
 * At start, before this daemon writes anything: removes the temp files that journal segments of dead
 * writers name and never dropped, then those segments. A segment of this process's own pid is a
 * predecessor's (a pid reused after a reboot), since this process has not written yet. A writer that is
 * alive and a hearth daemon is writing now, so its segments stay. Only a regular file whose name is
 * hearth's temp pattern with the segment's pid is removed: a path naming anything else (a user's file, a
 * link, a relative path) is never touched, nor is a temp-looking file no segment names. A segment keeps
 * its place until every file it names is handled, so a removal that failed is tried again at the next start.
 */
export async function sweepJournal(dir: string, onError: OnError, isLiveWriter: (pid: number) => boolean = isHearthDaemon): Promise<SweepResult> {
  const result: SweepResult = { removed: [], kept: 0 };
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(err, `reading the write journal ${dir}`);
    return result;
  }
  for (const name of names) {
    const m = SEGMENT_NAME.exec(name);
    if (!m) continue; // not a segment: left alone
    const pid = Number(m[1]);
    if (pid !== process.pid && isLiveWriter(pid)) {
      result.kept++;
      continue;
    }
    const segment = join(dir, name);
    let text: string;
    try {
      text = await readFile(segment, 'utf8');
    } catch (err) {
      onError(err, `reading the write journal segment ${segment}`);
      continue;
    }
    const { pending, bad } = pendingIn(text);
    if (bad > 0) onError(new Error(`${bad} line(s) that are not a record`), `sweeping the write journal segment ${segment}`);
    let handled = true;
    for (const temp of pending) {
      const t = TEMP_NAME.exec(basename(temp));
      if (!isAbsolute(temp) || !t || Number(t[1]) !== pid) {
        onError(new Error(`it names ${JSON.stringify(temp)}, not a temp file of pid ${pid}: left alone`), `sweeping the write journal segment ${segment}`);
        continue;
      }
      try {
        const s = await lstat(temp);
        if (s.isFile()) {
          await rm(temp);
          result.removed.push(temp);
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue; // renamed before the kill, or never created
        handled = false;
        onError(err, `removing ${temp}, named by the write journal segment ${segment}`);
      }
    }
    if (handled) await rm(segment, { force: true }).catch((err: unknown) => onError(err, `removing the write journal segment ${segment}`));
  }
  return result;
}

const locks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier holder of `key` is done. */
export async function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = locks.get(key) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.catch(() => {});
  locks.set(key, tail);
  try {
    return await run;
  } finally {
    if (locks.get(key) === tail) locks.delete(key);
  }
}

export interface WriteRequest {
  path: string;
  bytes: Buffer;
  ifMatch?: string;
}

/** A full disk or quota is the machine's state, not a bug: 507 NO_SPACE rather than a 500. */
function noSpace(path: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT' ? new HearthError('NO_SPACE', `${path} was not written: no space left on the device (the file is unchanged)`) : err;
}

/** A temp name too long for the directory (a target name near the filesystem's limit): the client's path is at fault. */
function tooLong(path: string, err: unknown): unknown {
  return (err as NodeJS.ErrnoException).code === 'ENAMETOOLONG'
    ? new HearthError('VALIDATION_FAILED', `${path} was not written: its name is too long to make a temp file beside it (the file is unchanged)`)
    : err;
}

export async function writeAtomic(files: ContentCache, journal: WriteJournal, request: WriteRequest): Promise<{ path: string; size: number; sha256: string }> {
  return write(files, journal, request).catch((err: unknown) => {
    throw tooLong(request.path, noSpace(request.path, err));
  });
}

async function write(files: ContentCache, journal: WriteJournal, { path, bytes, ifMatch }: WriteRequest): Promise<{ path: string; size: number; sha256: string }> {
  return withLock(path, async () => {
    let mode = 0o644;
    try {
      const current = await stat(path);
      if (!current.isFile()) throw new HearthError('NOT_A_FILE', `${path} is not a regular file`);
      mode = current.mode & 0o7777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (ifMatch !== undefined) throw new HearthError('CONFLICT', `${path} does not exist, so it cannot match ${ifMatch}`);
    }
    if (ifMatch !== undefined) {
      const current = await files.read(path, Number.MAX_SAFE_INTEGER);
      if (current.sha256 !== ifMatch) {
        throw new HearthError('CONFLICT', `${path} changed: its sha256 is ${current.sha256}, not ${ifMatch}`);
      }
    }
    const temp = tempPathFor(path, process.pid, randomBytes(4).toString('hex'));
    // Named in the journal before it exists, so a kill at any point after leaves nothing unnamed.
    const drop = await journal.record(temp);
    // Whether the temp file is gone (never created, renamed or removed): only then is its entry dropped, so
    // one whose removal failed is still swept at the next start.
    let gone = true;
    try {
      const handle = await open(temp, 'wx', mode);
      gone = false;
      try {
        await handle.writeFile(bytes);
        await handle.chmod(mode); // the umask may have narrowed it
        await handle.sync();
      } catch (err) {
        await handle.close();
        await rm(temp, { force: true });
        gone = true;
        throw err;
      }
      await handle.close();
      try {
        await rename(temp, path);
        gone = true;
      } catch (err) {
        await rm(temp, { force: true });
        gone = true;
        throw err;
      }
    } finally {
      if (gone) await drop();
    }
    const after = await stat(path);
    const data = describe(path, bytes, after);
    await files.remember(path, data, identityOf(after));
    return { path, size: data.size, sha256: data.sha256 };
  });
}
