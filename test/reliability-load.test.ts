// Load: 50 concurrent clients for 30 s against the daemon as a separate process with its default limits, in a
// mix of reads (/files/read, /git/status, /health, /optimization/stats), writes (/files/write) and small
// batches. No request may fail (not even 429), and the daemon's RSS may not grow by 10% or more between the
// second 10 s and the last 10 s. The figures are printed as test comments.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { Agent, request } from 'undici';
import { percentile } from '../src/measure.js';
import { cleanEnv, tempDir } from './helpers/daemon.js';
import { git, isolateGit, makeRepo, write } from './helpers/git.js';
import { launchDaemon } from './helpers/processes.js';

const CLIENTS = 50;
const SECONDS = Number(process.env.HEARTH_LOAD_SECONDS ?? 30);

t.setTimeout((SECONDS + 90) * 1000);

isolateGit();
const root = tempDir('hearth-load-');
const repo = makeRepo(root, 'repo');
for (let i = 0; i < 100; i++) write(repo, `src/d${i % 10}/f${i}.txt`, `line ${i}\n`.repeat(30));
git(repo, 'add', '.');
git(repo, 'commit', '-qm', 'first');
write(repo, 'src/d0/f0.txt', 'changed\n');
const readable = Array.from({ length: 20 }, (_, i) => join(root, `read-${i}.txt`));
for (const [i, f] of readable.entries()) writeFileSync(f, `read ${i}\n`.repeat(500));
const writable = Array.from({ length: 10 }, (_, i) => join(root, `write-${i}.txt`));
for (const f of writable) writeFileSync(f, 'initial\n');

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

t.test(`${CLIENTS} clients for ${SECONDS} s of mixed requests: no errors, RSS flat`, async (t) => {
  const stateDir = tempDir('hearth-load-state-');
  const config = join(stateDir, 'config.json');
  writeFileSync(config, JSON.stringify({ log: { level: 'warn' }, plugins: { files: { roots: [root] }, git: { roots: [root] }, batch: { roots: [root] } } }));
  const daemon = await launchDaemon(t, ['--state-dir', stateDir, '--port', '0', '--config', config], cleanEnv({ HEARTH_LOG_LEVEL: 'info' }));
  const agent = new Agent({ connect: { socketPath: join(stateDir, 'hearth.sock') }, connections: CLIENTS });
  t.teardown(() => agent.close());

  const q = encodeURIComponent;
  const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
  type Op = [name: string, weight: number, make: () => { method: 'GET' | 'POST'; path: string; body?: unknown }];
  const ops: Op[] = [
    ['files.read', 25, () => ({ method: 'GET', path: `/files/read?path=${q(pick(readable))}` })],
    ['git.status', 20, () => ({ method: 'GET', path: `/git/status?repo=${q(repo)}` })],
    ['health', 15, () => ({ method: 'GET', path: '/health' })],
    ['stats', 10, () => ({ method: 'GET', path: '/optimization/stats' })],
    ['files.write', 15, () => ({ method: 'POST', path: '/files/write', body: { path: pick(writable), content: `v ${Math.random()}\n`.repeat(1 + Math.floor(Math.random() * 50)) } })],
    ['git.summary', 5, () => ({ method: 'GET', path: `/git/summary?repo=${q(repo)}` })],
    ['batch.process', 10, () => ({ method: 'POST', path: '/batch/process', body: { operation: pick(['double', 'sha256']), items: Array.from({ length: 20 }, (_, i) => i) } })],
  ];
  // sha256 wants strings: make its items so.
  const totalWeight = ops.reduce((a, o) => a + o[1], 0);
  const choose = (): Op => {
    let x = Math.random() * totalWeight;
    for (const op of ops) if ((x -= op[1]) < 0) return op;
    return ops[0]!;
  };

  const latencies: number[] = [];
  const perOp = new Map<string, number[]>();
  const errors: string[] = [];
  const rss: Array<{ t: number; kib: number }> = [];
  const start = performance.now();
  const end = start + SECONDS * 1000;
  const sampler = setInterval(() => rss.push({ t: (performance.now() - start) / 1000, kib: rssKiB(daemon.pid) }), 250);

  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        const [name, , make] = choose();
        const req = make();
        if (name === 'batch.process' && (req.body as { operation: string }).operation === 'sha256') {
          (req.body as { items: unknown[] }).items = (req.body as { items: number[] }).items.map(String);
        }
        const t0 = performance.now();
        try {
          const res = await request(`http://localhost${req.path}`, {
            method: req.method,
            dispatcher: agent,
            headers: req.body ? { 'content-type': 'application/json' } : {},
            ...(req.body ? { body: JSON.stringify(req.body) } : {}),
            headersTimeout: 30_000,
            bodyTimeout: 30_000,
          });
          const text = await res.body.text();
          latencies.push(performance.now() - t0);
          if (!perOp.has(name)) perOp.set(name, []);
          perOp.get(name)!.push(performance.now() - t0);
          if (res.statusCode !== 200) errors.push(`${name}: ${res.statusCode} ${text.slice(0, 200)}`);
        } catch (err) {
          errors.push(`${name}: ${(err as Error).message}`);
        }
      }
    }),
  );
  clearInterval(sampler);
  const seconds = (performance.now() - start) / 1000;
  const sorted = [...latencies].sort((a, b) => a - b);
  const second = rss.filter((s) => s.t >= SECONDS / 3 && s.t < (2 * SECONDS) / 3).map((s) => s.kib);
  const last = rss.filter((s) => s.t >= (2 * SECONDS) / 3).map((s) => s.kib);
  const growth = (avg(last) - avg(second)) / avg(second);

  t.same(errors.slice(0, 10), [], `no errors (${errors.length} in all)`);
  t.ok(latencies.length > 1000, `${latencies.length} requests answered`);
  t.ok(growth < 0.1, `RSS growth between the second and the last third: ${(growth * 100).toFixed(1)}% (< 10%)`);
  t.comment(
    `load: ${latencies.length} requests in ${seconds.toFixed(1)} s (${Math.round(latencies.length / seconds)} req/s), ${CLIENTS} clients; ` +
      `p50 ${percentile(sorted, 0.5).toFixed(2)} ms, p99 ${percentile(sorted, 0.99).toFixed(2)} ms, max ${sorted[sorted.length - 1]?.toFixed(1)} ms; ` +
      `per op (count p50/p99 ms): ${[...perOp].map(([n, xs]) => {
        const s = xs.sort((a, b) => a - b);
        return `${n} ${s.length} ${percentile(s, 0.5).toFixed(1)}/${percentile(s, 0.99).toFixed(1)}`;
      }).join(', ')}`,
  );
  t.comment(
    `load: RSS ${Math.round(rss[0]?.kib ?? 0) / 1024 | 0} MiB at start, avg ${(avg(second) / 1024).toFixed(1)} MiB in the second third, ` +
      `${(avg(last) / 1024).toFixed(1)} MiB in the last, max ${(Math.max(...rss.map((s) => s.kib)) / 1024).toFixed(1)} MiB; growth ${(growth * 100).toFixed(1)}%`,
  );
  const health = await request('http://localhost/health', { dispatcher: agent });
  t.equal(health.statusCode, 200, 'the daemon answers after');
  await health.body.text();
  daemon.child.kill('SIGTERM');
  t.equal(await daemon.exited, 0, 'and closes cleanly');
});
