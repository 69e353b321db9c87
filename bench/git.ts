// GET /git/status end to end over the unix socket against `git status --porcelain=v1 --no-renames -uall`
// run as a process, on a generated repository (20k files in ~1,500 nested directories, 20 commits of
// history, packed by `git gc`) and on any real repository passed by path. Per repository:
//   git      `git status` as a process (spawned, BENCH_GIT_RUNS times), measured before any daemon runs;
//   cold     the first request, each sample on a freshly started daemon (BENCH_GIT_COLD daemons);
//   warm     nothing changed, sequential requests (BENCH_GIT_WARM);
//   default  git's default view: `git status --porcelain` (normal untracked mode, renames) as a process
//            beside hearth warm with the same defaults (`untracked: "config", renames: "config"`), the
//            answer rendered as v1 and compared byte for byte;
//   snippet  plugins/git/prompt.sh as a whole process: `bash -c '. prompt.sh; hearth_git_prompt'` (bash
//            asks over /dev/tcp) and the same in zsh (its zsh/net/socket module on the unix socket),
//            BENCH_GIT_RUNS times each, beside the shell doing nothing (the cost of starting it);
//   rss      the daemon's VmRSS (and VmHWM, its peak) with the repository watched;
//   edits    a byte appended to 10 tracked files, then one request (BENCH_GIT_EDITS rounds; the edits
//            accumulate, and every file is restored, bytes and times, at the end).
// Every phase compares a hearth answer with git's entries (git run with GIT_OPTIONAL_LOCKS=0 so it does
// not rewrite the index under the daemon). Targets (issue 4, on the generated repo): warm >= 50x faster
// than git, snippet >= 10x, warm after 10 edits >= 10x, cold within 3x, RSS <= 300 MB.
//
// Environment: BENCH_GIT_REPO (real repositories, ':'-separated; `node dist/bench/git.js --repo PATH`
// works too), BENCH_GIT_GENERATED=0 (skip the generated repo), BENCH_GIT_FILES (20000), BENCH_GIT_DIRS
// (1500), BENCH_GIT_RUNS (30), BENCH_GIT_COLD (5), BENCH_GIT_WARM (200), BENCH_GIT_EDITS (30),
// BENCH_GIT_KEEP=1 (keep the generated repo and print where), BENCH_CPU_PROF=<dir> (every daemon runs with
// --cpu-prof and writes its profile there on exit), BENCH_STRICT=1 (exit 1 when a target is missed).
// A real repository is measured in place: its files are restored afterwards, but `git status` and the
// daemon see the work tree as it is (local changes included).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { porcelain } from '../plugins/git/porcelain.js';
import { Client } from '../src/client.js';
import { percentile, round, timeMs } from '../src/measure.js';
import { startChild, waitForHealth, type Child } from './lib/proc.js';
import { generateRepo } from './lib/git-repo.js';
import { cliPath, envNumber, root } from './lib/env.js';



const FILES = Math.round(envNumber('BENCH_GIT_FILES', 20_000));
const DIRS = Math.round(envNumber('BENCH_GIT_DIRS', 1500));
const RUNS = Math.max(1, Math.round(envNumber('BENCH_GIT_RUNS', 30)));
const COLD = Math.max(1, Math.round(envNumber('BENCH_GIT_COLD', 5)));
const WARM = Math.max(1, Math.round(envNumber('BENCH_GIT_WARM', 200)));
const EDITS = Math.max(1, Math.round(envNumber('BENCH_GIT_EDITS', 30)));
const EDITED_PER_ROUND = 10;
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF;
const STRICT = process.env.BENCH_STRICT === '1';
const KEEP = process.env.BENCH_GIT_KEEP === '1';

/** The shells the snippet is timed in (zsh only where it is installed). */
const SHELLS = ['bash', 'zsh'].filter((sh) => spawnSync(sh, ['-c', 'true']).status === 0);
const TARGETS = { warm: 50, snippet: 10, edits: 10, cold: 1 / 3, rss_mb: 300 };

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

const GIT_STATUS = ['status', '--porcelain=v1', '--no-renames', '-uall'];

/** git's entries, parsed from -z output (paths unquoted, as hearth gives them). */
async function gitEntries(repo: string): Promise<Entry[]> {
  const { stdout } = await run('git', [...GIT_STATUS, '-z'], repo, { ...process.env, GIT_OPTIONAL_LOCKS: '0' });
  return stdout
    .toString('utf8')
    .split('\0')
    .filter((l) => l.length > 0)
    .map((l) => ({ x: l[0]!, y: l[1]!, path: l.slice(3) }));
}

interface Mismatch {
  repo: string;
  phase: string;
  detail: string;
}

const mismatches: Mismatch[] = [];

function compare(repo: string, phase: string, hearth: Entry[], git: Entry[]): boolean {
  const line = (e: Entry) => `${e.x}${e.y} ${e.path}`;
  const a = hearth.map(line);
  const b = git.map(line);
  if (a.length === b.length && a.every((l, i) => l === b[i])) return true;
  const onlyHearth = a.filter((l) => !b.includes(l));
  const onlyGit = b.filter((l) => !a.includes(l));
  const detail =
    onlyHearth.length === 0 && onlyGit.length === 0
      ? `same ${a.length} entries in another order`
      : `hearth ${a.length} entries, git ${b.length}; only hearth: ${JSON.stringify(onlyHearth.slice(0, 5))}; only git: ${JSON.stringify(onlyGit.slice(0, 5))}`;
  mismatches.push({ repo, phase, detail });
  process.stdout.write(`  MISMATCH (${phase}): ${detail}\n`);
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
  child: Child;
  client: Client;
  socket: string;
  state: string;
  stop(): Promise<void>;
}

let daemonSeq = 0;

async function startDaemon(work: string, repoParent: string): Promise<Daemon> {
  const dir = join(work, `daemon-${daemonSeq++}`);
  const state = join(dir, 'state');
  mkdirSync(state, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ log: { level: 'warn' }, plugins: { git: { roots: [repoParent] } } }));
  const socket = join(state, 'hearth.sock');
  const nodeArgs = CPU_PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', resolve(CPU_PROF_DIR)] : [];
  const child = startChild(process.execPath, [...nodeArgs, cliPath, 'daemon', '--config', join(dir, 'config.json'), '--state-dir', state, '--port', '0'], {
    env: { ...process.env, HEARTH_LOG_LEVEL: 'warn' },
  });
  const client = new Client({ socket });
  try {
    await waitForHealth(client, child);
  } catch (err) {
    await child.stop();
    throw err;
  }
  return {
    child,
    client,
    socket,
    state,
    async stop() {
      await client.close();
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface StatusAnswer {
  repo: string;
  branch: string | null;
  head: string | null;
  clean: boolean;
  entries: Entry[];
  cached: boolean;
}

async function timedStatus(client: Client, repo: string): Promise<{ ms: number; answer: StatusAnswer }> {
  const { ms, value: answer } = await timeMs(() => client.call<StatusAnswer>('GET', `/git/status?repo=${encodeURIComponent(repo)}`));
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

interface RepoResult {
  repo: string;
  tracked_files: number;
  watched_dirs: number | null;
  git_ms: Stats;
  cold_ms: Stats;
  warm_ms: Stats;
  edits_ms: Stats;
  snippet_ms: Record<string, Stats>;
  shell_ms: Record<string, Stats>;
  rss_mb: number;
  peak_rss_mb: number;
  rss_after_edits_mb: number;
  default_git_ms: Stats;
  default_warm_ms: Stats;
  ratios: { warm: number; default_warm: number; snippet: number; edits: number; cold: number };
  entries: number;
  mismatches: number;
}

async function benchRepo(repo: string, work: string): Promise<RepoResult> {
  const mismatchesBefore = mismatches.length;
  const parent = dirname(repo);
  const tracked = (await run('git', ['ls-files', '-z'], repo)).stdout.toString().split('\0').filter(Boolean).length;
  process.stdout.write(`\n${repo}: ${tracked} tracked files\n`);

  // (a) git status as a process; the first run refreshes the index, as a user's first status would.
  await run('git', GIT_STATUS, repo);
  const gitSamples: number[] = [];
  for (let i = 0; i < RUNS; i++) gitSamples.push((await run('git', GIT_STATUS, repo)).ms);
  const git = stats(gitSamples);
  const expected = await gitEntries(repo);
  process.stdout.write(`  git status: p50 ${git.p50} ms (${expected.length} entries)\n`);

  // (b) cold: the first request of a freshly started daemon.
  const coldSamples: number[] = [];
  for (let i = 0; i < COLD; i++) {
    const d = await startDaemon(work, parent);
    try {
      const { ms, answer } = await timedStatus(d.client, repo);
      coldSamples.push(ms);
      if (answer.cached) process.stdout.write('  note: the first answer says cached=true\n');
      if (i === 0) compare(repo, 'cold', answer.entries, await gitEntries(repo));
    } finally {
      await d.stop();
    }
  }
  const cold = stats(coldSamples);
  process.stdout.write(`  cold: p50 ${cold.p50} ms\n`);

  const d = await startDaemon(work, parent);
  const edited: Array<{ path: string; size: number; atime: Date; mtime: Date }> = [];
  try {
    await timedStatus(d.client, repo);

    // (c) warm, nothing changed.
    const warmSamples: number[] = [];
    let last: StatusAnswer | undefined;
    for (let i = 0; i < WARM; i++) {
      const { ms, answer } = await timedStatus(d.client, repo);
      warmSamples.push(ms);
      last = answer;
    }
    const warm = stats(warmSamples);
    compare(repo, 'warm', last!.entries, await gitEntries(repo));
    process.stdout.write(`  warm: p50 ${warm.p50} ms\n`);

    // (c') git's default view, both sides with git's defaults; rounds interleaved.
    const defaultBody = { repo, untracked: 'config', renames: 'config' };
    const defaultGit: number[] = [];
    const defaultWarm: number[] = [];
    let defaultAnswer: StatusAnswer | undefined;
    for (let i = 0; i < RUNS; i++) {
      defaultGit.push((await run('git', ['status', '--porcelain'], repo, { ...process.env, GIT_OPTIONAL_LOCKS: '0' })).ms);
      for (let j = 0; j < Math.max(1, Math.round(WARM / RUNS)); j++) {
        const { ms, value } = await timeMs(() => d.client.call<StatusAnswer>('POST', '/git/status', defaultBody));
        defaultWarm.push(ms);
        defaultAnswer = value;
      }
    }
    const gitDefaultText = (await run('git', ['status', '--porcelain'], repo, { ...process.env, GIT_OPTIONAL_LOCKS: '0' })).stdout.toString('utf8');
    if (porcelain(defaultAnswer!.entries, false) !== gitDefaultText) {
      const detail = `default view: hearth ${JSON.stringify(porcelain(defaultAnswer!.entries, false).slice(0, 300))}, git ${JSON.stringify(gitDefaultText.slice(0, 300))}`;
      mismatches.push({ repo, phase: 'default view', detail });
      process.stdout.write(`  MISMATCH (default view): ${detail}\n`);
    }
    const defaultGitStats = stats(defaultGit);
    const defaultWarmStats = stats(defaultWarm);
    process.stdout.write(`  default view: git p50 ${defaultGitStats.p50} ms, hearth warm p50 ${defaultWarmStats.p50} ms\n`);

    // (e) the prompt snippet as a whole process, in bash (TCP) and zsh (unix socket); the shell alone
    // is the floor under it.
    const snippetPath = join(root, 'plugins', 'git', 'prompt.sh');
    const shellEnv = { ...process.env, HEARTH_STATE_DIR: d.state, HEARTH_SOCKET: undefined };
    const snippetRuns: Record<string, Stats> = {};
    const shellFloor: Record<string, Stats> = {};
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
      snippetRuns[shell] = stats(samples);
      const floor: number[] = [];
      for (let i = 0; i < RUNS; i++) floor.push((await run(shell, ['-c', 'true'], repo, shellEnv)).ms);
      shellFloor[shell] = stats(floor);
    }
    const snippet = snippetRuns.bash!;
    const summary = Object.fromEntries(text.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const want = countsOf(await gitEntries(repo));
    const got = Object.fromEntries(Object.keys(want).map((k) => [k, Number(summary[k])]));
    if (Object.keys(want).some((k) => got[k] !== want[k])) {
      const detail = `summary counts ${JSON.stringify(got)}, git's entries give ${JSON.stringify(want)}`;
      mismatches.push({ repo, phase: 'snippet', detail });
      process.stdout.write(`  MISMATCH (snippet): ${detail}\n`);
    }
    for (const shell of SHELLS) process.stdout.write(`  snippet (${shell}): p50 ${snippetRuns[shell]!.p50} ms (${shell} -c true: ${shellFloor[shell]!.p50} ms)\n`);

    // (f) memory with the repository watched.
    const mem = memoryMb(d.child.proc.pid);
    const gitStats = await d.client.call<{ git?: { watched_dirs: number; degraded: string[] } }>('GET', '/optimization/stats').catch(() => ({}) as { git?: undefined });
    const watchedDirs = gitStats.git?.watched_dirs ?? null;
    if (gitStats.git?.degraded.length) process.stdout.write(`  degraded: ${gitStats.git.degraded.join('; ')}\n`);

    // (d) warm after touching 10 files.
    const files = await editableFiles(repo, EDITS * EDITED_PER_ROUND);
    const editSamples: number[] = [];
    for (let round = 0; round < EDITS && (round + 1) * EDITED_PER_ROUND <= files.length; round++) {
      for (const path of files.slice(round * EDITED_PER_ROUND, (round + 1) * EDITED_PER_ROUND)) {
        const abs = join(repo, path);
        const s = statSync(abs);
        edited.push({ path: abs, size: s.size, atime: s.atime, mtime: s.mtime });
        const fd = openSync(abs, 'a');
        writeSync(fd, 'x');
        closeSync(fd);
      }
      const { ms, answer } = await timedStatus(d.client, repo);
      editSamples.push(ms);
      if (round === 0 || round === EDITS - 1) {
        compare(repo, `edits round ${round + 1}`, answer.entries, await gitEntries(repo));
      }
    }
    const edits = stats(editSamples);
    const memAfter = memoryMb(d.child.proc.pid);
    process.stdout.write(`  edits: p50 ${edits.p50} ms\n`);

    const ratio = (v: number) => Math.round(v * 10) / 10;
    return {
      repo,
      tracked_files: tracked,
      watched_dirs: watchedDirs,
      git_ms: git,
      cold_ms: cold,
      warm_ms: warm,
      edits_ms: edits,
      snippet_ms: snippetRuns,
      shell_ms: shellFloor,
      rss_mb: mem.rss,
      peak_rss_mb: mem.hwm,
      rss_after_edits_mb: memAfter.rss,
      default_git_ms: defaultGitStats,
      default_warm_ms: defaultWarmStats,
      ratios: {
        warm: ratio(git.p50 / warm.p50),
        default_warm: ratio(defaultGitStats.p50 / defaultWarmStats.p50),
        snippet: ratio(git.p50 / snippet.p50),
        edits: ratio(git.p50 / edits.p50),
        cold: Math.round((cold.p50 / git.p50) * 100) / 100,
      },
      entries: expected.length,
      mismatches: mismatches.length - mismatchesBefore,
    };
  } finally {
    await d.stop();
    for (const e of edited.reverse()) {
      truncateSync(e.path, e.size);
      utimesSync(e.path, e.atime, e.mtime);
    }
    if (edited.length > 0) await run('git', GIT_STATUS, repo); // lets git refresh the index entries whose ctime moved
  }
}

function report(results: RepoResult[]): string[] {
  const missed: string[] = [];
  const cell = (s: Stats) => `${s.p50} / ${s.p99}`;
  process.stdout.write(`\n${'case (ms, p50 / p99)'.padEnd(34)}${results.map((r) => r.repo.split('/').pop()!.padStart(24)).join('')}\n`);
  const row = (name: string, f: (r: RepoResult) => string) => process.stdout.write(`${name.padEnd(34)}${results.map((r) => f(r).padStart(24)).join('')}\n`);
  row('tracked files', (r) => String(r.tracked_files));
  row('git status (process)', (r) => cell(r.git_ms));
  row('hearth cold (first request)', (r) => cell(r.cold_ms));
  row('hearth warm, nothing changed', (r) => cell(r.warm_ms));
  row('hearth warm, 10 files touched', (r) => cell(r.edits_ms));
  row('git status --porcelain (defaults)', (r) => cell(r.default_git_ms));
  row('hearth warm, git\'s defaults', (r) => cell(r.default_warm_ms));
  for (const shell of SHELLS) {
    row(`prompt snippet (${shell} process)`, (r) => cell(r.snippet_ms[shell]!));
    row(`${shell} -c true (process)`, (r) => cell(r.shell_ms[shell]!));
  }
  row('daemon RSS MB (peak)', (r) => `${r.rss_mb} (${r.peak_rss_mb})`);
  row('RSS MB after the edits', (r) => String(r.rss_after_edits_mb));
  row('warm vs git (>= 50x)', (r) => `${r.ratios.warm}x`);
  row('default view warm vs git (>= 50x)', (r) => `${r.ratios.default_warm}x`);
  row('snippet vs git (>= 10x)', (r) => `${r.ratios.snippet}x`);
  row('10 edits vs git (>= 10x)', (r) => `${r.ratios.edits}x`);
  row('cold / git (<= 3x)', (r) => `${r.ratios.cold}x`);
  row('answers differing from git', (r) => String(r.mismatches));
  for (const r of results) {
    if (r.ratios.warm < TARGETS.warm) missed.push(`${r.repo}: warm ${r.ratios.warm}x < ${TARGETS.warm}x`);
    if (r.ratios.default_warm < TARGETS.warm) missed.push(`${r.repo}: default view warm ${r.ratios.default_warm}x < ${TARGETS.warm}x`);
    if (r.ratios.snippet < TARGETS.snippet) missed.push(`${r.repo}: snippet ${r.ratios.snippet}x < ${TARGETS.snippet}x`);
    if (r.ratios.edits < TARGETS.edits) missed.push(`${r.repo}: edits ${r.ratios.edits}x < ${TARGETS.edits}x`);
    if (r.ratios.cold > 1 / TARGETS.cold) missed.push(`${r.repo}: cold ${r.ratios.cold}x git > ${1 / TARGETS.cold}x`);
    if (r.rss_mb > TARGETS.rss_mb) missed.push(`${r.repo}: RSS ${r.rss_mb} MB > ${TARGETS.rss_mb} MB`);
    if (r.mismatches > 0) missed.push(`${r.repo}: ${r.mismatches} answers differ from git`);
  }
  return missed;
}

const work = mkdtempSync(join(tmpdir(), 'hearth-bench-git-'));
const results: RepoResult[] = [];
let generated: string | undefined;
try {
  if (withGenerated) {
    // The repository sits alone in its own directory: that directory is the daemon's root.
    generated = join(work, 'repos', 'generated');
    const t = performance.now();
    const made = await generateRepo(generated, { files: FILES, dirs: DIRS, commits: 20 });
    process.stdout.write(`generated ${made.files} files in ${made.dirs} directories, ${made.commits} commits, in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
    results.push(await benchRepo(generated, work));
  }
  for (const repo of realRepos) {
    const abs = resolve(repo);
    if (!existsSync(join(abs, '.git'))) throw new Error(`${abs} is not the top of a git worktree`);
    results.push(await benchRepo(abs, work));
  }
  const missed = report(results);
  for (const m of mismatches) process.stdout.write(`differs from git: ${m.repo} (${m.phase}): ${m.detail}\n`);
  process.stdout.write(missed.length ? `targets missed: ${missed.join('; ')}\n` : 'all targets met\n');
  process.stdout.write(`${JSON.stringify({ results, mismatches })}\n`);
  if (STRICT && missed.length > 0) process.exitCode = 1;
} finally {
  if (KEEP && generated) process.stdout.write(`kept ${generated}\n`);
  else rmSync(work, { recursive: true, force: true });
}
