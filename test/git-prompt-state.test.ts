// The summary's operation in progress and tag against git's own prompt script (git-sh-prompt, as Debian's
// git installs it): during a conflicted merge, an interactive rebase stopped at an edit, a rebase on the
// apply backend, a cherry-pick (and a sequence of them), a revert, `git am`, a bisect; the tag at HEAD
// (lightweight, annotated, several, packed, none) as `git describe --tags --exact-match` picks it. Each
// answer is asked right after git changed the state: a change must be seen by the next answer.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { root as projectRoot } from './helpers/daemon.js';
import { gitDaemon } from './helpers/git-daemon.js';
import { commitAll, git, gitMay, makeRepo, write } from './helpers/git.js';
import { sleep } from './helpers/processes.js';

t.setTimeout(180_000);

const PROMPT_SCRIPT = '/usr/lib/git-core/git-sh-prompt';
if (!existsSync(PROMPT_SCRIPT) || spawnSync('bash', ['-c', 'true']).error) {
  t.plan(0, `git's prompt script (${PROMPT_SCRIPT}) or bash is not installed`);
  process.exit(0);
}

const { root, d, get } = await gitDaemon(t, 'hearth-prompt-');

const execFileAsync = promisify(execFile);

async function summary(repo: string): Promise<any> {
  const res = await get(`/git/summary?repo=${encodeURIComponent(repo)}`);
  const json = JSON.parse(res.text);
  if (!json.success) throw new Error(`${res.status} ${res.text}`);
  return json.data;
}

async function summaryText(repo: string): Promise<Record<string, string>> {
  const res = await get(`/git/summary?repo=${encodeURIComponent(repo)}&format=text`);
  return Object.fromEntries(res.text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** git with extra environment (editors), failure allowed. */
function gitWith(cwd: string, env: Record<string, string>, ...args: string[]): number {
  return spawnSync('git', args, { cwd, env: { ...process.env, GIT_EDITOR: 'true', ...env }, stdio: 'ignore' }).status ?? -1;
}

/** What git's prompt script prints, split as it builds it: the name (`$b`), the action, `step/total`. */
function oracle(repo: string): { name: string; action: string | null; step: number | null; total: number | null } {
  const out = execFileSync('bash', ['-c', `source ${PROMPT_SCRIPT}; cd "$1" && __git_ps1 "%s"`, 'oracle', repo], { encoding: 'utf8' });
  const m = /^(.*?)(?:\|(REBASE|AM\/REBASE|AM|MERGING|CHERRY-PICKING|REVERTING|BISECTING)(?: (\d+)\/(\d+))?)?$/.exec(out);
  if (!m) throw new Error(`unexpected prompt ${JSON.stringify(out)}`);
  return { name: m[1]!, action: m[2] ?? null, step: m[3] ? Number(m[3]) : null, total: m[4] ? Number(m[4]) : null };
}

/** The summary (asked first), then the script: the same action, step, total, and the same name shown. */
async function check(t: Tap.Test, repo: string, label: string, expected?: string | null): Promise<any> {
  const s = await summary(repo);
  const o = oracle(repo);
  t.same({ action: s.action, step: s.action_step, total: s.action_total }, { action: o.action, step: o.step, total: o.total }, `${label}: as git's prompt script (${o.name}${o.action ? `|${o.action}` : ''}${o.step !== null ? ` ${o.step}/${o.total}` : ''})`);
  if (expected !== undefined) t.equal(s.action, expected, `${label}: ${expected}`);
  if (o.name.startsWith('(')) {
    // A detached HEAD: the script describes it (--tags --exact-match) or shows its short id.
    t.equal(s.branch, null, `${label}: detached`);
    if (s.tag !== null) t.equal(o.name, `(${s.tag})`, `${label}: the tag as describe gives it`);
    else t.ok(o.name.endsWith('...)') && s.head.startsWith(o.name.slice(1, -4)), `${label}: no tag, the script shows ${o.name}`);
  } else {
    t.equal(s.branch, o.name, `${label}: the branch shown`);
  }
  return s;
}

/**
 * f.txt through three commits on main (one, two, three), and a branch `side` from main~1 whose first commit
 * changes f.txt (a conflict with main's `three`) and whose second adds s.txt. Made once, copied per test.
 */
let template: string | undefined;
function base(name: string): string {
  if (!template) {
    template = makeRepo(root, 'template');
    for (const n of ['one', 'two', 'three']) {
      write(template, 'f.txt', `${n}\n`);
      commitAll(template, n);
    }
    git(template, 'checkout', '-q', '-b', 'side', 'HEAD~1');
    write(template, 'f.txt', 'side\n');
    commitAll(template, 'side f');
    write(template, 's.txt', 's\n');
    commitAll(template, 'side s');
    git(template, 'checkout', '-q', 'main');
  }
  const repo = join(root, name);
  cpSync(template, repo, { recursive: true });
  return repo;
}

const snippet = join(projectRoot, 'plugins/git/prompt.sh');
async function prompt(cwd: string): Promise<string> {
  const res = await execFileAsync('bash', ['-c', `. ${JSON.stringify(snippet)}; hearth_git_prompt`], {
    cwd,
    env: { ...process.env, HEARTH_SOCKET: '', HEARTH_STATE_DIR: d.stateDir, PWD: cwd },
    encoding: 'utf8',
  });
  return res.stdout;
}

t.test('no operation: null, and the text form has empty keys', async (t) => {
  const repo = base('plain');
  const s = await check(t, repo, 'clean', null);
  t.same([s.action, s.action_step, s.action_total, s.tag], [null, null, null, null]);
  const text = await summaryText(repo);
  t.same([text.action, text.step, text.total, text.tag], ['', '', '', '']);
  t.notOk('action_step' in text, 'step= stands for action_step');
});

t.test('a conflicted merge', async (t) => {
  const repo = base('merge');
  t.equal(gitMay(repo, 'merge', '-q', 'side'), 1);
  const s = await check(t, repo, 'merging', 'MERGING');
  t.equal(s.conflicted, 1);
  t.equal(await prompt(repo), ' (main|MERGING +1 !1)', 'prompt.sh');
  const text = await summaryText(repo);
  t.same([text.action, text.step, text.total], ['MERGING', '', '']);
  git(repo, 'merge', '--abort');
  await check(t, repo, 'aborted', null);
});

t.test('an interactive rebase stopped at each edit, then done', async (t) => {
  const repo = base('rebase-i');
  t.equal(gitWith(repo, { GIT_SEQUENCE_EDITOR: 'sed -i s/^pick/edit/' }, 'rebase', '-q', '-i', 'HEAD~2'), 0);
  let s = await check(t, repo, 'first stop', 'REBASE');
  t.same([s.branch, s.action_step, s.action_total], ['main', 1, 2], 'the branch from head-name, step 1/2');
  t.equal(await prompt(repo), ' (main|REBASE 1/2)', 'prompt.sh');
  const text = await summaryText(repo);
  t.same([text.branch, text.action, text.step, text.total], ['main', 'REBASE', '1', '2']);
  t.equal(gitWith(repo, {}, 'rebase', '--continue'), 0);
  s = await check(t, repo, 'second stop', 'REBASE');
  t.same([s.action_step, s.action_total], [2, 2]);
  t.equal(gitWith(repo, {}, 'rebase', '--continue'), 0);
  s = await check(t, repo, 'finished', null);
  t.equal(s.branch, 'main');
});

t.test('an interactive rebase stopped at the first of one edit (GIT_SEQUENCE_EDITOR on line 1)', async (t) => {
  const repo = base('rebase-edit');
  t.equal(gitWith(repo, { GIT_SEQUENCE_EDITOR: 'sed -i 1s/pick/edit/' }, 'rebase', '-q', '-i', 'HEAD~2'), 0);
  const s = await check(t, repo, 'edit', 'REBASE');
  t.same([s.action_step, s.action_total], [1, 2]);
  git(repo, 'rebase', '--abort');
  await check(t, repo, 'aborted', null);
});

t.test('a rebase on the apply backend stopped by a conflict; a detached rebase', async (t) => {
  const repo = base('rebase-apply');
  t.not(gitMay(repo, 'rebase', '-q', '--apply', 'side'), 0);
  t.ok(existsSync(join(repo, '.git', 'rebase-apply', 'rebasing')));
  const s = await check(t, repo, 'apply', 'REBASE');
  t.equal(s.branch, 'main');
  git(repo, 'rebase', '--abort');
  await check(t, repo, 'aborted', null);
  // Rebasing a detached HEAD: head-name says "detached HEAD"; the summary's branch stays null.
  git(repo, 'checkout', '-q', '--detach', 'main');
  t.not(gitMay(repo, 'rebase', '-q', 'side'), 0);
  const detached = await summary(repo);
  t.same([detached.branch, detached.action], [null, 'REBASE']);
  t.equal(oracle(repo).action, 'REBASE');
  git(repo, 'rebase', '--abort');
});

t.test('a cherry-pick stopped by a conflict, and a sequence of picks after a committed resolution', async (t) => {
  const repo = base('pick');
  t.not(gitMay(repo, 'cherry-pick', 'side~1', 'side'), 0);
  await check(t, repo, 'conflict', 'CHERRY-PICKING');
  write(repo, 'f.txt', 'resolved\n');
  git(repo, 'add', 'f.txt');
  t.equal(gitWith(repo, {}, 'commit', '-q', '--no-edit'), 0);
  t.notOk(existsSync(join(repo, '.git', 'CHERRY_PICK_HEAD')), 'committed: only the todo list tells');
  await check(t, repo, 'between picks', 'CHERRY-PICKING');
  t.equal(gitWith(repo, {}, 'cherry-pick', '--continue'), 0);
  await check(t, repo, 'done', null);
});

t.test('a revert stopped by a conflict, and a sequence of reverts', async (t) => {
  const repo = base('revert');
  t.not(gitMay(repo, 'revert', '--no-edit', 'HEAD~1'), 0);
  await check(t, repo, 'conflict', 'REVERTING');
  git(repo, 'revert', '--abort');
  await check(t, repo, 'aborted', null);
  write(repo, 'g.txt', 'g\n');
  commitAll(repo, 'g');
  t.not(gitMay(repo, 'revert', '--no-edit', 'HEAD~2', 'HEAD'), 0);
  write(repo, 'f.txt', 'resolved\n');
  git(repo, 'add', 'f.txt');
  t.equal(gitWith(repo, {}, 'commit', '-q', '--no-edit'), 0);
  await check(t, repo, 'between reverts', 'REVERTING');
  git(repo, 'revert', '--abort');
});

t.test('git am stopped by a patch that does not apply; AM/REBASE', async (t) => {
  const repo = base('am');
  const patches = join(root, 'patches');
  git(repo, 'format-patch', '-q', '-o', patches, 'side~2..side');
  t.not(gitMay(repo, 'am', '-q', join(patches, '0001-side-f.patch'), join(patches, '0002-side-s.patch')), 0);
  const s = await check(t, repo, 'am', 'AM');
  t.same([s.branch, s.action_step, s.action_total], ['main', 1, 2]);
  t.equal(await prompt(repo), ' (main|AM 1/2)', 'prompt.sh');
  git(repo, 'am', '--skip');
  const next = await check(t, repo, 'second patch applied', null);
  t.equal(next.action, null);
  // rebase-apply without `rebasing` or `applying` (as git before 1.7 left it): AM/REBASE.
  mkdirSync(join(repo, '.git', 'rebase-apply'));
  writeFileSync(join(repo, '.git', 'rebase-apply', 'next'), '2\n');
  writeFileSync(join(repo, '.git', 'rebase-apply', 'last'), '3\n');
  const old = await check(t, repo, 'am/rebase', 'AM/REBASE');
  t.same([old.action_step, old.action_total], [2, 3]);
  // Only one of the two: the script shows no n/m.
  rmSync(join(repo, '.git', 'rebase-apply', 'last'));
  const half = await check(t, repo, 'no last');
  t.same([half.action_step, half.action_total], [null, null]);
  rmSync(join(repo, '.git', 'rebase-apply'), { recursive: true });
  await check(t, repo, 'removed', null);
});

t.test('a bisect', async (t) => {
  const repo = base('bisect');
  for (const n of ['four', 'five']) {
    write(repo, 'f.txt', `${n}\n`);
    commitAll(repo, n);
  }
  git(repo, 'bisect', 'start', 'HEAD', 'HEAD~4');
  const s = await check(t, repo, 'bisecting', 'BISECTING');
  t.equal(s.branch, null, 'HEAD is detached at the commit to test');
  t.match(await prompt(repo), /^ \([0-9a-f]{7}\|BISECTING\)$/, 'prompt.sh');
  git(repo, 'bisect', 'bad');
  await check(t, repo, 'after a step', 'BISECTING');
  git(repo, 'bisect', 'reset');
  await check(t, repo, 'reset', null);
});

t.test('a merge in a linked worktree is that worktree\'s', async (t) => {
  const repo = base('linked');
  const wt = join(root, 'linked-wt');
  git(repo, 'worktree', 'add', '-q', '-b', 'other', wt, 'main');
  t.equal(gitMay(wt, 'merge', '-q', 'side'), 1);
  await check(t, wt, 'linked worktree', 'MERGING');
  await check(t, repo, 'main worktree', null);
  git(wt, 'merge', '--abort');
  await check(t, wt, 'aborted', null);
});

t.test('the tag at HEAD: none, lightweight, annotated, several, packed, in a directory; describe as the oracle', async (t) => {
  const repo = base('tags');
  const detach = () => git(repo, 'checkout', '-q', '--detach', 'main');
  const tagDated = (name: string, date: string, ...args: string[]) =>
    execFileSync('git', ['tag', '-a', '-m', name, name, ...args], { cwd: repo, env: { ...process.env, GIT_COMMITTER_DATE: date }, stdio: 'ignore' });
  detach();
  let s = await check(t, repo, 'no tag');
  t.equal(s.tag, null);
  git(repo, 'tag', 'v1-light');
  s = await check(t, repo, 'lightweight');
  t.equal(s.tag, 'v1-light');
  t.equal(await prompt(repo), ' ((v1-light))', 'prompt.sh: a detached HEAD at a tag, as git shows it');
  git(repo, 'tag', 'a-light');
  s = await check(t, repo, 'two lightweight');
  t.equal(s.tag, 'a-light', 'the first by name');
  tagDated('z-ann', '2020-01-01T00:00:00Z');
  s = await check(t, repo, 'annotated over lightweight');
  t.equal(s.tag, 'z-ann');
  tagDated('b-ann', '2019-01-01T00:00:00Z');
  tagDated('m-ann', '2020-01-01T00:00:00Z');
  s = await check(t, repo, 'several annotated');
  t.equal(s.tag, 'm-ann', 'the newest tagger date, the first by name among equals');
  tagDated('rel/v2', '2021-01-01T00:00:00Z');
  s = await check(t, repo, 'in a directory');
  t.equal(s.tag, 'rel/v2');
  t.equal((await summaryText(repo)).tag, 'rel/v2', 'text: tag=');

  git(repo, 'pack-refs', '--all');
  t.notOk(existsSync(join(repo, '.git', 'refs', 'tags', 'rel', 'v2')), 'packed');
  s = await check(t, repo, 'packed');
  t.equal(s.tag, 'rel/v2');
  // A loose ref overrides its packed entry: rel/v2 moved to an older commit.
  git(repo, 'tag', '-f', '-a', '-m', 'moved', 'rel/v2', 'main~1');
  s = await check(t, repo, 'loose over packed');
  t.equal(s.tag, 'm-ann');
  // Unchanged stats after a quiet moment: the kept index answers, and the next change is still seen.
  await sleep(250);
  t.equal((await summary(repo)).tag, 'm-ann');
  t.equal((await summary(repo)).tag, 'm-ann');
  git(repo, 'tag', '-d', 'm-ann');
  s = await check(t, repo, 'deleted (packed)');
  t.equal(s.tag, 'z-ann');
  await sleep(250);
  t.equal((await summary(repo)).tag, 'z-ann');
  git(repo, 'tag', 'zz-ann-later', '-a', '-m', 'x');
  s = await check(t, repo, 'a new loose annotated tag');
  t.equal(s.tag, 'zz-ann-later', 'now the newest');
  git(repo, 'checkout', '-q', '--detach', 'main~1');
  s = await check(t, repo, 'another commit');
  t.equal(s.tag, 'rel/v2');
  // A tag on a branch's HEAD is given too (the script shows the branch then).
  git(repo, 'checkout', '-q', 'main');
  write(repo, 'f.txt', 'four\n');
  commitAll(repo, 'four');
  s = await check(t, repo, 'a new commit');
  t.equal(s.tag, null, 'no tag on the new commit');
  git(repo, 'tag', 'v4', '-a', '-m', 'v4');
  s = await summary(repo);
  t.same([s.branch, s.tag], ['main', 'v4']);
  t.equal(await prompt(repo), ' (main)', 'prompt.sh: on a branch, the branch');
  // A tag object whose own name differs from its ref's: the ref's name (describe warns and adds -0-g<id>).
  const obj = git(repo, 'rev-parse', 'v4').trim();
  git(repo, 'update-ref', 'refs/tags/a-alias', obj);
  git(repo, 'tag', '-d', 'v4');
  t.equal((await summary(repo)).tag, 'a-alias');
});
