// GET /files/read end to end over the unix socket: warm (a cache hit after the stat check) and uncached
// (a file whose mtime sits in the racy window, so every request reads and hashes it again), beside
// reading the file with fs.readFile in a fresh `node` process (what a tool without a daemon pays).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../src/client.js';
import { percentile, round, sampleMs } from '../src/measure.js';
import { startChild, waitForHealth } from './lib/proc.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const PROCESSES = Number(process.env.BENCH_PROCESSES ?? 20);
const SIZE = 64 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-files-'));
const files = join(dir, 'files');
const state = join(dir, 'state');
execFileSync('mkdir', ['-p', files, state]);
const stable = join(files, 'stable.ts');
const racy = join(files, 'racy.ts');
const text = 'export const line = "the quick brown fox jumps over the lazy dog";\n'.repeat(SIZE / 64).slice(0, SIZE);
writeFileSync(stable, text);
writeFileSync(racy, text);
const hourAgo = new Date(Date.now() - 3_600_000);
utimesSync(stable, hourAgo, hourAgo);
const inAnHour = new Date(Date.now() + 3_600_000); // always within the racy window: never served from cache
utimesSync(racy, inAnHour, inAnHour);
writeFileSync(join(dir, 'config.json'), JSON.stringify({ log: { level: 'warn' }, plugins: { files: { roots: [files] } } }));

const socket = join(state, 'hearth.sock');
const daemon = startChild(process.execPath, [join(root, 'dist/src/cli.js'), 'daemon', '--config', join(dir, 'config.json'), '--state-dir', state, '--port', '0'], {
  env: { ...process.env, HEARTH_LOG_LEVEL: 'warn' },
});
const client = new Client({ socket });

function stats(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 0.5)), p99: round(percentile(sorted, 0.99)) };
}

async function requests(path: string, expectCached: boolean): Promise<{ p50: number; p99: number }> {
  const samples = await sampleMs(REQUESTS, async (i) => {
    const answer = await client.call<{ cached: boolean; size: number }>('GET', `/files/read?path=${encodeURIComponent(path)}`);
    if (i > 0 && answer.cached !== expectCached) throw new Error(`${path}: cached=${answer.cached}, expected ${expectCached}`);
  });
  return stats(samples);
}

try {
  await waitForHealth(client, daemon);
  const warm = await requests(stable, true);
  const uncached = await requests(racy, false);
  const fresh = await sampleMs(PROCESSES, () => execFileSync(process.execPath, ['-e', `require('fs').readFileSync(${JSON.stringify(stable)})`]));
  const proc = stats(fresh);
  const rows: Array<[string, { p50: number; p99: number }]> = [
    ['hearth GET /files/read, warm (64 KiB)', warm],
    ['hearth GET /files/read, uncached', uncached],
    ['fs.readFile in a fresh node process', proc],
  ];
  process.stdout.write(`${'case'.padEnd(40)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}\n`);
  for (const [name, s] of rows) process.stdout.write(`${name.padEnd(40)} ${String(s.p50).padStart(8)} ${String(s.p99).padStart(8)}\n`);
  process.stdout.write(`warm vs fresh process: ${(proc.p50 / warm.p50).toFixed(1)}x faster; warm vs uncached: ${(uncached.p50 / warm.p50).toFixed(1)}x faster\n`);
  process.stdout.write(`${JSON.stringify({ warm_ms: warm, uncached_ms: uncached, fresh_process_ms: proc })}\n`);
} finally {
  await client.close();
  await daemon.stop();
  rmSync(dir, { recursive: true, force: true });
}
