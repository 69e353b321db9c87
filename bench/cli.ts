// The `hearth` command as a whole process, what a shell prompt, an editor or a script pays per call,
// beside `node -e 0` (node's own start-up) and `git status --porcelain` on the same repository.
// Target: every command at most node's start-up + 30 ms (its median less node's median, "over node").
//
// Each command is spawned with process.execPath and dist/src/cli.js (the built CLI, never the sources) and
// timed from spawn to exit with its output read. BENCH_CLI_RUNS rounds (median reported); each round runs
// every case once, the order rotating, so drift on the machine falls on all of them alike.
// One daemon (`hearth daemon`, built, log level warn, a temporary state dir, TCP on a free port) serves the
// whole bench, warmed first (one git status per repository over the socket, then BENCH_CLI_WARMUP untimed
// rounds of every case). Commands reach it through HEARTH_CONFIG and HEARTH_STATE_DIR, so the command
// line is the one a user types; those that talk to the daemon carry --no-spawn (`status` and `stop`
// never spawn), so none can start a second daemon, and the bench checks after every round that the daemon
// it started still runs.
//
// For the commands that wait on the daemon's own work, client time = wall time less the daemon's part:
//   cache clear  the daemon's time for that very request: `latest` of `http.POST /cache/clear` in
//                GET /optimization/stats, read right after the command (the bench sends no clear itself);
//   batch run    the job's life, finished_at - created_at of the job_id it printed (GET /batch/jobs/:id);
//   stop         a graceful close: in the same slot of the round, a second daemon on the same spare
//                state dir, started the same way, gets SIGTERM from the bench, timed until it exits.
// The daemon `hearth stop` stops is started by the bench (untimed, /health answered) on the spare state
// dir each round, never the main one. `batch cancel` is timed on a job finished during setup (the daemon
// answers with its final state and changes nothing).
//
// Repositories: a generated one (bench/lib/git-repo.ts: BENCH_CLI_FILES files, 20 commits, ignored and
// untracked files) and any passed in BENCH_CLI_REPO (':'-separated; `npm run bench -- cli` arguments
// are bench names), measured in place and only read (one plain `git status` before the daemon starts
// refreshes the index, as a user's first status would; the timed ones run with GIT_OPTIONAL_LOCKS=0 so
// git never rewrites the index under the daemon). Commands without a repository are compared with the
// git status of the first repository.
//
// Environment: BENCH_CLI_RUNS (15; fewer than 10 is a smoke run, not figures), BENCH_CLI_WARMUP (1),
// BENCH_CLI_FILES (10000), BENCH_CLI_GENERATED=0 (skip the generated repo), BENCH_CLI_REPO,
// BENCH_STRICT=1 (exit 1 when a target is missed).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from '../src/client.js';
import { median, round } from '../src/measure.js';
import { generateRepo } from './lib/git-repo.js';
import { startChild, waitForHealth, type Child } from './lib/proc.js';
import { cliPath, envNumber } from './lib/env.js';



const RUNS = Math.max(1, Math.round(envNumber('BENCH_CLI_RUNS', 15)));
const WARMUP = Math.round(envNumber('BENCH_CLI_WARMUP', 1));
const FILES = Math.round(envNumber('BENCH_CLI_FILES', 10_000));
const WITH_GENERATED = process.env.BENCH_CLI_GENERATED !== '0';
const REAL_REPOS = (process.env.BENCH_CLI_REPO ?? '').split(':').filter(Boolean).map((p) => resolve(p));
const STRICT = process.env.BENCH_STRICT === '1';
const TARGET_OVER_NODE_MS = 30;
const MIN_RUNS = 10;
const PROCESS_TIMEOUT_MS = 60_000;
const NO_SPAWN = '--no-spawn';

interface Ran {
  ms: number;
  /** User + system CPU time of the process (GNU time, 10 ms resolution), or NaN without /usr/bin/time. */
  cpu: number;
  code: number;
  stdout: string;
  stderr: string;
}

// CPU time beside wall time: on a loaded machine wall times swing 2-4x between runs while the CPU a process
// spends moves much less, so the "over node" figure is also given in CPU milliseconds.
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const cpuFile = join(mkdtempSync(join(tmpdir(), 'hearth-bench-cpu-')), 'cpu');
process.once('exit', () => rmSync(dirname(cpuFile), { recursive: true, force: true }));

function cpuOf(): number {
  try {
    const [user, system] = readFileSync(cpuFile, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
    return ((user ?? NaN) + (system ?? NaN)) * 1000;
  } catch {
    return NaN;
  }
}

/** Runs a process to its end (exit and output closed), killed past PROCESS_TIMEOUT_MS. */
function timed(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Ran> {
  return new Promise((resolveRun, reject) => {
    const t = performance.now();
    const [file, argv] = GNU_TIME ? [GNU_TIME, ['-f', '%U %S', '-o', cpuFile, command, ...args]] : [command, args];
    const child = spawn(file, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), PROCESS_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      const ms = performance.now() - t;
      clearTimeout(timer);
      resolveRun({ ms, cpu: GNU_TIME ? cpuOf() : NaN, code: code ?? -1, stdout, stderr });
    });
  });
}

function expect(ran: Ran, label: string, codes = [0]): Ran {
  if (!codes.includes(ran.code)) throw new Error(`${label} exited ${ran.code} (expected ${codes.join(' or ')}):\n${ran.stderr.slice(-2000)}`);
  return ran;
}

/** The environment without the user's HEARTH_* or PERFORMANCE_* settings, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HEARTH_') && !k.startsWith('PERFORMANCE_')) env[k] = v;
  return { ...env, ...extra };
}

interface Daemon {
  child: Child;
  client: Client;
  /** Graceful stop (SIGKILL after 15 s); nothing when it has exited already. */
  stop(): Promise<void>;
}

const daemons = new Set<Daemon>();

async function startDaemon(configPath: string, stateDir: string, cwd: string): Promise<Daemon> {
  const child = startChild(process.execPath, [cliPath, 'daemon', '--config', configPath, '--state-dir', stateDir], { env: cleanEnv(), cwd });
  const client = new Client({ socket: join(stateDir, 'hearth.sock'), timeoutMs: 30_000 });
  const daemon: Daemon = {
    child,
    client,
    async stop() {
      await client.close();
      await child.stop();
      daemons.delete(daemon);
    },
  };
  daemons.add(daemon);
  try {
    await waitForHealth(client, child);
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  return daemon;
}

const sampleOf = (ran: Ran): Sample => ({ wall: ran.ms, cpu: ran.cpu });

const exited = (child: Child) => child.proc.exitCode !== null || child.proc.signalCode !== null;

interface Sample {
  wall: number;
  cpu: number;
  /** The daemon's part of the wall time, for the commands that wait on it. */
  daemon?: number;
}

interface Case {
  id: string;
  label: string;
  /** The repository it works on; its git status is what it is compared with (without one: the first's). */
  repo?: string;
  kind: 'node' | 'git' | 'hearth';
  /** How its daemon part is measured (commands that wait on the daemon's work). */
  daemonPart?: string;
  run(): Promise<Sample>;
}

interface Job {
  job_id: string;
  status: string;
  created_at: string;
  finished_at: string | null;
}

interface Result {
  case: string;
  command: string;
  repo: string | null;
  median_ms: number;
  over_node_ms: number | null;
  vs_git_status: number;
  client_median_ms?: number;
  client_over_node_ms?: number;
  daemon_median_ms?: number;
  daemon_part?: string;
  target_met: boolean | null;
  samples_ms: number[];
  client_samples_ms?: number[];
  /** CPU time of the process (user + system), median, and less node's. */
  cpu_median_ms: number | null;
  cpu_over_node_ms: number | null;
}

const r1 = (v: number) => round(v, 1);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i <= 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'hearth-bench-cli-'));
  const cleanup = async () => {
    for (const d of [...daemons]) await d.stop();
    rmSync(work, { recursive: true, force: true });
  };
  // Ctrl-C (or SIGTERM): stop every daemon and remove the temporary dirs before leaving.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143)));
  }
  // The last resort (an exit nobody awaited): the daemons still get their SIGTERM.
  process.once('exit', () => {
    for (const d of daemons) if (!exited(d.child)) d.child.proc.kill('SIGTERM');
  });
  try {
    const repos: string[] = [];
    if (WITH_GENERATED) {
      const dir = join(work, 'repos', 'generated');
      const t = performance.now();
      const made = await generateRepo(dir, { files: FILES, dirs: Math.max(1, Math.round(FILES / 13)), commits: 20 });
      process.stdout.write(`generated ${made.files} files in ${made.dirs} directories, ${made.commits} commits, in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
      repos.push(dir);
    }
    for (const repo of REAL_REPOS) {
      if (!existsSync(join(repo, '.git'))) throw new Error(`${repo} is not the top of a git worktree`);
      repos.push(repo);
    }
    if (repos.length === 0) throw new Error('no repository: BENCH_CLI_GENERATED=0 needs BENCH_CLI_REPO');
    const env = cleanEnv();
    for (const repo of repos) expect(await timed('git', ['status', '--porcelain'], env, repo), `git status in ${repo}`);

    const file = join(work, 'files', 'sample.ts');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, 'export const line = "the quick brown fox jumps over the lazy dog";\n'.repeat(64));
    const configPath = join(work, 'config.json');
    const roots = [work, ...REAL_REPOS];
    writeFileSync(configPath, `${JSON.stringify({ log: { level: 'warn' }, server: { port: 0 }, plugins: { git: { roots }, files: { roots } } })}\n`);
    const mainState = join(work, 'state');
    const spareState = join(work, 'spare-state'); // for `stop`: never the main daemon's
    const mainEnv = cleanEnv({ HEARTH_CONFIG: configPath, HEARTH_STATE_DIR: mainState });
    const spareEnv = cleanEnv({ HEARTH_CONFIG: configPath, HEARTH_STATE_DIR: spareState });
    const gitEnv = { ...mainEnv, GIT_OPTIONAL_LOCKS: '0' };
    const hearth = (args: string[], cliEnv = mainEnv) => timed(process.execPath, [cliPath, ...args], cliEnv, work);

    const daemon = await startDaemon(configPath, mainState, work);
    const client = daemon.client;
    for (const repo of repos) {
      const t = performance.now();
      await client.call('GET', `/git/status?repo=${encodeURIComponent(repo)}`);
      process.stdout.write(`warm-up: first git status of ${repo} took ${Math.round(performance.now() - t)} ms\n`);
    }
    // The job `batch cancel` is timed on: finished before the first round.
    const { job_id: finishedJob } = await client.call<Job>('POST', '/batch/jobs', { items: [1], operation: 'double' });
    for (let i = 0; (await client.call<Job>('GET', `/batch/jobs/${finishedJob}`)).finished_at === null; i++) {
      if (i >= 200) throw new Error(`job ${finishedJob} did not finish within 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }

    // Short names for the table; a second repository of the same name gets its position.
    const names = new Map(repos.map((repo, i) => [repo, repos.slice(0, i).some((r) => basename(r) === basename(repo)) ? `${basename(repo)}#${i + 1}` : basename(repo)]));
    const name = (repo: string) => names.get(repo)!;
    const first = repos[0]!;
    const command = (id: string, args: string[], label: string, repo?: string, codes = [0]): Case => ({
      id,
      label,
      ...(repo ? { repo } : {}),
      kind: 'hearth',
      run: async () => sampleOf(expect(await hearth(args), label, codes)),
    });
    let clears = 0;
    const cases: Case[] = [
      { id: 'node', label: 'node -e 0', kind: 'node', run: async () => sampleOf(expect(await timed(process.execPath, ['-e', '0'], mainEnv, work), 'node -e 0')) },
      ...repos.flatMap((repo): Case[] => [
        {
          id: `git-status:${name(repo)}`,
          label: 'git status --porcelain',
          repo,
          kind: 'git',
          run: async () => sampleOf(expect(await timed('git', ['status', '--porcelain'], gitEnv, repo), 'git status --porcelain')),
        },
        command(`hearth-git-status:${name(repo)}`, ['git', 'status', repo, '--porcelain', NO_SPAWN], 'hearth git status REPO --porcelain', repo),
        command(`hearth-git-summary:${name(repo)}`, ['git', 'summary', repo, NO_SPAWN], 'hearth git summary REPO', repo),
        command(`hearth-git-branches:${name(repo)}`, ['git', 'branches', repo, NO_SPAWN], 'hearth git branches REPO', repo),
        command(`hearth-git-log:${name(repo)}`, ['git', 'log', repo, '-n', '5', NO_SPAWN], 'hearth git log REPO -n 5', repo),
      ]),
      command('hearth-help', ['--help'], 'hearth --help'),
      command('hearth-status', ['status'], 'hearth status'),
      command('hearth-files-stat', ['files', 'stat', file, NO_SPAWN], 'hearth files stat F'),
      command('hearth-files-read', ['files', 'read', file, NO_SPAWN], 'hearth files read F'),
      command('hearth-files-hash', ['files', 'hash', file, NO_SPAWN], 'hearth files hash F'),
      command('hearth-stats', ['stats', NO_SPAWN], 'hearth stats'),
      {
        id: 'hearth-cache-clear',
        label: 'hearth cache clear',
        kind: 'hearth',
        daemonPart: 'its request as the daemon timed it (http.POST /cache/clear latest)',
        run: async () => {
          const ran = expect(await hearth(['cache', 'clear', NO_SPAWN]), 'hearth cache clear');
          const stats = await client.call<{ metrics: Record<string, { count: number; latest: number }> }>('GET', '/optimization/stats');
          const timing = stats.metrics['http.POST /cache/clear'];
          if (!timing || timing.count === clears) throw new Error('the daemon timed no POST /cache/clear for `hearth cache clear`');
          clears = timing.count;
          return { ...sampleOf(ran), daemon: timing.latest * 1000 };
        },
      },
      {
        id: 'hearth-batch-run',
        label: 'hearth batch run double 1 2 3',
        kind: 'hearth',
        daemonPart: "the job's life (finished_at - created_at)",
        run: async () => {
          const ran = expect(await hearth(['batch', 'run', 'double', '1', '2', '3', NO_SPAWN]), 'hearth batch run');
          const { job_id } = JSON.parse(ran.stdout) as { job_id: string };
          const job = await client.call<Job>('GET', `/batch/jobs/${encodeURIComponent(job_id)}`);
          if (job.status !== 'completed' || job.finished_at === null) throw new Error(`job ${job_id} is ${job.status}`);
          return { ...sampleOf(ran), daemon: Date.parse(job.finished_at) - Date.parse(job.created_at) };
        },
      },
      command('hearth-batch-jobs', ['batch', 'jobs', NO_SPAWN], 'hearth batch jobs'),
      command('hearth-batch-cancel', ['batch', 'cancel', finishedJob, NO_SPAWN], 'hearth batch cancel ID (finished)'),
      {
        id: 'hearth-stop',
        label: 'hearth stop',
        kind: 'hearth',
        daemonPart: 'a graceful close (SIGTERM to exit, another daemon, same slot)',
        run: async () => {
          const target = await startDaemon(configPath, spareState, work);
          const ran = await hearth(['stop'], spareEnv);
          const stopped = exited(target.child);
          await target.stop();
          expect(ran, 'hearth stop');
          if (!stopped) throw new Error('hearth stop returned while its daemon still ran');
          const other = await startDaemon(configPath, spareState, work);
          const gone = new Promise((r) => other.child.proc.once('exit', r));
          const t = performance.now();
          other.child.proc.kill('SIGTERM');
          await gone;
          const close = performance.now() - t;
          await other.stop();
          return { ...sampleOf(ran), daemon: close };
        },
      },
    ];

    const samples = new Map<string, Sample[]>(cases.map((c) => [c.id, []]));
    const load0 = loadavg()[0]!;
    process.stdout.write(
      `cli bench: ${cases.length} cases, ${WARMUP} warm-up + ${RUNS} rounds (order rotating); node ${process.version}, ${availableParallelism()} cores, load ${load0.toFixed(2)}\n`,
    );
    if (RUNS < MIN_RUNS) process.stdout.write(`note: ${RUNS} rounds (< ${MIN_RUNS}): a smoke run, not the bench's figures\n`);
    for (let round = -WARMUP; round < RUNS; round++) {
      const t = performance.now();
      const shift = ((round % cases.length) + cases.length) % cases.length;
      for (const c of [...cases.slice(shift), ...cases.slice(0, shift)]) {
        const sample = await c.run();
        if (round >= 0) samples.get(c.id)!.push(sample);
        if (exited(daemon.child)) throw new Error(`the bench's daemon exited during "${c.label}":\n${daemon.child.stderr()}`);
      }
      const what = round < 0 ? `warm-up ${round + WARMUP + 1}/${WARMUP}` : `round ${round + 1}/${RUNS}`;
      process.stdout.write(`  ${what}: ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
    }

    const nodeMs = median(samples.get('node')!.map((s) => s.wall));
    const nodeCpu = median(samples.get('node')!.map((s) => s.cpu));
    const gitMs = new Map(repos.map((repo) => [repo, median(samples.get(`git-status:${name(repo)}`)!.map((s) => s.wall))]));
    const results: Result[] = cases.map((c) => {
      const runs = samples.get(c.id)!;
      const wall = runs.map((s) => s.wall);
      const ms = median(wall);
      const result: Result = {
        case: c.id,
        command: c.label,
        repo: c.repo ? name(c.repo) : null,
        median_ms: r1(ms),
        over_node_ms: c.kind === 'node' ? null : r1(ms - nodeMs),
        vs_git_status: Math.round((ms / gitMs.get(c.repo ?? first)!) * 100) / 100,
        target_met: c.kind === 'hearth' ? ms - nodeMs <= TARGET_OVER_NODE_MS : null,
        samples_ms: wall.map(r1),
        cpu_median_ms: Number.isFinite(nodeCpu) ? r1(median(runs.map((s) => s.cpu))) : null,
        cpu_over_node_ms: Number.isFinite(nodeCpu) && c.kind !== 'node' ? r1(median(runs.map((s) => s.cpu)) - nodeCpu) : null,
      };
      if (c.daemonPart) {
        const clientMs = runs.map((s) => s.wall - s.daemon!);
        result.client_median_ms = r1(median(clientMs));
        result.client_over_node_ms = r1(median(clientMs) - nodeMs);
        result.daemon_median_ms = r1(median(runs.map((s) => s.daemon!)));
        result.daemon_part = c.daemonPart;
        result.target_met = median(clientMs) - nodeMs <= TARGET_OVER_NODE_MS;
        result.client_samples_ms = clientMs.map(r1);
      }
      return result;
    });

    const opt = (v: number | undefined, unit = '') => (v === undefined ? '' : `${v.toFixed(1)}${unit}`);
    process.stdout.write(
      `\n${table([
        ['command (ms, median)', 'repo', 'wall', 'over node', 'x git status', 'daemon part', 'client', 'client over node', `<= node + ${TARGET_OVER_NODE_MS}`, 'cpu', 'cpu over node'],
        ...results.map((r) => [
          r.command,
          r.repo ?? '',
          r.median_ms.toFixed(1),
          r.over_node_ms === null ? '' : `${r.over_node_ms >= 0 ? '+' : ''}${r.over_node_ms.toFixed(1)}`,
          `${r.vs_git_status.toFixed(2)}x`,
          opt(r.daemon_median_ms),
          opt(r.client_median_ms),
          r.client_over_node_ms === undefined ? '' : `${r.client_over_node_ms >= 0 ? '+' : ''}${r.client_over_node_ms.toFixed(1)}`,
          r.target_met === null ? '' : r.target_met ? 'met' : 'NOT MET',
          r.cpu_median_ms === null ? '' : r.cpu_median_ms.toFixed(0),
          r.cpu_over_node_ms === null ? '' : `${r.cpu_over_node_ms >= 0 ? '+' : ''}${r.cpu_over_node_ms.toFixed(0)}`,
        ]),
      ])}\n`,
    );
    process.stdout.write('  cpu: user + system time of the process (GNU time; 10 ms resolution), steadier than wall time on a busy machine\n');
    process.stdout.write(`  x git status: against git status on the row's repository (commands without one: ${name(first)})\n`);
    for (const r of results) if (r.daemon_part) process.stdout.write(`  ${r.command}: client = wall - ${r.daemon_part}\n`);
    const missed = results.filter((r) => r.target_met === false);
    process.stdout.write(
      missed.length ? `targets missed: ${missed.length} of ${results.filter((r) => r.target_met !== null).length} commands\n` : 'all targets met\n',
    );

    const load1 = loadavg()[0]!;
    const report = {
      bench: 'cli',
      node: process.version,
      cores: availableParallelism(),
      load_average: { start: Math.round(load0 * 100) / 100, end: Math.round(load1 * 100) / 100 },
      runs: RUNS,
      warmup_rounds: WARMUP,
      target_over_node_ms: TARGET_OVER_NODE_MS,
      node_ms: r1(nodeMs),
      git_status_ms: Object.fromEntries(repos.map((repo) => [name(repo), r1(gitMs.get(repo)!)])),
      results,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return STRICT && (missed.length > 0 || RUNS < MIN_RUNS) ? 1 : 0;
  } finally {
    await cleanup();
  }
}

process.exitCode = await main();
