// The process's own figures: memory, and the event-loop delay. The delay is measured by a timer that wakes
// the loop every RESOLUTION_MS (prom-client's default monitor does so always, 100 times a second: ~1% of a
// core on an idle daemon). Here a monitor runs only while someone reads it (the dashboard, a Prometheus
// scraper) and stops IDLE_MS after the last read, so a daemon nobody looks at keeps no timer for it.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { round } from '../measure.js';

const RESOLUTION_MS = 100;
const IDLE_MS = 60_000;

export interface DelayStats {
  min: number;
  mean: number;
  stddev: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** An event-loop delay monitor that runs while it is read. Each read gives the delay since the previous one. */
export class OnDemandDelay {
  #histogram: IntervalHistogram | undefined;
  #stop: NodeJS.Timeout | undefined;

  /**
   * Seconds since the previous read; null on the first read of a spell (nothing measured yet) or with no sample.
   * Node's histogram holds the time between two wakes of its timer, the resolution included (an idle loop reads
   * 100 ms): the delay is what comes on top of it, how late the timer ran.
   */
  read(): DelayStats | null {
    const h = this.#histogram;
    this.#keepAlive();
    if (!h || h.count === 0) return null;
    const s = (ns: number) => round(Math.max(0, ns - RESOLUTION_MS * 1e6) / 1e9, 6);
    const stats = {
      min: s(h.min),
      mean: s(h.mean),
      stddev: round(h.stddev / 1e9, 6),
      p50: s(h.percentile(50)),
      p90: s(h.percentile(90)),
      p99: s(h.percentile(99)),
      max: s(h.max),
    };
    h.reset();
    return stats;
  }

  #keepAlive(): void {
    if (!this.#histogram) {
      this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      this.#histogram.enable();
    }
    if (this.#stop) this.#stop.refresh();
    else {
      this.#stop = setTimeout(() => this.close(), IDLE_MS);
      this.#stop.unref();
    }
  }

  close(): void {
    this.#histogram?.disable();
    this.#histogram = undefined;
    clearTimeout(this.#stop);
    this.#stop = undefined;
  }
}

export interface ProcessSection {
  rss_bytes: number;
  heap_used_bytes: number;
  heap_total_bytes: number;
  external_bytes: number;
  uptime_seconds: number;
  event_loop_delay: DelayStats | null;
}

/** The `process` section of /optimization/stats. */
export function processSection(delay: OnDemandDelay): ProcessSection {
  const m = process.memoryUsage();
  return {
    rss_bytes: m.rss,
    heap_used_bytes: m.heapUsed,
    heap_total_bytes: m.heapTotal,
    external_bytes: m.external,
    uptime_seconds: round(process.uptime(), 2),
    event_loop_delay: delay.read(),
  };
}
