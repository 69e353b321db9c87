// The client library (`@hearthd/hearth/client`) against real daemons: every built-in route through its typed
// method, errors, TCP with and without the token, subscribe() across a cut connection and a restart, the
// generated types checked against the daemon's schemas, and the CLI's `events` and `wait`.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import t from 'tap';
import { ApiError, connect, DaemonNotRunningError, ROUTES, type HearthClient, type HearthEvent, type RouteSpec } from '../src/client/index.js';
import { stopDaemon } from '../src/cli/connect.js';
import { locateDaemon } from '../src/config-source.js';
import { generate, OUTPUT } from '../src/client/generate.js';
import { bootDaemon, cleanEnv, cliPath, root as checkout, runCli, tempDir, type TestDaemon } from './helpers/daemon.js';
import { commitAll, isolateGit, makeRepo, write } from './helpers/git.js';

t.setTimeout(240_000);

const flood = join(import.meta.dirname, 'fixtures/plugins/event-flood/index.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, check: () => T | Promise<T>, ms = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** How many streams the daemon's bus feeds now. */
async function subscribers(client: HearthClient): Promise<number> {
  const stats = (await client.optimizationStats()) as { events?: { subscribers?: number } };
  return stats.events?.subscribers ?? 0;
}

/** Publishes `count` events of `type` through the event-flood fixture plugin (an external plugin: call()). */
const publish = (client: HearthClient, type: string, count: number) => client.call('POST', '/event-flood', { type, count, bytes: 0 });

/** Reads `n` events from an iterator. */
async function take(it: AsyncIterator<HearthEvent>, n: number): Promise<HearthEvent[]> {
  const out: HearthEvent[] = [];
  while (out.length < n) {
    const next = await it.next();
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

isolateGit();
const home = realpathSync(tempDir('hearth-client-'));
const repo = makeRepo(home, 'repo');
write(repo, 'a.txt', 'one\n');
commitAll(repo, 'first');
const files = join(home, 'files');
mkdirSync(files);
writeFileSync(join(files, 'f.txt'), 'hello\n');

const d: TestDaemon = await bootDaemon({
  config: {
    pool: { max_threads: 1 },
    plugins: { git: { roots: [home] }, files: { roots: [home] }, batch: { roots: [home] }, dashboard: {}, 'event-flood': { module: flood } },
  },
});
t.teardown(() => d.close());

t.test('every route of the built-in plugins through its typed method', async (t) => {
  const client = await connect({ stateDir: d.stateDir });
  t.teardown(() => client.close());
  const called = new Set<string>();
  const invoke = client.invoke.bind(client);
  client.invoke = (route: RouteSpec, args?: Record<string, unknown>) => {
    called.add(`${route.method} ${route.path}`);
    return invoke(route, args);
  };

  const health = await client.health();
  t.equal(health.status, 'ok');
  t.ok(Array.isArray(await client.plugins()));
  t.equal((await client.openapiJson()).openapi, '3.1.0');
  t.match(await client.metrics(), /# HELP/);
  t.ok(await client.optimizationStats());
  t.match(await client.postCacheClear({ namespace: 'files' }), { cleared: Number });

  const status = await client.gitStatus({ repo });
  t.equal(status.branch, 'main');
  t.equal((await client.postGitStatus({ repo })).branch, 'main');
  t.match(await client.gitSummary({ repo }), { branch: 'main' });
  t.match(await client.postGitBranches({ repo, branch_name: 'topic' }), { name: 'topic' });
  const branches = await client.gitBranches({ repo });
  t.same(branches.branches.map((b) => b.name), ['main', 'topic']);
  t.match(await client.postGitCheckout({ repo, branch_name: 'topic' }), { branch: 'topic' });
  await client.postGitCheckout({ repo, branch_name: 'main' });
  t.match(await client.deleteGitBranches({ repo, branch_name: 'topic' }), { deleted: true });
  const log = await client.gitLog({ repo, limit: 5 });
  t.equal(log[0]?.message, 'first\n');

  const path = join(files, 'f.txt');
  t.match(await client.filesRead({ path }), { content: 'hello\n' });
  t.equal((await client.filesRaw({ path })).toString(), 'hello\n');
  t.match(await client.filesStat({ path }), { size: 6 });
  t.match(await client.postFilesHash({ paths: [path] }), [{ path }]);
  const watching = await client.filesChanges({ root: files });
  t.equal(watching.is_fresh_instance, true, 'the first query for a root starts its watch');
  t.ok(await client.postFilesWrite({ path: join(files, 'g.txt'), content: 'written\n' }));
  const changes = await client.filesChanges({ root: files, since: watching.clock });
  t.same(changes.changes.map((c) => [c.path, c.type]), [[join(files, 'g.txt'), 'added']], 'the write, typed (its temp file is no change)');

  t.ok(await client.batchOperations());
  t.match(await client.postBatchProcess({ items: [1, 2], operation: 'double' }), { results: [2, 4] });
  const job = (await client.postBatchJobs({ items: [1, 2, 3], operation: 'double' })) as { job_id: string };
  const progress: string[] = [];
  for await (const event of client.batchJobsByIdEvents({ id: job.job_id })) progress.push(event.type);
  t.equal(progress.at(-1), 'batch.job.finished', 'the job stream ends with batch.job.finished');
  t.match(await client.batchJobsById({ id: job.job_id }), { status: 'completed' });
  t.ok(Array.isArray(await client.batchJobs()));
  t.match(await client.deleteBatchJobsById({ id: job.job_id }), { status: 'completed' });

  t.match(await client.gitRepos(), [{ repo, branch: 'main', warm: true }]);
  t.match(await client.ui(), /<html/);
  for (const file of [client.uiAppJs(), client.uiAppCss(), client.uiUPlotIifeMinJs(), client.uiUPlotMinCss()]) t.ok((await file).length > 100);
  const { url } = await client.postUiLoginUrl();
  t.match(url, /\/ui\/login\?once=/);
  await t.rejects(client.uiLogin({ once: 'not-a-secret' }), { status: 403 }, 'a secret that is not one');
  await t.rejects(client.uiSession(), { status: 401, code: 'UNAUTHORIZED' }, 'no session on the socket');
  t.same(await client.postUiLogout(), { ended: false });

  // The typed /events stream: one stream, no reconnection (subscribe() is the one that reconnects).
  const stream = client.events({ type: 'client.typed' });
  const first = stream.next();
  await waitFor('the stream to subscribe', async () => (await subscribers(client)) > 0);
  await publish(client, 'client.typed', 1);
  t.match((await first).value, { type: 'client.typed', n: 0 });
  await stream.return?.();

  const missing = Object.values(ROUTES as Record<string, RouteSpec>)
    .map((r) => `${r.method} ${r.path}`)
    .filter((r) => !called.has(r));
  t.same(missing, [], 'every route was called through its typed method');
});

t.test('errors: one class, ApiError, with code, status and details', async (t) => {
  const client = await connect({ stateDir: d.stateDir });
  t.teardown(() => client.close());
  const err = await client.postBatchProcess({ items: [1], operation: 'no-such-op' }).catch((e: unknown) => e);
  t.ok(err instanceof ApiError);
  t.match(err, { code: 'VALIDATION_FAILED', status: 400, details: [{ path: '/operation' }] });
  const outside = await client.gitStatus({ repo: '/' }).catch((e: unknown) => e);
  t.match(outside, { code: 'PATH_OUTSIDE_ROOTS', status: 403 });

  const nowhere = await connect({ stateDir: tempDir() });
  const down = await nowhere.health().catch((e: unknown) => e);
  t.ok(down instanceof DaemonNotRunningError && down instanceof ApiError, 'not running is an ApiError too');
  t.match(down, { code: 'DAEMON_NOT_RUNNING', status: 0 });
  const sub = await nowhere.subscribe({ signal: AbortSignal.timeout(300) }).next();
  t.equal(sub.done, true, 'a subscription to nothing keeps trying until its signal ends it');
  await nowhere.close();
});

t.test('connect({ start: true }) starts the daemon in the background on the first request', async (t) => {
  const stateDir = tempDir();
  const config = join(stateDir, 'config.json');
  writeFileSync(config, JSON.stringify({ server: { port: 0 }, plugins: { files: false, git: false, batch: false } }));
  t.teardown(async () => {
    await stopDaemon(locateDaemon({ stateDir, config }));
  });
  const client = await connect({ stateDir, config, start: true });
  t.teardown(() => client.close());
  t.equal((await client.health()).status, 'ok');
  t.ok(existsSync(join(stateDir, 'hearth.pid')), 'a daemon of that state dir runs');
});

t.test('TCP: with the token from the state dir, and without it', async (t) => {
  const client = await connect({ url: d.url, stateDir: d.stateDir });
  t.teardown(() => client.close());
  t.match(await client.gitSummary({ repo }), { branch: 'main' });
  const events = client.subscribe({ types: ['client.tcp'] });
  const first = events.next();
  await waitFor('the TCP stream', async () => (await subscribers(client)) > 0);
  await publish(client, 'client.tcp', 1);
  t.match((await first).value, { type: 'client.tcp' });
  await events.return(undefined);

  const anonymous = await connect({ url: d.url, stateDir: tempDir() });
  t.equal((await anonymous.health()).status, 'ok', '/health needs no token');
  t.match(await anonymous.plugins().catch((e: unknown) => e), { name: 'ApiError', code: 'UNAUTHORIZED', status: 401 });
  t.match(await anonymous.subscribe().next().catch((e: unknown) => e), { code: 'UNAUTHORIZED', status: 401 }, 'a refused subscription throws, it does not retry');
  await anonymous.close();
  const wrong = await connect({ url: d.url, token: 'not-the-token' });
  t.match(await wrong.plugins().catch((e: unknown) => e), { code: 'UNAUTHORIZED' });
  await wrong.close();
});

t.test('subscribe(): a connection cut mid-stream resumes after the last event seen, nothing lost or repeated', async (t) => {
  // A TCP proxy in front of the daemon: cutting its connections is the server side going away.
  const open = new Set<Socket>();
  const proxy = createServer((down) => {
    const up = netConnect(d.port, '127.0.0.1');
    open.add(down);
    down.pipe(up).pipe(down);
    const gone = () => {
      open.delete(down);
      down.destroy();
      up.destroy();
    };
    down.on('close', gone).on('error', gone);
    up.on('close', gone).on('error', gone);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => proxy.close(() => r())));
  const port = (proxy.address() as { port: number }).port;
  const client = await connect({ url: `http://127.0.0.1:${port}`, token: d.token });
  const direct = await connect({ stateDir: d.stateDir });
  t.teardown(async () => {
    await client.close();
    await direct.close();
  });

  const it = client.subscribe({ types: ['client.cut'] });
  const first = it.next();
  await waitFor('the stream', async () => (await subscribers(direct)) > 0);
  await publish(direct, 'client.cut', 5);
  const seen = [(await first).value as HearthEvent, ...(await take(it, 4))];
  for (const s of open) s.destroy();
  // Published while the client is away (it waits 100 ms before reconnecting).
  await publish(direct, 'client.cut', 5);
  const pending = take(it, 10);
  await sleep(300);
  await publish(direct, 'client.cut', 5);
  seen.push(...(await pending));
  t.same(seen.map((e) => e.n), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4], 'every event once, in order');
  const counters = seen.map((e) => Number(e.id.split(':')[2]));
  t.ok(counters.every((n, i) => i === 0 || n > counters[i - 1]!), 'clocks only go up');
  t.equal(new Set(seen.map((e) => e.id)).size, 15);
  await it.return(undefined);
  await waitFor('the stream to close', async () => (await subscribers(direct)) === 0);
});

t.test('subscribe(): across a daemon restart, reconnects and yields reset', async (t) => {
  const config = { plugins: { 'event-flood': { module: flood } } };
  let small = await bootDaemon({ config });
  t.teardown(() => small.close());
  const client = await connect({ stateDir: small.stateDir });
  t.teardown(() => client.close());
  const controller = new AbortController();
  const it = client.subscribe({ types: ['client.restart'], signal: controller.signal });
  const first = it.next();
  await waitFor('the stream', async () => (await subscribers(client)) > 0);
  await publish(client, 'client.restart', 1);
  const before = (await first).value as HearthEvent;
  const next = it.next();
  await small.close();
  await sleep(300);
  small = await bootDaemon({ config, stateDir: small.stateDir });
  const reset = (await next).value as HearthEvent;
  t.match(reset, { type: 'reset', is_fresh_instance: true });
  t.not(reset.clock.split(':')[1], before.clock.split(':')[1], 'the clock of the new instance');
  const after = it.next();
  await publish(client, 'client.restart', 1);
  t.match((await after).value, { type: 'client.restart', n: 0 });
  const ended = it.next();
  controller.abort();
  t.equal((await ended).done, true, 'the signal ends the iteration');
  await waitFor('the stream to close', async () => (await subscribers(client)) === 0);
});

t.test('the generated types are those of the route schemas', async (t) => {
  t.equal(await generate(), readFileSync(OUTPUT, 'utf8'), 'src/client/routes.gen.ts is up to date (npm run gen:client)');
});

t.test('the package by name, from a project that depends on the checkout', async (t) => {
  const dist = join(checkout, 'dist/src/client/index.js');
  if (!existsSync(dist)) {
    t.pass('the package by name', { skip: 'dist/ is not built (npm run build)' });
    return;
  }
  // What `"@hearthd/hearth": "file:../hearth"` installs: a link to the checkout.
  const project = tempDir('hearth-dep-');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'dep', type: 'module', dependencies: { '@hearthd/hearth': `file:${checkout}` } }));
  mkdirSync(join(project, 'node_modules/@hearthd'), { recursive: true });
  symlinkSync(checkout, join(project, 'node_modules/@hearthd/hearth'));
  writeFileSync(
    join(project, 'main.mjs'),
    "import { connect, ApiError } from '@hearthd/hearth/client';\n" +
      'const client = await connect({ stateDir: process.argv[2] });\n' +
      'const health = await client.health();\n' +
      "const err = await client.call('GET', '/no/such/route').catch((e) => e);\n" +
      'console.log(JSON.stringify({ status: health.status, apiError: err instanceof ApiError, code: err.code }));\n' +
      'await client.close();\n',
  );
  const out = await new Promise<string>((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['main.mjs', d.stateDir], { cwd: project, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (c) => (text += c));
    child.on('exit', (code) => (code === 0 ? resolvePromise(text) : reject(new Error(`exit ${code}`))));
  });
  t.same(JSON.parse(out), { status: 'ok', apiError: true, code: 'NOT_FOUND' });

  // And its types, as a TypeScript project that depends on it sees them (dist/src/client/index.d.ts).
  symlinkSync(join(checkout, 'node_modules/@types'), join(project, 'node_modules/@types'));
  writeFileSync(
    join(project, 'typed.ts'),
    "import { connect, ApiError, type GitSummaryResponse } from '@hearthd/hearth/client';\n" +
      'const client = await connect({ start: true });\n' +
      "const summary: GitSummaryResponse = await client.gitSummary({ repo: '.' });\n" +
      'const staged: number = summary.staged;\n' +
      '// @ts-expect-error the repo is required\n' +
      'await client.gitSummary();\n' +
      "for await (const e of client.subscribe({ types: ['git.status.changed'] })) console.log(e.clock, staged);\n" +
      "await client.call('GET', '/x').catch((err: unknown) => err instanceof ApiError && console.log(err.code, err.status));\n",
  );
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'] }, files: ['typed.ts'] }),
  );
  const tsc = await new Promise<{ code: number | null; out: string }>((resolvePromise) => {
    const child = spawn(process.execPath, [join(checkout, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c) => (text += c));
    child.stderr.on('data', (c) => (text += c));
    child.on('exit', (code) => resolvePromise({ code, out: text }));
  });
  t.equal(tsc.code, 0, `the declarations type-check a consumer: ${tsc.out}`);
});

t.test('the client loads no plugin, validator, server or logger code', async (t) => {
  // The import graph of the client's sources: relative modules and node builtins only.
  const seen = new Set<string>();
  const bare = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const [, spec] of text.matchAll(/(?:^import[^'"]*?from\s+|^export[^'"]*?from\s+|import\()\s*'([^']+)'/gm)) {
      if (spec!.startsWith('node:')) continue;
      if (!spec!.startsWith('.')) bare.add(spec!);
      else visit(resolve(dirname(file), spec!.replace(/\.js$/, '.ts')));
    }
  };
  visit(join(checkout, 'src/client/index.ts'));
  t.same([...bare], [], 'no package is imported');
  const local = [...seen].map((f) => f.slice(checkout.length + 1)).sort();
  const server = local.filter((f) => f.startsWith('plugins/') || /^src\/(http|services)\//.test(f) || /^src\/(registry|daemon|config|plugin|validation)\.ts$/.test(f));
  t.same(server, [], `only client modules: ${local.join(', ')}`);
});

t.test('hearth events --json prints events until SIGINT, then exits 0', async (t) => {
  const client = await connect({ stateDir: d.stateDir });
  t.teardown(() => client.close());
  const base = await subscribers(client);
  const child = spawn(process.execPath, [...process.execArgv, cliPath, '--state-dir', d.stateDir, '--no-spawn', 'events', '--json', '--type', 'client.cli'], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  await waitFor('the CLI to subscribe', async () => (await subscribers(client)) > base, 60_000);
  await publish(client, 'client.cli', 3);
  await waitFor('three lines', () => out.split('\n').filter(Boolean).length >= 3);
  child.kill('SIGINT');
  t.equal(await exited, 0, err);
  const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as HearthEvent);
  t.same(lines.map((e) => [e.type, e.n]), [['client.cli', 0], ['client.cli', 1], ['client.cli', 2]]);
});

t.test('hearth events with no daemon and --no-spawn exits 3 at once', async (t) => {
  const res = await runCli(['--state-dir', tempDir(), '--no-spawn', 'events'], cleanEnv());
  t.equal(res.code, 3, res.stderr);
  t.match(res.stderr, /not running/);
});

t.test('hearth wait: usage errors exit 2', async (t) => {
  const env = cleanEnv();
  t.equal((await runCli(['--state-dir', d.stateDir, 'wait'], env)).code, 2, 'no PATH');
  t.equal((await runCli(['--state-dir', d.stateDir, 'wait', files, '--timeout', 'soon'], env)).code, 2, 'a timeout that is no number');
  t.equal((await runCli(['--state-dir', d.stateDir, 'wait', join(home, 'no/such/dir/f')], env)).code, 2, 'a directory that is not there');
});

t.test('hearth wait: exit 1 on timeout, 0 when something under PATH changes', async (t) => {
  const client = await connect({ stateDir: d.stateDir });
  t.teardown(() => client.close());
  // GET /files/changes (the recursive watch `wait` starts) comes with the files plugin's change feed, made
  // on another branch: until it is merged this route answers 404 and the test waits for it (it turns on by itself).
  const probe = await client.raw('GET', `/files/changes?root=${encodeURIComponent(files)}`);
  if (probe.status === 404) {
    t.pass('hearth wait', { skip: 'GET /files/changes is not there yet' });
    return;
  }
  const env = cleanEnv();
  const timedOut = await runCli(['--state-dir', d.stateDir, '--no-spawn', 'wait', files, '--timeout', '1'], env, 60_000);
  t.equal(timedOut.code, 1, timedOut.stderr);
  const base = await subscribers(client);
  const waiting = runCli(['--state-dir', d.stateDir, '--no-spawn', 'wait', join(files, 'f.txt'), '--timeout', '60'], env, 90_000);
  await waitFor('wait to subscribe', async () => (await subscribers(client)) > base, 60_000);
  writeFileSync(join(files, 'f.txt'), 'changed\n');
  const changed = await waiting;
  t.equal(changed.code, 0, changed.stderr);
  t.equal(changed.stdout.trim(), join(files, 'f.txt'));
});
