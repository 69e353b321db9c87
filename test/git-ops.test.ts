// The git plugin beyond status: branches, checkout, log and the prompt summary checked against the git
// CLI; the shell prompt snippet in bash and zsh; the per-repository circuit breaker; index.lock waits;
// stats; releasing repositories.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { root as projectRoot, bootDaemon, cleanEnv, runCli, tempDir, type TestDaemon } from './helpers/daemon.js';
import { sleep, waitFor } from './helpers/processes.js';

// Many real git processes and a real daemon: generous on a loaded machine (CI runs it in ~1 min).
t.setTimeout(300_000);

const execFileAsync = promisify(execFile);

const GIT_ENV = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Ada',
  GIT_AUTHOR_EMAIL: 'ada@example.com',
  GIT_COMMITTER_NAME: 'Ada',
  GIT_COMMITTER_EMAIL: 'ada@example.com',
};

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A repository with two commits on `main` and a branch `feature` one commit ahead, changing b.txt. */
function makeRepo(parent: string, name = 'repo'): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  writeFileSync(join(dir, 'b.txt'), 'b\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-qm', 'first');
  writeFileSync(join(dir, 'a.txt'), 'a2\n');
  git(dir, 'commit', '-qam', 'second\n\nwith a body');
  git(dir, 'branch', 'feature');
  git(dir, 'checkout', '-q', 'feature');
  writeFileSync(join(dir, 'b.txt'), 'b on feature\n');
  git(dir, 'commit', '-qam', 'feature work');
  git(dir, 'checkout', '-q', 'main');
  return dir;
}

async function setup(t: Tap.Test, gitOptions: object = {}, core: object = {}) {
  const root = tempDir('hearth-git-ops-');
  const d = await bootDaemon({ config: { ...core, plugins: { git: { roots: [root], ...gitOptions } } } });
  t.teardown(() => d.close());
  return { root, d, repo: makeRepo(root) };
}

async function answer(d: TestDaemon, method: string, path: string, body?: unknown) {
  const res = await d.client.raw(method, path, body);
  const json = JSON.parse(res.body);
  return { status: res.status, headers: res.headers, data: json.data, code: json.error?.code as string | undefined, message: json.error?.message as string | undefined };
}

const q = encodeURIComponent;
const porcelain = (dir: string) => git(dir, 'status', '--porcelain=v1', '--no-renames', '-uall');

t.test('branches: list, create, refuse, delete, as git sees them', async (t) => {
  const { d, repo } = await setup(t);
  const listed = await d.client.call<any>('GET', `/git/branches?repo=${q(repo)}`);
  const fromGit = git(repo, 'for-each-ref', 'refs/heads', '--format=%(refname:short) %(objectname)').trim().split('\n').map((l) => {
    const [name, oid] = l.split(' ');
    return { name, oid };
  });
  t.same(listed, { current: 'main', branches: fromGit });

  const created = await answer(d, 'POST', '/git/branches', { repo, branch_name: 'topic/one' });
  t.equal(created.status, 201);
  t.same(created.data, { name: 'topic/one', oid: git(repo, 'rev-parse', 'HEAD').trim(), checked_out: false });
  t.equal(git(repo, 'rev-parse', 'topic/one').trim(), created.data.oid, 'git sees the new branch');

  const fromBase = await answer(d, 'POST', '/git/branches', { repo: join(repo, 'a.txt'), branch_name: 'from-feature', base_branch: 'feature' });
  t.equal(fromBase.data.oid, git(repo, 'rev-parse', 'feature').trim(), 'base_branch is the start point; any path inside the repo names it');

  t.equal((await answer(d, 'POST', '/git/branches', { repo, branch_name: 'feature' })).code, 'CONFLICT', 'an existing branch is 409');
  for (const bad of ['a..b', '-x', 'has space', 'x.lock', 'HEAD', 'end/', 'a:b', 'q?', '.hidden', 'a@{1}']) {
    const res = await answer(d, 'POST', '/git/branches', { repo, branch_name: bad });
    t.equal(res.status, 400, `${JSON.stringify(bad)} is refused`);
    t.equal(res.code, 'VALIDATION_FAILED');
  }
  t.equal((await answer(d, 'POST', '/git/branches', { repo, branch_name: 'x', base_branch: 'no-such' })).code, 'NOT_FOUND');
  const tree = git(repo, 'rev-parse', 'HEAD^{tree}').trim();
  t.equal((await answer(d, 'POST', '/git/branches', { repo, branch_name: 'x', base_branch: tree })).code, 'NOT_FOUND', 'a start point that is no commit (a tree) is not found, as git finds no branch point');

  const withCheckout = await answer(d, 'POST', '/git/branches', { repo, branch_name: 'switched', checkout: true });
  t.same(withCheckout.data, { name: 'switched', oid: git(repo, 'rev-parse', 'main').trim(), checked_out: true });
  t.equal(git(repo, 'symbolic-ref', '--short', 'HEAD').trim(), 'switched');
  t.equal(porcelain(repo), '', 'the worktree is clean after the switch');

  t.equal((await answer(d, 'DELETE', `/git/branches?repo=${q(repo)}&branch_name=switched`)).code, 'CONFLICT', 'the current branch is not deleted');
  const unmerged = await answer(d, 'DELETE', `/git/branches?repo=${q(repo)}&branch_name=feature`);
  t.equal(unmerged.code, 'CONFLICT', 'a branch not merged into HEAD needs force');
  t.match(unmerged.message, /not fully merged/);
  const deleted = await answer(d, 'DELETE', `/git/branches?repo=${q(repo)}&branch_name=topic%2Fone`);
  t.same(deleted.data, { name: 'topic/one', oid: git(repo, 'rev-parse', 'main').trim(), deleted: true });
  const forced = await answer(d, 'DELETE', `/git/branches?repo=${q(repo)}&branch_name=feature&force=true`);
  t.equal(forced.status, 200);
  t.same(git(repo, 'branch', '--format=%(refname:short)').trim().split('\n').sort(), ['from-feature', 'main', 'switched']);
  t.equal((await answer(d, 'DELETE', `/git/branches?repo=${q(repo)}&branch_name=nope`)).code, 'NOT_FOUND');
});

t.test('checkout switches like git and refuses to overwrite local changes', async (t) => {
  const { d, repo } = await setup(t);
  const ok = await answer(d, 'POST', '/git/checkout', { repo, branch_name: 'feature' });
  t.same(ok.data, { branch: 'feature', head: git(repo, 'rev-parse', 'feature').trim() });
  t.equal(git(repo, 'symbolic-ref', '--short', 'HEAD').trim(), 'feature');
  t.equal(readFileSync(join(repo, 'b.txt'), 'utf8'), 'b on feature\n', 'the worktree has the branch\'s files');
  t.equal(porcelain(repo), '');

  // b.txt differs between the branches: a local change to it blocks the switch, as in git.
  writeFileSync(join(repo, 'b.txt'), 'local edit\n');
  const before = porcelain(repo);
  const refused = await answer(d, 'POST', '/git/checkout', { repo, branch_name: 'main' });
  t.equal(refused.status, 409);
  t.match(refused.message, /b\.txt/);
  t.equal(git(repo, 'symbolic-ref', '--short', 'HEAD').trim(), 'feature', 'HEAD did not move');
  t.equal(porcelain(repo), before, 'nothing was touched');
  t.not(spawnSync('git', ['checkout', '-q', 'main'], { cwd: repo, env: GIT_ENV }).status, 0, 'git refuses the same switch');

  // a.txt is the same on both: its local change is carried over.
  git(repo, 'checkout', '-q', 'b.txt');
  writeFileSync(join(repo, 'a.txt'), 'carried\n');
  const carried = await answer(d, 'POST', '/git/checkout', { repo, branch_name: 'main' });
  t.equal(carried.status, 200, carried.message ?? '');
  t.equal(readFileSync(join(repo, 'a.txt'), 'utf8'), 'carried\n');
  t.equal(porcelain(repo), ' M a.txt\n');
  const status = await d.client.call<any>('GET', `/git/status?repo=${q(repo)}`);
  t.same(status.entries, [{ path: 'a.txt', x: ' ', y: 'M' }], 'hearth\'s status agrees right after its own checkout');

  // An untracked file where the other branch has one is not overwritten.
  git(repo, 'checkout', '-q', 'a.txt');
  git(repo, 'checkout', '-q', '-b', 'with-new');
  writeFileSync(join(repo, 'new.txt'), 'tracked on with-new\n');
  git(repo, 'add', 'new.txt');
  git(repo, 'commit', '-qm', 'new file');
  git(repo, 'checkout', '-q', 'main');
  writeFileSync(join(repo, 'new.txt'), 'mine, untracked\n');
  const untracked = await answer(d, 'POST', '/git/checkout', { repo, branch_name: 'with-new' });
  t.equal(untracked.status, 409);
  t.match(untracked.message, /untracked.*new\.txt/);
  t.equal(readFileSync(join(repo, 'new.txt'), 'utf8'), 'mine, untracked\n');
  t.equal((await answer(d, 'POST', '/git/checkout', { repo, branch_name: 'nope' })).code, 'NOT_FOUND');
});

t.test('log equals git log', async (t) => {
  const { root, d, repo } = await setup(t);
  const log = await d.client.call<any[]>('GET', `/git/log?repo=${q(repo)}&limit=5`);
  const fromGit = git(repo, 'log', '-5', '--format=%H%x00%an%x00%ae%x00%at%x00%B%x01').split('\x01\n').filter(Boolean).map((rec) => {
    const [oid, name, email, at, body] = rec.split('\0');
    return { oid, message: body, author: { name, email, timestamp: Number(at) } };
  });
  t.equal(log.length, 2);
  t.same(log.map((c) => ({ ...c, message: c.message.trimEnd() })), fromGit.map((c) => ({ ...c, message: c.message!.trimEnd() })));
  t.equal((await d.client.call<any[]>('GET', `/git/log?repo=${q(repo)}&limit=1`)).length, 1);
  const empty = join(root, 'empty');
  mkdirSync(empty);
  git(empty, 'init', '-q');
  t.same(await d.client.call('GET', `/git/log?repo=${q(empty)}`), [], 'an unborn HEAD has no log');
  t.equal((await answer(d, 'GET', `/git/log?repo=${q(repo)}&limit=0`)).code, 'VALIDATION_FAILED');
});

t.test('summary: upstream, ahead/behind, counts and stashes as git counts them; the prompt snippet', async (t) => {
  const { root, d, repo } = await setup(t);
  const remote = join(root, 'remote.git');
  git(root, 'clone', '-q', '--bare', repo, remote);
  const clone = join(root, 'clone');
  git(root, 'clone', '-q', remote, clone);
  // Two commits here, one on the remote: ahead 2, behind 1.
  for (const n of [1, 2]) {
    writeFileSync(join(clone, `local${n}.txt`), `${n}\n`);
    git(clone, 'add', '.');
    git(clone, 'commit', '-qm', `local ${n}`);
  }
  const other = join(root, 'other');
  git(root, 'clone', '-q', remote, other);
  writeFileSync(join(other, 'remote.txt'), 'r\n');
  git(other, 'add', '.');
  git(other, 'commit', '-qm', 'remote work');
  git(other, 'push', '-q', 'origin', 'main');
  git(clone, 'fetch', '-q');
  // A stash, a staged file, an unstaged edit, two untracked files.
  writeFileSync(join(clone, 'a.txt'), 'stashed\n');
  git(clone, 'stash', '-q');
  writeFileSync(join(clone, 'staged.txt'), 's\n');
  git(clone, 'add', 'staged.txt');
  writeFileSync(join(clone, 'b.txt'), 'unstaged\n');
  writeFileSync(join(clone, 'u1.txt'), 'u\n');
  writeFileSync(join(clone, 'u2.txt'), 'u\n');

  const [ahead, behind] = git(clone, 'rev-list', '--left-right', '--count', 'HEAD...@{u}').trim().split(/\s+/).map(Number);
  const summary = await d.client.call<any>('GET', `/git/summary?repo=${q(clone)}`);
  t.same(summary, {
    repo: clone,
    branch: 'main',
    head: git(clone, 'rev-parse', 'HEAD').trim(),
    upstream: 'origin/main',
    ahead,
    behind,
    staged: 1,
    unstaged: 1,
    untracked: 2,
    conflicted: 0,
    stashes: git(clone, 'stash', 'list').trim().split('\n').length,
    clean: false,
    action: null,
    action_step: null,
    action_total: null,
    tag: null,
  });
  t.equal(ahead, 2);
  t.equal(behind, 1);

  const text = await d.client.raw('GET', `/git/summary?repo=${q(clone)}&format=text`);
  t.match(text.headers['content-type'], /^text\/plain/);
  t.equal(text.body.split('\n').find((l) => l.startsWith('upstream=')), 'upstream=origin/main');
  t.equal(text.body.split('\n').find((l) => l.startsWith('ahead=')), 'ahead=2');

  // bash asks over TCP (/dev/tcp with the token), zsh over the unix socket (zsh/net/socket), and with
  // HEARTH_SOCKET set bash falls back to curl: all three give the same prompt.
  const snippet = join(projectRoot, 'plugins/git/prompt.sh');
  const ways = [
    { shell: 'bash', how: 'TCP', env: { HEARTH_STATE_DIR: d.stateDir } },
    { shell: 'zsh', how: 'unix socket', env: { HEARTH_STATE_DIR: d.stateDir } },
    { shell: 'bash', how: 'curl', env: { HEARTH_SOCKET: d.socket } },
  ];
  for (const { shell, how, env } of ways) {
    if (spawnSync(shell, ['-c', 'true']).error) {
      t.skip(`${shell} is not installed`);
      continue;
    }
    // Asynchronously: the daemon answers from this very process.
    const run = (cwd: string, extra: Record<string, string> = {}) =>
      execFileAsync(shell, ['-c', `. ${JSON.stringify(snippet)}; hearth_git_prompt`], { cwd, env: { ...process.env, HEARTH_SOCKET: '', ...env, ...extra, PWD: cwd }, encoding: 'utf8' });
    const label = `${shell} (${how})`;
    t.equal((await run(clone)).stdout, ' (main ^2 v1 +1 ~1 ?2 $1)', `${label}: the prompt shows the summary`);
    t.equal((await run(root)).stdout, '', `${label}: nothing outside a repository`);
    const elsewhere = tempDir('hearth-no-daemon-');
    t.equal((await run(clone, { HEARTH_STATE_DIR: elsewhere, HEARTH_SOCKET: env.HEARTH_SOCKET ? join(elsewhere, 'x.sock') : '' })).stdout, '', `${label}: nothing when no daemon runs`);
    git(repo, 'checkout', '-q', '--detach', 'HEAD');
    t.equal((await run(repo)).stdout, ` (${git(repo, 'rev-parse', '--short=7', 'HEAD').trim()})`, `${label}: a detached HEAD shows its commit`);
    git(repo, 'checkout', '-q', 'main');
    const odd = join(clone, 'dir with spaces, ü & %');
    mkdirSync(odd);
    t.equal((await run(odd)).stdout, ' (main ^2 v1 +1 ~1 ?2 $1)', `${label}: any directory name is encoded`);
    rmSync(odd, { recursive: true });
  }
});

t.test('the circuit breaker opens after consecutive failures, fails fast, and closes after a good trial', async (t) => {
  const { d, repo } = await setup(t, {}, { circuit_breaker: { failure_threshold: 3, reset_timeout_seconds: 1 } });
  const status = () => answer(d, 'GET', `/git/status?repo=${q(repo)}`);
  t.equal((await status()).status, 200);
  const breaker = async () => (await d.client.call<any>('GET', '/optimization/stats')).circuit_breakers[`git:${repo}`];

  // Client errors never count.
  for (let i = 0; i < 5; i++) t.equal((await answer(d, 'POST', '/git/branches', { repo, branch_name: 'bad..name' })).status, 400);
  t.equal((await answer(d, 'POST', '/git/checkout', { repo, branch_name: 'missing' })).status, 404);
  t.match(await breaker(), { state: 'CLOSED', consecutive_failures: 0 });

  // A damaged index: the repository fails, three times, then the breaker answers without touching it.
  const index = join(repo, '.git', 'index');
  const good = readFileSync(index);
  writeFileSync(index, 'DIRC garbage');
  for (let i = 0; i < 3; i++) {
    const res = await status();
    t.equal(res.status, 502, `failure ${i + 1} is the repository's: 502`);
    t.equal(res.code, 'GIT_FAILED');
  }
  const open = await status();
  t.equal(open.status, 503);
  t.equal(open.code, 'CIRCUIT_OPEN');
  t.ok(Number(open.headers['retry-after']) >= 1, 'Retry-After says when to try again');
  t.match(await breaker(), { state: 'OPEN', failures: 3 });
  t.equal((await answer(d, 'GET', `/git/branches?repo=${q(repo)}`)).code, 'CIRCUIT_OPEN', 'every operation on the repo fails fast');

  // After the timeout one trial: still broken -> open again.
  await sleep(1100);
  t.equal((await status()).status, 502, 'the trial call reaches the repository');
  t.equal((await status()).code, 'CIRCUIT_OPEN', 'a failed trial opens it again');

  // Mended: the next trial succeeds and closes the breaker.
  writeFileSync(index, good);
  await sleep(1100);
  const mended = await status();
  t.equal(mended.status, 200);
  t.same(mended.data.entries, [], 'the answer is right once the index is back');
  t.match(await breaker(), { state: 'CLOSED', consecutive_failures: 0 });
  const stats = await d.client.call<any>('GET', '/optimization/stats');
  for (const op of ['status', 'create_branch', 'checkout', 'list_branches']) t.ok(stats.metrics[`git_operations.${op}`], `git_operations.${op} is timed`);
  t.match(stats.git, { repos: 1 });
});

t.test('a held index.lock is waited for, then answered 409, and never counts as a failure', async (t) => {
  const { d, repo } = await setup(t, { lock_wait_ms: 300 }, { circuit_breaker: { failure_threshold: 1, reset_timeout_seconds: 30 } });
  const lock = join(repo, '.git', 'index.lock');
  writeFileSync(lock, '');
  const started = Date.now();
  const locked = await answer(d, 'POST', '/git/checkout', { repo, branch_name: 'feature' });
  t.equal(locked.status, 409);
  t.match(locked.message, /locked/);
  t.ok(Date.now() - started >= 250, 'it waited for the lock first');
  t.equal((await answer(d, 'POST', '/git/branches', { repo, branch_name: 'x' })).status, 409);
  t.equal((await answer(d, 'GET', `/git/status?repo=${q(repo)}`)).status, 200, 'status reads without the lock; the breaker (threshold 1) is still closed');

  // Released while waiting: the operation goes ahead.
  setTimeout(() => rmSync(lock), 100);
  const waited = await answer(d, 'POST', '/git/checkout', { repo, branch_name: 'feature' });
  t.equal(waited.status, 200, waited.message ?? '');
  t.equal(git(repo, 'symbolic-ref', '--short', 'HEAD').trim(), 'feature');
});

t.test('repositories are released past max_watched_repos and when idle', async (t) => {
  const { root, d, repo } = await setup(t, { max_watched_repos: 1, idle_release_seconds: 1 });
  const other = makeRepo(root, 'other');
  const repos = async () => (await d.client.call<any>('GET', '/optimization/stats')).git;
  await d.client.call('GET', `/git/status?repo=${q(repo)}`);
  t.match(await repos(), { repos: 1 });
  const watched = (await repos()).watched_dirs;
  t.ok(watched > 0, 'its directories are watched');
  await d.client.call('GET', `/git/status?repo=${q(other)}`);
  t.match(await repos(), { repos: 1 }, 'the older one was released');
  await waitFor('idle release', async () => ((await repos()).repos === 0 ? true : null), 5000, 200);
  t.equal((await repos()).watched_dirs, 0, 'its watches are closed');
  const again = await d.client.call<any>('GET', `/git/status?repo=${q(repo)}`);
  t.equal(again.cached, false, 'a released repository is built again');
  t.same(again.entries, []);
});

t.test('the API lists the git routes', async (t) => {
  const { d } = await setup(t);
  const spec = await d.client.call<any>('GET', '/openapi.json').catch(async () => JSON.parse((await d.client.raw('GET', '/openapi.json')).body));
  for (const path of ['/git/status', '/git/summary', '/git/branches', '/git/checkout', '/git/log']) t.ok(spec.paths[path], path);
});

t.test('the CLI: summary, branches, branch create/delete, checkout, log, status', async (t) => {
  const { d, repo } = await setup(t);
  const hearth = (...args: string[]) => runCli(['--state-dir', d.stateDir, 'git', ...args], cleanEnv(), 60_000);
  const summary = await hearth('summary', repo);
  t.equal(summary.code, 0, summary.stderr);
  t.match(summary.stdout, /^repo=.*\nbranch=main\nhead=[0-9a-f]{40}\nupstream=\nahead=0\n/);
  const created = await hearth('branch', 'create', 'cli-made', '--repo', repo, '--base', 'feature', '--checkout');
  t.equal(created.code, 0, created.stderr);
  t.same(JSON.parse(created.stdout), { name: 'cli-made', oid: git(repo, 'rev-parse', 'feature').trim(), checked_out: true });
  const branches = await hearth('branches', repo);
  t.match(branches.stdout, /^\* cli-made [0-9a-f]{7}$/m);
  t.match(branches.stdout, /^ {2}main [0-9a-f]{7}$/m);
  t.equal((await hearth('checkout', 'main', '--repo', repo)).code, 0);
  t.equal(git(repo, 'symbolic-ref', '--short', 'HEAD').trim(), 'main');
  t.equal((await hearth('branch', 'delete', 'cli-made', '--repo', repo)).code, 1, 'not merged: refused, exit 1');
  t.equal((await hearth('branch', 'delete', 'cli-made', '--repo', repo, '--force')).code, 0);
  const log = await hearth('log', repo, '-n', '1');
  t.equal(log.stdout, `${git(repo, 'rev-parse', '--short=7', 'HEAD').trim()} second\n`);
  writeFileSync(join(repo, 'a.txt'), 'changed\n');
  const human = await hearth('status', repo);
  t.equal(human.stdout, 'On branch main\n M a.txt\n');
  const notRepo = await hearth('status', tempDir('hearth-not-repo-'));
  t.equal(notRepo.code, 1);
  t.match(notRepo.stderr, /NOT_A_REPOSITORY|outside|not inside/);
});

t.test('a large worktree takes its cold stats on the worker pool, with the same answer as git', async (t) => {
  const root = tempDir('hearth-git-large-');
  const d = await bootDaemon({ config: { pool: { max_threads: 2 }, plugins: { git: { roots: [root] } } } });
  t.teardown(() => d.close());
  const repo = join(root, 'large');
  for (let dir = 0; dir < 50; dir++) {
    mkdirSync(join(repo, `d${dir}`), { recursive: true });
    for (let f = 0; f < 90; f++) writeFileSync(join(repo, `d${dir}`, `f${f}.txt`), `${dir}/${f}\n`);
  }
  git(repo, 'init', '-q');
  git(repo, 'add', '.');
  git(repo, 'commit', '-qm', 'many files');
  writeFileSync(join(repo, 'd1', 'f1.txt'), 'changed, longer\n');
  writeFileSync(join(repo, 'd2', 'f2.txt'), '2/3\n'); // same size, new content
  rmSync(join(repo, 'd3', 'f3.txt'));
  execFileSync('chmod', ['+x', join(repo, 'd4', 'f4.txt')]);
  writeFileSync(join(repo, 'd5', 'new.txt'), 'untracked\n');
  const before = (await d.client.call<any>('GET', '/optimization/stats')).pool.completed;
  const status = await d.client.call<any>('GET', `/git/status?repo=${q(repo)}`);
  const expected = git(repo, '--no-optional-locks', 'status', '--porcelain=v1', '--no-renames', '-uall', '-z').split('\0').filter(Boolean).map((l) => ({ path: l.slice(3), x: l[0], y: l[1] }));
  t.same(status.entries, expected, 'the answer is git\'s');
  t.equal(status.entries.length, 5);
  const after = (await d.client.call<any>('GET', '/optimization/stats')).pool.completed;
  t.ok(after - before >= 2, `the stats were taken by pool tasks (${after - before})`);
});
