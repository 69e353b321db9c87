// The dashboard (/ui) in a real browser against the built daemon (dist/): Debian's chromium, headless,
// driven by puppeteer-core, logged in the way a user is (`hearth ui --print-url`, the one-time URL opened in
// the browser). The daemon runs on a temp state dir, TCP port 0, a files root, a small git repository made
// with the git CLI (warmed by GET /git/summary, so the page has a repository to show) and the batch plugin.
//   idle     the daemon's CPU (user + system ticks of /proc/<pid>/stat, all its threads; CLK_TCK from
//            `getconf CLK_TCK`) over windows of BENCH_DASHBOARD_WINDOW seconds, as % of one core, in rounds
//            of three cases, BENCH_DASHBOARD_ROUNDS rounds:
//              none    no page connected, and no stats read for more than a minute (the on-demand
//                      event-loop monitor of src/services/process-stats.ts has stopped);
//              page    one dashboard page open, visible and idle, from 12 s after its first render (it
//                      polls: body[data-polls] is read at the window's start and end, and the requests
//                      it makes are counted);
//              closed  the window right after the page was closed: nothing is connected, but the monitor
//                      still runs (it stops 60 s after the last stats read).
//            A round is none, page, closed, then a wait until the monitor has stopped. Reported: the
//            medians, page / none (the median of the rounds' own ratios), and the target of the issue:
//            one page open keeps the daemon's idle CPU <= 1% of a core. Beside it the daemon's context
//            switches a second (its wakeups, all threads), the browser's CPU, and what the page asked for
//            a second with what each request cost the daemon (GET /optimization/stats?window=..., read
//            right after the window).
//   latency  from a request to its appearance on the page, one clock (Date.now() here and in the page, the
//            same machine's wall clock): a MutationObserver in the page is armed first, then this process
//            sends GET /files/stat over TCP (a route nothing else calls), and the observer records when the
//            routes table's `[data-route="GET /files/stat"] [data-col="total"]` grows
//            (BENCH_DASHBOARD_REQUESTS requests, 300-1300 ms apart, so they fall anywhere in the page's
//            poll cycle). Baselines of the same run: the page's own stats poll interval (its data-polls
//            steps; expected delay ~ half of it + a stats fetch + the render), the page's stats fetch
//            (resource timing) and the same GET /files/stat as a plain fetch here.
//            Jobs (BENCH_DASHBOARD_JOBS, one at a time): POST /batch/jobs (hash_file over one file, repeated)
//            to its `[data-job]` element (the page learns of a new job from a batch.job.* event, then asks
//            GET /batch/jobs, at most once a second); and, for a job the page shows, each batch.job.progress
//            event (as this process's own /events subscriber receives it) to the page's `[data-col="count"]`,
//            and batch.job.finished to `[data-col="status"]` saying completed: the SSE path alone.
// Times in the page are those of the DOM change (the MutationObserver); the paint follows within a frame.
// The machine's load average is printed at the start and the end of each phase (the machine is shared).
// Environment: BENCH_DASHBOARD_PHASES (idle,latency), BENCH_DASHBOARD_ROUNDS (3), BENCH_DASHBOARD_WINDOW
// (20 s), BENCH_DASHBOARD_REQUESTS (30), BENCH_DASHBOARD_JOBS (15), BENCH_DASHBOARD_JOB_ITEMS (800 hashes
// of a 1 MiB file a job), BENCH_DASHBOARD_CHROMIUM (/usr/lib/chromium/chromium; when it is missing the
// bench says so and exits 0), BENCH_STRICT=1 (exit 1 when the idle target is missed), BENCH_CPU_PROF=<dir>
// (the daemon runs with --cpu-prof and writes its profile there on exit; the profiler's own sampling then
// costs the daemon CPU, so its idle figures are not the daemon's).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { median, percentile, round } from '../src/measure.js';
import { cliPath, envNumber } from './lib/env.js';
import { generateRepo } from './lib/git-repo.js';
import { startBenchDaemon, type BenchDaemon } from './lib/daemon.js';

const count = (name: string, fallback: number) => Math.max(1, Math.round(envNumber(name, fallback)));
const ROUNDS = count('BENCH_DASHBOARD_ROUNDS', 3);
const WINDOW_MS = envNumber('BENCH_DASHBOARD_WINDOW', 20, false) * 1000;
const REQUESTS = count('BENCH_DASHBOARD_REQUESTS', 30);
const JOBS = count('BENCH_DASHBOARD_JOBS', 15);
const JOB_ITEMS = count('BENCH_DASHBOARD_JOB_ITEMS', 800);
const CHROMIUM = process.env.BENCH_DASHBOARD_CHROMIUM || '/usr/lib/chromium/chromium';
const STRICT = process.env.BENCH_STRICT === '1';
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF;
const ALL_PHASES = ['idle', 'latency'] as const;
type Phase = (typeof ALL_PHASES)[number];
const PHASES = new Set<Phase>(
  (process.env.BENCH_DASHBOARD_PHASES || ALL_PHASES.join(',')).split(',').map((p) => {
    const name = p.trim() as Phase;
    if (!ALL_PHASES.includes(name)) throw new Error(`BENCH_DASHBOARD_PHASES: "${p}" is none of ${ALL_PHASES.join(', ')}`);
    return name;
  }),
);
/** The target of the issue: with one page open, the idle daemon uses at most this much of one core. */
const TARGET_PCT = 1;
/** The on-demand event-loop monitor stops this long after the last stats read (src/services/process-stats.ts), and a margin. */
const MONITOR_IDLE_MS = 60_000 + 3_000;
/** From the page's first render to its window: more than its slowest poll's period (10 s). */
const PAGE_WARM_MS = 12_000;
/** The route the latency phase asks for, which neither the page nor anything else calls. */
const PROBE_ROUTE = 'GET /files/stat';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');
const fmt = (n: number, digits = 0) => (Number.isNaN(n) ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
/** A duration as the tables print it: whole ms from 100, one decimal from 10, two below. */
const fmtMs = (v: number) => (Number.isNaN(v) ? '-' : String(v >= 100 ? Math.round(v) : v >= 10 ? Math.round(v * 10) / 10 : Math.round(v * 100) / 100));
const say = (text: string) => process.stdout.write(text);

interface Dist {
  p50: number;
  p95: number;
  n: number;
}

function dist(samples: number[]): Dist {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 0.5)), p95: round(percentile(sorted, 0.95)), n: samples.length };
}

// ---------------------------------------------------------------------------------------------------------
// /proc

function clockTicks(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}
const CLK_TCK = clockTicks();

/** The fields of /proc/<pid>/stat after the command name (field 3 is [0]); undefined when the process is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** user + system clock ticks of a process (all its threads). */
function cpuTicks(pid: number): number | undefined {
  const f = statFields(pid);
  return f ? Number(f[11]) + Number(f[12]) : undefined;
}

/** Context switches (voluntary + not) of every thread of a process, and of its main thread. */
function contextSwitches(pid: number): { all: number; main: number } {
  let all = 0;
  let main = 0;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { all: NaN, main: NaN };
  }
  for (const tid of tids) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const n = [...status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
      all += n;
      if (tid === String(pid)) main = n;
    } catch {
      // the thread ended meanwhile
    }
  }
  return { all, main };
}

/** ns on a CPU of every thread of a process (/proc/<pid>/task/<tid>/schedstat, the scheduler's own count). */
function runtimeNs(pid: number): number {
  let ns = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    return NaN;
  }
  return ns;
}

/** The CPU ticks of a process and of all its descendants, per pid (the browser and its renderers). */
function treeTicks(root: number): Map<number, number> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out = new Map<number, number>();
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    const t = cpuTicks(pid);
    if (t !== undefined) out.set(pid, t);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

function treeDelta(before: Map<number, number>, after: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return ticks;
}

// ---------------------------------------------------------------------------------------------------------
// The daemon

interface Daemon extends BenchDaemon {
  origin: string;
  token: string;
}

async function startDaemon(work: string, filesRoot: string, gitRoot: string): Promise<Daemon> {
  // The defaults have every plugin on (stats, files, git, batch, dashboard); the roots are this run's.
  const nodeFlags = CPU_PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', resolve(CPU_PROF_DIR)] : [];
  const d = await startBenchDaemon(work, { files: { roots: [filesRoot] }, git: { roots: [gitRoot] }, batch: {}, dashboard: {} }, nodeFlags);
  const token = readFileSync(join(d.state, 'token'), 'utf8').trim();
  // Where it listens on TCP: the origin of a login URL (this one is never used; it expires by itself).
  const origin = new URL((await d.client.call<{ url: string }>('POST', '/ui/login-url')).url).origin;
  return { ...d, origin, token };
}

/** A one-time login URL the way a user gets one: `hearth ui --print-url`. */
function loginUrl(d: Daemon): string {
  const out = execFileSync(process.execPath, [cliPath, 'ui', '--print-url', '--state-dir', d.state], { encoding: 'utf8', env: { ...process.env, HEARTH_LOG_LEVEL: 'warn' } });
  const url = out.split('\n').find((l) => l.startsWith('http'));
  if (!url) throw new Error(`hearth ui --print-url printed no URL: ${out}`);
  return url.trim();
}

interface Metric {
  count: number;
  total?: number;
  avg: number;
  p50: number;
  p95: number;
  unit?: string;
}

async function stats(d: Daemon, windowS?: number): Promise<Record<string, Metric>> {
  const s = await d.client.call<{ metrics: Record<string, Metric> }>('GET', `/optimization/stats${windowS ? `?window=${windowS}` : ''}`);
  return s.metrics;
}

// ---------------------------------------------------------------------------------------------------------
// An event stream of the daemon's, here (for the jobs' events)

interface SseRecord {
  event: string | undefined;
  data: Record<string, unknown>;
  /** Date.now() when it arrived. */
  at: number;
}

function subscribe(socket: string, path: string, onRecord: (r: SseRecord) => void): Promise<{ close(): void }> {
  return new Promise((resolve, reject) => {
    let req: ClientRequest;
    req = request({ socketPath: socket, path, headers: { host: 'localhost', accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`GET ${path}: status ${res.statusCode}`));
      }
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const at = Date.now();
        buffer += chunk;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (block.startsWith(':')) {
            if (block === ': connected') resolve({ close: () => req.destroy() });
            continue;
          }
          let event: string | undefined;
          let data: string | undefined;
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data = line.slice(6);
          }
          if (data !== undefined) onRecord({ event, data: JSON.parse(data) as Record<string, unknown>, at });
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------------------
// The browser. The functions given to page.evaluate run in the page: they reach its globals through
// globalThis (this project's TypeScript has no DOM types), and use nothing of this module.

interface OpenPage {
  page: Page;
  /** Requests the page made, by path, since the last reset. */
  requests: Map<string, number>;
  errors: string[];
  close(): Promise<void>;
}

async function openPage(browser: Browser, url: string): Promise<OpenPage> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const requests = new Map<string, number>();
  const errors: string[] = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    const key = `${r.method()} ${u.pathname}`;
    requests.set(key, (requests.get(key) ?? 0) + 1);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (err) => errors.push(String(err)));
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('body[data-ready="1"]', { timeout: 20_000 });
  const shown = await page.evaluate(() => {
    const doc = (globalThis as any).document;
    return { dashboard: !doc.querySelector('#dashboard')?.hidden, visibility: String(doc.visibilityState), url: String(doc.location.href) };
  });
  if (!shown.dashboard) throw new Error(`the page shows the login, not the dashboard (${shown.url}); errors: ${errors.join('; ')}`);
  if (shown.visibility !== 'visible') throw new Error(`the page is ${shown.visibility}, not visible: it would not poll`);
  // Polling for real: two stats polls rendered.
  await page.waitForFunction(() => Number((globalThis as any).document.body.dataset.polls ?? 0) >= 2, { timeout: 20_000, polling: 100 });
  return { page, requests, errors, close: () => page.close() };
}

const polls = (p: OpenPage) => p.page.evaluate(() => Number((globalThis as any).document.body.dataset.polls ?? 0));

// ---------------------------------------------------------------------------------------------------------
// idle

interface IdleWindow {
  case: 'none' | 'page' | 'closed';
  ms: number;
  ticks: number;
  cpu_pct: number;
  /** The same from the scheduler's run time of its threads (ns, not ticks): a cross-check. */
  sched_pct: number;
  /** Context switches a second, every thread of the daemon, and its main thread (the event loop's wakeups). */
  switches_s: number;
  main_switches_s: number;
  browser_cpu_pct: number;
  /** The machine's 1-minute load average at the window's end. */
  load1: number;
  /** With the page: its stats polls rendered a second, and its requests a second by route. */
  polls_s?: number;
  requests_s?: Record<string, number>;
  /** The daemon's own figures for the page's routes over the window: count, mean ms. */
  costs?: Record<string, { count: number; avg_ms: number }>;
}

async function idleWindow(d: Daemon, browser: Browser, which: IdleWindow['case'], p?: OpenPage): Promise<IdleWindow> {
  const browserPid = browser.process()?.pid;
  const b0 = browserPid ? treeTicks(browserPid) : new Map<number, number>();
  const polls0 = p ? await polls(p) : 0;
  p?.requests.clear();
  const s0 = contextSwitches(d.pid);
  const n0 = runtimeNs(d.pid);
  const c0 = cpuTicks(d.pid) ?? NaN;
  const t0 = performance.now();
  await sleep(WINDOW_MS);
  const c1 = cpuTicks(d.pid) ?? NaN;
  const ms = performance.now() - t0;
  const n1 = runtimeNs(d.pid);
  const s1 = contextSwitches(d.pid);
  const polls1 = p ? await polls(p) : 0;
  const b1 = browserPid ? treeTicks(browserPid) : new Map<number, number>();
  const sec = ms / 1000;
  const w: IdleWindow = {
    case: which,
    ms: round(ms, 0),
    ticks: c1 - c0,
    cpu_pct: round(((c1 - c0) / CLK_TCK / sec) * 100, 3),
    sched_pct: round(((n1 - n0) / 1e9 / sec) * 100, 3),
    switches_s: round((s1.all - s0.all) / sec, 1),
    main_switches_s: round((s1.main - s0.main) / sec, 1),
    browser_cpu_pct: round((treeDelta(b0, b1) / CLK_TCK / sec) * 100, 2),
    load1: round(loadavg()[0]!, 2),
  };
  if (p) {
    w.polls_s = round((polls1 - polls0) / sec, 2);
    w.requests_s = Object.fromEntries([...p.requests].sort().map(([k, n]) => [k, round(n / sec, 2)]));
    // What those requests cost the daemon over the window (this read comes after it, and is not in it).
    const m = await stats(d, Math.ceil(sec));
    w.costs = {};
    for (const route of p.requests.keys()) {
      const metric = m[`http.${route.replace(/\/batch\/jobs\/[^/]+$/, '/batch/jobs/:id')}`];
      if (metric) w.costs[route] = { count: metric.count, avg_ms: round(metric.avg * (metric.unit === 'seconds' ? 1000 : 1), 3) };
    }
  }
  return w;
}

interface IdleResult {
  windows: IdleWindow[];
  none: number;
  page: number;
  closed: number;
  ratio: number;
  target_met: boolean;
  console_errors: string[];
  load: { before: string; after: string };
}

async function idlePhase(d: Daemon, browser: Browser): Promise<IdleResult> {
  const before = load();
  say(`\nidle: ${ROUNDS} rounds of none / page / closed, ${WINDOW_MS / 1000} s windows (CLK_TCK ${CLK_TCK}; load average ${before})\n`);
  const windows: IdleWindow[] = [];
  const errors: string[] = [];
  // Nothing has read the stats yet (the monitor is off). The start's own work settles first: 5 s windows
  // until three in a row have at most a tick each (or 90 s).
  const settle0 = performance.now();
  const settled: number[] = [];
  while (performance.now() - settle0 < 90_000) {
    const t = cpuTicks(d.pid) ?? NaN;
    await sleep(5000);
    settled.push((cpuTicks(d.pid) ?? NaN) - t);
    if (settled.length >= 3 && settled.slice(-3).every((n) => n <= 1)) break;
  }
  say(`  settled after ${fmt((performance.now() - settle0) / 1000)} s (ticks per 5 s: ${settled.join(', ')})\n`);
  const line = (w: IdleWindow, r: number) =>
    say(
      `  round ${r + 1}, ${w.case.padEnd(6)}: daemon ${fmt(w.cpu_pct, 2)}% of a core (${w.ticks} ticks in ${fmt(w.ms / 1000, 1)} s; schedstat ${fmt(w.sched_pct, 2)}%), ${fmt(w.switches_s, 1)} context switches/s (main thread ${fmt(w.main_switches_s, 1)}), browser ${fmt(w.browser_cpu_pct, 1)}%` +
        (w.polls_s !== undefined ? `; page ${fmt(w.polls_s, 2)} polls/s, requests/s ${JSON.stringify(w.requests_s)}, mean handler ms ${JSON.stringify(Object.fromEntries(Object.entries(w.costs ?? {}).map(([k, c]) => [k, c.avg_ms])))}` : '') +
        '\n',
    );
  for (let r = 0; r < ROUNDS; r++) {
    const none = await idleWindow(d, browser, 'none');
    windows.push(none);
    line(none, r);
    const p = await openPage(browser, r === 0 ? loginUrl(d) : `${d.origin}/ui`);
    // Every poller has run (GET /plugins is every 10 s): the window sees the page's steady state.
    await sleep(PAGE_WARM_MS);
    const page = await idleWindow(d, browser, 'page', p);
    windows.push(page);
    line(page, r);
    errors.push(...p.errors);
    await p.close();
    const closedAt = performance.now();
    const closed = await idleWindow(d, browser, 'closed');
    windows.push(closed);
    line(closed, r);
    // Until the monitor has stopped (60 s after the last stats read), so that the next "none" is really idle.
    if (r < ROUNDS - 1 || PHASES.has('latency')) await sleep(Math.max(0, MONITOR_IDLE_MS - (performance.now() - closedAt)));
  }
  const of = (c: IdleWindow['case']) => windows.filter((w) => w.case === c);
  const none = median(of('none').map((w) => w.cpu_pct));
  const page = median(of('page').map((w) => w.cpu_pct));
  const closed = median(of('closed').map((w) => w.cpu_pct));
  const ratio = median(of('page').map((w, i) => w.cpu_pct / Math.max(of('none')[i]!.cpu_pct, 100 / CLK_TCK / (WINDOW_MS / 1000))));
  return { windows, none, page, closed, ratio: round(ratio, 2), target_met: page <= TARGET_PCT, console_errors: errors, load: { before, after: load() } };
}

// ---------------------------------------------------------------------------------------------------------
// latency

/** In the page: collects the poll times, the stats fetches' durations and what the jobs table shows, as it changes. */
function installCollector(): void {
  const g = globalThis as any;
  const doc = g.document;
  const B: any = { polls: [] as number[], lastPolls: -1, statsFetch: [] as number[], statsBytes: [] as number[], jobs: {} };
  g.__bench = B;
  new g.MutationObserver(() => {
    const n = Number(doc.body.dataset.polls);
    if (n !== B.lastPolls) {
      B.lastPolls = n;
      B.polls.push(Date.now());
    }
  }).observe(doc.body, { attributes: true, attributeFilter: ['data-polls'] });
  new g.PerformanceObserver((list: any) => {
    for (const e of list.getEntries()) if (String(e.name).includes('/optimization/stats')) {
        B.statsFetch.push(e.duration);
        B.statsBytes.push(e.encodedBodySize);
      }
  }).observe({ type: 'resource' });
  const jobs = doc.querySelector('#jobs');
  const scan = () => {
    const now = Date.now();
    for (const item of jobs.querySelectorAll('[data-job]')) {
      const id = item.dataset.job;
      const j = (B.jobs[id] ??= { seen: now, counts: [], completed: 0 });
      const done = parseInt(String(item.querySelector('[data-col="count"]')?.textContent ?? '').split('/')[0]!.replace(/[^0-9]/g, ''), 10);
      const last = j.counts[j.counts.length - 1];
      if (!Number.isNaN(done) && (!last || last[1] !== done)) j.counts.push([now, done]);
      if (!j.completed && /completed/.test(String(item.querySelector('[data-col="status"]')?.textContent ?? ''))) j.completed = now;
    }
  };
  new g.MutationObserver(scan).observe(jobs, { subtree: true, childList: true, characterData: true, attributes: true });
  scan();
}

/** In the page: arms an observer that resolves (to Date.now()) when the route's total grows; returns the total now (-1: no row). */
function armRouteWait(route: string, timeoutMs: number): number {
  const g = globalThis as any;
  const doc = g.document;
  const sel = `[data-route="${route}"] [data-col="total"]`;
  const read = () => {
    const t = doc.querySelector(sel)?.textContent;
    const n = t ? parseInt(String(t).replace(/[^0-9]/g, ''), 10) : NaN;
    return Number.isNaN(n) ? -1 : n;
  };
  const before = read();
  g.__routeWait = new Promise((resolve) => {
    const obs = new g.MutationObserver(() => {
      if (read() > before) done(Date.now());
    });
    const timer = g.setTimeout(() => done(-1), timeoutMs);
    function done(v: number) {
      obs.disconnect();
      g.clearTimeout(timer);
      resolve(v);
    }
    obs.observe(doc.querySelector('#routes'), { subtree: true, childList: true, characterData: true });
  });
  return before;
}

interface JobRound {
  job_id: string;
  items: number;
  /** ms: POST /batch/jobs to the page's [data-job] element. */
  appear: number;
  /** ms of the job, from its first event to batch.job.finished (here). */
  duration: number;
  /** ms: each batch.job.progress (after the page showed the job) to the page's count. */
  progress: number[];
  /** ms: batch.job.finished to the page's status "completed" (NaN: not seen). */
  finish: number;
}

interface LatencyResult {
  /** Request sent to the page's routes table showing it, ms. */
  request_to_page: number[];
  /** The same GET /files/stat's round trip, as a plain fetch here, ms. */
  fetch: number[];
  missed: number;
  /** The page's stats polls: ms between renders, and its stats fetches' durations (resource timing). */
  poll_interval: number[];
  stats_fetch: number[];
  /** The stats answers' sizes (bytes of body). */
  stats_bytes: number[];
  jobs: JobRound[];
  console_errors: string[];
  load: { before: string; after: string };
}

async function latencyPhase(d: Daemon, browser: Browser, filesRoot: string, firstLogin: boolean): Promise<LatencyResult> {
  const before = load();
  say(`\nlatency: ${REQUESTS} requests (${PROBE_ROUTE}) and ${JOBS} jobs to the page (load average ${before})\n`);
  const probe = join(filesRoot, 'probe.txt');
  writeFileSync(probe, 'probe\n');
  const fetchProbe = async () => {
    const res = await fetch(`${d.origin}/files/stat?path=${encodeURIComponent(probe)}`, { headers: { authorization: `Bearer ${d.token}` } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${PROBE_ROUTE}: status ${res.status}`);
  };
  const p = await openPage(browser, firstLogin ? loginUrl(d) : `${d.origin}/ui`);
  const result: LatencyResult = { request_to_page: [], fetch: [], missed: 0, poll_interval: [], stats_fetch: [], stats_bytes: [], jobs: [], console_errors: [], load: { before, after: '' } };
  try {
    await p.page.evaluate(installCollector);
    // One not counted: the route's row appears, the connection is made.
    await p.page.evaluate(armRouteWait, PROBE_ROUTE, 5000);
    await fetchProbe();
    if ((await p.page.evaluate(() => (globalThis as any).__routeWait)) < 0) throw new Error(`the routes table never showed ${PROBE_ROUTE}`);
    for (let i = 0; i < REQUESTS; i++) {
      await sleep(300 + Math.floor(Math.random() * 1000));
      await p.page.evaluate(armRouteWait, PROBE_ROUTE, 5000);
      const sent = Date.now();
      const t = performance.now();
      await fetchProbe();
      result.fetch.push(performance.now() - t);
      const shown = (await p.page.evaluate(() => (globalThis as any).__routeWait)) as number;
      if (shown < 0) result.missed++;
      else result.request_to_page.push(shown - sent);
    }
    const r = dist(result.request_to_page);
    say(`  request to the routes table: p50 ${fmtMs(r.p50)} ms, p95 ${fmtMs(r.p95)} ms (missed ${result.missed}); plain fetch p50 ${fmtMs(dist(result.fetch).p50)} ms\n`);

    // Jobs: this process hears their events on its own subscription.
    const heard = new Map<string, SseRecord[]>();
    const sub = await subscribe(d.socket, '/events?type=batch.job.progress,batch.job.finished', (rec) => {
      const id = String(rec.data.job_id ?? '');
      const list = heard.get(id) ?? [];
      list.push(rec);
      heard.set(id, list);
    });
    const big = join(filesRoot, 'job-input.bin');
    writeFileSync(big, randomBytes(1024 * 1024));
    const body = { operation: 'hash_file', items: Array.from({ length: JOB_ITEMS }, () => big), batch_size: Math.max(1, Math.round(JOB_ITEMS / 40)), max_concurrent: 1 };
    try {
      for (let j = 0; j < JOBS; j++) {
        await sleep(300 + Math.floor(Math.random() * 1000));
        const sent = Date.now();
        const { job_id } = await d.client.call<{ job_id: string }>('POST', '/batch/jobs', body);
        const finished = () => heard.get(job_id)?.find((x) => x.event === 'batch.job.finished');
        const deadline = Date.now() + 120_000;
        while (!finished() && Date.now() < deadline) await sleep(20);
        const fin = finished();
        if (!fin) throw new Error(`job ${job_id} did not finish within 120 s`);
        // The page's status for it (or give up after 5 s).
        await p.page
          .waitForFunction((id: string) => (globalThis as any).__bench.jobs[id]?.completed > 0, { timeout: 5000, polling: 50 }, job_id)
          .catch(() => undefined);
        const seen = (await p.page.evaluate((id: string) => (globalThis as any).__bench.jobs[id] ?? null, job_id)) as { seen: number; counts: Array<[number, number]>; completed: number } | null;
        const events = heard.get(job_id)!;
        const round1: JobRound = {
          job_id,
          items: JOB_ITEMS,
          appear: seen ? seen.seen - sent : NaN,
          duration: fin.at - events[0]!.at,
          progress: [],
          finish: seen?.completed ? seen.completed - fin.at : NaN,
        };
        if (seen) {
          for (const e of events) {
            const done = Number(e.data.processed_items ?? 0) + Number(e.data.failed_items ?? 0);
            // Only what the SSE path renders: the page knew the job when the event came, and it moved the count.
            if (e.event !== 'batch.job.progress' || e.at <= seen.seen || done === 0) continue;
            // The count the event carries (a poll of GET /batch/jobs may show another first).
            const shown = seen.counts.find(([, n]) => n === done);
            if (shown) round1.progress.push(shown[0] - e.at);
          }
        }
        result.jobs.push(round1);
        say(
          `  job ${j + 1}: ${fmt(round1.duration)} ms, ${events.length} events; appeared after ${fmtMs(round1.appear)} ms; progress to page p50 ${fmtMs(dist(round1.progress).p50)} ms (${round1.progress.length}); finished to page ${fmtMs(round1.finish)} ms\n`,
        );
      }
    } finally {
      sub.close();
    }
    const b = (await p.page.evaluate(() => (globalThis as any).__bench)) as { polls: number[]; statsFetch: number[]; statsBytes: number[] };
    result.poll_interval = b.polls.slice(1).map((t, i) => t - b.polls[i]!);
    result.stats_fetch = b.statsFetch;
    result.stats_bytes = b.statsBytes;
    result.console_errors = p.errors;
  } finally {
    await p.close();
  }
  result.load.after = load();
  return result;
}

// ---------------------------------------------------------------------------------------------------------

function table(idle: IdleResult | undefined, lat: LatencyResult | undefined): void {
  const rows: string[][] = [['case', 'hearth', 'baseline (same run)', 'ratio']];
  if (idle) {
    const of = (c: IdleWindow['case']) => idle.windows.filter((w) => w.case === c);
    const med = (c: IdleWindow['case'], f: (w: IdleWindow) => number) => median(of(c).map(f));
    rows.push([`idle daemon CPU, % of a core (medians of ${ROUNDS} x ${WINDOW_MS / 1000} s)`, '', '', '']);
    rows.push(['  one dashboard page open, idle', `${fmt(idle.page, 2)}%`, `${fmt(idle.none, 2)}% (no page)`, `${fmt(idle.ratio, 1)}x`]);
    rows.push(['  load average (1 min) during the page windows', of('page').map((w) => fmt(w.load1, 1)).join(', '), '', '']);
    rows.push(['  page just closed (event-loop monitor still on)', `${fmt(idle.closed, 2)}%`, `${fmt(idle.none, 2)}% (no page)`, '']);
    rows.push([`  target: <= ${TARGET_PCT}% with one page open`, idle.target_met ? 'met' : 'NOT MET', '', '']);
    rows.push(['daemon context switches/s, page (main thread)', `${fmt(med('page', (w) => w.switches_s), 1)} (${fmt(med('page', (w) => w.main_switches_s), 1)})`, `${fmt(med('none', (w) => w.switches_s), 1)} (${fmt(med('none', (w) => w.main_switches_s), 1)}) no page`, '']);
    rows.push(['  page just closed', `${fmt(med('closed', (w) => w.switches_s), 1)} (${fmt(med('closed', (w) => w.main_switches_s), 1)})`, '', '']);
    rows.push(['page: stats polls rendered/s; its requests/s', `${fmt(med('page', (w) => w.polls_s ?? NaN), 2)}; ${fmt(med('page', (w) => Object.values(w.requests_s ?? {}).reduce((s, v) => s + v, 0)), 2)}`, '', '']);
    rows.push(['  the same from schedstat (ns of its threads)', `${fmt(med('page', (w) => w.sched_pct), 2)}%`, `${fmt(med('none', (w) => w.sched_pct), 2)}% (no page)`, '']);
    // Where the page's CPU goes, per round: the monitor (closed - none) and the requests (page - closed), in ms of CPU a second.
    const reqs = (w: IdleWindow) => Object.values(w.requests_s ?? {}).reduce((s, v) => s + v, 0);
    const perRound = (f: (page: IdleWindow, closed: IdleWindow, none: IdleWindow) => number) => median(of('page').map((w, i) => f(w, of('closed')[i]!, of('none')[i]!)));
    const added = perRound((p, _c, n) => (p.cpu_pct - n.cpu_pct) * 10);
    const monitor = perRound((_p, c, n) => (c.cpu_pct - n.cpu_pct) * 10);
    const requests = perRound((p, c) => (p.cpu_pct - c.cpu_pct) * 10);
    const perRequest = perRound((p, c) => ((p.cpu_pct - c.cpu_pct) * 10) / reqs(p));
    const handler = median(of('page').map((w) => Object.entries(w.costs ?? {}).reduce((s, [route, c]) => s + (w.requests_s?.[route] ?? 0) * c.avg_ms, 0)));
    rows.push(['daemon CPU the page adds, ms a second (page - none)', fmt(added, 2), '', '']);
    rows.push(['  the event-loop monitor (closed - none)', fmt(monitor, 2), '', '']);
    rows.push(['  the requests (page - closed); per request', `${fmt(requests, 2)}; ${fmt(perRequest, 2)}`, '', '']);
    rows.push(['  the route handlers\' own timings (wall ms a second)', fmt(handler, 2), '', '']);
    rows.push(['browser CPU (all its processes), page open', `${fmt(med('page', (w) => w.browser_cpu_pct), 1)}%`, `${fmt(med('none', (w) => w.browser_cpu_pct), 1)}% (no page)`, '']);
  }
  if (lat) {
    const r = dist(lat.request_to_page);
    const f = dist(lat.fetch);
    const poll = median(lat.poll_interval);
    rows.push([`${PROBE_ROUTE} sent to the routes table, p50 / p95 ms (${r.n})`, `${fmtMs(r.p50)} / ${fmtMs(r.p95)}`, `${fmtMs(poll / 2)} (half the poll interval)`, `${(r.p50 / (poll / 2)).toFixed(2)}x`]);
    rows.push(['  the page\'s stats poll interval, p50 / p95 ms', `${fmtMs(poll)} / ${fmtMs(dist(lat.poll_interval).p95)}`, '1000 (the spec)', '']);
    const sf = dist(lat.stats_fetch);
    rows.push([`  the page's stats fetch, p50 / p95 ms (answer ${fmt(median(lat.stats_bytes) / 1024, 1)} KiB)`, `${fmtMs(sf.p50)} / ${fmtMs(sf.p95)}`, '', '']);
    rows.push([`  ${PROBE_ROUTE} as a plain fetch here, p50 / p95 ms`, '', `${fmtMs(f.p50)} / ${fmtMs(f.p95)}`, `${(r.p50 / f.p50).toFixed(0)}x`]);
    const appear = dist(lat.jobs.map((j) => j.appear).filter((v) => !Number.isNaN(v)));
    const progress = dist(lat.jobs.flatMap((j) => j.progress));
    const finish = dist(lat.jobs.map((j) => j.finish).filter((v) => !Number.isNaN(v)));
    rows.push([`POST /batch/jobs to its [data-job], p50 / p95 ms (${appear.n})`, `${fmtMs(appear.p50)} / ${fmtMs(appear.p95)}`, '1000 (the jobs poll\'s least gap)', '']);
    rows.push([`batch.job.progress to the page's count, p50 / p95 ms (${progress.n})`, `${fmtMs(progress.p50)} / ${fmtMs(progress.p95)}`, '0 (the event here)', '']);
    rows.push([`batch.job.finished to the page's status, p50 / p95 ms (${finish.n})`, `${fmtMs(finish.p50)} / ${fmtMs(finish.p95)}`, '', '']);
    rows.push(['  a job (hash_file), p50 ms', fmt(median(lat.jobs.map((j) => j.duration))), '', '']);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  say('\n');
  for (const r of rows) say(`${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}\n`);
}

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    say(`dashboard: no chromium at ${CHROMIUM} (BENCH_DASHBOARD_CHROMIUM); skipped\n`);
    return;
  }
  const work = realpathSync(mkdtempSync(join(tmpdir(), 'hearth-bench-dashboard-')));
  const filesRoot = join(work, 'files');
  const gitRoot = join(work, 'repos');
  mkdirSync(filesRoot);
  mkdirSync(gitRoot);
  const start = load();
  let idle: IdleResult | undefined;
  let latency: LatencyResult | undefined;
  let browser: Browser | undefined;
  try {
    const repo = join(gitRoot, 'repo');
    const generated = await generateRepo(repo, { files: 200, dirs: 16, commits: 3 });
    const d = await startDaemon(work, filesRoot, gitRoot);
    try {
      await d.client.call('GET', `/git/summary?repo=${encodeURIComponent(repo)}`);
      say(`daemon pid ${d.pid} on ${d.origin}; a repository of ${generated.files} files warmed; load average at the start ${start}\n`);
      browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
      say(`browser: ${await browser.version()}\n`);
      if (PHASES.has('idle')) idle = await idlePhase(d, browser);
      if (PHASES.has('latency')) latency = await latencyPhase(d, browser, filesRoot, !idle);
    } finally {
      await browser?.close();
      await d.stop();
    }
    table(idle, latency);
    const errors = [...(idle?.console_errors ?? []), ...(latency?.console_errors ?? [])];
    if (errors.length) say(`the page's console errors (${errors.length}): ${[...new Set(errors)].slice(0, 5).join(' | ')}\n`);
    say(`load average: ${start} at the start, ${load()} at the end (1, 5, 15 min; ${availableParallelism()} cores)\n`);
    say(`${JSON.stringify({ idle, latency, load: { start, end: load() } })}\n`);
    if (STRICT && idle && !idle.target_met) process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
