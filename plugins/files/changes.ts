// GET /files/changes: what changed under a directory after a clock. The first query for a root starts a
// recursive watch of it (tree-watch.ts); at most `maxRoots` are watched at once, the least recently
// queried is closed. A query that cannot be answered completely says so (is_fresh_instance, reason) and
// gives the clock to start from, so the client scans once and asks again from there (Watchman's contract).
import { basename, sep } from 'node:path';
import { LRUCache } from 'lru-cache';
import { HearthError } from '../../src/errors.js';
import type { PluginContext } from '../../src/plugin.js';
import { TreeWatch, type ChangeType } from './tree-watch.js';
import { isWriteTemp } from './write.js';

export interface ChangesAnswer {
  clock: string;
  is_fresh_instance: boolean;
  reason?: string;
  changes: Array<{ path: string; type: ChangeType }>;
}

export interface ChangesStats {
  roots_watched: number;
  dirs_watched: number;
  log_entries: number;
  overflows: number;
  evictions: number;
}

export const changesResponse = {
  type: 'object',
  required: ['clock', 'is_fresh_instance', 'changes'],
  additionalProperties: false,
  properties: {
    clock: { type: 'string', description: 'The clock to pass as `since` next time.' },
    is_fresh_instance: { type: 'boolean', description: 'True when the changes since `since` cannot be told: scan the tree again and ask from `clock`.' },
    reason: { type: 'string', description: 'Why is_fresh_instance is true (absent when no since was given).' },
    changes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['path', 'type'],
        additionalProperties: false,
        properties: { path: { type: 'string' }, type: { enum: ['changed', 'added', 'removed'] } },
      },
    },
  },
};

/** Roots whose watch was evicted are remembered (this many) so the answer can say why it starts over. */
const EVICTED_KEPT = 256;

export class ChangeRoots {
  readonly #ctx: PluginContext<unknown>;
  readonly #maxChanges: number;
  readonly #watches: LRUCache<string, TreeWatch>;
  readonly #evicted = new LRUCache<string, true>({ max: EVICTED_KEPT });
  #evictions = 0;
  #overflowsClosed = 0;

  constructor(ctx: PluginContext<unknown>, options: { maxRoots: number; maxChanges: number }) {
    this.#ctx = ctx;
    this.#maxChanges = options.maxChanges;
    this.#watches = new LRUCache<string, TreeWatch>({
      max: options.maxRoots,
      dispose: (watch, root, why) => {
        this.#overflowsClosed += watch.overflows;
        watch.close();
        if (why === 'evict') {
          this.#evictions++;
          this.#evicted.set(root, true);
        }
      },
    });
  }

  /** `dir` is a real directory inside the roots; `since` matches the clock pattern (or is absent). */
  async query(dir: string, since: string | undefined): Promise<ChangesAnswer> {
    // Nothing under an ignored directory is ever reported: an answer would say "no changes" and be wrong.
    if (this.#ctx.watcher.ignored(dir)) throw new HearthError('VALIDATION_FAILED', `${JSON.stringify(dir)} is ignored by watcher.ignore`, { details: [{ path: '/root', message: 'is ignored by watcher.ignore' }] });
    let watch = this.#find(dir);
    let fresh: string | null = null;
    if (!watch) {
      fresh = this.#evicted.get(dir) ? 'the watch of this root was evicted (more roots queried than max_change_roots)' : 'first query for this root';
      this.#evicted.delete(dir);
      // A watch of a directory inside this one is replaced: this one covers it.
      for (const root of [...this.#watches.keys()]) if (root.startsWith(dir + sep)) this.#watches.delete(root);
      watch = new TreeWatch({
        root: dir,
        startSeq: this.#ctx.events.seq,
        maxChanges: this.#maxChanges,
        // hearth's own temp files of atomic writes are no change of the tree: the rename that ends a write is.
        ignored: (path) => this.#ctx.watcher.ignored(path) || isWriteTemp(basename(path)),
        watchDirs: (onEvent) => this.#ctx.watcher.watchDirs(onEvent),
        publish: (type, path) => {
          this.#ctx.events.publish(`file.${type}`, { path });
          return this.#ctx.events.seq;
        },
      });
      this.#watches.set(dir, watch);
    }
    // Every change finished before this request is in the log once the cookie is seen and the reads of
    // directories it brought are done; only then is the clock taken.
    await watch.idle();
    const settled = await watch.settle();
    await watch.idle();
    const clock = this.#ctx.events.clock;
    const now = this.#ctx.events.seq;
    if (since === undefined) return { clock, is_fresh_instance: true, changes: [] };
    const from = this.#ctx.events.sequence(since);
    // The first reason that applies, the most telling first.
    const reason =
      from === null
        ? 'the daemon restarted (the clock is from another instance)'
        : (fresh ??
          (from < watch.startSeq
            ? 'the watch of this root started after that clock'
            : from < watch.floor
              ? 'changes were dropped: more than max_changes since that clock'
              : from > now
                ? 'the clock is ahead of this daemon'
                : watch.failed
                  ? `${watch.failed}: the watch of this root is incomplete`
                  : !settled
                    ? 'the watch could not confirm it is up to date (its settle cookie was not seen in time or could not be written)'
                    : null));
    if (from === null || reason !== null) return { clock, is_fresh_instance: true, reason: reason!, changes: [] };
    return { clock, is_fresh_instance: false, changes: watch.changesSince(from, dir) };
  }

  /** The watch covering `dir` (its root or an ancestor), made the most recently used. */
  #find(dir: string): TreeWatch | undefined {
    for (const root of this.#watches.keys()) {
      if (dir === root || dir.startsWith(root + sep)) return this.#watches.get(root);
    }
    return undefined;
  }

  stats(): ChangesStats {
    let dirs = 0;
    let entries = 0;
    let overflows = this.#overflowsClosed;
    for (const watch of this.#watches.values()) {
      dirs += watch.dirs;
      entries += watch.logEntries;
      overflows += watch.overflows;
    }
    return { roots_watched: this.#watches.size, dirs_watched: dirs, log_entries: entries, overflows, evictions: this.#evictions };
  }

  close(): void {
    this.#watches.clear();
  }
}
