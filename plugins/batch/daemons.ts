// The registry of the daemons on a queue, in Redis (`<name>:daemons`, a hash by daemon id): each daemon
// writes its entry every heartbeat, with the shared roots it declares and how many chunks it has run; an
// entry not renewed for three heartbeats is the entry of a daemon that is gone (dropped when read).
import type { Redis } from 'ioredis';

export interface DaemonEntry {
  id: string;
  host: string;
  /** The shared roots it declares (it runs the chunks of path jobs under them). */
  roots: string[];
  /** Chunks it runs at once per queue; 0: it submits jobs but runs no chunk. */
  concurrency: number;
  /** Chunks it has run (recorded) since it started. */
  chunks: number;
  last_seen: string;
  /** Past this time without a heartbeat the entry is dropped. */
  expires_at: string;
}

export interface DaemonSelf {
  id: string;
  host: string;
  roots: string[];
  concurrency: number;
}

export class DaemonRegistry {
  #redis: Redis;
  #key: string;
  #self: DaemonSelf;
  #heartbeatMs: number;
  #chunks: () => number;
  #timer: NodeJS.Timeout | undefined;
  #onError: (err: unknown) => void;

  constructor(redis: Redis, name: string, self: DaemonSelf, heartbeatMs: number, chunks: () => number, onError: (err: unknown) => void) {
    this.#redis = redis;
    this.#key = `${name}:daemons`;
    this.#self = self;
    this.#heartbeatMs = heartbeatMs;
    this.#chunks = chunks;
    this.#onError = onError;
  }

  start(): void {
    void this.beat();
    this.#timer = setInterval(() => void this.beat(), this.#heartbeatMs);
    this.#timer.unref();
  }

  /** Writes this daemon's entry now (a failure is reported, the next heartbeat tries again). */
  async beat(): Promise<void> {
    const now = Date.now();
    const entry: DaemonEntry = {
      ...this.#self,
      chunks: this.#chunks(),
      last_seen: new Date(now).toISOString(),
      expires_at: new Date(now + 3 * this.#heartbeatMs).toISOString(),
    };
    try {
      await this.#redis.hset(this.#key, this.#self.id, JSON.stringify(entry));
    } catch (err) {
      this.#onError(err);
    }
  }

  /** The daemons alive now, by id. */
  async alive(): Promise<DaemonEntry[]> {
    const all = await this.#redis.hgetall(this.#key);
    const now = Date.now();
    const out: DaemonEntry[] = [];
    const gone: string[] = [];
    for (const [id, text] of Object.entries(all)) {
      let entry: DaemonEntry | undefined;
      try {
        entry = JSON.parse(text) as DaemonEntry;
      } catch {
        // Not ours: dropped like a stale one.
      }
      if (entry && Date.parse(entry.expires_at) > now) out.push(entry);
      else gone.push(id);
    }
    if (gone.length > 0) await this.#redis.hdel(this.#key, ...gone);
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** The daemons alive now that run chunks of path jobs under `root`. */
  async runnersOf(root: string): Promise<DaemonEntry[]> {
    return (await this.alive()).filter((d) => d.concurrency > 0 && d.roots.includes(root));
  }

  /** Stops the heartbeat and takes this daemon's entry out (best effort: it expires anyway). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    try {
      await this.#redis.hdel(this.#key, this.#self.id);
    } catch {
      // Redis away: the entry expires by itself.
    }
  }
}
