// The batch plugin through the daemon (the real CLI, over its unix socket) against the same work in a
// main-thread loop in this process, measured in the same run:
// - hash_file over a generated tree (>= 64 MiB): items/s and MiB/s (workers get paths, not buffers);
// - sha256 of strings;
// - 100k `double` items with batch_size 1 vs 1000 (the overhead of one worker task);
// - GET /health p50/p99 while a heavy hash_file job runs, and hash_file throughput, for three pools:
//   max_threads = cores with worker threads at nice 10 (the default), the same at nice 0, and cores - 1.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client } from '../src/client.js';
import { percentile, timeMs } from '../src/measure.js';
import { hashFile } from '../plugins/batch/tasks/hash_file.js';
import { sha256 } from '../plugins/batch/tasks/sha256.js';
import { startChild, waitForHealth, type Child } from './lib/proc.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FILES = Number(process.env.BENCH_FILES ?? 256);
const FILE_SIZE = Number(process.env.BENCH_FILE_KIB ?? 256) * 1024;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const cores = availableParallelism();

const dir = resolve(tmpdir(), `hearth-bench-batch-${process.pid}`);
const tree = join(dir, 'tree');
const paths: string[] = [];
for (let i = 0; i < FILES; i++) {
  const sub = join(tree, `d${i % 16}`);
  mkdirSync(sub, { recursive: true });
  const path = join(sub, `f${i}.bin`);
  writeFileSync(path, randomBytes(FILE_SIZE));
  paths.push(path);
}
for (const p of paths) readFileSync(p); // both sides start from a warm page cache
const totalMiB = (FILES * FILE_SIZE) / 1024 / 1024;

interface Daemon {
  child: Child;
  client: Client;
  stop(): Promise<void>;
}

async function startDaemon(name: string, threads: number, nice: number): Promise<Daemon> {
  const state = join(dir, `state-${name}`);
  mkdirSync(state, { recursive: true });
  const config = join(dir, `config-${name}.json`);
  writeFileSync(
    config,
    JSON.stringify({ log: { level: 'warn' }, server: { body_limit_bytes: 64 * 1024 * 1024 }, pool: { max_threads: threads, worker_nice: nice }, plugins: { files: { roots: [tree] }, batch: {}, stats: {} } }),
  );
  const child = startChild(process.execPath, [join(root, 'dist/src/cli.js'), 'daemon', '--config', config, '--state-dir', state, '--port', '0'], {
    env: { ...process.env, HEARTH_LOG_LEVEL: 'warn' },
  });
  const client = new Client({ socket: join(state, 'hearth.sock'), timeoutMs: 600_000 });
  await waitForHealth(client, child);
  return {
    child,
    client,
    async stop() {
      await client.close();
      await child.stop();
    },
  };
}

interface Batch {
  results: unknown[];
  failed_items: number;
}

async function viaDaemon(d: Daemon, body: object): Promise<number> {
  const { ms, value: answer } = await timeMs(() => d.client.call<Batch>('POST', '/batch/process', body));
  if (answer.failed_items > 0) throw new Error(`${answer.failed_items} items failed`);
  return ms;
}

const best = (xs: number[]) => Math.min(...xs);
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Sequential GET /health over the socket until `until` resolves (or for `ms` when idle). */
async function healthWhile(client: Client, until: Promise<unknown> | number): Promise<{ p50: number; p99: number; max: number; n: number }> {
  const samples: number[] = [];
  let done = false;
  if (typeof until === 'number') setTimeout(() => (done = true), until);
  else void until.finally(() => (done = true));
  while (!done) {
    const t = performance.now();
    await client.call('GET', '/health');
    samples.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 2));
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: Math.max(...samples), n: samples.length };
}

const out: Record<string, unknown> = { cores, files: FILES, file_kib: FILE_SIZE / 1024, total_mib: totalMiB };
const hashBody = { items: paths, operation: 'hash_file', batch_size: 8, max_concurrent: 2 * cores };

/** hash_file items/s: rounds alternate between a main-thread loop here and the daemon; best of each. */
async function hashRatio(d: Daemon) {
  const mainMs: number[] = [];
  const poolMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    for (const p of paths) await hashFile(p, { roots: [tree] });
    mainMs.push(performance.now() - t);
    poolMs.push(await viaDaemon(d, hashBody));
  }
  return {
    main_items_s: FILES / (best(mainMs) / 1000),
    daemon_items_s: FILES / (best(poolMs) / 1000),
    main_mib_s: totalMiB / (best(mainMs) / 1000),
    daemon_mib_s: totalMiB / (best(poolMs) / 1000),
    ratio: best(mainMs) / best(poolMs),
  };
}

/** GET /health idle, then while a job hashes the tree 4 times. */
async function healthUnderJob(d: Daemon) {
  const idle = await healthWhile(d.client, 1500);
  const { job_id } = await d.client.call<{ job_id: string }>('POST', '/batch/jobs', {
    items: [...paths, ...paths, ...paths, ...paths],
    operation: 'hash_file',
    batch_size: 8,
    max_concurrent: 2 * cores,
  });
  const finished = (async () => {
    for (;;) {
      const job = await d.client.call<{ status: string }>('GET', `/batch/jobs/${job_id}`);
      if (job.status !== 'running' && job.status !== 'queued') return job;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const t = performance.now();
  const busy = await healthWhile(d.client, finished);
  const ms = performance.now() - t;
  return { idle, busy, job_mib_s: (4 * totalMiB) / (ms / 1000) };
}

const variants: Array<{ name: string; threads: number; nice: number }> = [
  { name: `max_threads ${cores}, nice 10 (default)`, threads: cores, nice: 10 },
  { name: `max_threads ${cores}, nice 0`, threads: cores, nice: 0 },
  ...(cores > 1 ? [{ name: `max_threads ${cores - 1}, nice 0`, threads: cores - 1, nice: 0 }] : []),
];
let daemon: Daemon | undefined;
try {
  const pools: Record<string, unknown> = {};
  for (const [i, v] of variants.entries()) {
    daemon = await startDaemon(`v${i}`, v.threads, v.nice);
    await viaDaemon(daemon, { ...hashBody, items: paths.slice(0, 32) }); // threads load their modules
    const hash = await hashRatio(daemon);
    const health = await healthUnderJob(daemon);
    pools[v.name] = { hash_file: hash, health };
    if (i === 0) {
      // sha256 of 20,000 strings of 1 KiB.
      const strings = Array.from({ length: 20_000 }, (_, k) => `${k}:`.padEnd(1024, 'abcdefghij'));
      const shaMain: number[] = [];
      const shaPool: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const t = performance.now();
        for (const s of strings) sha256(s);
        shaMain.push(performance.now() - t);
        shaPool.push(await viaDaemon(daemon, { items: strings, operation: 'sha256', batch_size: 500, max_concurrent: 2 * cores }));
      }
      out.sha256 = {
        items: strings.length,
        main_items_s: strings.length / (best(shaMain) / 1000),
        daemon_items_s: strings.length / (best(shaPool) / 1000),
        ratio: best(shaMain) / best(shaPool),
      };
      // 100k `double` items: one task per item vs one per 1000.
      const numbers = Array.from({ length: 100_000 }, (_, k) => k);
      const one = await viaDaemon(daemon, { items: numbers, operation: 'double', batch_size: 1, max_concurrent: 4 * cores });
      const thousand = await viaDaemon(daemon, { items: numbers, operation: 'double', batch_size: 1000, max_concurrent: 4 * cores });
      out.double_100k = { batch_size_1_ms: one, batch_size_1000_ms: thousand, per_task_overhead_us: ((one - thousand) * 1000) / (numbers.length - 100) };
    }
    await daemon.stop();
    daemon = undefined;
  }
  out.pools = pools;

  const s = out.sha256 as { main_items_s: number; daemon_items_s: number; ratio: number };
  const d1 = out.double_100k as { batch_size_1_ms: number; batch_size_1000_ms: number; per_task_overhead_us: number };
  process.stdout.write(`${cores} cores; tree: ${FILES} files of ${FILE_SIZE / 1024} KiB = ${totalMiB} MiB; best of ${ROUNDS}\n`);
  for (const [name, v] of Object.entries(pools) as Array<[string, { hash_file: Awaited<ReturnType<typeof hashRatio>>; health: Awaited<ReturnType<typeof healthUnderJob>> }]>) {
    const h = v.hash_file;
    const g = v.health;
    process.stdout.write(
      `${name}:\n  hash_file  main-thread loop ${fmt(h.main_items_s)} items/s (${fmt(h.main_mib_s)} MiB/s); daemon ${fmt(h.daemon_items_s)} items/s (${fmt(h.daemon_mib_s)} MiB/s): ${h.ratio.toFixed(2)}x\n` +
        `  /health    idle p50 ${fmt(g.idle.p50, 2)} p99 ${fmt(g.idle.p99, 2)} ms; during a hash_file job p50 ${fmt(g.busy.p50, 2)} p99 ${fmt(g.busy.p99, 2)} max ${fmt(g.busy.max, 1)} ms (${g.busy.n} requests; the job ${fmt(g.job_mib_s)} MiB/s)\n`,
    );
  }
  process.stdout.write(`sha256     20k x 1 KiB strings: main-thread loop ${fmt(s.main_items_s)} items/s; daemon ${fmt(s.daemon_items_s)} items/s: ${s.ratio.toFixed(2)}x\n`);
  process.stdout.write(
    `double     100k items: batch_size 1 ${fmt(d1.batch_size_1_ms)} ms, batch_size 1000 ${fmt(d1.batch_size_1000_ms)} ms (~${fmt(d1.per_task_overhead_us, 1)} µs per task)\n`,
  );
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
}
