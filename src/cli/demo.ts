// `hearth demo`: the original design's performance_demo against a live daemon. It makes its own temp repo
// and files under a directory the daemon's roots allow, measures each feature (cache cold vs warm, lazy
// state, circuit breaker, batches, cache clear, concurrency, hearth vs a process), prints a summary table
// and writes every measurement to a JSON file.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { Client } from '../client.js';
import { locateDaemon } from '../config-source.js';
import { round, sampleMs, series, timeMs, type Series } from '../measure.js';
import { stateFiles } from '../state.js';
import { UsageError, type CommandContext } from './spec.js';

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = encodeURIComponent;

interface Timed {
  status: number;
  ms: number;
  code?: string;
  data?: any;
}

class Demo {
  readonly results: Record<string, any> = {};
  readonly rows: Array<[string, string, string]> = [];

  constructor(
    readonly client: Client,
    readonly work: string,
    readonly concurrency: number,
  ) {}

  /** One request, timed end to end from the client. */
  async timed(method: string, path: string, body?: unknown): Promise<Timed> {
    const { ms, value: res } = await timeMs(() => this.client.raw(method, path, body));
    let json: any;
    try {
      json = JSON.parse(res.body);
    } catch {
      json = undefined;
    }
    return { status: res.status, ms, ...(json?.error?.code ? { code: json.error.code } : {}), data: json?.data };
  }

  async ok(method: string, path: string, body?: unknown): Promise<Timed> {
    const r = await this.timed(method, path, body);
    if (r.status >= 400) throw new Error(`${method} ${path} answered ${r.status} ${r.code ?? ''}`);
    return r;
  }

  async repeat(n: number, fn: () => Promise<Timed>): Promise<Series> {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) ms.push((await fn()).ms);
    return series(ms);
  }

  row(section: string, what: string, value: string): void {
    this.rows.push([section, what, value]);
  }

  stats(): Promise<any> {
    return this.client.call<any>('GET', '/optimization/stats');
  }

  makeRepo(name: string, files: number): string {
    const dir = join(this.work, name);
    mkdirSync(dir, { recursive: true });
    const env = { ...process.env, GIT_AUTHOR_NAME: 'hearth demo', GIT_AUTHOR_EMAIL: 'demo@hearth.local', GIT_COMMITTER_NAME: 'hearth demo', GIT_COMMITTER_EMAIL: 'demo@hearth.local' };
    const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, env, stdio: 'ignore' });
    git('init', '-q');
    for (let i = 0; i < files; i++) {
      mkdirSync(join(dir, `d${i % 10}`), { recursive: true });
      writeFileSync(join(dir, `d${i % 10}`, `f${i}.txt`), `file ${i}\n`.repeat(20));
    }
    git('add', '.');
    git('commit', '-qm', 'demo');
    // A few changes, so a status has something to say.
    writeFileSync(join(dir, 'd0', 'f0.txt'), 'changed\n');
    writeFileSync(join(dir, 'untracked.txt'), 'new\n');
    return dir;
  }

  async optimizationStats(): Promise<void> {
    const r = await this.ok('GET', '/optimization/stats');
    const d = r.data;
    const latency = await this.repeat(20, () => this.ok('GET', '/optimization/stats'));
    this.results.optimization_stats = {
      latency,
      cache_stats: d.cache_stats,
      pool: d.pool ?? null,
      metrics_count: Object.keys(d.metrics ?? {}).length,
      circuit_breakers_count: Object.keys(d.circuit_breakers ?? {}).length,
    };
    this.row('optimization stats', 'GET /optimization/stats p50', `${latency.p50_ms} ms`);
    const hitRate = d.cache_stats?.hit_rate;
    this.row('optimization stats', 'cache entries / hit rate', `${d.cache_stats?.size} / ${typeof hitRate === 'number' ? `${(hitRate * 100).toFixed(1)}%` : 'n/a'}`);
  }

  async cachedOperations(file: string, repo: string): Promise<void> {
    await this.ok('POST', '/cache/clear', { namespace: 'files' });
    const path = `/files/read?path=${q(file)}`;
    const cold = await this.ok('GET', path);
    const warm = await this.repeat(20, () => this.ok('GET', path));
    const last = await this.ok('GET', path);
    const statusPath = `/git/status?repo=${q(repo)}`;
    await this.ok('GET', statusPath);
    const gitWarm = await this.repeat(20, () => this.ok('GET', statusPath));
    const gitLast = await this.ok('GET', statusPath);
    this.results.cached_operations = {
      files_read: { cold_ms: round(cold.ms), cold_cached: cold.data.cached, warm, warm_cached: last.data.cached, speedup: round(cold.ms / warm.p50_ms) },
      git_status: { warm: gitWarm, warm_cached: gitLast.data.cached },
    };
    this.row('cached operations', 'files/read cold -> warm p50', `${round(cold.ms)} -> ${warm.p50_ms} ms (cached: ${cold.data.cached} -> ${last.data.cached})`);
    this.row('cached operations', 'git/status warm p50', `${gitWarm.p50_ms} ms (cached: ${gitLast.data.cached})`);
  }

  async lazyLoading(repo: string): Promise<void> {
    const statusPath = `/git/status?repo=${q(repo)}`;
    const first = await this.ok('GET', statusPath);
    const later = await this.repeat(20, () => this.ok('GET', statusPath));
    const items = Array.from({ length: 8 }, (_, i) => `text ${i}`.repeat(50));
    const batchFirst = await this.ok('POST', '/batch/process', { operation: 'gzip_size', items, batch_size: 8 });
    const batchLater = await this.repeat(10, () => this.ok('POST', '/batch/process', { operation: 'gzip_size', items, batch_size: 8 }));
    this.results.lazy_loading = {
      git_status: { first_ms: round(first.ms), first_cached: first.data.cached, later, speedup: round(first.ms / later.p50_ms), entries: first.data.entries.length },
      batch_worker_module: { operation: 'gzip_size', first_ms: round(batchFirst.ms), later: batchLater },
    };
    this.row('lazy loading', 'git/status first -> later p50', `${round(first.ms)} -> ${later.p50_ms} ms`);
    this.row('lazy loading', 'batch gzip_size first -> later p50', `${round(batchFirst.ms)} -> ${batchLater.p50_ms} ms`);
  }

  async circuitBreaker(repo: string): Promise<void> {
    const statusPath = `/git/status?repo=${q(repo)}`;
    const initial = await this.ok('GET', statusPath);
    const name = `git:${initial.data.repo}`;
    const before = (await this.stats()).circuit_breakers?.[name];
    const threshold: number = before?.failure_threshold ?? 3;
    const resetSeconds: number = before?.reset_timeout_seconds ?? 30;
    const index = join(repo, '.git', 'index');
    const good = readFileSync(index);
    const calls: Array<{ phase: string; status: number; code: string | null; ms: number; state: string }> = [];
    const call = async (phase: string) => {
      const r = await this.timed('GET', statusPath);
      const state = (await this.stats()).circuit_breakers?.[name]?.state ?? 'UNKNOWN';
      calls.push({ phase, status: r.status, code: r.code ?? null, ms: round(r.ms), state });
      return r;
    };
    writeFileSync(index, 'DIRC garbage');
    try {
      for (let i = 0; i < threshold + 3; i++) await call('broken');
    } finally {
      writeFileSync(index, good);
    }
    await sleep(resetSeconds * 1000 + 200);
    let recovered = await call('recovery');
    for (let i = 0; i < 5 && recovered.status !== 200; i++) {
      await sleep(resetSeconds * 1000 + 200);
      recovered = await call('recovery');
    }
    const after = (await this.stats()).circuit_breakers?.[name];
    const failed = calls.filter((c) => c.code === 'GIT_FAILED');
    const open = calls.filter((c) => c.code === 'CIRCUIT_OPEN');
    this.results.circuit_breaker = {
      breaker: name,
      failure_threshold: threshold,
      reset_timeout_seconds: resetSeconds,
      calls,
      states: calls.map((c) => c.state),
      git_failed: { count: failed.length, latency: series(failed.map((c) => c.ms)) },
      circuit_open: { count: open.length, latency: series(open.map((c) => c.ms)) },
      recovered: recovered.status === 200,
      final_state: after?.state ?? 'UNKNOWN',
      breaker_stats: after ?? null,
    };
    this.row('circuit breaker', `502 GIT_FAILED x${failed.length} p50`, `${series(failed.map((c) => c.ms)).p50_ms} ms`);
    this.row('circuit breaker', `503 CIRCUIT_OPEN x${open.length} p50`, `${series(open.map((c) => c.ms)).p50_ms} ms`);
    this.row('circuit breaker', `after ${resetSeconds} s, index restored`, `${recovered.status} (${after?.state})`);
  }

  async batchProcessing(): Promise<void> {
    const numbers = Array.from({ length: 1000 }, (_, i) => i);
    const sizes: Record<string, any> = {};
    for (const batchSize of [1, 10, 100, 1000]) {
      const r = await this.ok('POST', '/batch/process', { operation: 'double', items: numbers, batch_size: batchSize });
      const ok = r.data.processed_items === numbers.length && r.data.results[999] === 1998;
      sizes[String(batchSize)] = { ms: round(r.ms), items_per_second: Math.round(numbers.length / (r.ms / 1000)), correct: ok };
      this.row('batch processing', `double x1000, batch_size ${batchSize}`, `${round(r.ms)} ms`);
    }
    const strings = Array.from({ length: 500 }, (_, i) => `item ${i}`);
    const sha = await this.ok('POST', '/batch/process', { operation: 'sha256', items: strings });
    this.results.batch_processing = {
      double_1000_by_batch_size: sizes,
      sha256_500: { ms: round(sha.ms), processed_items: sha.data.processed_items, failed_items: sha.data.failed_items, batch_size: sha.data.batch_size },
    };
    this.row('batch processing', 'sha256 x500 (default batch_size)', `${round(sha.ms)} ms`);
  }

  async cacheOperations(file: string): Promise<void> {
    await this.ok('GET', `/files/read?path=${q(file)}`);
    const before = (await this.stats()).cache_stats;
    const clear = await this.ok('POST', '/cache/clear', {});
    const after = (await this.stats()).cache_stats;
    const reread = await this.ok('GET', `/files/read?path=${q(file)}`);
    this.results.cache_operations = {
      size_before: before.size,
      size_after: after.size,
      cleared: clear.data.cleared,
      clear_ms: round(clear.ms),
      read_after_clear_cached: reread.data.cached,
      before,
      after,
    };
    this.row('cache operations', 'POST /cache/clear', `${before.size} -> ${after.size} entries (${round(clear.ms)} ms)`);
  }

  /** `total` requests with `concurrency` in flight at once. */
  async concurrent(total: number, fn: () => Promise<Timed>): Promise<Series & { requests: number; errors: number; requests_per_second: number }> {
    const ms: number[] = [];
    let errors = 0;
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: this.concurrency }, async () => {
        while (next < total) {
          next++;
          try {
            const r = await fn();
            ms.push(r.ms);
            if (r.status >= 400) errors++;
          } catch {
            errors++;
          }
        }
      }),
    );
    const elapsed = (performance.now() - start) / 1000;
    return { ...series(ms), requests: total, errors, requests_per_second: Math.round(total / elapsed) };
  }

  async concurrency_(repo: string): Promise<void> {
    const health = await this.concurrent(this.concurrency * 10, () => this.timed('GET', '/health'));
    const status = await this.concurrent(this.concurrency * 4, () => this.timed('GET', `/git/status?repo=${q(repo)}`));
    this.results.concurrent_requests = { concurrency: this.concurrency, health, git_status: status };
    this.row('concurrency', `GET /health x${health.requests} (${this.concurrency} at once)`, `${health.requests_per_second} req/s, p50 ${health.p50_ms} p99 ${health.p99_ms} ms`);
    this.row('concurrency', `GET /git/status x${status.requests}`, `${status.requests_per_second} req/s, p50 ${status.p50_ms} p99 ${status.p99_ms} ms`);
  }

  async comparison(repo: string, file: string): Promise<void> {
    const hearthStatus = await this.repeat(20, () => this.ok('GET', `/git/status?repo=${q(repo)}`));
    const gitMs = await sampleMs(10, () => execFileAsync('git', ['--no-optional-locks', 'status', '--porcelain'], { cwd: repo }));
    const hearthRead = await this.repeat(20, () => this.ok('GET', `/files/read?path=${q(file)}`));
    const nodeMs = await sampleMs(3, () => execFileAsync(process.execPath, ['-e', `require('fs').readFileSync(${JSON.stringify(file)})`]));
    const inProcess = await sampleMs(20, () => readFile(file));
    const git = series(gitMs);
    const node = series(nodeMs);
    this.results.performance_comparison = {
      git_status: { hearth_warm: hearthStatus, git_process: git, speedup: round(git.p50_ms / hearthStatus.p50_ms) },
      files_read: { hearth_warm: hearthRead, node_process: node, fs_readfile_in_process: series(inProcess), speedup_vs_process: round(node.p50_ms / hearthRead.p50_ms) },
    };
    this.row('comparison', 'git status: hearth warm vs `git status` process (p50)', `${hearthStatus.p50_ms} vs ${git.p50_ms} ms (${round(git.p50_ms / hearthStatus.p50_ms)}x)`);
    this.row('comparison', 'read file: hearth warm vs fresh node process (p50)', `${hearthRead.p50_ms} vs ${node.p50_ms} ms (${round(node.p50_ms / hearthRead.p50_ms)}x)`);
  }

  table(): string {
    const w0 = Math.max(...this.rows.map((r) => r[0].length));
    const w1 = Math.max(...this.rows.map((r) => r[1].length));
    return this.rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`).join('\n');
  }
}

export async function runDemo(client: Client, options: { out: string; workdir?: string; concurrency: number }): Promise<Record<string, any>> {
  const parent = options.workdir ?? join(homedir(), '.cache');
  mkdirSync(parent, { recursive: true });
  const work = mkdtempSync(join(parent, 'hearth-demo-'));
  const demo = new Demo(client, work, options.concurrency);
  const started = new Date();
  try {
    const repo = demo.makeRepo('repo', 200);
    const lazyRepo = demo.makeRepo('lazy', 200);
    const brokenRepo = demo.makeRepo('broken', 10);
    const file = join(work, 'data.txt');
    writeFileSync(file, 'hearth demo line\n'.repeat(4096));
    // Older than the racy window, so the cache may keep it from the first read.
    const past = new Date(Date.now() - 60_000);
    utimesSync(file, past, past);
    await demo.ok('GET', '/health');
    const steps: Array<[string, () => Promise<void>]> = [
      ['optimization stats', () => demo.optimizationStats()],
      ['cached operations', () => demo.cachedOperations(file, repo)],
      ['lazy loading', () => demo.lazyLoading(lazyRepo)],
      ['circuit breaker', () => demo.circuitBreaker(brokenRepo)],
      ['batch processing', () => demo.batchProcessing()],
      ['cache operations', () => demo.cacheOperations(file)],
      ['concurrency', () => demo.concurrency_(repo)],
      ['comparison', () => demo.comparison(repo, file)],
    ];
    for (const [name, step] of steps) {
      process.stderr.write(`hearth demo: ${name}...\n`);
      await step();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const output = { started_at: started.toISOString(), finished_at: new Date().toISOString(), daemon: client.where, ...demo.results };
  writeFileSync(options.out, `${JSON.stringify(output, null, 2)}\n`);
  process.stdout.write(`${demo.table()}\n\nevery measurement: ${options.out}\n`);
  return output;
}

/** `hearth demo`: against the daemon's socket, or its TCP address with the token. */
export async function demoCommand(ctx: CommandContext): Promise<number | void> {
  const o = ctx.options as { url?: string; token?: string; out: string; workdir?: string; concurrency: string };
  const concurrency = Number(o.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError('option --concurrency must be a positive integer', 'demo');
  const where = locateDaemon(ctx.flags);
  const client = o.url
    ? new Client({ url: o.url, token: o.token ?? readFileSync(stateFiles(where.stateDir).token, 'utf8').trim() })
    : new Client({ socket: where.socket });
  await client.use((c) => runDemo(c, { out: o.out, ...(o.workdir ? { workdir: o.workdir } : {}), concurrency }));
}
