// A set of directory watches on the platform's own notifier (inotify, FSEvents) through node:fs `watch`:
// one watch per directory, reporting the name of each entry that changed, with nothing kept per file.
// For whole trees (a repository's worktree), where chokidar's per-file state and its throttling (a second
// change within 5 ms is not reported) do not fit. settle() is Watchman's cookie: every event of every
// watch in the set comes through one queue (libuv keeps one inotify descriptor per loop), so once a file
// written now is reported, every change made before it has been reported too.
import { closeSync, openSync, watch, type FSWatcher } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';

export type DirEventListener = (dir: string, name: string | null) => void;

/** Cookie files written by settle(): never reported as changes. */
export const COOKIE_PREFIX = '.hearth-cookie-';

let cookieSeq = 0;

export class DirWatchSet {
  readonly #onEvent: DirEventListener;
  readonly #onLimit: (code: string) => void;
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #cookies = new Map<string, () => void>();
  #pending: Promise<boolean> | null = null;
  #closed = false;
  /** Why the set could not watch everything it was asked to (the OS limit), or null. */
  failed: string | null = null;

  constructor(onEvent: DirEventListener, onLimit: (code: string) => void = () => {}) {
    this.#onEvent = onEvent;
    this.#onLimit = onLimit;
  }

  get size(): number {
    return this.#watchers.size;
  }

  /** Starts watching `dir`; false when it cannot be (gone, or the OS watch limit: then `failed` says so). */
  add(dir: string): boolean {
    if (this.#closed) return false;
    if (this.#watchers.has(dir)) return true;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => {
        const file = name === null ? null : String(name);
        if (file?.startsWith(COOKIE_PREFIX)) this.#cookies.get(join(dir, file))?.();
        else this.#onEvent(dir, file);
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      if (code === 'ENOSPC' || code === 'EMFILE') {
        this.failed ??= `the OS file watch limit was reached (${code})`;
        this.#onLimit(code);
      }
      return false;
    }
    // A watched directory that is removed ends its watch; the parent's watch reports the removal.
    watcher.on('error', () => this.delete(dir));
    this.#watchers.set(dir, watcher);
    return true;
  }

  delete(dir: string): void {
    this.#watchers.get(dir)?.close();
    this.#watchers.delete(dir);
  }

  /**
   * Resolves true once a cookie written in `dir` (a watched directory) after this call has been
   * reported, false if it was not within `timeoutMs` or could not be written: then the caller cannot
   * rely on events alone. Calls made while a cookie waits to be written share it.
   */
  settle(dir: string, timeoutMs = 1000): Promise<boolean> {
    if (this.#closed || !this.#watchers.has(dir)) return Promise.resolve(false);
    this.#pending ??= new Promise<boolean>((resolve) => {
      setImmediate(() => {
        this.#pending = null;
        const cookie = join(dir, `${COOKIE_PREFIX}${process.pid}-${++cookieSeq}`);
        const done = (seen: boolean): void => {
          clearTimeout(timer);
          this.#cookies.delete(cookie);
          void unlink(cookie).catch(() => {});
          resolve(seen);
        };
        const timer = setTimeout(() => done(false), timeoutMs);
        this.#cookies.set(cookie, () => done(true));
        // Made synchronously: creating an empty file costs microseconds here, where open, write and close on
        // libuv's threads cost three round trips before the event can even be made.
        try {
          closeSync(openSync(cookie, 'w'));
        } catch {
          done(false);
        }
      });
    });
    return this.#pending;
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }
}
