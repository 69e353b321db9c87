// Porcelain v2, the --branch headers, unmerged entries, submodules and the rename config against the real
// git CLI: the daemon's answer rendered as v1 and v2 (with and without -z) must equal git's bytes.
import { chmodSync, mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import { porcelain, porcelainV2, type BranchInfo } from '../plugins/git/porcelain.js';
import { MAX_SCORE, parseRenameScore } from '../plugins/git/renames.js';
import { bootDaemon, tempDir } from './helpers/daemon.js';
import { commitAll, git, gitMay, gitRaw, isolateGit, makeRepo, write } from './helpers/git.js';

// Real git processes, a real daemon and CLI processes: generous on a loaded machine.
t.setTimeout(300_000);

isolateGit();
const root = realpathSync(tempDir('hearth-ren-'));
const d = await bootDaemon({ config: { plugins: { git: { roots: [root] } } } });
const agent = new Agent({ connect: { socketPath: d.socket } });
t.teardown(async () => {
  await agent.close();
  await d.close();
});

async function status(body: object): Promise<{ status: number; json: any }> {
  const res = await request('http://localhost/git/status', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    dispatcher: agent,
    reset: true,
  });
  return { status: res.statusCode, json: await res.body.json() };
}

/** git's flags -> the API's fields, as the CLI maps them. */
function bodyFor(flags: string[]): Record<string, unknown> {
  const body: Record<string, unknown> = { renames: 'config' };
  for (const f of flags) {
    if (f === '--no-renames') body.renames = false;
    else if (f.startsWith('--find-renames=')) Object.assign(body, { renames: true, find_renames: (parseRenameScore(f.slice(15))! * 100) / MAX_SCORE });
    else if (f === '-M') body.renames = true;
    else if (f.startsWith('--ignore-submodules=')) body.ignore_submodules = f.slice(20);
    else if (f === '-uno') body.include_untracked = false;
    else if (f === '--ignored') body.include_ignored = true;
  }
  return body;
}

/** `git mv`, its target's directory made first. */
function mv(repo: string, from: string, to: string): void {
  mkdirSync(dirname(join(repo, to)), { recursive: true });
  git(repo, 'mv', from, to);
}

/**
 * The daemon's answer rendered as v1 -b and v2 -b -z (with `all`, also v1 -z -b and v2 -b), each equal
 * to git's output with the same flags.
 */
async function check(t: Tap.Test, repo: string, label: string, flags: string[] = [], all = false): Promise<void> {
  const res = await status({ repo, format: 'v2', tracking: true, ...bodyFor(flags) });
  if (!res.json.success) {
    t.fail(`${label}: ${res.status} ${JSON.stringify(res.json.error)}`);
    return;
  }
  const a = res.json.data;
  const info: BranchInfo = { branch: a.branch, head: a.head, upstream: a.upstream };
  const u = flags.includes('-uno') ? ['-uno'] : ['-uall'];
  const gflags = flags.filter((f) => f !== '-uno');
  const same = (ours: string, args: string[], what: string) => t.equal(ours, gitRaw(repo, 'status', ...args, ...u, ...gflags), `${label} ${what} ${flags.join(' ')}`.trim());
  same(porcelain(a.entries, false, info), ['--porcelain', '-b'], 'v1 -b');
  same(porcelainV2(a.entries, true, info), ['--porcelain=v2', '-z', '-b'], 'v2 -z -b');
  if (!all) return;
  same(porcelain(a.entries, true, info), ['--porcelain', '-z', '-b'], 'v1 -z -b');
  same(porcelainV2(a.entries, false, info), ['--porcelain=v2', '-b'], 'v2 -b');
}

const lines = (prefix: string, n: number, from = 0) => Array.from({ length: n }, (_, i) => `${prefix} line ${i + from}\n`).join('');
/** `body` with its first `k` of 20 lines replaced. */
const edit = (k: number) => lines('edited', k) + lines('body', 20 - k, k);

const base = (r: string): void => {
  write(r, 'a.txt', lines('alpha', 10));
  write(r, 'b.txt', lines('bravo', 10));
  write(r, 'dir/c.txt', lines('charlie', 12));
  write(r, 'dir/sub/d.txt', lines('delta', 8));
  write(r, 'empty', '');
  write(r, 'body.c', lines('body', 20));
  symlinkSync('a.txt', join(r, 'link'));
  commitAll(r, 'base');
};

t.jobs = 2;

t.test('config: status.renames wins over diff.renames; status.renameLimit over diff.renameLimit', async (t) => {
  const r = makeRepo(root);
  base(r);
  mv(r, 'body.c', 'body3.c');
  write(r, 'body3.c', edit(2));
  mv(r, 'b.txt', 'b4.txt');
  write(r, 'b4.txt', lines('bravo', 9));
  git(r, 'add', '-A');
  await check(t, r, 'defaults');
  git(r, 'config', 'diff.renames', 'false');
  await check(t, r, 'diff.renames=false');
  git(r, 'config', 'status.renames', 'true');
  await check(t, r, 'status.renames=true');
  git(r, 'config', 'diff.renameLimit', '1');
  await check(t, r, 'diff.renameLimit=1');
  git(r, 'config', 'status.renameLimit', '5');
  await check(t, r, 'status.renameLimit=5');
  git(r, 'config', 'status.renames', 'no');
  await check(t, r, 'status.renames=no');
  git(r, 'config', 'status.renames', 'copies');
  await check(t, r, 'status.renames=copies');
});

t.test('v2 and --branch: no upstream, an upstream ahead and behind, a gone upstream, detached, unborn', async (t) => {
  const origin = makeRepo(root);
  base(origin);
  const r = join(root, `clone-${Date.now()}`);
  git(root, 'clone', '-q', origin, r);
  await check(t, r, 'even');
  write(r, 'a.txt', 'local\n');
  commitAll(r, 'local');
  await check(t, r, 'ahead');
  write(origin, 'n.txt', 'n\n');
  commitAll(origin, 'remote 1');
  write(origin, 'm.txt', 'm\n');
  commitAll(origin, 'remote 2');
  git(r, 'fetch', '-q');
  write(r, 'b.txt', 'modified\n');
  chmodSync(join(r, 'b.txt'), 0o755);
  await check(t, r, 'ahead 1, behind 2');
  git(r, 'reset', '-q', '--hard', 'origin/main');
  await check(t, r, 'behind 0');
  git(r, 'update-ref', '-d', 'refs/remotes/origin/main');
  await check(t, r, 'gone');
  git(r, 'checkout', '-q', '--detach');
  await check(t, r, 'detached');
  const unborn = makeRepo(root);
  await check(t, unborn, 'unborn');
  write(unborn, 'f', 'f\n');
  git(unborn, 'add', 'f');
  write(unborn, 'f', 'g\n');
  write(unborn, 'ita', 'i\n');
  git(unborn, 'add', '-N', 'ita');
  await check(t, unborn, 'unborn, staged');
});

t.test('unmerged entries, type changes, intent to add, v2 modes', async (t) => {
  const r = makeRepo(root);
  base(r);
  git(r, 'checkout', '-q', '-b', 'side');
  write(r, 'a.txt', 'side\n');
  write(r, 'both.txt', 'side both\n');
  git(r, 'rm', '-q', 'b.txt');
  write(r, 'dir/c.txt', 'side c\n');
  commitAll(r, 'side');
  git(r, 'checkout', '-q', 'main');
  write(r, 'a.txt', 'main\n');
  write(r, 'both.txt', 'main both\n');
  write(r, 'b.txt', 'main b\n');
  git(r, 'rm', '-q', 'dir/c.txt');
  commitAll(r, 'main');
  t.equal(gitMay(r, 'merge', '-q', 'side'), 1, 'conflicts');
  await check(t, r, 'conflicts', [], true);
  chmodSync(join(r, 'a.txt'), 0o755);
  rmSync(join(r, 'both.txt'));
  await check(t, r, 'conflicts, worktree changed');
  git(r, 'merge', '--abort');
  rmSync(join(r, 'link'));
  writeFileSync(join(r, 'link'), 'now a file\n');
  write(r, 'ita.txt', 'ita\n');
  git(r, 'add', '-N', 'ita.txt');
  mv(r, 'a.txt', 'a5.txt');
  write(r, 'untracked dir/new\tfile.txt', 'u\n');
  write(r, '.gitignore', '*.log\n');
  write(r, 'x/y.log', 'l\n');
  await check(t, r, 'T, ita, R, untracked', [], true);
  await check(t, r, 'T, ita, R, untracked', ['--ignored'], true);
  git(r, 'add', 'link');
  await check(t, r, 'T staged', ['-uno']);
});

t.test('submodules in v2, and --ignore-submodules', async (t) => {
  const sub = makeRepo(root);
  write(sub, 's.txt', 's\n');
  commitAll(sub, 's');
  const r = makeRepo(root);
  base(r);
  git(r, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', sub, 'mod');
  commitAll(r, 'submodule');
  const modes = [[], ['--ignore-submodules=none'], ['--ignore-submodules=untracked'], ['--ignore-submodules=dirty'], ['--ignore-submodules=all'], ['-uno']];
  for (const flags of modes) await check(t, r, 'clean', flags);
  write(join(r, 'mod'), 'untracked.txt', 'u\n');
  for (const flags of modes) await check(t, r, 'untracked', flags);
  write(join(r, 'mod'), 's.txt', 'dirty\n');
  for (const flags of modes) await check(t, r, 'dirty', flags);
  git(join(r, 'mod'), 'commit', '-q', '-am', 'new');
  for (const flags of modes) await check(t, r, 'new commits', flags);
  git(r, 'add', 'mod');
  for (const flags of modes) await check(t, r, 'staged', flags);
});

