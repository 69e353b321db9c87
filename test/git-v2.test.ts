// Porcelain v2, the --branch headers, unmerged entries, submodules and the rename config against the real
// git CLI: the daemon's answer rendered as v1 and v2 (with and without -z) must equal git's bytes.
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { gitDaemon } from './helpers/git-daemon.js';
import { base, edit, lines, mv, porcelainCheck } from './helpers/git-porcelain.js';
import { commitAll, git, gitMay, makeRepo, write } from './helpers/git.js';

// Real git processes, a real daemon and CLI processes: generous on a loaded machine.
t.setTimeout(300_000);

const { root, status } = await gitDaemon(t, 'hearth-ren-');
const check = porcelainCheck(status);

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

