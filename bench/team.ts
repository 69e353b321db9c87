// Team setup (one Redis, several daemons), measured in one run against the single-machine baselines:
// (1) per-chunk cost of a job through the BullMQ queue vs the same job on the local queue, built daemons
//     (dist/), rounds interleaved, and the same job with two daemons on the queue;
// (2) a read answered by the shared tier (Redis) vs one answered by the SQLite level, through CacheService
//     with level 1 empty for each key (each key read once per service), interleaved.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { percentile } from '../src/measure.js';
import { CacheService } from '../src/services/cache.js';
import { SharedTier } from '../src/services/shared-tier.js';
import { startBenchDaemon, type BenchDaemon } from './lib/daemon.js';
import { startBenchRedis } from './lib/redis.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ITEMS = Number(process.env.BENCH_ITEMS ?? 600);
const KEYS = Number(process.env.BENCH_KEYS ?? 1000);
const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.5);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Redis's own count of commands processed and its CPU seconds (user + sys), from INFO. */
function redisLoad(socket: string): { commands: number; cpu: number } {
  const info = spawnSync('redis-cli', ['-s', socket, 'INFO'], { encoding: 'utf8' }).stdout;
  const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return { commands: field('total_commands_processed'), cpu: field('used_cpu_user') + field('used_cpu_sys') };
}

const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-team-'));
let redis;
try {
  redis = await startBenchRedis(dir);
} catch (err) {
  process.stderr.write(`bench team: ${(err as Error).message}\n`);
  process.exit(2);
}
const socket = redis.socket;

interface JobAnswer {
  status: string;
  ran_on?: Record<string, number>;
}

/** Wall time (ms) of one `double` job of ITEMS items in chunks of `batchSize`, submitted to `d`. */
async function job(d: BenchDaemon, batchSize: number): Promise<{ ms: number; ranOn: Record<string, number> | undefined }> {
  const items = Array.from({ length: ITEMS }, (_, i) => i);
  const start = performance.now();
  const { job_id } = await d.client.call<{ job_id: string }>('POST', '/batch/jobs', { operation: 'double', items, batch_size: batchSize, max_concurrent: 8 });
  for (;;) {
    const j = await d.client.call<JobAnswer>('GET', `/batch/jobs/${job_id}`);
    if (j.status === 'completed') return { ms: performance.now() - start, ranOn: j.ran_on };
    if (j.status !== 'queued' && j.status !== 'running') throw new Error(`job ${job_id} ${j.status}`);
    await sleep(5);
  }
}

async function daemon(name: string, batch: object): Promise<BenchDaemon> {
  const work = join(dir, name);
  mkdirSync(work, { recursive: true });
  return startBenchDaemon(work, { files: false, git: false, dashboard: false, batch });
}

const local = await daemon('local', {});
const queued = await daemon('queue', { queue: { socket } });
const rows: string[] = [];
let perChunk = { commands: 0, cpuUs: 0 };
try {
  for (const batchSize of [1, 50]) {
    const chunks = Math.ceil(ITEMS / batchSize);
    const times = { local: [] as number[], queue: [] as number[] };
    await job(local, batchSize); // warm: threads started, modules loaded
    await job(queued, batchSize);
    for (let r = 0; r < ROUNDS; r++) {
      times.local.push((await job(local, batchSize)).ms);
      const before = redisLoad(socket);
      times.queue.push((await job(queued, batchSize)).ms);
      const after = redisLoad(socket);
      if (batchSize === 1) {
        perChunk.commands += (after.commands - before.commands) / chunks / ROUNDS;
        perChunk.cpuUs += ((after.cpu - before.cpu) * 1e6) / chunks / ROUNDS;
      }
    }
    const l = median(times.local);
    const q = median(times.queue);
    rows.push(
      `| ${ITEMS} items, batch_size ${batchSize} (${chunks} chunks) | ${l.toFixed(0)} ms (${((l / chunks) * 1000).toFixed(0)} µs/chunk) | ${q.toFixed(0)} ms (${((q / chunks) * 1000).toFixed(0)} µs/chunk) | +${(((q - l) / chunks) * 1000).toFixed(0)} µs/chunk, ${(q / l).toFixed(2)}x |`,
    );
  }
  // A second daemon on the queue: the same job shared by both.
  const second = await daemon('queue2', { queue: { socket } });
  try {
    const two: number[] = [];
    let split: Record<string, number> | undefined;
    for (let r = 0; r < ROUNDS; r++) {
      const res = await job(queued, 1);
      two.push(res.ms);
      split = res.ranOn;
    }
    rows.push(`| ${ITEMS} chunks, two daemons on the queue | | ${median(two).toFixed(0)} ms | ran_on ${JSON.stringify(Object.values(split ?? {}))} |`);
  } finally {
    await second.stop();
  }
} finally {
  await Promise.all([local.stop(), queued.stop()]);
}

process.stdout.write(`\nbatch jobs, local queue vs BullMQ queue (built daemons, medians of ${ROUNDS} rounds, interleaved)\n`);
process.stdout.write('| job | local | through the queue | queue overhead |\n|---|---|---|---|\n');
for (const row of rows) process.stdout.write(`${row}\n`);
process.stdout.write(
  `Redis per chunk (batch_size 1, one daemon, idle traffic included): ${perChunk.commands.toFixed(1)} commands, ${perChunk.cpuUs.toFixed(0)} µs of Redis CPU -> one Redis core tops out near ${Math.round(1e6 / perChunk.cpuUs)} chunks/s\n`,
);

// (2) Shared tier vs SQLite level, one key per read, level 1 empty for it.
const value = (i: number) => ({ sha256: 'ab'.repeat(32), size: i });
const secret = Buffer.from('bench-secret-0123456789abcdef');
const target = { kind: 'socket' as const, path: socket };
const seed = await CacheService.open({ ttl_seconds: 3600, max_size: 10, store: 'sqlite', max_store_entries: 100_000, stateDir: dir });
for (let i = 0; i < KEYS; i++) await seed.set('bench', `k${i}`, value(i));
await seed.close();
const writer = await SharedTier.open({ target, secret, timeoutMs: 1000, ttlSeconds: 3600 });
await writer.setMany(Array.from({ length: KEYS }, (_, i) => [`bench:k${i}`, value(i)] as [string, unknown]));
await writer.close();

const sqlite = await CacheService.open({ ttl_seconds: 3600, max_size: KEYS * 2, store: 'sqlite', max_store_entries: 100_000, stateDir: dir });
const tier = await SharedTier.open({ target, secret, timeoutMs: 1000, ttlSeconds: 3600 });
const sharedOnly = await CacheService.open({ ttl_seconds: 3600, max_size: KEYS * 2, store: 'memory', max_store_entries: 1, sharedTier: tier });
const l2: number[] = [];
const l3: number[] = [];
for (let i = 0; i < KEYS; i++) {
  let t0 = performance.now();
  const a = await sqlite.get('bench', `k${i}`);
  l2.push((performance.now() - t0) * 1000);
  t0 = performance.now();
  const [b] = await sharedOnly.sharedGet('bench', [`k${i}`]);
  l3.push((performance.now() - t0) * 1000);
  if (a === undefined || b === undefined) throw new Error(`key k${i} missing (sqlite ${a !== undefined}, shared ${b !== undefined})`);
}
const stats = tier.stats();
await Promise.all([sqlite.close(), sharedOnly.close()]);
await redis.stop();
rmSync(dir, { recursive: true, force: true });

const p = (xs: number[], q: number) => percentile([...xs].sort((a, b) => a - b), q);
process.stdout.write(`\none cache read, level 1 empty for the key (${KEYS} keys each, interleaved)\n`);
process.stdout.write('| answered by | p50 | p95 |\n|---|---|---|\n');
process.stdout.write(`| SQLite level (level 2) | ${p(l2, 0.5).toFixed(0)} µs | ${p(l2, 0.95).toFixed(0)} µs |\n`);
process.stdout.write(`| shared tier (Redis, unix socket, signed) | ${p(l3, 0.5).toFixed(0)} µs | ${p(l3, 0.95).toFixed(0)} µs |\n`);
process.stdout.write(`shared/sqlite at p50: ${(p(l3, 0.5) / p(l2, 0.5)).toFixed(2)}x; tier hits ${stats.hits}, bad signatures ${stats.bad_signatures}\n`);
