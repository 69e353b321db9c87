// A recursive watch of one directory tree for since-queries: every directory of the tree in one
// DirWatchSet, a Set of entry names per directory (to tell an added entry from a changed one) and a
// bounded log of the paths that changed, in order of their last change. Nothing else is kept per file.
//
// Events are handled synchronously (one lstat each): the set's events come through one queue, so once
// settle()'s cookie is seen every earlier change is in the log, not in a stat still in flight. Directories
// are read asynchronously, a few at a time, so a big tree does not hold the event loop; idle() says when
// no read is pending.
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { COOKIE_PREFIX, type DirWatchSet } from '../../src/services/dir-watch.js';
import type { DirEventListener } from '../../src/services/dir-watch.js';

export type ChangeType = 'changed' | 'added' | 'removed';

interface DirState {
  names: Set<string>;
  /** To tell a directory removed and made again under the same name (its watch then watches nothing). */
  ino: number;
}

interface LogEntry {
  /** The clock counter of when the path last appeared; 0 if it existed when the watch started. */
  added: number;
  changed: number;
  exists: boolean;
}

export interface TreeWatchOptions {
  root: string;
  /** The clock counter when the watch starts: a since older than it cannot be answered. */
  startSeq: number;
  maxChanges: number;
  ignored: (path: string) => boolean;
  /** Makes the set, given the listener its events go to (ctx.watcher.watchDirs). */
  watchDirs: (onEvent: DirEventListener) => DirWatchSet;
  /** Publishes a change on the bus and returns its clock counter. */
  publish: (type: ChangeType, path: string) => number;
}

/** Directories read at once: enough to keep the disk busy, few enough that events still get their turn. */
const CONCURRENT_READS = 8;

export class TreeWatch {
  readonly root: string;
  readonly startSeq: number;
  /** A since below this cannot be answered: log entries up to it were dropped (max_changes). */
  floor: number;
  overflows = 0;
  /** Why the watch misses parts of the tree (the OS watch limit), or null. */
  failed: string | null = null;
  readonly #options: TreeWatchOptions;
  readonly #set: DirWatchSet;
  readonly #dirs = new Map<string, DirState>();
  readonly #log = new Map<string, LogEntry>();
  /** Directories being read, with the names events touched meanwhile (their state is newer than the read's). */
  readonly #reading = new Map<string, Set<string>>();
  readonly #queue: Array<{ dir: string; added: boolean }> = [];
  #active = 0;
  #idle: Array<() => void> = [];
  #closed = false;

  constructor(options: TreeWatchOptions) {
    this.#options = options;
    this.root = options.root;
    this.startSeq = options.startSeq;
    this.floor = options.startSeq;
    this.#set = options.watchDirs((dir, name) => this.#onEvent(dir, name));
    this.#enqueue(this.root, 0, false);
  }

  get dirs(): number {
    return this.#set.size;
  }

  get logEntries(): number {
    return this.#log.size;
  }

  /** Resolves once no directory read is pending (the first walk, and those of directories added since). */
  idle(): Promise<void> {
    if (this.#active === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  settle(): Promise<boolean> {
    return this.#set.settle(this.root);
  }

  /** The paths under `prefix` (the root or a directory in it) whose last change is after `since`, by path. */
  changesSince(since: number, prefix: string): Array<{ path: string; type: ChangeType }> {
    const under = prefix === this.root ? null : prefix + sep;
    const out: Array<{ path: string; type: ChangeType }> = [];
    for (const [path, entry] of this.#log) {
      if (entry.changed <= since || (under && !path.startsWith(under))) continue;
      out.push({ path, type: !entry.exists ? 'removed' : entry.added > since ? 'added' : 'changed' });
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  close(): void {
    this.#closed = true;
    this.#set.close();
    this.#queue.length = 0;
    this.#dirs.clear();
    this.#log.clear();
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  #record(path: string, type: ChangeType): void {
    const seq = this.#options.publish(type, path);
    const before = this.#log.get(path);
    // Reinserted, so that the map stays in order of last change and its oldest entry comes first.
    this.#log.delete(path);
    this.#log.set(path, { added: type === 'added' ? seq : (before?.added ?? 0), changed: seq, exists: type !== 'removed' });
    if (this.#log.size > this.#options.maxChanges) {
      const [oldest, entry] = this.#log.entries().next().value as [string, LogEntry];
      this.#log.delete(oldest);
      if (entry.changed > this.floor) {
        this.floor = entry.changed;
        this.overflows++;
      }
    }
  }

  #onEvent(dir: string, name: string | null): void {
    const state = this.#dirs.get(dir);
    if (!state || this.#closed) return;
    if (name === null) {
      // The platform did not say which entry: compare every name known with what is there now.
      let now: string[] = [];
      try {
        now = readdirSync(dir);
      } catch {}
      for (const n of new Set([...state.names, ...now])) if (!n.startsWith(COOKIE_PREFIX)) this.#onEntry(dir, state, n);
      return;
    }
    this.#onEntry(dir, state, name);
  }

  #onEntry(dir: string, state: DirState, name: string): void {
    const path = join(dir, name);
    if (this.#options.ignored(path)) return;
    this.#reading.get(dir)?.add(name);
    let st: Stats | undefined;
    try {
      st = lstatSync(path, { throwIfNoEntry: false });
    } catch {}
    let known = state.names.has(name);
    const sub = this.#dirs.get(path);
    if (known && (!st || !!sub !== st.isDirectory() || (sub && sub.ino !== 0 && sub.ino !== st.ino))) {
      // Gone, or another kind of entry (or another directory) under the same name: its old self is removed.
      state.names.delete(name);
      if (sub) this.#drop(path);
      this.#record(path, 'removed');
      known = false;
    }
    if (!st) return;
    if (!known) {
      state.names.add(name);
      this.#record(path, 'added');
      if (st.isDirectory()) this.#enqueue(path, st.ino, true);
    } else if (!st.isDirectory()) {
      this.#record(path, 'changed');
    }
  }

  /** A directory left the tree: its known entries are removed, its watches (and those below) dropped. */
  #drop(dir: string): void {
    const state = this.#dirs.get(dir);
    if (!state) return;
    this.#dirs.delete(dir);
    this.#reading.delete(dir);
    this.#set.delete(dir);
    for (const name of state.names) {
      const path = join(dir, name);
      this.#drop(path);
      this.#record(path, 'removed');
    }
  }

  /** `added`: a directory that appeared after the watch started, whose entries are reported added. */
  #enqueue(dir: string, ino: number, added: boolean): void {
    this.#dirs.set(dir, { names: new Set(), ino });
    this.#queue.push({ dir, added });
    this.#pump();
  }

  #pump(): void {
    while (this.#active < CONCURRENT_READS && this.#queue.length > 0) {
      const next = this.#queue.shift()!;
      this.#active++;
      void this.#read(next.dir, next.added).finally(() => {
        this.#active--;
        this.#pump();
        if (this.#active === 0 && this.#queue.length === 0) for (const resolve of this.#idle.splice(0)) resolve();
      });
    }
  }

  async #read(dir: string, added: boolean): Promise<void> {
    const state = this.#dirs.get(dir);
    if (!state || this.#closed) return;
    // Watched before it is read, so that an entry made meanwhile is either in the read or in an event.
    if (!this.#set.add(dir)) {
      if (this.#set.failed) this.failed ??= this.#set.failed;
      return;
    }
    const touched = new Set<string>();
    this.#reading.set(dir, touched);
    let entries;
    let ino: number;
    try {
      [entries, { ino }] = await Promise.all([readdir(dir, { withFileTypes: true }), lstat(dir)]);
    } catch {
      return; // gone meanwhile: its parent's watch reports it
    } finally {
      if (this.#reading.get(dir) === touched) this.#reading.delete(dir);
    }
    if (this.#dirs.get(dir) !== state || this.#closed) return;
    if (state.ino === 0) state.ino = ino;
    for (const entry of entries) {
      const name = entry.name;
      const path = join(dir, name);
      if (touched.has(name) || state.names.has(name) || name.startsWith(COOKIE_PREFIX) || this.#options.ignored(path)) continue;
      state.names.add(name);
      if (added) this.#record(path, 'added');
      if (entry.isDirectory()) this.#enqueue(path, 0, added);
    }
  }
}
