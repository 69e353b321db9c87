// The control API under load: requests/s and latency of GET /health and GET /optimization/stats on
// loopback TCP, beside a bare Koa 3 + @koa/router hello-world measured in the same run the same way.
// Targets (issue): hearth keeps >= 85% of bare Koa's requests/s on GET /health and >= 50% on
// GET /optimization/stats, with the whole stack on.
//
// Each server runs in its own child process: hearth as the built CLI (`node dist/src/cli.js daemon`, log
// level warn, a temporary state dir), the baseline as bench/lib/bare-koa.ts. autocannon runs here.
//
// The machine's speed drifts (2x within minutes on a shared one), so a ratio of totals taken minutes apart
// says little. Instead every round measures each hearth case right next to a bare Koa run (bare first in
// even rounds, hearth first in odd ones), takes the ratio of that pair, and the reported ratio of a case is
// the median of its per-round ratios.
//
// Environment: BENCH_CONNECTIONS (50), BENCH_DURATION (3 s per run), BENCH_ROUNDS (5), BENCH_WARMUP (2 s),
// BENCH_CPU_PROF=<dir> (the hearth child runs with --cpu-prof and writes its profile there on exit),
// BENCH_STRICT=1 (exit 1 when a target is missed).
//
// Notes: /health is public by design, so the token check is skipped there (the host/origin guard, the
// envelope, validation and timing still run); /optimization/stats runs the whole stack, token included.
// Every request adds a timing sample, so /optimization/stats is measured with full sample rings (the
// steady state of a busy daemon): the warm-ups alone exceed plugins.stats.max_samples (10000).
// With 50 connections in a closed loop, latency is mostly queueing (Little's law: mean = 50 / req/s), so
// p99 follows throughput and the load on the machine; the "other CPU %" column says how busy the machine
// was with other processes.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import autocannon from 'autocannon';
import { cpuSeconds, freePort, machineBusySeconds, startChild, waitForHttp, type Child } from './lib/proc.js';
import { cliPath, envNumber, root } from './lib/env.js';
import { median, percentile, round } from '../src/measure.js';

const bareKoaPath = join(root, 'dist/bench/lib/bare-koa.js');


const CONNECTIONS = Math.round(envNumber('BENCH_CONNECTIONS', 50, false));
const DURATION_S = envNumber('BENCH_DURATION', 3, false);
const ROUNDS = Math.round(envNumber('BENCH_ROUNDS', 5, false));
const WARMUP_S = envNumber('BENCH_WARMUP', 2, false);
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF;
const STRICT = process.env.BENCH_STRICT === '1';

interface Case {
  id: string;
  server: 'bare-koa' | 'hearth';
  label: string;
  url: string;
  pid: () => number | undefined;
  headers: Record<string, string>;
  /** Least acceptable median ratio of requests/s to bare Koa's (hearth cases only). */
  target?: number;
}

interface Run {
  requests: number;
  durationS: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latenciesMs: number[];
  serverCpuS: number | undefined;
  clientCpuS: number;
  /** CPU the rest of the machine used meanwhile (other processes): a busy machine makes the figures unreliable. */
  otherCpuS: number | undefined;
}

const rps = (r: Run): number => r.requests / r.durationS;
const perServerCpuS = (r: Run): number | undefined => (r.serverCpuS ? r.requests / r.serverCpuS : undefined);

interface CaseResult {
  id: string;
  server: string;
  label: string;
  requests: number;
  duration_s: number;
  requests_per_second: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** CPU time of the server process over the measured runs, as % of one core. */
  server_cpu_percent: number | null;
  /** CPU time of this process (autocannon, the load generator), as % of one core. */
  client_cpu_percent: number;
  /** Requests per CPU-second of the server: its cost per request, whatever the load generator could push. */
  requests_per_server_cpu_second: number | null;
  /** CPU used by everything else on the machine during the measured runs, as % of one core. */
  other_cpu_percent: number | null;
  rounds_requests_per_second: number[];
  non2xx: number;
  errors: number;
  timeouts: number;
}

interface Pair {
  round: number;
  first: 'bare-koa' | 'hearth';
  bare_rps: number;
  hearth_rps: number;
  ratio: number;
  /** hearth's requests per server CPU-second over bare Koa's, in the same pair. */
  cpu_ratio: number | null;
}

/** Refuses to measure a dist/ older than the sources: the bench is about the built daemon. */
function checkBuild(): void {
  if (!existsSync(cliPath)) throw new Error(`${relative(root, cliPath)} is missing: run npm run build (npm run bench does)`);
  const stale: string[] = [];
  for (const dir of ['src', 'plugins', 'bench']) {
    for (const file of readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.ts') || file.endsWith('.d.ts')) continue;
      const built = join(root, 'dist', dir, file.replace(/\.ts$/, '.js'));
      if (!existsSync(built) || statSync(built).mtimeMs < statSync(join(root, dir, file)).mtimeMs) stale.push(join(dir, file));
    }
  }
  if (stale.length > 0) throw new Error(`dist/ is older than ${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ', ...' : ''}: run npm run build`);
}

/** One autocannon run against one case; latencies are kept at full resolution (autocannon's own histogram floors to 1 ms). */
function load(c: Case, seconds: number): Promise<Run> {
  const latenciesMs: number[] = [];
  const serverCpu0 = cpuSeconds(c.pid());
  const clientCpu0 = process.cpuUsage();
  const machine0 = machineBusySeconds();
  return new Promise((resolveRun, reject) => {
    const instance = autocannon(
      { url: c.url, connections: CONNECTIONS, pipelining: 1, duration: seconds, headers: c.headers, timeout: 10 },
      (err, result) => {
        if (err) return reject(err);
        const clientCpu = process.cpuUsage(clientCpu0);
        const serverCpu1 = cpuSeconds(c.pid());
        const machine1 = machineBusySeconds();
        const serverCpuS = serverCpu0 !== undefined && serverCpu1 !== undefined ? serverCpu1 - serverCpu0 : undefined;
        const clientCpuS = (clientCpu.user + clientCpu.system) / 1e6;
        resolveRun({
          requests: result.requests.total,
          durationS: result.duration,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          latenciesMs,
          serverCpuS,
          clientCpuS,
          otherCpuS:
            machine0 !== undefined && machine1 !== undefined && serverCpuS !== undefined
              ? Math.max(0, machine1 - machine0 - serverCpuS - clientCpuS)
              : undefined,
        });
      },
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
      latenciesMs.push(responseTime);
    });
  });
}

function summarize(c: Case, runs: Run[]): CaseResult {
  const requests = runs.reduce((s, r) => s + r.requests, 0);
  const duration = runs.reduce((s, r) => s + r.durationS, 0);
  const all = new Float64Array(runs.reduce((s, r) => s + r.latenciesMs.length, 0));
  let at = 0;
  let sum = 0;
  for (const r of runs) {
    for (const v of r.latenciesMs) {
      all[at++] = v;
      sum += v;
    }
  }
  all.sort();
  const serverCpu = runs.every((r) => r.serverCpuS !== undefined) ? runs.reduce((s, r) => s + r.serverCpuS!, 0) : undefined;
  const clientCpu = runs.reduce((s, r) => s + r.clientCpuS, 0);
  const otherCpu = runs.every((r) => r.otherCpuS !== undefined) ? runs.reduce((s, r) => s + r.otherCpuS!, 0) : undefined;
  return {
    id: c.id,
    server: c.server,
    label: c.label,
    requests,
    duration_s: round(duration, 2),
    requests_per_second: Math.round(requests / duration),
    latency_ms: {
      p50: round(percentile(all, 0.5), 3),
      p90: round(percentile(all, 0.9), 3),
      p99: round(percentile(all, 0.99), 3),
      max: round(percentile(all, 1), 3),
      mean: round(sum / Math.max(1, all.length), 3),
    },
    server_cpu_percent: serverCpu === undefined ? null : round((serverCpu / duration) * 100, 1),
    client_cpu_percent: round((clientCpu / duration) * 100, 1),
    requests_per_server_cpu_second: serverCpu === undefined || serverCpu === 0 ? null : Math.round(requests / serverCpu),
    other_cpu_percent: otherCpu === undefined ? null : round((otherCpu / duration) * 100, 1),
    rounds_requests_per_second: runs.map((r) => Math.round(rps(r))),
    non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
    errors: runs.reduce((s, r) => s + r.errors, 0),
    timeouts: runs.reduce((s, r) => s + r.timeouts, 0),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

/** A clean environment for the daemon: none of the user's HEARTH_* or PERFORMANCE_* settings leak in. */
function daemonEnv(configPath: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HEARTH_') && !k.startsWith('PERFORMANCE_')) env[k] = v;
  env.HEARTH_CONFIG = configPath;
  env.HEARTH_LOG_LEVEL = 'warn';
  return env;
}

async function main(): Promise<number> {
  checkBuild();
  const tmp = mkdtempSync(join(tmpdir(), 'hearth-bench-'));
  const children: Child[] = [];
  // Ctrl-C reaches the children too (same process group); leave no temporary state dir behind.
  process.once('SIGINT', () => {
    for (const child of children) child.proc.kill('SIGTERM');
    rmSync(tmp, { recursive: true, force: true });
    process.exit(130);
  });
  try {
    // hearth, as the built CLI.
    const stateDir = join(tmp, 'state');
    const configPath = join(tmp, 'config.json');
    writeFileSync(configPath, `${JSON.stringify({ log: { level: 'warn' } })}\n`);
    const hearthPort = await freePort();
    const nodeFlags = CPU_PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', resolve(CPU_PROF_DIR)] : [];
    const hearth = startChild(
      process.execPath,
      [...nodeFlags, cliPath, 'daemon', '--config', configPath, '--state-dir', stateDir, '--port', String(hearthPort)],
      { env: daemonEnv(configPath) },
    );
    children.push(hearth);
    const hearthOrigin = `http://127.0.0.1:${hearthPort}`;
    await waitForHttp(`${hearthOrigin}/health`, hearth, 'hearth daemon');
    const token = readFileSync(join(stateDir, 'token'), 'utf8').trim();

    // The baseline.
    const barePort = await freePort();
    const bare = startChild(process.execPath, [bareKoaPath, String(barePort)]);
    children.push(bare);
    const bareOrigin = `http://127.0.0.1:${barePort}`;
    await waitForHttp(`${bareOrigin}/hello`, bare, 'bare Koa server');

    // The same headers everywhere: a valid Host (the guard checks it) and the bearer token.
    const headers = (port: number) => ({ host: `127.0.0.1:${port}`, authorization: `Bearer ${token}` });
    const baseline: Case = { id: 'bare-koa', server: 'bare-koa', label: 'bare Koa   GET /hello', url: `${bareOrigin}/hello`, pid: () => bare.proc.pid, headers: headers(barePort) };
    const cases: Case[] = [
      { id: 'health', server: 'hearth', label: 'hearth     GET /health', url: `${hearthOrigin}/health`, pid: () => hearth.proc.pid, headers: headers(hearthPort), target: 0.85 },
      {
        id: 'stats',
        server: 'hearth',
        label: 'hearth     GET /optimization/stats',
        url: `${hearthOrigin}/optimization/stats`,
        pid: () => hearth.proc.pid,
        headers: headers(hearthPort),
        target: 0.5,
      },
    ];

    // Each case must answer 200 (and hearth a success envelope) before it is worth timing.
    for (const c of [baseline, ...cases]) {
      const res = await fetch(c.url, { headers: { authorization: c.headers.authorization! } });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${c.label} answered ${res.status}: ${text}`);
      if (c.server === 'hearth' && (JSON.parse(text) as { success?: boolean }).success !== true) {
        throw new Error(`${c.label} did not answer a success envelope: ${text}`);
      }
    }

    process.stdout.write(
      `api bench: ${CONNECTIONS} connections, warm-up ${WARMUP_S} s, then ${ROUNDS} rounds; in each, every hearth case and a bare Koa run of ${DURATION_S} s back to back (order alternating); node ${process.version}, built daemon ${relative(root, cliPath)}\n`,
    );
    for (const c of [baseline, ...cases]) {
      process.stdout.write(`  warm-up ${c.label}\n`);
      await load(c, WARMUP_S);
    }
    const runs = new Map<string, Run[]>([baseline, ...cases].map((c) => [c.id, []]));
    const pairs = new Map<string, Pair[]>(cases.map((c) => [c.id, []]));
    for (let r = 0; r < ROUNDS; r++) {
      const bareFirst = r % 2 === 0;
      // The hearth cases take turns too, so neither is always measured right after the other.
      const order = r % 2 === 0 ? cases : [...cases].reverse();
      for (const c of order) {
        const [a, b] = bareFirst ? [baseline, c] : [c, baseline];
        const runA = await load(a, DURATION_S);
        const runB = await load(b, DURATION_S);
        const [bareRun, hearthRun] = bareFirst ? [runA, runB] : [runB, runA];
        runs.get(baseline.id)!.push(bareRun);
        runs.get(c.id)!.push(hearthRun);
        const bareCost = perServerCpuS(bareRun);
        const hearthCost = perServerCpuS(hearthRun);
        const pair: Pair = {
          round: r + 1,
          first: bareFirst ? 'bare-koa' : 'hearth',
          bare_rps: Math.round(rps(bareRun)),
          hearth_rps: Math.round(rps(hearthRun)),
          ratio: round(rps(hearthRun) / rps(bareRun), 3),
          cpu_ratio: bareCost && hearthCost ? round(hearthCost / bareCost, 3) : null,
        };
        pairs.get(c.id)!.push(pair);
        process.stdout.write(
          `  round ${r + 1}/${ROUNDS} ${c.label}: ${pair.hearth_rps} req/s, bare Koa ${pair.bare_rps} req/s (${pair.first} first): ratio ${pair.ratio.toFixed(3)}\n`,
        );
      }
    }

    const results = [baseline, ...cases].map((c) => summarize(c, runs.get(c.id)!));
    const bad = results.filter((r) => r.non2xx > 0 || r.errors > 0 || r.timeouts > 0);

    const fmt = (v: number | null, digits = 2) => (v === null ? '-' : v.toFixed(digits));
    process.stdout.write(
      `\nTotals over all runs (bare Koa ran once per hearth case and round):\n${table([
        ['case', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'server CPU %', 'bench CPU %', 'req/server CPU-s', 'other CPU %', 'non-2xx/err'],
        ...results.map((r) => [
          r.label,
          String(r.requests_per_second),
          fmt(r.latency_ms.p50),
          fmt(r.latency_ms.p90),
          fmt(r.latency_ms.p99),
          fmt(r.latency_ms.max),
          fmt(r.server_cpu_percent, 0),
          fmt(r.client_cpu_percent, 0),
          r.requests_per_server_cpu_second === null ? '-' : String(r.requests_per_server_cpu_second),
          fmt(r.other_cpu_percent, 0),
          `${r.non2xx}/${r.errors + r.timeouts}`,
        ]),
      ])}\n\n`,
    );

    const ratios = cases.map((c) => {
      const ps = pairs.get(c.id)!;
      const cpu = ps.every((p) => p.cpu_ratio !== null) ? round(median(ps.map((p) => p.cpu_ratio!)), 3) : null;
      const ratio = round(median(ps.map((p) => p.ratio)), 3);
      return {
        case: c.id,
        label: c.label,
        per_round_ratios: ps.map((p) => p.ratio),
        median_ratio: ratio,
        min_ratio: Math.min(...ps.map((p) => p.ratio)),
        max_ratio: Math.max(...ps.map((p) => p.ratio)),
        median_requests_per_server_cpu_second_ratio: cpu,
        target: c.target!,
        target_met: ratio >= c.target!,
        pairs: ps,
      };
    });
    process.stdout.write(
      `${table([
        ['hearth / bare Koa (req/s)', 'per-round ratios', 'median', 'range', 'req/server CPU-s (median)', 'target', ''],
        ...ratios.map((r) => [
          r.label,
          r.per_round_ratios.map((v) => v.toFixed(3)).join(' '),
          `${(r.median_ratio * 100).toFixed(1)}%`,
          `${(r.min_ratio * 100).toFixed(0)}-${(r.max_ratio * 100).toFixed(0)}%`,
          r.median_requests_per_server_cpu_second_ratio === null ? '-' : `${(r.median_requests_per_server_cpu_second_ratio * 100).toFixed(1)}%`,
          `>= ${(r.target * 100).toFixed(0)}%`,
          r.target_met ? 'met' : 'MISSED',
        ]),
      ])}\n`,
    );
    const busiest = Math.max(...results.map((r) => r.other_cpu_percent ?? 0));
    if (busiest > 20) {
      process.stdout.write(
        `\nWARNING: other processes used up to ${busiest.toFixed(0)}% of a core during the measured runs (this machine has ${availableParallelism()} cores); the figures are unreliable. req/server CPU-s (the server's cost per request) is the steadier figure.\n`,
      );
    }
    if (bad.length > 0) {
      process.stdout.write(`\nWARNING: non-2xx answers, errors or timeouts in: ${bad.map((r) => r.id).join(', ')}; the figures are not valid\n`);
    }

    const report = {
      bench: 'api',
      node: process.version,
      cores: availableParallelism(),
      connections: CONNECTIONS,
      warmup_s: WARMUP_S,
      rounds: ROUNDS,
      duration_s_per_run: DURATION_S,
      results,
      ratios,
    };
    process.stdout.write(`\n${JSON.stringify(report, null, 2)}\n`);
    if (bad.length > 0) return 1;
    if (STRICT && ratios.some((r) => !r.target_met)) return 1;
    return 0;
  } finally {
    for (const child of children.reverse()) await child.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

process.exitCode = await main();
