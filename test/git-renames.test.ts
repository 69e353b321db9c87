// Renames, porcelain v2 and the --branch headers against the real git CLI: each state is asked of the
// daemon (cold, in a repository it sees for the first time, and warm, right after the change in one it
// already keeps) and rendered as v1, v1 -z, v2 --branch and v2 --branch -z, which must equal git's bytes.
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { ObjectReader } from '../plugins/git/objects.js';
import { findRepo } from '../plugins/git/repo.js';
import { RepoState } from '../plugins/git/status.js';
import { DirWatchSet, type DirEventListener } from '../src/services/dir-watch.js';
import { findRenames, fingerprint, parseRenameScore, RenameScorer, type RenameSide } from '../plugins/git/renames.js';
import { cleanEnv, runCli } from './helpers/daemon.js';
import { gitDaemon } from './helpers/git-daemon.js';
import { base, edit, lines, mv, porcelainCheck } from './helpers/git-porcelain.js';
import { commitAll, git, gitRaw, makeRepo, write } from './helpers/git.js';

// Real git processes, a real daemon and CLI processes: generous on a loaded machine.
t.setTimeout(300_000);

const { root, d, agent, status } = await gitDaemon(t, 'hearth-ren-');
const check = porcelainCheck(status);

/** A state reached twice: warm (asked before the change) and cold (a new repository). */
function scenario(name: string, setup: (repo: string) => void, act: (repo: string) => void, flagSets: string[][] = [[]]): void {
  t.test(name, async (t) => {
    const warm = makeRepo(root);
    setup(warm);
    t.ok((await status({ repo: warm, format: 'v2', renames: true })).json.success, 'warmed up');
    act(warm);
    for (const flags of flagSets) await check(t, warm, 'warm', flags, flags === flagSets[0]);
    const cold = makeRepo(root);
    setup(cold);
    act(cold);
    for (const flags of flagSets) await check(t, cold, 'cold', flags);
  });
}

t.jobs = 2;

scenario('exact renames: files, an empty file, a symlink, a directory', base, (r) => {
  mv(r, 'a.txt', 'a2.txt');
  mv(r, 'empty', 'new/empty');
  mv(r, 'link', 'link2');
  mv(r, 'dir', 'renamed dir');
});

scenario('inexact: similar is a rename, dissimilar is not, a rename then a worktree edit (RM)', base, (r) => {
  mv(r, 'body.c', 'moved/body2.c');
  write(r, 'moved/body2.c', edit(3));
  git(r, 'add', 'moved/body2.c');
  mv(r, 'a.txt', 'x.txt');
  write(r, 'x.txt', lines('other', 10));
  git(r, 'add', 'x.txt');
  mv(r, 'b.txt', 'b3.txt');
  write(r, 'b3.txt', lines('bravo', 10) + 'worktree edit\n');
}, [[], ['--find-renames=90'], ['--find-renames=10'], ['--no-renames'], ['-M']]);

scenario('thresholds: 80% at -M90 and -M5, the basename rule, same-id sources', base, (r) => {
  // a/foo.c 80% and a/bar.c 95% like b/foo.c: the basename pass takes foo.c first (above 75%).
  write(r, 'x/foo.c', edit(4));
  write(r, 'x/bar.c', edit(1));
  commitAll(r, 'more');
  git(r, 'rm', '-q', 'x/foo.c', 'x/bar.c', 'body.c');
  write(r, 'y/foo.c', lines('body', 20));
  write(r, 'y/zed.c', lines('body', 19) + 'tail\n');
  // Two deleted files with one blob, three added copies of it.
  git(r, 'rm', '-q', 'dir/c.txt');
  write(r, 'p/one.txt', lines('charlie', 12));
  write(r, 'p/two.txt', lines('charlie', 12));
  write(r, 'q/c.txt', lines('charlie', 12));
  git(r, 'add', '-A');
}, [[], ['--find-renames=90'], ['--find-renames=5'], ['--find-renames=100%']]);

scenario('renames turned off and on in config, and the rename limit', base, (r) => {
  mv(r, 'a.txt', 'a2.txt');
  mv(r, 'body.c', 'body3.c');
  write(r, 'body3.c', edit(2));
  mv(r, 'b.txt', 'other/b4.txt');
  write(r, 'other/b4.txt', lines('bravo', 9));
  git(r, 'add', '-A');
  git(r, 'config', 'diff.renames', 'false');
}, [[], ['-M']]);

t.test('random renames and edits, each state checked', async (t) => {
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const r = makeRepo(root);
  const names = ['a', 'b', 'c', 'd/a', 'd/e', 'f/g/a', 'f/h', 'i', 'j/k', 'l'];
  const content = (i: number) => lines(`file${i % 4}`, 8 + (i % 5)) + lines(`own${i}`, 1 + (i % 3));
  names.forEach((n, i) => write(r, `${n}.txt`, content(i)));
  commitAll(r, 'base');
  await check(t, r, 'start');
  for (let step = 0; step < 6; step++) {
    const kind = rand(4);
    const tracked = git(r, 'ls-files').trim().split('\n').filter(Boolean);
    const pick = tracked[rand(tracked.length)]!;
    const target = `${['m', 'n/o', 'd', 'p'][rand(4)]}/${names[rand(names.length)]!.replace(/\//g, '_')}-${step}.txt`;
    if (kind === 0) mv(r, pick, target);
    else if (kind === 1) {
      mv(r, pick, target);
      write(r, target, `${gitRaw(r, 'show', `:${target}`)}edit ${step}\n`);
      if (rand(2)) git(r, 'add', target);
    } else if (kind === 2) {
      git(r, 'rm', '-q', pick);
      write(r, target, content(rand(20)));
      git(r, 'add', target);
    } else write(r, pick, content(rand(20)));
    await check(t, r, `step ${step}`);
  }
});

t.test('CLI: the flags, byte for byte as git', async (t) => {
  const r = makeRepo(root);
  base(r);
  mv(r, 'body.c', 'with space.c');
  write(r, 'with space.c', edit(3));
  git(r, 'add', '-A');
  mv(r, 'a.txt', 'a6.txt');
  write(r, 'a6.txt', 'worktree\n');
  const cli = ['--config', join(d.stateDir, 'config.json'), '--state-dir', d.stateDir, 'git', 'status', r];
  const cases: Array<[string[], string[]]> = [
    [['-z'], ['-z']],
    [['--porcelain=v2', '-z', '--branch', '-M90'], ['--porcelain=v2', '-z', '--branch', '-M90']],
    [['--porcelain=v2', '--no-renames', '-M', '--ignore-submodules'], ['--porcelain=v2', '--no-renames', '-M', '--ignore-submodules']],
    [['--porcelain', '-b', '--find-renames=30%'], ['--porcelain', '-b', '--find-renames=30%']],
  ];
  const runs = await Promise.all(cases.map(([ours]) => runCli([...cli, ...ours], cleanEnv(), 100_000)));
  cases.forEach(([ours, theirs], i) => {
    const run = runs[i]!;
    t.equal(run.code, 0, run.stderr);
    t.equal(run.stdout, gitRaw(r, 'status', '-uall', ...theirs), ours.join(' '));
  });
});

t.test('API: validation, defaults unchanged', async (t) => {
  const r = makeRepo(root);
  base(r);
  mv(r, 'a.txt', 'a7.txt');
  const plain = await status({ repo: r });
  t.same(plain.json.data.entries, [
    { path: 'a.txt', x: 'D', y: ' ' },
    { path: 'a7.txt', x: 'A', y: ' ' },
  ], 'no renames by default, no v2 fields');
  t.notOk('upstream' in plain.json.data, 'no upstream unless asked');
  const renamed = await status({ repo: r, renames: true });
  t.same(renamed.json.data.entries, [{ path: 'a7.txt', x: 'R', y: ' ', orig_path: 'a.txt', score: 100 }]);
  for (const bad of [{ renames: 'yes' }, { find_renames: 101 }, { find_renames: -1 }, { find_renames: 50, renames: false }, { format: 'v3' }, { ignore_submodules: 'some' }, { tracking: 'x' }]) {
    const res = await status({ repo: r, ...bad });
    t.equal(res.status, 400, JSON.stringify(bad));
    t.equal(res.json.error?.code, 'VALIDATION_FAILED');
  }
  const q = await request(`http://localhost/git/status?repo=${encodeURIComponent(r)}&renames=config&find_renames=60&format=v2`, { dispatcher: agent, reset: true });
  const body = (await q.body.json()) as any;
  t.equal(body.data.entries[0].x, 'R', 'GET takes the same fields');
  t.equal(body.data.entries[0].mode_head, '100644');
  const q2 = await request(`http://localhost/git/status?repo=${encodeURIComponent(r)}&renames=true`, { dispatcher: agent, reset: true });
  t.equal(((await q2.body.json()) as any).data.entries[0].x, 'R', 'renames=true in a query');
  const q3 = await request(`http://localhost/git/status?repo=${encodeURIComponent(r)}&renames=false&find_renames=50`, { dispatcher: agent, reset: true });
  t.equal(q3.statusCode, 400, 'renames=false with find_renames in a query');
  await q3.body.dump();
});

t.test('scores are kept by blob pair: asked again, no blob is read', async (t) => {
  const blobs = new Map<string, Buffer>();
  const side = (path: string, text: string, mode = 0o100644): RenameSide => {
    const oid = `${text.length.toString(16).padStart(8, '0')}${blobs.size.toString(16).padStart(32, '0')}`;
    blobs.set(oid, Buffer.from(text));
    return { path, mode, oid };
  };
  let reads = 0;
  const scorer = new RenameScorer(async (oid) => {
    reads++;
    return blobs.get(oid)!;
  });
  const src = [side('a/foo.c', edit(4)), side('a/bar.c', edit(1)), side('a/x', lines('unrelated', 20))];
  const dst = [side('b/foo.c', lines('body', 20)), side('b/zed.c', lines('body', 19) + 'z\n')];
  const options = { minScore: 30000, limit: 1000 };
  const first = await findRenames(src, dst, options, scorer);
  t.ok(reads > 0, 'blobs read the first time');
  t.same(first.map((p) => [p.src.path, p.dst.path]), [['a/foo.c', 'b/foo.c'], ['a/bar.c', 'b/zed.c']]);
  const before = reads;
  const again = await findRenames(src, dst, options, scorer);
  t.equal(reads, before, 'no blob read again');
  t.same(again, first);
  t.ok(scorer.cachedScores >= 3);
  // CRLF counts as LF in text, not in binary.
  t.same(fingerprint(Buffer.from('a\r\nb\r\n')), fingerprint(Buffer.from('a\nb\n')));
  t.notSame(fingerprint(Buffer.from('\0a\r\nb\r\n')), fingerprint(Buffer.from('\0a\nb\n')));
  t.equal(parseRenameScore('5'), 30000);
  t.equal(parseRenameScore('90'), 54000);
  t.equal(parseRenameScore('50%'), 30000);
  t.equal(parseRenameScore('.5'), 30000);
  t.equal(parseRenameScore('x'), null);
});


t.test('the warm state keeps rename scores: a worktree edit, a rebuild, a re-staged file read no blob again', async (t) => {
  const r = makeRepo(root);
  base(r);
  mv(r, 'body.c', 'moved/body9.c');
  write(r, 'moved/body9.c', edit(3));
  git(r, 'add', '-A');
  const paths = (await findRepo(r))!;
  const reader = new ObjectReader(paths.commondir);
  t.teardown(() => reader.close());
  // A closed watch set settles nothing: every answer rebuilds from scratch, which keeps the state's caches.
  const closed = (onEvent: DirEventListener) => {
    const set = new DirWatchSet(onEvent);
    set.close();
    return set;
  };
  const state = new RepoState(paths, reader, async () => ({ head: null, changed: false, untracked: false }), { watcher: { watchDirs: closed } });
  const options = { untracked: true, ignored: false, renames: true as const };
  const first = await state.status(options);
  const score = /R(\d+) moved\/body9.c/.exec(gitRaw(r, 'status', '--porcelain=v2'))?.[1];
  t.same(first.entries.filter((e) => e.x === 'R').map((e) => [e.orig_path, e.path, String(e.score)]), [['body.c', 'moved/body9.c', score]]);
  const read = state.renameStats.blobs_read;
  t.ok(read >= 2, 'the candidates were read');
  write(r, 'moved/body9.c', edit(4));
  const second = await state.status(options);
  t.equal(second.entries.find((e) => e.path === 'moved/body9.c')?.y, 'M', 'RM');
  t.equal(state.renameStats.blobs_read, read, 'a worktree edit reads no blob');
  git(r, 'add', '-A');
  await state.status(options);
  const restaged = state.renameStats.blobs_read;
  t.ok(restaged > read, 'a new index blob is read');
  write(r, 'moved/body9.c', edit(3));
  git(r, 'add', '-A');
  const back = await state.status(options);
  t.equal(back.entries.find((e) => e.path === 'moved/body9.c')?.x, 'R');
  t.equal(state.renameStats.blobs_read, restaged, 'the first pair again: its score is kept');
  t.ok(state.renameStats.scores >= 1);
});
