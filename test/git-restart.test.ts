// Restarts against the real git CLI: a daemon warm on many repositories is closed, each repository is
// changed while no daemon runs (edits, a branch switched, the index rewritten, ignore rules changed, a file
// changed behind an unchanged stat, the repository replaced), a new daemon is booted on the same state dir,
// and its first answer (then other views) must be what `git status` prints. The state a daemon may keep in
// `<state_dir>/git/` is then damaged in every way a crash or a disk can (truncated, a byte flipped, garbage,
// emptied, a header of another version, another repository's state): the answers stay git's.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import t from 'tap';
import { gitDaemon, type GitDaemon } from './helpers/git-daemon.js';
import { commitAll, git, isolateGit, makeRepo, write } from './helpers/git.js';
import { inParallel, observe, pastCtimeSecond, PAST, verify, writeAt, type Observed, type View } from './helpers/git-views.js';

/**
 * What a restarted daemon says of the persisted state (the git section of /optimization/stats): after a
 * plain restart most repositories were restored and their directories reused, the one replaced by another
 * repository discarded as foreign; a state damaged beyond a torn tail is discarded with its reason.
 */
function reuseFigures(t: Tap.Test, scenario: string, gitSection: unknown, repos: number): void {
  const p = (gitSection as { persisted?: { restored: number; discarded: Record<string, number>; dirs_reused: number; dirs_read: number } } | undefined)?.persisted;
  if (!t.ok(p, `${scenario}: /optimization/stats says what was persisted`) || !p) return;
  const expected: Record<string, [string, number]> = {
    'damaged: replaced by garbage': ['damaged', repos],
    'damaged: emptied': ['damaged', repos],
    "damaged: its header's version changed": ['version', repos],
    "damaged: another repository's state copied over it": ['identity', repos],
  };
  const discard = expected[scenario];
  if (discard) {
    t.equal(p.discarded[discard[0]], discard[1], `${scenario}: every state discarded as ${discard[0]}`);
    t.equal(p.restored, 0, `${scenario}: nothing restored`);
  } else if (!scenario.startsWith('damaged')) {
    t.ok(p.restored >= repos - 2, `${scenario}: ${p.restored} of ${repos} repositories restored`);
    // Most scenarios change most of their few directories; what is reused is the rest.
    t.ok(p.dirs_reused > 0, `${scenario}: directories reused (${p.dirs_reused}; ${p.dirs_read} read)`);
  }
  if (scenario === 'restart') t.equal(p.discarded.identity, 1, 'the repository replaced at the same path: its state discarded as foreign');
}

t.setTimeout(240_000);

const home = isolateGit();

async function gitSection(g: GitDaemon): Promise<unknown> {
  const res = await g.call('GET', '/optimization/stats');
  return res.json?.data?.git;
}

const lines = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix} ${i}\n`).join('');
/** Tracked files in the root and in nested directories, an untracked and an ignored file, committed. */
function base(r: string): void {
  write(r, '.gitignore', '*.log\n');
  write(r, 'a.txt', lines('alpha', 5));
  write(r, 'b.txt', lines('bravo', 5));
  write(r, 'dir/c.txt', lines('charlie', 5));
  write(r, 'dir/sub/d.txt', lines('delta', 5));
  commitAll(r, 'base');
  write(r, 'untracked.txt', 'u\n');
  write(r, 'dir/sub/noise.log', 'ignored\n');
}

interface Scenario {
  name: string;
  /** Before the first daemon warms: the repository made (in `r`, a new dir of the root). */
  setup(r: string): void;
  /** While the first daemon warms (after its answer, before it is closed). */
  warm?(r: string, g: GitDaemon, t: Tap.Test): Promise<void>;
  /** While no daemon runs. */
  down(r: string): void | Promise<void>;
  /** The views asked after the restart, the first one first. */
  views: View[];
  /** A known difference from git in today's implementation: its comparisons are tap todos (run, failures not counted). */
  todo?: string;
  /** Paths the first answer must list modified in the worktree (git's answer too: the setup worked). */
  modified?: string[];
}

/** The scenario's first answer lists each of its `modified` paths with y `M`. */
function listsModified(t: Tap.Test, s: Scenario, o: Observed): void {
  const entries: Array<{ path: string; y: string }> = o.answers[0]!.json.data?.entries ?? [];
  for (const p of s.modified ?? []) t.ok(entries.some((e) => e.path === p && e.y === 'M'), `${s.name}: ${p} listed modified`);
}

const excludesOne = join(home, 'excludes-one');
const excludesTwo = join(home, 'excludes-two');

const scenarios: Scenario[] = [
  {
    name: 'files edited, created and deleted',
    setup: base,
    down(r) {
      write(r, 'a.txt', lines('alpha edited', 7));
      write(r, 'new.txt', 'new\n');
      write(r, 'dir/sub/new.txt', 'new\n');
      unlinkSync(join(r, 'b.txt'));
      unlinkSync(join(r, 'untracked.txt'));
      write(r, 'dir/more.log', 'ignored\n');
    },
    views: ['all', 'default'],
  },
  {
    name: 'a new nested directory with files',
    setup: base,
    down(r) {
      write(r, 'a/b/c/new.txt', 'new\n');
      write(r, 'a/b/other.txt', 'other\n');
      write(r, 'a/b/c/d/deep.log', 'ignored\n');
      write(r, 'dir/x/y/z.txt', 'in a tracked directory\n');
    },
    views: ['default', 'all'],
  },
  {
    name: 'directories removed (a tracked one, an untracked one)',
    setup(r) {
      base(r);
      write(r, 'gone/one.txt', '1\n');
      write(r, 'gone/deeper/two.txt', '2\n');
      commitAll(r, 'gone');
      write(r, 'junk/x/y.txt', 'y\n');
      write(r, 'junk/z.txt', 'z\n');
    },
    down(r) {
      rmSync(join(r, 'gone'), { recursive: true });
      rmSync(join(r, 'junk'), { recursive: true });
      rmSync(join(r, 'dir/sub'), { recursive: true });
    },
    views: ['all', 'v2'],
  },
  {
    name: 'a branch switched (files, directories and .gitignore differ)',
    setup(r) {
      write(r, '.gitignore', '*.log\n');
      write(r, 'common.txt', 'common\n');
      write(r, 'main-only.txt', 'main\n');
      write(r, 'm/dir/f.txt', 'main dir\n');
      write(r, 'changed.txt', 'on main\n');
      commitAll(r, 'main');
      git(r, 'checkout', '-q', '-b', 'other');
      git(r, 'rm', '-q', '-r', 'main-only.txt', 'm');
      write(r, '.gitignore', '*.tmp\nbuild/\n');
      write(r, 'o/dir/g.txt', 'other dir\n');
      write(r, 'changed.txt', 'on the other branch\n');
      commitAll(r, 'other');
      git(r, 'checkout', '-q', 'main');
      // In the worktree on both branches: ignored on one, untracked on the other.
      write(r, 'x.log', 'log\n');
      write(r, 'y.tmp', 'tmp\n');
      write(r, 'build/out.txt', 'out\n');
    },
    down: (r) => git(r, 'checkout', '-q', 'other'),
    views: ['default', 'matching', 'all'],
  },
  {
    name: 'the index rewritten by git add',
    setup(r) {
      base(r);
      write(r, 'a.txt', 'modified\n');
      write(r, 'dir/staged-new.txt', 'n\n');
    },
    down: (r) => git(r, 'add', 'a.txt', 'dir/staged-new.txt', 'untracked.txt'),
    views: ['all', 'v2'],
  },
  {
    name: 'the index rewritten by git commit',
    setup(r) {
      base(r);
      write(r, 'a.txt', 'modified\n');
      write(r, 'b.txt', 'modified, not staged\n');
      git(r, 'add', 'a.txt', 'untracked.txt');
    },
    down: (r) => git(r, 'commit', '-q', '-m', 'while down'),
    views: ['v2', 'all'],
  },
  {
    name: 'the index rewritten by git reset (mixed)',
    setup(r) {
      base(r);
      write(r, 'a.txt', 'second commit\n');
      write(r, 'dir/added.txt', 'added\n');
      git(r, 'rm', '-q', 'b.txt');
      commitAll(r, 'second');
      write(r, 'dir/c.txt', 'staged\n');
      git(r, 'add', 'dir/c.txt');
    },
    down: (r) => git(r, 'reset', '-q', 'HEAD~1'),
    views: ['all', 'default'],
  },
  {
    name: 'git rm --cached (tracked files become untracked, the listing unchanged)',
    setup: base,
    down(r) {
      git(r, 'rm', '-q', '--cached', 'a.txt');
      git(r, 'rm', '-q', '-r', '--cached', 'dir/sub');
    },
    views: ['all', 'normal'],
  },
  {
    name: 'the root .gitignore edited',
    setup(r) {
      base(r);
      write(r, 'x.tmp', 't\n');
      write(r, 'tmpdir/y.tmp', 't\n');
      write(r, 'root.log', 'l\n');
    },
    down: (r) => write(r, '.gitignore', '*.tmp\n'),
    views: ['matching', 'all'],
  },
  {
    name: 'a subdirectory .gitignore edited',
    setup(r) {
      base(r);
      write(r, 'dir/.gitignore', 'keep-out.txt\n');
      commitAll(r, 'sub ignore');
      write(r, 'dir/keep-out.txt', 'k\n');
      write(r, 'dir/sub/now-out.txt', 'n\n');
      write(r, 'dir/sub/inner/f.txt', 'f\n');
    },
    down: (r) => write(r, 'dir/.gitignore', 'now-out.txt\ninner/\n!noise.log\n'),
    views: ['all', 'matching'],
  },
  {
    name: '.git/info/exclude edited',
    setup(r) {
      base(r);
      write(r, '.git/info/exclude', 'excl-a.txt\n');
      write(r, 'excl-a.txt', 'a\n');
      write(r, 'excl-b.txt', 'b\n');
      write(r, 'exdir/f.txt', 'f\n');
    },
    down: (r) => write(r, '.git/info/exclude', 'excl-b.txt\nexdir/\n'),
    views: ['matching', 'all'],
  },
  {
    name: 'the file core.excludesFile names edited (the global config)',
    setup(r) {
      base(r);
      write(r, 'one.gx1', '1\n');
      write(r, 'two.gx2', '2\n');
      write(r, 'three.gx3', '3\n');
      write(r, 'gdir/one.gx1', '1\n');
    },
    down: () => writeFileSync(excludesOne, '*.gx2\n'),
    views: ['all', 'matching'],
  },
  {
    name: 'a file edited within the racy window before the stop',
    setup: base,
    async warm(r, g, t) {
      // The index entry and the file in the same second (racy), an answer, then the file changed again in
      // that second with the same size and the same mtime: only its content (or ctime) tells.
      write(r, 'a.txt', 'racy one\n');
      write(r, 'b.txt', 'racy one\n');
      git(r, 'add', 'a.txt', 'b.txt');
      const mtime = statSync(join(r, 'a.txt')).mtime;
      const res = await g.status({ repo: r, untracked: 'all' });
      t.ok(res.json.success, 'racy: answered before the stop');
      write(r, 'a.txt', 'racy two\n');
      utimesSync(join(r, 'a.txt'), mtime, mtime);
      if (Math.floor(Date.now() / 1000) !== Math.floor(mtime.getTime() / 1000)) t.comment('racy: the second write came in the next second');
    },
    down() {},
    views: ['all', 'v2'],
    modified: ['a.txt'],
  },
  {
    name: 'files changed with the same size and restored mtimes while down (content decides)',
    setup(r) {
      writeAt(r, 'same.txt', 'abcdefgh\n', PAST);
      writeAt(r, 'dir/same2.txt', 'abcdefgh\n', PAST);
      writeAt(r, 'dir/untouched.txt', 'abcdefgh\n', PAST);
      writeAt(r, 'rewritten-identical.txt', 'abcdefgh\n', PAST);
      commitAll(r, 'past');
    },
    async down(r) {
      await pastCtimeSecond(r, ['same.txt', 'dir/same2.txt', 'rewritten-identical.txt']);
      writeAt(r, 'same.txt', 'ABCDEFGH\n', PAST);
      writeAt(r, 'dir/same2.txt', 'abcdefgX\n', PAST);
      writeAt(r, 'rewritten-identical.txt', 'abcdefgh\n', PAST);
    },
    views: ['all', 'v2'],
    modified: ['same.txt', 'dir/same2.txt'],
  },
  {
    name: 'core.trustctime false: a file rewritten with the same size and mtime while down is clean to git',
    setup(r) {
      git(r, 'config', 'core.trustctime', 'false');
      writeAt(r, 'same.txt', 'abcdefgh\n', PAST);
      writeAt(r, 'kept.txt', 'abcdefgh\n', PAST);
      commitAll(r, 'past');
    },
    async down(r) {
      // Not racy (mtime long before the index's), ctime not trusted: git compares mtime, size, inode, uid,
      // gid and finds them unchanged, so it does not read the content.
      await pastCtimeSecond(r, ['same.txt']);
      writeAt(r, 'same.txt', 'ABCDEFGH\n', PAST);
    },
    views: ['all', 'v2'],
  },
  {
    name: 'core.checkStat minimal: files rewritten (one a new inode) with the same size and mtime while down are clean to git',
    setup(r) {
      git(r, 'config', 'core.checkStat', 'minimal');
      writeAt(r, 'same.txt', 'abcdefgh\n', PAST);
      writeAt(r, 'ino.txt', 'abcdefgh\n', PAST);
      commitAll(r, 'past');
    },
    async down(r) {
      // minimal: git compares the mtime's seconds, the size and the mode only (not ctime, inode, uid, gid).
      await pastCtimeSecond(r, ['same.txt', 'ino.txt']);
      writeAt(r, 'same.txt', 'ABCDEFGH\n', PAST);
      writeAt(r, 'ino.tmp', 'abcdefgX\n', PAST);
      renameSync(join(r, 'ino.tmp'), join(r, 'ino.txt'));
    },
    views: ['all', 'v2'],
  },
  {
    name: 'another repository at the same path',
    setup: base,
    down(r) {
      rmSync(r, { recursive: true });
      makeRepo(dirname(r), basename(r));
      write(r, '.gitignore', '*.tmp\n');
      write(r, 'a.txt', 'another repository\n');
      write(r, 'other/x.txt', 'x\n');
      commitAll(r, 'another');
      write(r, 'other/x.txt', 'changed\n');
      write(r, 'dir/sub/noise.log', 'not ignored here\n');
      write(r, 'u.tmp', 'ignored here\n');
    },
    views: ['all', 'matching'],
  },
  {
    name: 'an unborn branch gets its first commit while down',
    setup(r) {
      write(r, 'first.txt', 'f\n');
      write(r, 'd/second.txt', 's\n');
      git(r, 'add', 'first.txt');
    },
    down: (r) => commitAll(r, 'first'),
    views: ['v2', 'all'],
  },
];

t.test('a restart: each change made while no daemon ran is in the first answer', async (t) => {
  writeFileSync(excludesOne, '*.gx1\n');
  writeFileSync(excludesTwo, '*.gx3\n');
  git(home, 'config', '--global', 'core.excludesFile', excludesOne);
  t.teardown(() => {
    git(home, 'config', '--global', '--unset', 'core.excludesFile');
  });

  const started = Date.now();
  const phase = (what: string) => t.comment(`${what}: ${Date.now() - started} ms in`);
  const first = await gitDaemon(t, 'hearth-rst-', { home });
  phase('booted');
  const { root } = first;
  const stateDir = first.d.stateDir;
  const repos = scenarios.map((s, i) => {
    const r = makeRepo(root, `s${String(i).padStart(2, '0')}`);
    s.setup(r);
    return r;
  });
  phase('repositories made');
  for (const [i, s] of scenarios.entries()) {
    const res = await first.status({ repo: repos[i], untracked: 'all' });
    t.ok(res.json.success, `${s.name}: warm`);
    await s.warm?.(repos[i]!, first, t);
  }
  await first.close();

  phase('warm and closed');
  for (const [i, s] of scenarios.entries()) await s.down(repos[i]!);
  phase('changed');
  const second = await gitDaemon(t, 'hearth-rst-', { home, root, stateDir });
  phase('restarted');
  // The repositories asked at once (each one's views in order: its first answer first), then checked.
  const afterRestart = await inParallel(scenarios, 4, (s, i) => observe(second, repos[i]!, s.views));
  phase('answered');
  for (const [i, s] of scenarios.entries()) await t.test(s.name, async (t) => {
      verify(t, s.name, afterRestart[i]!, s.todo);
      listsModified(t, s, afterRestart[i]!);
    });
  reuseFigures(t, 'restart', await gitSection(second), scenarios.length);

  // A second restart, from the state the restarted daemon kept: the global core.excludesFile now names
  // another file, and every repository has one more untracked file and a tracked file edited.
  await second.close();
  git(home, 'config', '--global', 'core.excludesFile', excludesTwo);
  for (const r of repos) {
    write(r, 'late/after.txt', 'after the second stop\n');
    if (existsSync(join(r, 'a.txt'))) write(r, 'a.txt', 'edited before the second restart\n');
  }
  const third = await gitDaemon(t, 'hearth-rst-', { home, root, stateDir });
  const afterSecond = await inParallel(scenarios, 4, (s, i) => observe(third, repos[i]!, [s.views[1]!]));
  for (const [i, s] of scenarios.entries()) {
    await t.test(`${s.name}, then core.excludesFile changed and more edits`, async (t) => verify(t, `again: ${s.name}`, afterSecond[i]!, s.todo));
  }
  reuseFigures(t, 'second restart (core.excludesFile changed)', await gitSection(third), scenarios.length);
  await third.close();
});

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join((e as unknown as { parentPath?: string; path: string }).parentPath ?? (e as unknown as { path: string }).path, e.name));
}

/** The persisted state damaged: each function takes every file found and damages them all. */
const DAMAGE: Array<[string, (files: string[]) => void]> = [
  [
    'truncated to half',
    (files) => {
      for (const f of files) writeFileSync(f, readFileSync(f).subarray(0, Math.floor(statSync(f).size / 2)));
    },
  ],
  [
    'a byte flipped in the middle',
    (files) => {
      for (const f of files) {
        const b = readFileSync(f);
        if (b.length === 0) continue;
        b[b.length >> 1] ^= 0x5a;
        writeFileSync(f, b);
      }
    },
  ],
  [
    'replaced by garbage',
    (files) => {
      for (const f of files) writeFileSync(f, randomBytes(Math.max(64, statSync(f).size)));
    },
  ],
  ['emptied', (files) => files.forEach((f) => writeFileSync(f, ''))],
  [
    "its header's version changed",
    (files) => {
      for (const f of files) {
        const b = readFileSync(f);
        const nl = b.indexOf(10);
        const head = b.subarray(0, nl < 0 ? b.length : nl).toString('utf8');
        const changed = head.replace(/"version":\s*(\d+)/, (_, v: string) => `"version":${Number(v) + 1}`);
        if (changed === head) t.comment(`no version in the first line of ${f}`);
        writeFileSync(f, Buffer.concat([Buffer.from(changed, 'utf8'), b.subarray(nl < 0 ? b.length : nl)]));
      }
    },
  ],
  [
    "another repository's state copied over it",
    (files) => {
      const contents = files.map((f) => readFileSync(f));
      // Each file gets the next one's content: with two repositories, their states are swapped.
      files.forEach((f, i) => writeFileSync(f, contents[(i + 1) % files.length]!));
    },
  ],
];

t.test('a damaged persisted state is never answered from', async (t) => {
  let g = await gitDaemon(t, 'hearth-rsd-', { home });
  const { root } = g;
  const stateDir = g.d.stateDir;
  const repos = [makeRepo(root, 'one'), makeRepo(root, 'two')];
  for (const r of repos) base(r);
  writeAt(repos[1]!, 'dir/fixed.txt', 'abcdefgh\n', PAST);
  commitAll(repos[1]!, 'fixed');
  for (const r of repos) t.ok((await g.status({ repo: r, untracked: 'all' })).json.success, 'warm');

  for (const [n, [name, damage]] of DAMAGE.entries()) {
    await g.close();
    // Changes a state answered from (damaged or not validated) would miss.
    const [one, two] = repos as [string, string];
    write(one, 'a.txt', lines(`edited in step ${n}`, n + 1));
    write(one, `step-${n}/new.txt`, 'new\n');
    write(one, `step-${n}.log`, 'ignored\n');
    if (n % 2 === 0) git(one, 'add', '-A');
    await pastCtimeSecond(two, ['dir/fixed.txt']);
    write(two, 'dir/fixed.txt', `abcdefg${n}\n`);
    utimesSync(join(two, 'dir/fixed.txt'), PAST, PAST);
    if (n === 2) git(two, 'rm', '-q', '--cached', 'b.txt');
    if (n === 4) renameSync(join(two, 'dir/sub'), join(two, 'dir/moved'));
    // The repositories' states (the list of repositories warm at the stop, warm.json, gets garbage once).
    const files = filesUnder(join(stateDir, 'git'));
    const states = files.filter((f) => f.endsWith('.state'));
    damage(states);
    if (name === 'replaced by garbage') for (const f of files) if (!states.includes(f)) writeFileSync(f, randomBytes(64));
    t.comment(`${name}: ${states.length} state file(s) under <state_dir>/git damaged`);
    g = await gitDaemon(t, 'hearth-rsd-', { home, root, stateDir });
    const seen = await Promise.all(repos.map((r, i) => observe(g, r, [(['all', 'default', 'v2', 'matching'] as const)[(n + i) % 4]])));
    for (const [i, o] of seen.entries()) await t.test(`${name}: repository ${i + 1}`, async (t) => verify(t, name, o));
    reuseFigures(t, `damaged: ${name}`, await gitSection(g), repos.length);
  }
  await g.close();
});
