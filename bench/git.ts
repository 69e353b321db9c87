// POST /git/status end to end over the unix socket against `git status --porcelain=v1 --no-renames -uall`
// run as a process in the same run, on generated repositories (BENCH_GIT_SIZES files, ~1,500 nested
// directories per 20k files, 20 commits of history packed by `git gc`, and a branch `bench-side` that
// differs from `main` in 2,000 files) and on any real repository passed by path. Two baselines, each its
// own column: git as it comes (`-c core.untrackedCache=false`), and git with its untracked cache
// (`-c core.untrackedCache=true -c status.showUntrackedFiles=all`; the cache is written into the index by
// warm-up runs before any daemon starts). Timed git runs use GIT_OPTIONAL_LOCKS=0 (they never rewrite the
// index under a daemon), and their -z output is the reference every hearth answer is compared with.
// Ratios are hearth's median over git's median, the two measured in interleaved rounds. Phases (all by
// default; BENCH_GIT_PHASES=git,cold,... picks some), per repository:
//   git       both baselines, BENCH_GIT_RUNS rounds; the reference of the warm, default, snippet and
//             edits ratios;
//   cold      the first answer ever: a daemon with a fresh state dir, its first request asked the moment
//             /health answers (spawn to /health is reported too; BENCH_GIT_COLD rounds);
//   restart   a daemon warm on the repo (one answer) stopped with SIGTERM and started again on the same
//             state dir: ms from spawn until /health answers, and the first status asked right then
//             (BENCH_GIT_COLD rounds);
//   warm      nothing changed, sequential requests on one keep-alive client (BENCH_GIT_WARM); the daemon's
//             VmRSS with this repository watched is read after it;
//   default   git's default view: `git status --porcelain` (normal untracked mode, renames) as a process
//             beside hearth warm with the same defaults (`untracked: "config", renames: "config"`), the
//             answer rendered as v1 and compared byte for byte;
//   burst     20 tracked files modified, 3 deleted, 5 new untracked files (2 in a new nested directory),
//             then one request, beside git right after the same burst; everything restored (contents,
//             modes, times of files and directories) before the next round (BENCH_GIT_BURSTS rounds);
//   checkout  `git checkout bench-side` (and back, alternating), then one request, beside git after the
//             same checkout (BENCH_GIT_CHECKOUTS rounds; generated repositories only);
//   edits     a byte appended to 10 tracked files, then one request (BENCH_GIT_EDITS rounds; the edits
//             accumulate, and every file is restored, bytes and times, at the end);
//   snippet   plugins/git/prompt.sh as a whole process: `bash -c '. prompt.sh; hearth_git_prompt'` (bash
//             asks over /dev/tcp) and the same in zsh (its zsh/net/socket module on the unix socket),
//             BENCH_GIT_RUNS times each, beside the shell doing nothing (the cost of starting it);
// and once for the run:
//   rss       the VmRSS of a daemon with no repository (right after /health), then of one daemon with the
//             BENCH_GIT_RSS_SET generated repositories all warm (VmRSS and VmHWM, its peak).
// Targets (the final table says met / NOT met for each; BENCH_STRICT=1 exits 1 on a miss): cold <= 1.5x
// git, restart /health < 1000 ms and its first answer <= 0.8x git, burst <= 0.25x git, checkout <= 1x git,
// warm p50 <= 1.5 ms on the 20k generated repo, RSS of the set <= 160 MB; and from before: warm >= 50x
// faster than git (the default view too), snippet >= 10x, warm after 10 edits >= 10x; no answer differing
// from git's.
//
// Environment: BENCH_GIT_SIZES (20000; files of each generated repo, e.g. 20000,100000), BENCH_GIT_CACHE
// (where generated repos are kept and reused; default <tmpdir>/hearth-bench-repos), BENCH_GIT_GENERATED=0
// (no generated repo), BENCH_GIT_REPO (real repositories, ':'-separated; `node dist/bench/git.js --repo
// PATH` works too), BENCH_GIT_PHASES, BENCH_GIT_RUNS (30), BENCH_GIT_COLD (5), BENCH_GIT_WARM (200),
// BENCH_GIT_BURSTS (10), BENCH_GIT_CHECKOUTS (10), BENCH_GIT_EDITS (30), BENCH_GIT_RSS_SET
// (9000,28000,100000), BENCH_CPU_PROF=<dir> (every daemon runs with --cpu-prof and writes its profile there
// on exit), BENCH_STRICT=1. A real repository is measured in place: its files are restored afterwards
// (the untracked cache is dropped from its index again unless its config enables it), but `git status`
// and the daemon see the work tree as it is (local changes included).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { porcelain } from '../plugins/git/porcelain.js';
import { Client } from '../src/client.js';
import { percentile, round, timeMs } from '../src/measure.js';
import { startChild, waitForHealth, type Child } from './lib/proc.js';
import { SIDE_BRANCH, cachedRepo, forgetRepo, shapeFor } from './lib/git-repo.js';
import { cliPath, envNumber, root } from './lib/env.js';

const count = (name: string, fallback: number) => Math.max(1, Math.round(envNumber(name, fallback)));
const sizes = (name: string, fallback: string) =>
  (process.env[name] || fallback).split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 10) throw new Error(`${name}: "${s}" is not a file count`);
    return n;
  });

const SIZES = sizes('BENCH_GIT_SIZES', '20000');
const RSS_SET = sizes('BENCH_GIT_RSS_SET', '9000,28000,100000');
const CACHE = resolve(process.env.BENCH_GIT_CACHE || join(tmpdir(), 'hearth-bench-repos'));
const RUNS = count('BENCH_GIT_RUNS', 30);
const COLD = count('BENCH_GIT_COLD', 5);
const WARM = count('BENCH_GIT_WARM', 200);
const EDITS = count('BENCH_GIT_EDITS', 30);
const BURSTS = count('BENCH_GIT_BURSTS', 10);
const CHECKOUTS = count('BENCH_GIT_CHECKOUTS', 10);
const EDITED_PER_ROUND = 10;
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF;
const STRICT = process.env.BENCH_STRICT === '1';

const ALL_PHASES = ['git', 'cold', 'restart', 'warm', 'default', 'burst', 'checkout', 'edits', 'snippet', 'rss'] as const;
type Phase = (typeof ALL_PHASES)[number];
const PHASES = new Set<Phase>(
  (process.env.BENCH_GIT_PHASES || ALL_PHASES.join(',')).split(',').map((p) => {
    const name = p.trim() as Phase;
    if (!ALL_PHASES.includes(name)) throw new Error(`BENCH_GIT_PHASES: "${p}" is none of ${ALL_PHASES.join(', ')}`);
    return name;
  }),
);
const phase = (name: Phase) => PHASES.has(name);
/** The phases that need a warm daemon on the repository. */
const WARM_PHASES: Phase[] = ['warm', 'default', 'burst', 'checkout', 'edits', 'snippet'];

/** The shells the snippet is timed in (zsh only where it is installed). */
const SHELLS = ['bash', 'zsh'].filter((sh) => spawnSync(sh, ['-c', 'true']).status === 0);

const realRepos: string[] = [];
for (let i = 2; i < process.argv.length; i++) if (process.argv[i] === '--repo' && process.argv[i + 1]) realRepos.push(process.argv[++i]!);
for (const p of (process.env.BENCH_GIT_REPO ?? '').split(':')) if (p) realRepos.push(p);
const withGenerated = process.env.BENCH_GIT_GENERATED !== '0';

interface Stats {
  p50: number;
  p99: number;
  n: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 0.5)), p99: round(percentile(sorted, 0.99)), n: samples.length };
}

interface Entry {
  path: string;
  x: string;
  y: string;
}

interface ProcResult {
  ms: number;
  stdout: Buffer;
}

/** Runs a command to its end; the time covers spawn to exit, what a shell prompt pays. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<ProcResult> {
  return new Promise((resolveRun, reject) => {
    const t = performance.now();
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t;
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${err}`));
      else resolveRun({ ms, stdout: Buffer.concat(out) });
    });
  });
}

const NO_LOCKS = { ...process.env, GIT_OPTIONAL_LOCKS: '0' };
const GIT_STATUS = ['status', '--porcelain=v1', '--no-renames', '-uall'];
/** The two baselines: git without its untracked cache (even where the index holds one), and git with it. */
const PLAIN = ['-c', 'core.untrackedCache=false'];
const WITH_UC = ['-c', 'core.untrackedCache=true', '-c', 'status.showUntrackedFiles=all'];

function parseEntries(z: Buffer): Entry[] {
  return z
    .toString('utf8')
    .split('\0')
    .filter((l) => l.length > 0)
    .map((l) => ({ x: l[0]!, y: l[1]!, path: l.slice(3) }));
}

/** git's entries, parsed from -z output (paths unquoted, as hearth gives them). */
async function gitEntries(repo: string): Promise<Entry[]> {
  return parseEntries((await run('git', [...PLAIN, ...GIT_STATUS, '-z'], repo, NO_LOCKS)).stdout);
}

interface GitRound {
  git: number;
  uc: number;
  /** What plain git saw: the reference for the hearth answer of the same round. */
  entries: Entry[];
}

/** One round of both baselines, their order alternating with `round`. */
async function gitRound(repo: string, round: number): Promise<GitRound> {
  const plain = () => run('git', [...PLAIN, ...GIT_STATUS, '-z'], repo, NO_LOCKS);
  const uc = () => run('git', [...WITH_UC, ...GIT_STATUS, '-z'], repo, NO_LOCKS);
  if (round % 2 === 0) {
    const a = await plain();
    const b = await uc();
    return { git: a.ms, uc: b.ms, entries: parseEntries(a.stdout) };
  }
  const b = await uc();
  const a = await plain();
  return { git: a.ms, uc: b.ms, entries: parseEntries(a.stdout) };
}

/** Lets git refresh its index (stat data whose ctime moved) and write its untracked cache there. */
async function refreshIndex(repo: string): Promise<void> {
  for (let i = 0; i < 2; i++) await run('git', [...WITH_UC, ...GIT_STATUS], repo);
}

/** hearth's samples beside both baselines of the same rounds, and the ratios of the medians. */
interface Versus {
  hearth: Stats;
  git: Stats;
  uc: Stats;
  /** hearth's p50 / git's p50 (lower is better). */
  ratio: number;
  ratio_uc: number;
}

class Rounds {
  hearth: number[] = [];
  git: number[] = [];
  uc: number[] = [];
  add(hearthMs: number, g: GitRound): void {
    this.hearth.push(hearthMs);
    this.git.push(g.git);
    this.uc.push(g.uc);
  }
  result(): Versus {
    const hearth = stats(this.hearth);
    const git = stats(this.git);
    const uc = stats(this.uc);
    return { hearth, git, uc, ratio: times(hearth.p50 / git.p50), ratio_uc: times(hearth.p50 / uc.p50) };
  }
}

const times = (v: number) => Math.round(v * 100) / 100;

/** A duration as the tables print it: whole ms from 100, one decimal from 10, two below. */
const fmtMs = (v: number) => String(v >= 100 ? Math.round(v) : v >= 10 ? Math.round(v * 10) / 10 : Math.round(v * 100) / 100);

interface Mismatch {
  repo: string;
  phase: string;
  detail: string;
}

const mismatches: Mismatch[] = [];

function mismatch(repo: string, phase: string, detail: string): void {
  mismatches.push({ repo, phase, detail });
  process.stdout.write(`  MISMATCH (${phase}): ${detail}\n`);
}

function compare(repo: string, phase: string, hearth: Entry[], git: Entry[]): boolean {
  const line = (e: Entry) => `${e.x}${e.y} ${e.path}`;
  const a = hearth.map(line);
  const b = git.map(line);
  if (a.length === b.length && a.every((l, i) => l === b[i])) return true;
  const onlyHearth = a.filter((l) => !b.includes(l));
  const onlyGit = b.filter((l) => !a.includes(l));
  mismatch(
    repo,
    phase,
    onlyHearth.length === 0 && onlyGit.length === 0
      ? `same ${a.length} entries in another order`
      : `hearth ${a.length} entries, git ${b.length}; only hearth: ${JSON.stringify(onlyHearth.slice(0, 5))}; only git: ${JSON.stringify(onlyGit.slice(0, 5))}`,
  );
  return false;
}

/** What the summary's counts would be for git's entries (the rules of /git/summary). */
function countsOf(entries: Entry[]): Record<string, number> {
  let staged = 0;
  let unstaged = 0;
  let untracked = 0;
  let conflicted = 0;
  for (const e of entries) {
    if (e.x === '?') untracked++;
    else if (e.x === 'U' || e.y === 'U' || (e.x === e.y && (e.x === 'A' || e.x === 'D'))) conflicted++;
    else {
      if (e.x !== ' ') staged++;
      if (e.y !== ' ') unstaged++;
    }
  }
  return { staged, unstaged, untracked, conflicted };
}

interface Daemon {
  /** Holds config.json and the state dir; kept across a restart. */
  dir: string;
  child: Child;
  client: Client;
  state: string;
  /** SIGTERM, waits for the exit; the state dir stays. */
  stop(): Promise<void>;
  /** stop(), then the daemon's directory is removed. */
  remove(): Promise<void>;
}

let daemonSeq = 0;

/** A fresh daemon directory (config and an empty state dir) watching `roots`. */
function daemonDir(work: string, roots: string[]): string {
  const dir = join(work, `daemon-${daemonSeq++}`);
  mkdirSync(join(dir, 'state'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ log: { level: 'warn' }, plugins: { git: { roots } } }));
  return dir;
}

/** Starts the built daemon on `dir` (made by daemonDir) and waits until /health answers, polled every `pollMs`. */
async function spawnDaemon(dir: string, pollMs = 50): Promise<Daemon> {
  const state = join(dir, 'state');
  const nodeArgs = CPU_PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', resolve(CPU_PROF_DIR)] : [];
  const child = startChild(process.execPath, [...nodeArgs, cliPath, 'daemon', '--config', join(dir, 'config.json'), '--state-dir', state, '--port', '0'], {
    env: { ...process.env, HEARTH_LOG_LEVEL: 'warn' },
  });
  const client = new Client({ socket: join(state, 'hearth.sock') });
  const stop = async () => {
    await client.close();
    await child.stop();
  };
  try {
    await waitForHealth(client, child, 20_000, pollMs);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    dir,
    child,
    client,
    state,
    stop,
    async remove() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const startDaemon = (work: string, roots: string[]) => spawnDaemon(daemonDir(work, roots));

interface StatusAnswer {
  repo: string;
  branch: string | null;
  head: string | null;
  clean: boolean;
  entries: Entry[];
  cached: boolean;
}

async function timedStatus(client: Client, repo: string): Promise<{ ms: number; answer: StatusAnswer }> {
  const { ms, value: answer } = await timeMs(() => client.call<StatusAnswer>('POST', '/git/status', { repo }));
  return { ms, answer };
}

function memoryMb(pid: number | undefined): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kb('VmRSS') / 102.4) / 10, hwm: Math.round(kb('VmHWM') / 102.4) / 10 };
}

/** Tracked regular files that are clean now, in a fixed pseudo-random order (edits are spread over the tree). */
async function editableFiles(repo: string, count: number): Promise<string[]> {
  const { stdout } = await run('git', ['ls-files', '-s', '-z'], repo);
  const dirty = new Set((await gitEntries(repo)).map((e) => e.path));
  const files = stdout
    .toString('utf8')
    .split('\0')
    .filter((l) => l.startsWith('100644 ') || l.startsWith('100755 '))
    .map((l) => l.slice(l.indexOf('\t') + 1))
    .filter((p) => !dirty.has(p));
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = files.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [files[i], files[j]] = [files[j]!, files[i]!];
  }
  return files.slice(0, count);
}

/** A file or directory as it was: enough to put it back, bytes, mode and times. */
interface Saved {
  path: string;
  size: number;
  mode: number;
  atime: Date;
  mtime: Date;
  content?: Buffer;
}

function save(path: string, withContent = false): Saved {
  const s = statSync(path);
  return { path, size: s.size, mode: s.mode & 0o7777, atime: s.atime, mtime: s.mtime, content: withContent ? readFileSync(path) : undefined };
}

function appendByte(path: string, bytes = 'x'): void {
  const fd = openSync(path, 'a');
  writeSync(fd, bytes);
  closeSync(fd);
}

/** What a burst changed, to be undone. */
interface Burst {
  modified: Saved[];
  deleted: Saved[];
  created: string[];
  /** The new nested directory's top, removed with what is under it. */
  createdDir: string;
  /** The directories whose entries changed, their times restored last. */
  dirs: Saved[];
}

const BURST = { modified: 20, deleted: 3, created: 3, nested: 2 };

/** 20 tracked files modified, 3 deleted, 3 new untracked files beside tracked ones and 2 in a new nested directory. */
function makeBurst(repo: string, files: string[]): Burst {
  const abs = (p: string) => join(repo, p);
  const modified = files.slice(0, BURST.modified).map((p) => save(abs(p)));
  const deleted = files.slice(BURST.modified, BURST.modified + BURST.deleted).map((p) => save(abs(p), true));
  const created = files.slice(0, BURST.created).map((p, i) => abs(join(dirname(p), `burst_new_${i}.ts`)));
  const nestedParent = abs(dirname(files[BURST.created]!));
  const createdDir = join(nestedParent, 'burst_newdir');
  const nested = Array.from({ length: BURST.nested }, (_, i) => join(createdDir, 'sub', `nested_${i}.ts`));
  const dirPaths = new Set([...deleted.map((s) => dirname(s.path)), ...created.map((p) => dirname(p)), nestedParent]);
  const burst: Burst = { modified, deleted, created: [...created, ...nested], createdDir, dirs: [...dirPaths].map((d) => save(d)) };
  for (const s of modified) appendByte(s.path, '// burst\n');
  for (const s of deleted) unlinkSync(s.path);
  mkdirSync(join(createdDir, 'sub'), { recursive: true });
  for (const p of burst.created) writeFileSync(p, 'export const burst = 1;\n');
  return burst;
}

/** Puts everything a burst changed back: bytes, modes and times of files, then the directories' times. */
function undoBurst(b: Burst): void {
  for (const p of b.created) rmSync(p, { force: true });
  rmSync(b.createdDir, { recursive: true, force: true });
  for (const s of b.deleted) {
    writeFileSync(s.path, s.content!);
    chmodSync(s.path, s.mode);
    utimesSync(s.path, s.atime, s.mtime);
  }
  for (const s of b.modified) {
    truncateSync(s.path, s.size);
    utimesSync(s.path, s.atime, s.mtime);
  }
  for (const s of b.dirs) utimesSync(s.path, s.atime, s.mtime);
}

/** A repository to measure: generated (in the cache) or real (in place). */
interface RepoTarget {
  repo: string;
  /** The daemon's root: the directory holding the repository. */
  root: string;
  label: string;
  generated: boolean;
}

interface ColdResult {
  /** ms from spawning the daemon until /health first answers. */
  health: Stats;
  /** Its first status, asked the moment /health answers, beside git. */
  first: Versus;
}

/** The same for a daemon started again on a state dir it left warm. */
type RestartResult = ColdResult;

interface RepoResult {
  repo: string;
  label: string;
  generated: boolean;
  tracked_files: number;
  entries: number;
  git?: { git: Stats; uc: Stats };
  cold?: ColdResult;
  restart?: RestartResult;
  warm?: Stats;
  rss?: { rss: number; hwm: number; watched_dirs: number | null };
  default?: { git: Stats; hearth: Stats };
  burst?: Versus;
  checkout?: Versus;
  edits?: Stats;
  snippet?: { runs: Record<string, Stats>; floor: Record<string, Stats> };
  mismatches: number;
}

async function gitPhase(repo: string): Promise<{ git: Stats; uc: Stats }> {
  const git: number[] = [];
  const uc: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await gitRound(repo, i);
    git.push(r.git);
    uc.push(r.uc);
  }
  const result = { git: stats(git), uc: stats(uc) };
  process.stdout.write(`  git: p50 ${fmtMs(result.git.p50)} ms; with its untracked cache ${fmtMs(result.uc.p50)} ms\n`);
  return result;
}

function writeVersus(name: string, v: Versus): void {
  process.stdout.write(`  ${name}: p50 ${fmtMs(v.hearth.p50)} ms; git ${fmtMs(v.git.p50)} ms (${v.ratio}x), git+UC ${fmtMs(v.uc.p50)} ms (${v.ratio_uc}x)\n`);
}

/** The first answer ever: each round a daemon on a fresh state dir, its first request, then git. */
async function coldPhase(t: RepoTarget, work: string): Promise<ColdResult> {
  const health: number[] = [];
  const rounds = new Rounds();
  for (let i = 0; i < COLD; i++) {
    const t0 = performance.now();
    const d = await spawnDaemon(daemonDir(work, [t.root]), 5);
    health.push(performance.now() - t0);
    let sample;
    try {
      sample = await timedStatus(d.client, t.repo);
    } finally {
      await d.remove();
    }
    const g = await gitRound(t.repo, i);
    rounds.add(sample.ms, g);
    compare(t.repo, `cold round ${i + 1}`, sample.answer.entries, g.entries);
  }
  const result = { health: stats(health), first: rounds.result() };
  process.stdout.write(`  cold: /health after ${fmtMs(result.health.p50)} ms (p50)\n`);
  writeVersus('cold, first answer ever', result.first);
  return result;
}

/** A daemon warm on the repo is stopped and started again on the same state dir: /health, then its first answer. */
async function restartPhase(t: RepoTarget, work: string): Promise<RestartResult> {
  const health: number[] = [];
  const rounds = new Rounds();
  for (let i = 0; i < COLD; i++) {
    const dir = daemonDir(work, [t.root]);
    const first = await spawnDaemon(dir);
    try {
      await timedStatus(first.client, t.repo);
    } finally {
      await first.stop();
    }
    const g = await gitRound(t.repo, i);
    const t0 = performance.now();
    const again = await spawnDaemon(dir, 5);
    let sample;
    try {
      health.push(performance.now() - t0);
      sample = await timedStatus(again.client, t.repo);
    } finally {
      await again.remove();
    }
    rounds.add(sample.ms, g);
    compare(t.repo, `restart round ${i + 1}`, sample.answer.entries, g.entries);
  }
  const result = { health: stats(health), first: rounds.result() };
  process.stdout.write(`  restart: /health after ${fmtMs(result.health.p50)} ms (p50)\n`);
  writeVersus('restart, first answer', result.first);
  return result;
}

async function warmPhase(d: Daemon, repo: string): Promise<Stats> {
  const samples: number[] = [];
  let last: StatusAnswer | undefined;
  for (let i = 0; i < WARM; i++) {
    const { ms, answer } = await timedStatus(d.client, repo);
    samples.push(ms);
    last = answer;
  }
  compare(repo, 'warm', last!.entries, await gitEntries(repo));
  const warm = stats(samples);
  process.stdout.write(`  warm: p50 ${fmtMs(warm.p50)} ms, p99 ${fmtMs(warm.p99)} ms\n`);
  return warm;
}

async function memoryPhase(d: Daemon): Promise<{ rss: number; hwm: number; watched_dirs: number | null }> {
  const mem = memoryMb(d.child.proc.pid);
  const gitStats = await d.client.call<{ git?: { watched_dirs: number; degraded: string[] } }>('GET', '/optimization/stats').catch(() => ({}) as { git?: undefined });
  if (gitStats.git?.degraded.length) process.stdout.write(`  degraded: ${gitStats.git.degraded.join('; ')}\n`);
  process.stdout.write(`  RSS with the repository watched: ${mem.rss} MB (peak ${mem.hwm} MB)\n`);
  return { ...mem, watched_dirs: gitStats.git?.watched_dirs ?? null };
}

/** git's default view, both sides with git's defaults; rounds interleaved. */
async function defaultPhase(d: Daemon, repo: string): Promise<{ git: Stats; hearth: Stats }> {
  const gitDefault = () => run('git', [...PLAIN, 'status', '--porcelain'], repo, NO_LOCKS);
  const body = { repo, untracked: 'config', renames: 'config' };
  const git: number[] = [];
  const hearth: number[] = [];
  let answer: StatusAnswer | undefined;
  for (let i = 0; i < RUNS; i++) {
    git.push((await gitDefault()).ms);
    for (let j = 0; j < Math.max(1, Math.round(WARM / RUNS)); j++) {
      const { ms, value } = await timeMs(() => d.client.call<StatusAnswer>('POST', '/git/status', body));
      hearth.push(ms);
      answer = value;
    }
  }
  const gitText = (await gitDefault()).stdout.toString('utf8');
  const hearthText = porcelain(answer!.entries, false);
  if (hearthText !== gitText) mismatch(repo, 'default view', `hearth ${JSON.stringify(hearthText.slice(0, 300))}, git ${JSON.stringify(gitText.slice(0, 300))}`);
  const result = { git: stats(git), hearth: stats(hearth) };
  process.stdout.write(`  default view: git p50 ${fmtMs(result.git.p50)} ms, hearth warm p50 ${fmtMs(result.hearth.p50)} ms\n`);
  return result;
}

/** The prompt snippet as a whole process, in bash (TCP) and zsh (unix socket); the shell alone is the floor under it. */
async function snippetPhase(d: Daemon, repo: string): Promise<{ runs: Record<string, Stats>; floor: Record<string, Stats> }> {
  const snippetPath = join(root, 'plugins', 'git', 'prompt.sh');
  const shellEnv = { ...process.env, HEARTH_STATE_DIR: d.state, HEARTH_SOCKET: undefined };
  const runs: Record<string, Stats> = {};
  const floor: Record<string, Stats> = {};
  let text = '';
  for (const shell of SHELLS) {
    const args = ['-c', `. ${JSON.stringify(snippetPath)}; _hearth_summary && printf %s "$_hearth_body"`];
    await run(shell, args, repo, shellEnv);
    const samples: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await run(shell, args, repo, shellEnv);
      samples.push(r.ms);
      text = r.stdout.toString('utf8');
    }
    runs[shell] = stats(samples);
    const bare: number[] = [];
    for (let i = 0; i < RUNS; i++) bare.push((await run(shell, ['-c', 'true'], repo, shellEnv)).ms);
    floor[shell] = stats(bare);
  }
  const summary = Object.fromEntries(text.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const want = countsOf(await gitEntries(repo));
  const got = Object.fromEntries(Object.keys(want).map((k) => [k, Number(summary[k])]));
  if (Object.keys(want).some((k) => got[k] !== want[k])) mismatch(repo, 'snippet', `summary counts ${JSON.stringify(got)}, git's entries give ${JSON.stringify(want)}`);
  for (const shell of SHELLS) process.stdout.write(`  snippet (${shell}): p50 ${runs[shell]!.p50} ms (${shell} -c true: ${floor[shell]!.p50} ms)\n`);
  return { runs, floor };
}

/** After a restore: git must see the repository as before, and hearth as git does. */
async function checkRestored(d: Daemon, repo: string, phase: string, before: Entry[]): Promise<void> {
  const now = await gitEntries(repo);
  compare(repo, `${phase}: git after the restore`, now, before);
  compare(repo, `${phase}: hearth after the restore`, (await timedStatus(d.client, repo)).answer.entries, now);
}

/** Bursts of changes, each then one request beside git; each burst undone before the next. */
async function burstPhase(d: Daemon, repo: string, before: Entry[]): Promise<Versus> {
  const per = BURST.modified + BURST.deleted;
  const files = await editableFiles(repo, per * BURSTS);
  if (files.length < per) throw new Error(`${repo}: ${files.length} clean tracked files, a burst needs ${per}`);
  const rounds = new Rounds();
  for (let i = 0; i < BURSTS; i++) {
    const start = (i * per) % (files.length - per + 1);
    const burst = makeBurst(repo, files.slice(start, start + per));
    try {
      const { ms, answer } = await timedStatus(d.client, repo);
      const g = await gitRound(repo, i);
      rounds.add(ms, g);
      compare(repo, `burst round ${i + 1}`, answer.entries, g.entries);
    } finally {
      undoBurst(burst);
    }
    await refreshIndex(repo);
    await checkRestored(d, repo, `burst round ${i + 1}`, before);
  }
  const v = rounds.result();
  writeVersus('burst', v);
  return v;
}

async function currentBranch(repo: string): Promise<string> {
  return (await run('git', ['symbolic-ref', '--short', 'HEAD'], repo)).stdout.toString('utf8').trim();
}

/** `git checkout` of the side branch and back, alternating, each then one request beside git. */
async function checkoutPhase(d: Daemon, repo: string, before: Entry[]): Promise<Versus> {
  const home = await currentBranch(repo);
  const rounds = new Rounds();
  try {
    for (let i = 0; i < CHECKOUTS; i++) {
      const branch = i % 2 === 0 ? SIDE_BRANCH : home;
      await run('git', ['checkout', '-q', branch], repo);
      const { ms, answer } = await timedStatus(d.client, repo);
      const g = await gitRound(repo, i);
      rounds.add(ms, g);
      compare(repo, `checkout round ${i + 1}`, answer.entries, g.entries);
      if (answer.branch !== branch) mismatch(repo, `checkout round ${i + 1}`, `hearth says branch ${answer.branch}, git checked out ${branch}`);
    }
  } finally {
    if ((await currentBranch(repo)) !== home) await run('git', ['checkout', '-q', home], repo);
  }
  await checkRestored(d, repo, 'checkout', before);
  const v = rounds.result();
  writeVersus('checkout', v);
  return v;
}

/** A byte appended to 10 more tracked files each round, then one request; every file restored at the end. */
async function editsPhase(d: Daemon, repo: string, before: Entry[]): Promise<Stats> {
  const files = await editableFiles(repo, EDITS * EDITED_PER_ROUND);
  const edited: Saved[] = [];
  const samples: number[] = [];
  try {
    for (let round = 0; round < EDITS && (round + 1) * EDITED_PER_ROUND <= files.length; round++) {
      for (const path of files.slice(round * EDITED_PER_ROUND, (round + 1) * EDITED_PER_ROUND)) {
        edited.push(save(join(repo, path)));
        appendByte(join(repo, path));
      }
      const { ms, answer } = await timedStatus(d.client, repo);
      samples.push(ms);
      if (round === 0 || round === EDITS - 1) compare(repo, `edits round ${round + 1}`, answer.entries, await gitEntries(repo));
    }
  } finally {
    for (const s of edited.reverse()) {
      truncateSync(s.path, s.size);
      utimesSync(s.path, s.atime, s.mtime);
    }
    if (edited.length > 0) await refreshIndex(repo);
  }
  await checkRestored(d, repo, 'edits', before);
  const edits = stats(samples);
  process.stdout.write(`  edits: p50 ${fmtMs(edits.p50)} ms\n`);
  return edits;
}

async function untrackedCacheConfigured(repo: string): Promise<boolean> {
  return run('git', ['config', '--get', 'core.untrackedCache'], repo).then(
    (r) => r.stdout.toString('utf8').trim() === 'true',
    () => false,
  );
}

async function benchRepo(t: RepoTarget, work: string): Promise<RepoResult> {
  const { repo } = t;
  const mismatchesBefore = mismatches.length;
  const tracked = (await run('git', ['ls-files', '-z'], repo)).stdout.toString().split('\0').filter(Boolean).length;
  process.stdout.write(`\n${repo}: ${tracked} tracked files\n`);
  const ucWasOn = await untrackedCacheConfigured(repo);
  // Before any daemon: the index refreshed (as a user's first status would) and git's untracked cache written into it.
  await refreshIndex(repo);
  const before = await gitEntries(repo);
  const result: RepoResult = { repo, label: t.label, generated: t.generated, tracked_files: tracked, entries: before.length, mismatches: 0 };
  try {
    if (phase('git')) result.git = await gitPhase(repo);
    if (phase('cold')) result.cold = await coldPhase(t, work);
    if (phase('restart')) result.restart = await restartPhase(t, work);
    if (WARM_PHASES.some(phase)) {
      const d = await startDaemon(work, [t.root]);
      try {
        await timedStatus(d.client, repo);
        if (phase('warm')) result.warm = await warmPhase(d, repo);
        result.rss = await memoryPhase(d);
        if (phase('default')) result.default = await defaultPhase(d, repo);
        if (phase('snippet')) result.snippet = await snippetPhase(d, repo);
        if (phase('burst')) result.burst = await burstPhase(d, repo, before);
        if (phase('checkout')) {
          if (t.generated) result.checkout = await checkoutPhase(d, repo, before);
          else process.stdout.write(`  checkout: skipped (a real repository has no ${SIDE_BRANCH} branch)\n`);
        }
        if (phase('edits')) result.edits = await editsPhase(d, repo, before);
      } finally {
        await d.remove();
      }
    }
  } finally {
    if (!t.generated && !ucWasOn) await run('git', ['update-index', '--no-untracked-cache'], repo);
    if (t.generated && !compare(repo, 'left as generated', await gitEntries(repo), before)) forgetRepo(t.root);
  }
  result.mismatches = mismatches.length - mismatchesBefore;
  return result;
}

interface RssResult {
  /** The daemon with no repository at all, right after /health. */
  bare: { rss: number; hwm: number };
  repos: Array<{ label: string; tracked_files: number }>;
  /** One daemon with every repository of the set warm. */
  set: { rss: number; hwm: number };
}

async function generated(files: number): Promise<RepoTarget> {
  const t = performance.now();
  const made = await cachedRepo(CACHE, shapeFor(files));
  const how = made.reused ? 'reused' : `generated in ${((performance.now() - t) / 1000).toFixed(1)} s`;
  process.stdout.write(`${made.repo}: ${made.generated.files} files in ${made.generated.dirs} directories, ${made.generated.commits} commits, ${how}\n`);
  return { repo: made.repo, root: made.root, label: `generated ${Math.round(files / 1000)}k`, generated: true };
}

async function rssPhase(work: string): Promise<RssResult> {
  process.stdout.write(`\nrss: one daemon, ${RSS_SET.join(' + ')} files\n`);
  const empty = join(work, 'no-repositories');
  mkdirSync(empty, { recursive: true });
  const bareDaemon = await startDaemon(work, [empty]);
  const bare = memoryMb(bareDaemon.child.proc.pid);
  await bareDaemon.remove();
  const targets: RepoTarget[] = [];
  for (const files of RSS_SET) targets.push(await generated(files));
  const repos: RssResult['repos'] = [];
  const d = await startDaemon(work, targets.map((t) => t.root));
  try {
    for (const t of targets) {
      const { answer } = await timedStatus(d.client, t.repo);
      compare(t.repo, 'rss set', answer.entries, await gitEntries(t.repo));
      repos.push({ label: t.label, tracked_files: (await run('git', ['ls-files', '-z'], t.repo)).stdout.toString().split('\0').filter(Boolean).length });
    }
    for (let i = 0; i < 10; i++) for (const t of targets) await timedStatus(d.client, t.repo);
    const set = memoryMb(d.child.proc.pid);
    process.stdout.write(`  no repository: RSS ${bare.rss} MB; the set warm: RSS ${set.rss} MB (peak ${set.hwm} MB)\n`);
    return { bare, repos, set };
  } finally {
    await d.remove();
  }
}

const COLUMN = 26;


/** Every figure per repository, a column each ('-' where the phase did not run; rows of phases not run at all are left out). */
function detailTable(results: RepoResult[]): void {
  const p = (s: Stats | undefined) => (s ? `${fmtMs(s.p50)} / ${fmtMs(s.p99)}` : '-');
  const v = (x: Versus | undefined) => (x ? `${fmtMs(x.hearth.p50)} (${x.ratio}x, ${x.ratio_uc}x)` : '-');
  const faster = (git: Stats | undefined, s: Stats | undefined) => (git && s ? `${Math.round((git.p50 / s.p50) * 10) / 10}x` : '-');
  process.stdout.write(`\n${'case (ms, p50 / p99)'.padEnd(44)}${results.map((r) => r.label.padStart(COLUMN)).join('')}\n`);
  const row = (name: string, f: (r: RepoResult) => string) => {
    const cells = results.map(f);
    if (cells.some((c) => c !== '-')) process.stdout.write(`${name.padEnd(44)}${cells.map((c) => c.padStart(COLUMN)).join('')}\n`);
  };
  row('tracked files', (r) => String(r.tracked_files));
  row('git status (process)', (r) => p(r.git?.git));
  row('git status with its untracked cache', (r) => p(r.git?.uc));
  row('cold: spawn to /health', (r) => p(r.cold?.health));
  row('cold, first answer ever (x git, x git+UC)', (r) => v(r.cold?.first));
  row('restart: spawn to /health', (r) => p(r.restart?.health));
  row('restart: first answer (x git, x git+UC)', (r) => v(r.restart?.first));
  row('warm, nothing changed', (r) => p(r.warm));
  row('warm vs git (faster)', (r) => faster(r.git?.git, r.warm));
  row('git status --porcelain (defaults)', (r) => p(r.default?.git));
  row("warm, git's defaults", (r) => p(r.default?.hearth));
  row('burst (x git, x git+UC)', (r) => v(r.burst));
  row('checkout (x git, x git+UC)', (r) => v(r.checkout));
  row('warm, 10 more files touched a round', (r) => p(r.edits));
  for (const shell of SHELLS) {
    row(`prompt snippet (${shell} process)`, (r) => p(r.snippet?.runs[shell]));
    row(`${shell} -c true (process)`, (r) => p(r.snippet?.floor[shell]));
  }
  row('daemon RSS MB (peak), this repo watched', (r) => (r.rss ? `${r.rss.rss} (${r.rss.hwm})` : '-'));
  row('answers differing from git', (r) => String(r.mismatches));
}

interface Target {
  where: string;
  target: string;
  measured: string;
  met: boolean;
}

/** The targets (and the earlier ones) against what this run measured. */
function targets(results: RepoResult[], rss: RssResult | undefined): Target[] {
  const out: Target[] = [];
  const add = (where: string, target: string, measured: string, met: boolean) => out.push({ where, target, measured, met });
  const vs = (x: Versus) => `${x.ratio}x git (${fmtMs(x.hearth.p50)} / ${fmtMs(x.git.p50)} ms; ${x.ratio_uc}x git+UC)`;
  const faster = (git: Stats, s: Stats) => Math.round((git.p50 / s.p50) * 10) / 10;
  for (const r of results) {
    if (r.cold) add(r.label, 'cold (first answer ever) <= 1.5x git', vs(r.cold.first), r.cold.first.ratio <= 1.5);
    if (r.restart) {
      add(r.label, 'restart: /health < 1000 ms', `${fmtMs(r.restart.health.p50)} ms`, r.restart.health.p50 < 1000);
      add(r.label, 'restart: first answer <= 0.8x git', vs(r.restart.first), r.restart.first.ratio <= 0.8);
    }
    if (r.burst) add(r.label, 'burst <= 0.25x git', vs(r.burst), r.burst.ratio <= 0.25);
    if (r.checkout) add(r.label, 'checkout <= 1x git', vs(r.checkout), r.checkout.ratio <= 1);
    if (r.warm && r.generated && r.tracked_files === 20_000) add(r.label, 'warm p50 <= 1.5 ms', `${fmtMs(r.warm.p50)} ms`, r.warm.p50 <= 1.5);
    if (r.warm && r.git) add(r.label, 'warm >= 50x faster than git', `${faster(r.git.git, r.warm)}x`, faster(r.git.git, r.warm) >= 50);
    if (r.default) add(r.label, "git's default view warm >= 50x", `${faster(r.default.git, r.default.hearth)}x`, faster(r.default.git, r.default.hearth) >= 50);
    if (r.snippet?.runs.bash && r.git) add(r.label, 'snippet (bash) >= 10x faster than git', `${faster(r.git.git, r.snippet.runs.bash)}x`, faster(r.git.git, r.snippet.runs.bash) >= 10);
    if (r.edits && r.git) add(r.label, 'warm after 10 edits >= 10x faster than git', `${faster(r.git.git, r.edits)}x`, faster(r.git.git, r.edits) >= 10);
    add(r.label, 'answers equal to git', `${r.mismatches} differ`, r.mismatches === 0);
  }
  if (rss) {
    const set = rss.repos.map((r) => r.label.replace('generated ', '')).join(' + ');
    add(`rss (${set})`, 'RSS <= 160 MB', `${rss.set.rss} MB (peak ${rss.set.hwm} MB; no repository ${rss.bare.rss} MB)`, rss.set.rss <= 160);
  }
  return out;
}

function targetTable(list: Target[]): void {
  const w = (k: keyof Target) => Math.max(k.length, ...list.map((t) => String(t[k]).length));
  const [a, b, c] = [w('where'), w('target'), w('measured')];
  process.stdout.write(`\n${'where'.padEnd(a)}  ${'target'.padEnd(b)}  ${'measured'.padEnd(c)}  result\n`);
  for (const t of list) process.stdout.write(`${t.where.padEnd(a)}  ${t.target.padEnd(b)}  ${t.measured.padEnd(c)}  ${t.met ? 'met' : 'NOT met'}\n`);
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'hearth-bench-git-'));
  const results: RepoResult[] = [];
  let rss: RssResult | undefined;
  try {
    const repoPhases = ALL_PHASES.filter((p) => p !== 'rss' && phase(p));
    const repos: RepoTarget[] = [];
    if (withGenerated && repoPhases.length > 0) for (const files of SIZES) repos.push(await generated(files));
    if (repoPhases.length > 0) {
      for (const repo of realRepos) {
        const abs = resolve(repo);
        if (!existsSync(join(abs, '.git'))) throw new Error(`${abs} is not the top of a git worktree`);
        repos.push({ repo: abs, root: dirname(abs), label: abs.split('/').pop()!, generated: false });
      }
    }
    for (const t of repos) results.push(await benchRepo(t, work));
    if (phase('rss')) rss = await rssPhase(work);
    if (results.length > 0) detailTable(results);
    const list = targets(results, rss);
    targetTable(list);
    for (const m of mismatches) process.stdout.write(`differs from git: ${m.repo} (${m.phase}): ${m.detail}\n`);
    const missed = list.filter((t) => !t.met);
    process.stdout.write(missed.length ? `targets missed: ${missed.length} of ${list.length}\n` : `all ${list.length} targets met\n`);
    process.stdout.write(`${JSON.stringify({ results, rss, targets: list, mismatches })}\n`);
    if (STRICT && missed.length > 0) process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
