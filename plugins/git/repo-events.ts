// What the warm states learn, told to subscribers: `git.status.changed` when a repository's summary (the
// answer of GET /git/summary) changes, `git.head.changed` when its branch or commit moves. A change
// reported by a repository's watches schedules one computation of its summary from the warm state (the
// same settled answer a request gets), at most one per `intervalMs` per repository; changes reported
// while one runs schedule another after it, so the last state is always told. Nothing is computed for
// a repository nobody subscribes to.
import type { Summary } from './operations.js';

export interface RepoEventsOptions {
  events: {
    publish(type: string, data: Record<string, unknown>): unknown;
    wanted(type: string, fields?: Record<string, unknown>): boolean;
  };
  /** The summary of a worktree, as GET /git/summary answers it. */
  summary(worktree: string): Promise<Summary>;
  onError(err: unknown, worktree: string): void;
  intervalMs?: number;
}

interface Tracked {
  /** What subscribers were last told (or what a computation found); null until one ran. */
  last: Summary | null;
  timer: NodeJS.Timeout | null;
  running: boolean;
  /** A change came while a computation ran: one more after it. */
  again: boolean;
  lastRun: number;
}

const TYPES = ['git.status.changed', 'git.head.changed'] as const;

export class RepoEvents {
  readonly #options: RepoEventsOptions;
  readonly #interval: number;
  readonly #repos = new Map<string, Tracked>();
  #closed = false;
  /** Computations run and events published, for the stats. */
  readonly counts = { computed: 0, status_changed: 0, head_changed: 0, skipped_unwanted: 0 };

  constructor(options: RepoEventsOptions) {
    this.#options = options;
    this.#interval = options.intervalMs ?? 50;
  }

  #wanted(worktree: string): boolean {
    return TYPES.some((type) => this.#options.events.wanted(type, { repo: worktree }));
  }

  /** A repository's watches reported a change. */
  changed(worktree: string): void {
    if (this.#closed) return;
    let repo = this.#repos.get(worktree);
    if (!repo) {
      if (!this.#wanted(worktree)) return void this.counts.skipped_unwanted++;
      repo = { last: null, timer: null, running: false, again: false, lastRun: 0 };
      this.#repos.set(worktree, repo);
    }
    if (repo.running) repo.again = true;
    else this.#schedule(worktree, repo);
  }

  /** Computes the summary now (without telling anyone), so that the next change is told against it: for a new subscriber. */
  baseline(worktree: string): void {
    if (this.#closed) return;
    let repo = this.#repos.get(worktree);
    if (!repo) this.#repos.set(worktree, (repo = { last: null, timer: null, running: false, again: false, lastRun: 0 }));
    if (!repo.last && !repo.running && !repo.timer) void this.#run(worktree, repo, false);
  }

  /**
   * A summary computed for a request: the newest known state, to compare the next change against (so a
   * subscriber's first event is a real change). Kept until a change comes that nobody wants told.
   */
  seen(worktree: string, summary: Summary): void {
    if (this.#closed) return;
    const repo = this.#repos.get(worktree);
    if (!repo) this.#repos.set(worktree, { last: summary, timer: null, running: false, again: false, lastRun: 0 });
    else if (!repo.running && !repo.timer) repo.last = summary;
  }

  /** The newest summary known of a worktree (told, computed, or answered to a request), or null. */
  last(worktree: string): Summary | null {
    return this.#repos.get(worktree)?.last ?? null;
  }

  /** The repository was released: its watches are gone, nothing more comes from it. */
  forget(worktree: string): void {
    const repo = this.#repos.get(worktree);
    if (repo?.timer) clearTimeout(repo.timer);
    this.#repos.delete(worktree);
  }

  #schedule(worktree: string, repo: Tracked): void {
    if (repo.timer) return;
    // A few ms even when the last run is long past: the other events of one write come together.
    const wait = Math.max(5, repo.lastRun + this.#interval - Date.now());
    repo.timer = setTimeout(() => {
      repo.timer = null;
      void this.#run(worktree, repo, true);
    }, wait);
    repo.timer.unref();
  }

  async #run(worktree: string, repo: Tracked, tell: boolean): Promise<void> {
    if (tell && !this.#wanted(worktree)) {
      // Nobody to tell (any more): forget what was known, which would go stale unwatched.
      this.counts.skipped_unwanted++;
      this.#repos.delete(worktree);
      return;
    }
    repo.running = true;
    repo.again = false;
    try {
      const now = await this.#options.summary(worktree);
      this.counts.computed++;
      const before = repo.last;
      repo.last = now;
      if (tell && !this.#closed && this.#repos.get(worktree) === repo) this.#tell(worktree, before, now);
    } catch (err) {
      repo.last = null;
      this.#options.onError(err, worktree);
    } finally {
      // From the end of a run: events are told at least intervalMs apart, however long each run takes.
      repo.lastRun = Date.now();
      repo.running = false;
      if (repo.again && !this.#closed && this.#repos.get(worktree) === repo) this.#schedule(worktree, repo);
    }
  }

  #tell(worktree: string, before: Summary | null, now: Summary): void {
    const { events } = this.#options;
    if (before && (before.branch !== now.branch || before.head !== now.head)) {
      this.counts.head_changed++;
      events.publish('git.head.changed', { repo: worktree, branch: now.branch, head: now.head, previous: { branch: before.branch, head: before.head } });
    }
    // Without a state told before (a first subscriber, a repository just warmed) a change is told as one.
    if (!before || JSON.stringify(before) !== JSON.stringify(now)) {
      this.counts.status_changed++;
      events.publish('git.status.changed', { repo: worktree, ...now });
    }
  }

  close(): void {
    this.#closed = true;
    for (const repo of this.#repos.values()) if (repo.timer) clearTimeout(repo.timer);
    this.#repos.clear();
  }
}
