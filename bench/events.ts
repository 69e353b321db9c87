// GET /events end to end: the built daemon (dist/) as a real process on a temp state dir, subscribers on its
// unix socket (node:http, every record parsed), events produced through real routes and real file writes.
//   fanout   events delivered per second to 10 subscribers against 1 subscriber, interleaved rounds (the
//            order alternating): each round a new directory in a files root is watched (the recursive
//            watch GET /files/changes?root=DIR starts, where the daemon has it, else the one-level watch
//            GET /files/read of a file in it starts; BENCH_EVENTS_FANOUT_WATCH=read|changes picks one),
//            then BENCH_EVENTS_FILES new files are written into it by this process as fast as it can (50
//            a tick), and each subscriber of
//            /events?type=file.added,file.changed&path=DIR counts what it receives until the stream is
//            quiet. Per subscriber: events / (last arrival - first write); in all: every subscriber's
//            events / (the last arrival of any - first write). Also the streams cut off (GET
//            /optimization/stats `events.cut_off`, before and after) and the daemon's CPU time (user +
//            system, /proc/<pid>/stat, all its threads) per 1,000 events delivered, and per 1,000
//            deliveries more with 10 subscribers than with 1, and how busy the daemon and this process
//            (the writer and every subscriber) were (BENCH_EVENTS_ROUNDS rounds of each, after one of each
//            not counted; ratios are the median of the rounds' own).
//   latency  ms from fs.writeFileSync in a watched directory to the file.changed event at a subscriber
//            (BENCH_EVENTS_WRITES writes, 20-40 ms apart), beside a plain node:fs watch() on the same
//            directory in this process, seeing the same write (the OS notification floor): the one-level
//            watch GET /files/read starts and, where the daemon has it, the recursive watch GET
//            /files/changes?root=DIR starts (a file two directories down), the two taking turns write by
//            write. The ratio is the daemon's median over fs.watch's.
//   git      ms from a write in a git repository (made with the git CLI, BENCH_EVENTS_GIT_FILES files) to
//            the git.status.changed event of /events?repo=REPO: writes alternate between modifying a clean
//            tracked file and restoring its bytes (each changes the summary's `unstaged`), 150 ms apart (the
//            repository's events are at least 50 ms apart by design), beside `git status --porcelain` as a
//            process timed between the writes of the same run (BENCH_EVENTS_GIT_WRITES writes).
// The machine's load average is printed at the start and the end of each phase (the machine is shared).
// Environment: BENCH_EVENTS_PHASES (fanout,latency,git), BENCH_EVENTS_ROUNDS (5), BENCH_EVENTS_FILES (2000),
// BENCH_EVENTS_SUBSCRIBERS (10), BENCH_EVENTS_WRITES (200), BENCH_EVENTS_GIT_FILES (400),
// BENCH_EVENTS_GIT_WRITES (40), BENCH_EVENTS_FANOUT_WATCH (auto).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { request, type ClientRequest } from 'node:http';
import { median, percentile, round } from '../src/measure.js';
import { envNumber } from './lib/env.js';
import { generateRepo } from './lib/git-repo.js';
import { cpuSeconds } from './lib/proc.js';
import { startBenchDaemon, type BenchDaemon } from './lib/daemon.js';

const count = (name: string, fallback: number) => Math.max(1, Math.round(envNumber(name, fallback)));
const ROUNDS = count('BENCH_EVENTS_ROUNDS', 5);
const FILES = count('BENCH_EVENTS_FILES', 2000);
const SUBSCRIBERS = count('BENCH_EVENTS_SUBSCRIBERS', 10);
const WRITES = count('BENCH_EVENTS_WRITES', 200);
const GIT_FILES = count('BENCH_EVENTS_GIT_FILES', 400);
const GIT_WRITES = count('BENCH_EVENTS_GIT_WRITES', 40);
const ALL_PHASES = ['fanout', 'latency', 'git'] as const;
type Phase = (typeof ALL_PHASES)[number];
const PHASES = new Set<Phase>(
  (process.env.BENCH_EVENTS_PHASES || ALL_PHASES.join(',')).split(',').map((p) => {
    const name = p.trim() as Phase;
    if (!ALL_PHASES.includes(name)) throw new Error(`BENCH_EVENTS_PHASES: "${p}" is none of ${ALL_PHASES.join(', ')}`);
    return name;
  }),
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tick = () => new Promise((r) => setImmediate(r));
const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
/** A duration as the tables print it: whole ms from 100, one decimal from 10, two below. */
const fmtMs = (v: number) => (Number.isNaN(v) ? '-' : String(v >= 100 ? Math.round(v) : v >= 10 ? Math.round(v * 10) / 10 : Math.round(v * 100) / 100));

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
// Subscribers

interface SseRecord {
  id: string | undefined;
  event: string | undefined;
  data: { path?: string; [key: string]: unknown };
}

interface Subscriber {
  /** Records received, and the performance.now() of the first and the last. */
  received: number;
  first: number;
  last: number;
  /** Called for every record as it is parsed, with its arrival time. */
  onRecord: ((record: SseRecord, at: number) => void) | null;
  ended: boolean;
  reset(): void;
  close(): void;
}

/** GET `path` as an event stream over the socket; resolves once the daemon's `: connected` comment came (it is subscribed then). */
function subscribe(socket: string, path: string): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    let req: ClientRequest;
    const sub: Subscriber = {
      received: 0,
      first: 0,
      last: 0,
      onRecord: null,
      ended: false,
      reset() {
        sub.received = 0;
        sub.first = 0;
        sub.last = 0;
      },
      close: () => req.destroy(),
    };
    req = request({ socketPath: socket, path, headers: { host: 'localhost', accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`GET ${path}: status ${res.statusCode}`));
      }
      let buffer = '';
      let connected = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const at = performance.now();
        buffer += chunk;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (block.startsWith(':')) {
            if (!connected && block === ': connected') {
              connected = true;
              resolve(sub);
            }
            continue;
          }
          let id: string | undefined;
          let event: string | undefined;
          let data: string | undefined;
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data = line.slice(6);
          }
          if (data === undefined) continue;
          const record: SseRecord = { id, event, data: JSON.parse(data) };
          if (sub.received === 0) sub.first = at;
          sub.received++;
          sub.last = at;
          sub.onRecord?.(record, at);
        }
      });
      const end = () => (sub.ended = true);
      res.on('end', end);
      res.on('error', end);
      res.on('close', end);
    });
    req.on('error', (err) => {
      sub.ended = true;
      reject(err);
    });
    req.end();
  });
}

/** Waits until `check` holds, polled every 5 ms; false after `ms`. */
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// The daemon

type Daemon = BenchDaemon;

const startDaemon = (work: string, filesRoot: string, gitRoot: string): Promise<Daemon> =>
  startBenchDaemon(work, { files: { roots: [filesRoot] }, git: { roots: [gitRoot] }, stats: {} });

async function cutOff(d: Daemon): Promise<number> {
  const stats = await d.client.call<{ events?: { cut_off?: number } }>('GET', '/optimization/stats');
  return stats.events?.cut_off ?? 0;
}

/** Starts the one-level watch of `file`'s directory (GET /files/read does, as a side effect of reading). */
async function watchByRead(d: Daemon, file: string): Promise<void> {
  await d.client.call('GET', `/files/read?path=${encodeURIComponent(file)}`);
}

/**
 * GET /files/changes?root=DIR (the recursive watch), kept open if it answers with a stream; false when the
 * daemon has no such route.
 */
function watchRecursive(d: Daemon, root: string): Promise<{ close(): void } | false> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: d.socket, path: `/files/changes?root=${encodeURIComponent(root)}`, headers: { host: 'localhost' } }, (res) => {
      if (res.statusCode === 404 || res.statusCode === 405) {
        res.resume();
        return resolve(false);
      }
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        return res.on('end', () => reject(new Error(`GET /files/changes: status ${res.statusCode}: ${body.slice(0, 500)}`)));
      }
      if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        res.resume();
        return resolve({ close: () => req.destroy() });
      }
      res.resume();
      res.on('end', () => resolve({ close() {} }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Writes `probe` again every 300 ms until every subscriber has seen an event for it: the watch is live. */
async function awaitLive(subs: Subscriber[], probe: string, what: string): Promise<void> {
  const seen = new Set<Subscriber>();
  for (const s of subs) s.onRecord = (r) => r.data.path === probe && seen.add(s);
  try {
    for (let i = 0; i < 30; i++) {
      writeFileSync(probe, `probe ${i}\n`);
      if (await until(() => seen.size === subs.length, 300)) return;
    }
    throw new Error(`${what}: no event for ${probe} within 9 s`);
  } finally {
    for (const s of subs) s.onRecord = null;
  }
}

// ---------------------------------------------------------------------------------------------------------
// fanout

interface FanoutRound {
  subscribers: number;
  files: number;
  /** Per subscriber: events received, and events/s from the first write to its last arrival. */
  per_sub_events: number[];
  per_sub_rate: number[];
  /** Every subscriber's events over the time to the last arrival of any. */
  total_rate: number;
  /** From the first write to the last arrival at any subscriber. */
  window_ms: number;
  delivered: number;
  published: number;
  /** Events published in the 2 s after the stream went quiet (looked for only when some file had none). */
  published_late: number;
  /** Files written that some subscriber had an event for (by the end of the round, late ones included). */
  files_told: number;
  cpu_ms: number;
  cpu_ms_per_1000: number;
  /** This process's CPU meanwhile (the writes and every subscriber's parsing). */
  bench_cpu_ms: number;
  cut_off: number;
  ended_early: number;
}

let dirSeq = 0;

type FanoutWatch = 'read' | 'changes';

async function fanoutRound(d: Daemon, tree: string, n: number, how: FanoutWatch): Promise<FanoutRound> {
  // The one-level watch: files written into the directory itself; the recursive one: a directory below its root.
  const top = join(tree, `fanout-${dirSeq++}-${n}`);
  const dir = how === 'read' ? top : join(top, 'src');
  mkdirSync(dir, { recursive: true });
  const seed = join(dir, 'seed.txt');
  writeFileSync(seed, 'seed\n');
  let rec: { close(): void } | false = false;
  if (how === 'read') await watchByRead(d, seed);
  else if (!(rec = await watchRecursive(d, top))) throw new Error('GET /files/changes: not in this daemon');
  const subs = await Promise.all(Array.from({ length: n }, () => subscribe(d.socket, `/events?type=file.added,file.changed&path=${encodeURIComponent(`${dir}/`)}`)));
  try {
    await awaitLive(subs, join(dir, 'probe.txt'), 'fanout');
    await sleep(200);
    const seen = subs.map(() => new Set<string>());
    subs.forEach((s, i) => {
      s.reset();
      // Only the files this round writes (not a late event of the probe).
      s.onRecord = (r) => typeof r.data.path === 'string' && r.data.path.startsWith(`${dir}/f`) && seen[i]!.add(r.data.path);
    });
    const cut0 = await cutOff(d);
    const published0 = ((await d.client.call<{ events: { published: number } }>('GET', '/optimization/stats')).events.published);
    const cpu0 = cpuSeconds(d.pid) ?? NaN;
    const own0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < FILES; i++) {
      writeFileSync(join(dir, `f${i}.txt`), `file ${i}\n`);
      if (i % 50 === 49) await tick();
    }
    // Done: every subscriber has had an event for every file (and the stream was then quiet for 300 ms:
    // a watch may tell a new file twice, added and changed), or nothing more came for a second.
    let lastTotal = -1;
    let quietSince = performance.now();
    for (;;) {
      const total = subs.reduce((s, x) => s + x.received, 0);
      if (total !== lastTotal) {
        lastTotal = total;
        quietSince = performance.now();
      } else if (performance.now() - quietSince > (seen.every((p) => p.size >= FILES) ? 300 : 1000)) break;
      await sleep(10);
    }
    const cpu1 = cpuSeconds(d.pid) ?? NaN;
    const own = process.cpuUsage(own0);
    const last = Math.max(...subs.map((s) => s.last));
    const delivered = subs.reduce((s, x) => s + x.received, 0);
    const stats = await d.client.call<{ events: { published: number; cut_off: number } }>('GET', '/optimization/stats');
    const cpuMs = (cpu1 - cpu0) * 1000;
    const told = () => new Set(seen.flatMap((p) => [...p])).size;
    let late = 0;
    let filesTold = told();
    if (filesTold < FILES) {
      // Some file had no event at any subscriber: whether it comes late.
      await sleep(2000);
      late = (await d.client.call<{ events: { published: number } }>('GET', '/optimization/stats')).events.published - stats.events.published;
      filesTold = told();
    }
    return {
      subscribers: n,
      files: FILES,
      per_sub_events: subs.map((s) => s.received),
      per_sub_rate: subs.map((s) => (s.received ? (s.received / (s.last - t0)) * 1000 : 0)),
      total_rate: (delivered / (last - t0)) * 1000,
      window_ms: last - t0,
      delivered,
      // Every event the bus published meanwhile (to anyone): one per file written when nothing is lost.
      published: stats.events.published - published0,
      published_late: late,
      files_told: filesTold,
      cpu_ms: cpuMs,
      cpu_ms_per_1000: delivered ? cpuMs / (delivered / 1000) : NaN,
      bench_cpu_ms: (own.user + own.system) / 1000,
      cut_off: stats.events.cut_off - cut0,
      ended_early: subs.filter((s) => s.ended).length,
    };
  } finally {
    for (const s of subs) {
      s.onRecord = null;
      s.close();
    }
    if (rec) rec.close();
    await sleep(100);
  }
}

interface FanoutResult {
  watch: FanoutWatch;
  one: FanoutRound[];
  many: FanoutRound[];
  /** GET /health's watcher section after the phase: `polling` would mean the OS watch limit was hit. */
  watcher: { mode: string; watched_paths: number };
  load: { before: string; after: string };
}

async function fanoutPhase(d: Daemon, tree: string): Promise<FanoutResult> {
  const before = load();
  const want = process.env.BENCH_EVENTS_FANOUT_WATCH || 'auto';
  if (!['auto', 'read', 'changes'].includes(want)) throw new Error(`BENCH_EVENTS_FANOUT_WATCH: "${want}" is none of auto, read, changes`);
  let how: FanoutWatch = want === 'changes' ? 'changes' : 'read';
  if (want === 'auto') {
    const probe = join(tree, 'fanout-probe');
    mkdirSync(probe);
    const rec = await watchRecursive(d, probe);
    if (rec) {
      rec.close();
      how = 'changes';
    }
  }
  const watchName = how === 'read' ? 'the one-level watch of GET /files/read' : 'the recursive watch of GET /files/changes';
  process.stdout.write(`\nfanout: ${FILES} new files a round through ${watchName}, 1 vs ${SUBSCRIBERS} subscribers, ${ROUNDS} rounds (load average ${before})\n`);
  const one: FanoutRound[] = [];
  const many: FanoutRound[] = [];
  // A first round of each, not counted: the daemon's code paths warm.
  await fanoutRound(d, tree, 1, how);
  await fanoutRound(d, tree, SUBSCRIBERS, how);
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [1, SUBSCRIBERS] : [SUBSCRIBERS, 1];
    for (const n of order) {
      const x = await fanoutRound(d, tree, n, how);
      (n === 1 ? one : many).push(x);
      process.stdout.write(
        `  round ${r + 1}, ${n} subscriber(s): ${fmt(x.delivered)} delivered (published ${x.published}${x.published_late ? `, ${x.published_late} more later` : ''}; ${x.files_told} files told), ${fmt(median(x.per_sub_rate))}/s per subscriber (median), ${fmt(x.total_rate)}/s in all, daemon CPU ${fmt(x.cpu_ms)} ms in ${fmt(x.window_ms)} ms (${fmt(x.cpu_ms_per_1000, 1)} ms per 1,000 delivered), cut off ${x.cut_off}\n`,
      );
    }
  }
  const health = await d.client.call<{ watcher: { mode: string; watched_paths: number }; reasons: string[] }>('GET', '/health');
  process.stdout.write(`  the daemon's watcher after the phase: ${JSON.stringify(health.watcher)}${health.reasons.length ? `; reasons: ${health.reasons.join('; ')}` : ''}\n`);
  return { watch: how, one, many, watcher: health.watcher, load: { before, after: load() } };
}

// ---------------------------------------------------------------------------------------------------------
// latency

interface LatencyCase {
  name: string;
  dir: string;
  files: string[];
  daemon: number[];
  floor: number[];
  missed: number;
}

interface LatencyResult {
  cases: LatencyCase[];
  recursive: 'measured' | 'not in this daemon';
  load: { before: string; after: string };
}

async function latencyPhase(d: Daemon, tree: string): Promise<LatencyResult> {
  const before = load();
  process.stdout.write(`\nlatency: ${WRITES} writes, write to event (load average ${before})\n`);
  const cases: LatencyCase[] = [];
  const flat = join(tree, 'latency-flat');
  mkdirSync(flat);
  const flatFiles = Array.from({ length: 10 }, (_, i) => join(flat, `f${i}.txt`));
  for (const f of flatFiles) writeFileSync(f, 'start\n');
  await watchByRead(d, flatFiles[0]!);
  cases.push({ name: 'GET /files/read watch (one level, chokidar)', dir: flat, files: flatFiles, daemon: [], floor: [], missed: 0 });

  const recRoot = join(tree, 'latency-tree');
  const recDir = join(recRoot, 'a', 'b');
  mkdirSync(recDir, { recursive: true });
  const recFiles = Array.from({ length: 10 }, (_, i) => join(recDir, `f${i}.txt`));
  for (const f of recFiles) writeFileSync(f, 'start\n');
  const rec = await watchRecursive(d, recRoot);
  if (rec) cases.push({ name: 'GET /files/changes watch (recursive), 2 levels down', dir: recDir, files: recFiles, daemon: [], floor: [], missed: 0 });
  else process.stdout.write('  GET /files/changes: not in this daemon (404); the recursive watch is not measured\n');

  const sub = await subscribe(d.socket, `/events?type=file.added,file.changed&path=${encodeURIComponent(`${tree}/`)}`);
  const watchers: FSWatcher[] = [];
  try {
    for (const c of cases) await awaitLive([sub], join(c.dir, 'probe.txt'), c.name);
    // The floor: the OS's notification to a plain fs.watch in this process, for the same writes.
    let floorWait: { name: string; resolve: (at: number) => void } | null = null;
    let daemonWait: { path: string; resolve: (at: number) => void } | null = null;
    for (const c of cases) {
      watchers.push(
        watch(c.dir, (_event, name) => {
          const at = performance.now();
          if (floorWait && name !== null && join(c.dir, String(name)) === floorWait.name) floorWait.resolve(at);
        }),
      );
    }
    sub.onRecord = (r, at) => {
      if (daemonWait && r.data.path === daemonWait.path) daemonWait.resolve(at);
    };
    await sleep(200);
    for (let i = 0; i < WRITES; i++) {
      const c = cases[i % cases.length]!;
      const file = c.files[Math.floor(i / cases.length) % c.files.length]!;
      const floorAt = new Promise<number>((resolve) => (floorWait = { name: file, resolve }));
      const daemonAt = new Promise<number>((resolve) => (daemonWait = { path: file, resolve }));
      const timeout = sleep(3000).then(() => NaN);
      const t0 = performance.now();
      writeFileSync(file, `write ${i}\n`);
      const [f, e] = await Promise.all([Promise.race([floorAt, timeout]), Promise.race([daemonAt, timeout])]);
      floorWait = null;
      daemonWait = null;
      if (Number.isNaN(e) || Number.isNaN(f)) c.missed++;
      else {
        c.daemon.push(e - t0);
        c.floor.push(f - t0);
      }
      await sleep(20 + Math.floor(Math.random() * 20));
    }
  } finally {
    for (const w of watchers) w.close();
    sub.close();
    if (rec) rec.close();
  }
  for (const c of cases) {
    const e = dist(c.daemon);
    const f = dist(c.floor);
    process.stdout.write(`  ${c.name}: p50 ${fmtMs(e.p50)} ms, p95 ${fmtMs(e.p95)} ms; fs.watch p50 ${fmtMs(f.p50)} ms, p95 ${fmtMs(f.p95)} ms; missed ${c.missed}\n`);
  }
  return { cases, recursive: rec ? 'measured' : 'not in this daemon', load: { before, after: load() } };
}

// ---------------------------------------------------------------------------------------------------------
// git

interface GitResult {
  files: number;
  event: number[];
  modify: number[];
  restore: number[];
  git: number[];
  missed: number;
  load: { before: string; after: string };
}

const gitEnv = { ...process.env, GIT_OPTIONAL_LOCKS: '0' };

function timedGitStatus(repo: string): Promise<{ ms: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn('git', ['status', '--porcelain'], { cwd: repo, env: gitEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ ms: performance.now() - t, out }) : reject(new Error(`git status exited ${code}`))));
  });
}

async function gitPhase(d: Daemon, repo: string, files: number): Promise<GitResult> {
  const before = load();
  process.stdout.write(`\ngit: ${repo}, ${files} files, ${GIT_WRITES} writes (load average ${before})\n`);
  const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: repo }).toString('utf8').split('\0').filter((p) => p.includes('/') && p.endsWith('.ts'));
  const sub = await subscribe(d.socket, `/events?type=git.status.changed&repo=${encodeURIComponent(repo)}`);
  const result: GitResult = { files, event: [], modify: [], restore: [], git: [], missed: 0, load: { before, after: '' } };
  const base = (await d.client.call<{ unstaged: number }>('GET', `/git/summary?repo=${encodeURIComponent(repo)}`)).unstaged;
  let wait: { unstaged: number; resolve: (at: number) => void } | null = null;
  sub.onRecord = (r, at) => {
    if (wait && r.data.unstaged === wait.unstaged) wait.resolve(at);
  };
  const saved: Array<{ path: string; bytes: Buffer }> = [];
  try {
    await sleep(500);
    // Two writes not counted (a modify and its restore): the repository's event path warms.
    for (let i = -2; i < GIT_WRITES; i++) {
      const k = Math.floor((i + 2) / 2);
      const path = join(repo, tracked[(k * 7) % tracked.length]!);
      const modify = (i + 2) % 2 === 0;
      if (modify) saved.push({ path, bytes: readFileSync(path) });
      const original = saved[saved.length - 1]!.bytes;
      const at = new Promise<number>((resolve) => (wait = { unstaged: modify ? base + 1 : base, resolve }));
      const timeout = sleep(5000).then(() => NaN);
      const t0 = performance.now();
      writeFileSync(path, modify ? Buffer.concat([original, Buffer.from(`// edit ${i}\n`)]) : original);
      const e = await Promise.race([at, timeout]);
      wait = null;
      if (i >= 0) {
        if (Number.isNaN(e)) result.missed++;
        else {
          result.event.push(e - t0);
          (modify ? result.modify : result.restore).push(e - t0);
        }
      }
      await sleep(150);
      const g = await timedGitStatus(repo);
      if (i >= 0) result.git.push(g.ms);
      await sleep(150);
    }
  } finally {
    sub.close();
    for (const s of saved) writeFileSync(s.path, s.bytes);
  }
  result.load.after = load();
  const e = dist(result.event);
  const g = dist(result.git);
  process.stdout.write(`  write to git.status.changed: p50 ${fmtMs(e.p50)} ms, p95 ${fmtMs(e.p95)} ms (missed ${result.missed}; modify p50 ${fmtMs(dist(result.modify).p50)}, restore p50 ${fmtMs(dist(result.restore).p50)}); git status --porcelain: p50 ${fmtMs(g.p50)} ms, p95 ${fmtMs(g.p95)} ms\n`);
  return result;
}

// ---------------------------------------------------------------------------------------------------------

function table(fanout: FanoutResult | undefined, latency: LatencyResult | undefined, git: GitResult | undefined): void {
  const rows: string[][] = [['case (medians of the rounds)', 'hearth', 'baseline (same run)', 'ratio']];
  if (fanout) {
    const one = median(fanout.one.map((r) => r.per_sub_rate[0]!));
    const perMany = median(fanout.many.map((r) => median(r.per_sub_rate)));
    const minMany = median(fanout.many.map((r) => Math.min(...r.per_sub_rate)));
    const totalOne = median(fanout.one.map((r) => r.total_rate));
    const totalMany = median(fanout.many.map((r) => r.total_rate));
    const cpuOne = median(fanout.one.map((r) => r.cpu_ms_per_1000));
    const cpuMany = median(fanout.many.map((r) => r.cpu_ms_per_1000));
    const cut = [...fanout.one, ...fanout.many].reduce((s, r) => s + r.cut_off, 0);
    const all = [...fanout.one, ...fanout.many];
    // Files the watch published no event for, and subscribers that got fewer events than were published.
    const unpublished = all.reduce((s, r) => s + (r.files - r.files_told), 0);
    const short = all.reduce((s, r) => s + r.per_sub_events.filter((x) => x < r.published).length, 0);
    rows.push([`fanout through ${fanout.watch === 'read' ? 'GET /files/read (one level)' : 'GET /files/changes (recursive)'}, ${FILES} files a round`, '', '', '']);
    // Ratios: the median of each round's (its two cases ran back to back), as the machine's speed drifts.
    const perRound = (f: (many: FanoutRound, one: FanoutRound) => number) => `${median(fanout.many.map((m, i) => f(m, fanout.one[i]!))).toFixed(2)}x`;
    rows.push([`events/s per subscriber, ${SUBSCRIBERS} subscribers (slowest)`, `${fmt(perMany)} (${fmt(minMany)})`, `${fmt(one)} (1 subscriber)`, perRound((m, o) => median(m.per_sub_rate) / o.per_sub_rate[0]!)]);
    rows.push([`events/s delivered in all, ${SUBSCRIBERS} subscribers`, fmt(totalMany), `${fmt(totalOne)} (1 subscriber)`, perRound((m, o) => m.total_rate / o.total_rate)]);
    rows.push(['daemon CPU ms per 1,000 events delivered', fmt(cpuMany, 1), `${fmt(cpuOne, 1)} (1 subscriber)`, perRound((m, o) => m.cpu_ms_per_1000 / o.cpu_ms_per_1000)]);
    // What each delivery beyond the first subscriber's costs: the CPU the 9 more streams added, over their events.
    const marginal = median(fanout.many.map((r, i) => {
      const o = fanout.one[i]!;
      return ((r.cpu_ms - o.cpu_ms) / (r.delivered - o.delivered)) * 1000;
    }));
    rows.push(['daemon CPU ms per 1,000 more deliveries (10 vs 1, per round)', fmt(marginal, 1), '', '']);
    const busy = (rs: FanoutRound[]) => median(rs.map((r) => r.cpu_ms / r.window_ms));
    rows.push(['daemon CPU busy during the run (CPU ms / wall ms)', `${fmt(busy(fanout.many) * 100)}%`, `${fmt(busy(fanout.one) * 100)}% (1 subscriber)`, '']);
    const benchBusy = (rs: FanoutRound[]) => median(rs.map((r) => r.bench_cpu_ms / r.window_ms));
    rows.push(['the bench process busy (writer and subscribers)', `${fmt(benchBusy(fanout.many) * 100)}%`, `${fmt(benchBusy(fanout.one) * 100)}% (1 subscriber)`, '']);
    rows.push(['streams cut off (events.cut_off) / short of what was published', `${cut} / ${short}`, '', '']);
    rows.push(['files written that no subscriber had an event for', `${unpublished} of ${fmt(all.length * FILES)}`, '', '']);
  }
  if (latency) {
    for (const c of latency.cases) {
      const e = dist(c.daemon);
      const f = dist(c.floor);
      rows.push([`write to event, ${c.name}, p50 / p95 ms`, `${fmtMs(e.p50)} / ${fmtMs(e.p95)}`, `${fmtMs(f.p50)} / ${fmtMs(f.p95)} (fs.watch)`, `${(e.p50 / f.p50).toFixed(1)}x`]);
    }
  }
  if (git) {
    const e = dist(git.event);
    const g = dist(git.git);
    rows.push([`write to git.status.changed (${git.files} files), p50 / p95 ms`, `${fmtMs(e.p50)} / ${fmtMs(e.p95)}`, `${fmtMs(g.p50)} / ${fmtMs(g.p95)} (git status --porcelain)`, `${(e.p50 / g.p50).toFixed(2)}x`]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write('\n');
  for (const r of rows) process.stdout.write(`${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}\n`);
}

async function main(): Promise<void> {
  const work = realpathSync(mkdtempSync(join(tmpdir(), 'hearth-bench-events-')));
  const tree = join(work, 'tree');
  const gitRoot = join(work, 'repos');
  mkdirSync(tree);
  mkdirSync(gitRoot);
  const start = load();
  let fanout: FanoutResult | undefined;
  let latency: LatencyResult | undefined;
  let git: GitResult | undefined;
  try {
    let repo: string | undefined;
    let gitFiles = 0;
    if (PHASES.has('git')) {
      repo = join(gitRoot, 'repo');
      gitFiles = (await generateRepo(repo, { files: GIT_FILES, dirs: Math.max(10, Math.round(GIT_FILES / 13)), commits: 3 })).files;
    }
    const d = await startDaemon(work, tree, gitRoot);
    try {
      process.stdout.write(`daemon pid ${d.pid}; load average at the start ${start}\n`);
      if (PHASES.has('latency')) latency = await latencyPhase(d, tree);
      if (PHASES.has('fanout')) fanout = await fanoutPhase(d, tree);
      if (repo) git = await gitPhase(d, repo, gitFiles);
    } finally {
      await d.stop();
    }
    table(fanout, latency, git);
    process.stdout.write(`load average: ${start} at the start, ${load()} at the end (1, 5, 15 min; ${availableParallelism()} cores)\n`);
    process.stdout.write(`${JSON.stringify({ fanout, latency, git, load: { start, end: load() } })}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
