// `hearth demo` as the real CLI against a daemon with files, git and batch on a temp root and a 1 s circuit
// breaker timeout: it exits 0 and its JSON has every section with numbers, the breaker going OPEN then CLOSED.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { bootDaemon, runCli, tempDir } from './helpers/daemon.js';

const root = tempDir('hearth-demo-root-');
const d = await bootDaemon({
  config: {
    circuit_breaker: { failure_threshold: 3, reset_timeout_seconds: 1 },
    plugins: { files: { roots: [root] }, git: { roots: [root] }, batch: { roots: [root] } },
  },
});
t.teardown(() => d.close());

const isNumber = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

t.test('hearth demo measures every feature and writes them to JSON', async (t) => {
  const out = join(tempDir('hearth-demo-out-'), 'results.json');
  const res = await runCli(['demo', '--socket', d.socket, '--out', out, '--workdir', root, '--concurrency', '20'], undefined, 120_000);
  t.equal(res.code, 0, `exit 0\n${res.stderr}`);
  t.ok(existsSync(out), 'the JSON file is written');
  const r = JSON.parse(readFileSync(out, 'utf8'));
  for (const section of ['optimization_stats', 'cached_operations', 'lazy_loading', 'circuit_breaker', 'batch_processing', 'cache_operations', 'concurrent_requests', 'performance_comparison']) {
    t.ok(r[section], `section ${section}`);
  }
  t.ok(isNumber(r.optimization_stats.latency.p50_ms));
  t.ok(isNumber(r.cached_operations.files_read.cold_ms));
  t.equal(r.cached_operations.files_read.cold_cached, false, 'the first read is cold');
  t.equal(r.cached_operations.files_read.warm_cached, true, 'later reads are warm');
  t.equal(r.cached_operations.git_status.warm_cached, true);
  t.ok(isNumber(r.lazy_loading.git_status.first_ms) && isNumber(r.lazy_loading.git_status.later.p50_ms));
  t.equal(r.lazy_loading.git_status.first_cached, false, 'the first status builds the state');

  const cb = r.circuit_breaker;
  t.equal(cb.reset_timeout_seconds, 1, 'the timeout is read from the daemon');
  t.ok(cb.git_failed.count >= 3 && isNumber(cb.git_failed.latency.p50_ms), '502 GIT_FAILED first');
  t.ok(cb.circuit_open.count >= 1 && isNumber(cb.circuit_open.latency.p50_ms), 'then 503 CIRCUIT_OPEN');
  t.ok(cb.states.includes('OPEN'), 'the breaker opened');
  t.equal(cb.states[cb.states.length - 1], 'CLOSED', 'and closed again');
  t.ok(cb.states.indexOf('OPEN') < cb.states.lastIndexOf('CLOSED'), 'OPEN then CLOSED');
  t.equal(cb.recovered, true);
  t.equal(cb.final_state, 'CLOSED');

  for (const size of ['1', '10', '100', '1000']) {
    t.ok(isNumber(r.batch_processing.double_1000_by_batch_size[size].ms), `batch_size ${size} timed`);
    t.equal(r.batch_processing.double_1000_by_batch_size[size].correct, true);
  }
  t.equal(r.batch_processing.sha256_500.processed_items, 500);
  t.ok(r.cache_operations.size_before > 0 && isNumber(r.cache_operations.size_after));
  t.ok(r.cache_operations.size_after < r.cache_operations.size_before, 'the clear empties the cache');
  t.equal(r.concurrent_requests.health.errors, 0);
  t.equal(r.concurrent_requests.git_status.errors, 0);
  t.ok(isNumber(r.concurrent_requests.health.requests_per_second) && isNumber(r.concurrent_requests.health.p99_ms));
  t.ok(isNumber(r.performance_comparison.git_status.speedup));
  t.ok(isNumber(r.performance_comparison.files_read.speedup_vs_process));
  t.match(res.stdout, /circuit breaker/, 'a summary table');
  t.match(res.stdout, /cache entries \/ hit rate\s+\d+ \/ (\d{1,3}\.\d%|n\/a)\n/, 'the hit rate as a percentage with one decimal');
  t.notMatch(res.stdout, /\d\.\d{5,}/, 'no number printed with a long tail of digits');
  t.same(readdirSync(root).filter((n) => n.startsWith('hearth-demo-')), [], 'the work dir is removed');
  t.comment(res.stdout);
});
