// Watches directories for plugins and turns changes into events and invalidations. It watches what it is
// asked for, one directory level at a time (chokidar keeps state per entry: a whole home directory would
// cost hundreds of MB), at most `maxDirs` at once (the least recently asked for is dropped).
// If the OS watch limit is hit (ENOSPC, EMFILE), it falls back to polling and says so in /health.
// Freshness never rests on these events (they lag); they invalidate early and feed GET /events.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { LRUCache } from 'lru-cache';
import { COOKIE_PREFIX, DirWatchSet, type DirEventListener } from './dir-watch.js';
import type { EventBus } from './events.js';
import type { Logger } from './logger.js';

export type ChangeKind = 'changed' | 'added' | 'removed';
export type ChangeListener = (path: string, kind: ChangeKind) => void;

export interface WatcherOptions {
  /** Path segments never reported (`node_modules`, `.git/objects`, from `watcher.ignore`). */
  ignore: string[];
  bus: EventBus;
  log: Logger;
  maxDirs?: number;
}

export interface WatcherStatus {
  mode: 'off' | 'events' | 'polling';
  watched_paths: number;
  /** The OS's limit of watches per user (Linux's fs.inotify.max_user_watches), null where there is none to read. */
  watch_limit: number | null;
}

let osWatchLimit: number | null | undefined;
/** Read once: the limit is a system setting, not something a daemon changes. */
function watchLimit(): number | null {
  if (osWatchLimit === undefined) {
    try {
      const n = Number.parseInt(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8'), 10);
      osWatchLimit = Number.isFinite(n) ? n : null;
    } catch {
      osWatchLimit = null;
    }
  }
  return osWatchLimit;
}


const EVENT: Record<string, ChangeKind> = { add: 'added', addDir: 'added', change: 'changed', unlink: 'removed', unlinkDir: 'removed' };

/** `**\/node_modules/**` -> a test on path segments; other globs match as a literal segment sequence. */
export function ignoreMatcher(patterns: string[]): (path: string) => boolean {
  const parts = patterns.map((p) => p.replace(/^\*\*\//, '').replace(/\/\*\*$/, '')).filter(Boolean);
  return (path) => parts.some((part) => path.includes(`/${part}/`) || path.endsWith(`/${part}`));
}

export class WatcherService {
  #options: WatcherOptions;
  /** Whether a path is never reported: `watcher.ignore`, and `.git/objects` always. */
  readonly ignored: (path: string) => boolean;
  /**
   * watchDir's directories: a plain LRU fits, since nobody holds one (a file read asks again next time).
   * Dropping or replacing one closes its watch.
   */
  #dirs: LRUCache<string, FSWatcher>;
  #polling = false;
  #listeners = new Set<ChangeListener>();
  #reasons: string[] = [];
  #closed = false;
  /**
   * watchDirs' sets are held by their owners (a repository's warm status) until they close them: never
   * evicted, since dropping a watch in use would lose the events its owner relies on.
   */
  #sets = new Set<DirWatchSet>();

  constructor(options: WatcherOptions) {
    this.#options = options;
    this.#dirs = new LRUCache<string, FSWatcher>({ max: options.maxDirs ?? 256, dispose: (watcher) => void watcher.close() });
    this.ignored = ignoreMatcher([...options.ignore, '**/.git/objects/**']);
  }

  onChange(fn: ChangeListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * A set of plain directory watches for a whole tree (see dir-watch.ts), for a plugin that decides
   * itself which directories matter. Closed with the service.
   */
  watchDirs(onEvent: DirEventListener): DirWatchSet {
    const set = new DirWatchSet(onEvent, (code) => {
      const reason = `the OS file watch limit was reached (${code}); some trees are checked without events`;
      if (!this.#reasons.includes(reason)) this.#reasons.push(reason);
    });
    const close = set.close.bind(set);
    set.close = () => {
      this.#sets.delete(set);
      close();
    };
    this.#sets.add(set);
    return set;
  }

  /** Watches the entries of `dir` (one level). Asking again refreshes its place among the most recent. */
  watchDir(dir: string): void {
    if (this.#closed || this.ignored(dir) || this.#dirs.get(dir)) return;
    this.#dirs.set(dir, this.#start(dir));
  }

  #start(dir: string): FSWatcher {
    const watcher = watch(dir, {
      depth: 0,
      ignoreInitial: true,
      usePolling: this.#polling,
      interval: 500,
      ignored: (path: string) => this.ignored(path),
    });
    watcher.on('all', (event: string, path: string) => {
      const kind = EVENT[event];
      if (!kind || path === dir) return;
      // Cookies of the directory watch sets (dir-watch.ts) written into a directory watched here too.
      if (basename(path).startsWith(COOKIE_PREFIX)) return;
      for (const fn of this.#listeners) fn(path, kind);
      this.#options.bus.publish(`file.${kind}`, { path });
    });
    watcher.on('error', (err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOSPC' || code === 'EMFILE') && !this.#polling) this.#fallBack(code);
      else this.#options.log.warn({ err, dir }, 'watcher error');
    });
    return watcher;
  }

  /** The OS limit was reached: every watch moves to polling, which is slower to notice but has no limit. */
  #fallBack(code: string): void {
    this.#polling = true;
    this.#reasons.push(`the OS file watch limit was reached (${code}); watching by polling`);
    this.#options.log.warn({ code }, 'file watch limit reached; falling back to polling');
    // Least recent first, so that the order of recency is kept; each set closes the watch it replaces.
    for (const dir of [...this.#dirs.rkeys()]) this.#dirs.set(dir, this.#start(dir));
  }

  status(): WatcherStatus {
    let watched = this.#dirs.size;
    for (const set of this.#sets) watched += set.size;
    return { mode: watched === 0 ? 'off' : this.#polling ? 'polling' : 'events', watched_paths: watched, watch_limit: watchLimit() };
  }

  reasons(): string[] {
    return [...this.#reasons];
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const set of [...this.#sets]) set.close();
    const watchers = [...this.#dirs.values()];
    this.#dirs.clear();
    await Promise.all(watchers.map((watcher) => watcher.close())); // the promise of the close clear() began
  }
}
