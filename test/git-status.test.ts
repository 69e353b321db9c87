// The git status engine against the real git CLI: every state of a worktree (staged, modified, deleted,
// untracked, ignored, symlinks, conflicts, submodules, linked worktrees, index formats) answered cold and
// warm, with all three option combinations, must equal `git status --porcelain=v1 --no-renames`. HEAD must
// equal `git symbolic-ref` / `git rev-parse`. The warm path is asked again right after each change.
import { chmodSync, cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cleanEnv, runCli, tempDir } from './helpers/daemon.js';
import { gitDaemon } from './helpers/git-daemon.js';
import { commitAll, describe, FLAGS, git, gitHead, gitMay, gitRaw, gitStatus, gitToplevel, makeRepo, write, type StatusFlags } from './helpers/git.js';

// Many real git processes and a real daemon: generous on a loaded machine (CI runs it in ~1 min).
t.setTimeout(300_000);

const { home, root, d, status } = await gitDaemon(t, 'hearth-git-');

const toplevels = new Map<string, string>();
/** `git rev-parse --show-toplevel`, once per path (the worktrees here never move). */
function toplevel(at: string): string {
  let top = toplevels.get(at);
  if (top === undefined) {
    top = gitToplevel(at);
    toplevels.set(at, top);
  }
  return top;
}

/** Asks the daemon (first: nothing git does may help it), then git, and compares the whole answer. */
async function check(t: Tap.Test, repo: string, flags: StatusFlags = {}, label = '', at = repo, head?: ReturnType<typeof gitHead>): Promise<boolean> {
  const res = await status({ repo: at, include_untracked: flags.untracked !== false, include_ignored: flags.ignored === true });
  if (!res.json.success) return t.fail(`${label}: ${res.status} ${JSON.stringify(res.json.error)}`);
  const answer = res.json.data;
  const entries = gitStatus(at, flags);
  const expected = { repo: toplevel(at), ...(head ?? gitHead(at)), clean: entries.length === 0, entries };
  const got = { repo: answer.repo, branch: answer.branch, head: answer.head, clean: answer.clean, entries: answer.entries };
  return t.same(got, expected, `${label} ${describe(flags)}`.trim());
}

async function checkAll(t: Tap.Test, repo: string, label = '', at = repo): Promise<void> {
  const head = gitHead(at);
  for (const flags of FLAGS) await check(t, repo, flags, label, at, head);
}

// The tests are independent (a repository each): run a few at once, the long sequences first.
t.jobs = 4;

/** A committed repository to copy: a copy's index stats match nothing, so every file is hashed once. */
const template = makeRepo(root, 'template');
write(template, 'a.txt', 'alpha\n');
write(template, 'b.txt', 'bravo\n');
write(template, 'dir/c.txt', 'charlie\n');
write(template, 'dir/sub/d.txt', 'delta\n');
commitAll(template, 'base');

/** Makes `repo` a copy of the template (a repository with a.txt, b.txt, dir/c.txt and dir/sub/d.txt committed). */
const base = (repo: string): void => {
  rmSync(join(repo, '.git'), { recursive: true, force: true });
  cpSync(template, repo, { recursive: true });
};

/** A new repository, built by `setup`. */
function fresh(setup: (repo: string) => void): string {
  const repo = mkdtempSync(join(root, 'repo-'));
  if (setup === base) base(repo);
  else {
    git(repo, 'init', '-q', '-b', 'main');
    setup(repo);
  }
  return repo;
}

/**
 * One state, reached twice: in a repository the daemon already keeps warm (asked before the change), with
 * all three option combinations, and in a fresh one it sees for the first time.
 */
function scenario(name: string, setup: (repo: string) => void, act: (repo: string) => void, at: (repo: string) => string = (r) => r): void {
  t.test(name, async (t) => {
    const warm = fresh(setup);
    // Warmed up (the state before the change is the cold check of other scenarios).
    t.ok((await status({ repo: at(warm) })).json.success, 'warmed up');
    act(warm);
    await checkAll(t, warm, 'warm', at(warm));
    const cold = fresh(setup);
    act(cold);
    await check(t, cold, {}, 'cold', at(cold));
  });
}

t.test('a linked worktree, asked with a path inside it', async (t) => {
  const main = fresh(base);
  const wt = join(root, `wt-${Math.random().toString(36).slice(2)}`);
  git(main, 'worktree', 'add', '-q', '-b', 'feature', wt);
  await check(t, wt, {}, 'fresh worktree', join(wt, 'dir'));
  write(wt, 'dir/c.txt', 'changed in the worktree\n');
  write(wt, 'wt-only.txt', 'u');
  git(wt, 'add', 'wt-only.txt');
  write(wt, 'untracked.txt', 'u');
  await checkAll(t, wt, 'changed', join(wt, 'dir'));
  await check(t, main, {}, 'the main worktree is unaffected');
  git(wt, 'commit', '-q', '-m', 'in the worktree');
  await check(t, wt, {}, 'committed', join(wt, 'dir'));
  write(main, 'a.txt', 'main changed\n');
  git(main, 'add', 'a.txt');
  await check(t, main, {}, 'main staged');
  await check(t, wt, {}, 'worktree after main staged', join(wt, 'dir'));
});

t.test('submodules: clean, new commit, modified and untracked content, uninitialized', async (t) => {
  const lib = makeRepo(root);
  write(lib, 'lib.txt', 'lib\n');
  commitAll(lib, 'lib');
  const sup = fresh(base);
  git(sup, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', lib, 'libs/lib');
  git(sup, 'commit', '-q', '-m', 'submodule');
  const sub = join(sup, 'libs/lib');
  await checkAll(t, sup, 'clean');
  write(sub, 'untracked.txt', 'u');
  await checkAll(t, sup, 'untracked content');
  unlinkSync(join(sub, 'untracked.txt'));
  await check(t, sup, {}, 'clean again');
  write(sub, 'lib.txt', 'modified\n');
  await checkAll(t, sup, 'modified content');
  git(sub, 'checkout', '-q', '--', 'lib.txt');
  await check(t, sup, {}, 'reverted');
  write(lib, 'lib.txt', 'lib v2\n');
  commitAll(lib, 'lib v2');
  git(sub, 'fetch', '-q');
  git(sub, 'merge', '-q', '--ff-only', 'origin/main');
  await checkAll(t, sup, 'new commit inside');
  git(sub, 'commit', '-q', '--allow-empty', '-m', 'local commit');
  await check(t, sup, {}, 'local commit inside');
  git(sub, 'reset', '-q', '--hard', 'HEAD~1');
  git(sup, 'add', 'libs/lib');
  await checkAll(t, sup, 'new commit staged');
  git(sup, 'commit', '-q', '-m', 'bump');
  await check(t, sup, {}, 'bump committed');

  const clone = join(root, `clone-${Math.random().toString(36).slice(2)}`);
  git(root, 'clone', '-q', sup, clone);
  await checkAll(t, clone, 'uninitialized (cold)');
  git(clone, '-c', 'protocol.file.allow=always', 'submodule', 'update', '-q', '--init');
  await checkAll(t, clone, 'initialized');
  git(clone, 'submodule', 'deinit', '-q', '-f', 'libs/lib');
  await checkAll(t, clone, 'deinitialized');
});

t.test('the warm path: each change is in the very next answer', async (t) => {
  const r = fresh(base);
  await check(t, r, {}, 'start');
  const steps: Array<[string, () => void]> = [
    ['edit', () => write(r, 'a.txt', 'one\n')],
    ['same size edit in the same second', () => write(r, 'a.txt', 'two\n')],
    ['and again', () => write(r, 'a.txt', 'six\n')],
    ['back to the committed content', () => write(r, 'a.txt', 'alpha\n')],
    ['git add', () => {
      write(r, 'a.txt', 'staged\n');
      git(r, 'add', 'a.txt');
    }],
    ['edit after add, same size', () => write(r, 'a.txt', 'STAGED\n')],
    ['git commit -a', () => git(r, 'commit', '-q', '-a', '-m', 'c1')],
    ['new dir with files', () => {
      write(r, 'newdir/x.txt', 'x');
      write(r, 'newdir/deep/y.txt', 'y');
    }],
    ['a file in a new nested dir of a new dir', () => write(r, 'newdir/deep/er/z.txt', 'z')],
    ['rm -rf the new dir', () => rmSync(join(r, 'newdir'), { recursive: true })],
    ['rm -rf a tracked dir', () => rmSync(join(r, 'dir'), { recursive: true })],
    ['git checkout -- .', () => git(r, 'checkout', '-q', '--', '.')],
    ['.gitignore created', () => {
      write(r, 'junk.log', 'j');
      write(r, 'dir/junk.log', 'j');
      write(r, '.gitignore', '*.log\n');
    }],
    ['.gitignore edited', () => write(r, '.gitignore', '*.txt\n')],
    ['nested .gitignore', () => write(r, 'dir/.gitignore', '!*.log\n')],
    ['.gitignore deleted', () => {
      unlinkSync(join(r, '.gitignore'));
      unlinkSync(join(r, 'dir/.gitignore'));
    }],
    ['commit everything', () => commitAll(r, 'c2')],
    ['git checkout -b', () => git(r, 'checkout', '-q', '-b', 'topic')],
    ['commit on the branch', () => {
      write(r, 'topic.txt', 't');
      write(r, 'b.txt', 'topic change\n');
      commitAll(r, 'topic');
    }],
    ['git checkout main', () => git(r, 'checkout', '-q', 'main')],
    ['dirty, then git stash', () => {
      write(r, 'a.txt', 'stash me\n');
      write(r, 'dir/c.txt', 'stash me too\n');
      git(r, 'add', 'dir/c.txt');
      git(r, 'stash', '-q');
    }],
    ['git stash pop', () => git(r, 'stash', 'pop', '-q')],
    ['git reset --hard', () => git(r, 'reset', '-q', '--hard')],
    ['git reset --soft HEAD~1', () => git(r, 'reset', '-q', '--soft', 'HEAD~1')],
    ['git reset (mixed)', () => git(r, 'reset', '-q')],
    ['git checkout --detach', () => {
      commitAll(r, 'c3');
      git(r, 'checkout', '-q', '--detach', 'HEAD~1');
    }],
    ['back on main', () => git(r, 'checkout', '-q', 'main')],
    ['create and delete nested dirs', () => {
      mkdirSync(join(r, 'n1/n2/n3'), { recursive: true });
      write(r, 'n1/n2/n3/f.txt', 'f');
      rmSync(join(r, 'n1/n2'), { recursive: true });
      write(r, 'n1/g.txt', 'g');
    }],
    ['a dir moved', () => renameSync(join(r, 'n1'), join(r, 'm1'))],
    ['a tracked dir moved', () => renameSync(join(r, 'dir'), join(r, 'dir2'))],
    ['moved back', () => renameSync(join(r, 'dir2'), join(r, 'dir'))],
    ['a tracked file replaced by a dir', () => {
      unlinkSync(join(r, 'b.txt'));
      write(r, 'b.txt/in.txt', 'in');
    }],
    ['and back', () => {
      rmSync(join(r, 'b.txt'), { recursive: true });
      git(r, 'checkout', '-q', '--', 'b.txt');
    }],
    ['chmod +x', () => chmodSync(join(r, 'a.txt'), 0o755)],
    ['git rm --cached', () => git(r, 'rm', '-q', '--cached', 'dir/c.txt')],
    ['git add -N', () => {
      write(r, 'ita.txt', 'ita');
      git(r, 'add', '-N', 'ita.txt');
    }],
    ['git add -A and commit', () => commitAll(r, 'c4')],
    ['the user runs git status (index refreshed), then a same-size edit', () => {
      git(r, 'status', '--porcelain');
      write(r, 'b.txt', 'BRAVO\n');
    }],
    ['git status again, then the edit undone', () => {
      git(r, 'status', '--porcelain');
      write(r, 'b.txt', 'bravo\n');
    }],
    ['an editor save: write a temp file, rename it over', () => {
      write(r, 'dir/.c.txt.swp', 'saved by an editor\n');
      renameSync(join(r, 'dir/.c.txt.swp'), join(r, 'dir/c.txt'));
    }],
    ['git mv', () => git(r, 'mv', 'dir/c.txt', 'dir/sub/moved.txt')],
    ['commit, then a branch with a directory of its own', () => {
      commitAll(r, 'c5');
      git(r, 'checkout', '-q', '-b', 'withdir');
      write(r, 'only/here/x.txt', 'x');
      commitAll(r, 'withdir');
      git(r, 'checkout', '-q', 'main');
    }],
    ['back on the branch with the directory', () => git(r, 'checkout', '-q', 'withdir')],
    ['git pack-refs and gc', () => {
      git(r, 'pack-refs', '--all');
      git(r, 'gc', '-q');
    }],
    ['a commit after gc', () => {
      write(r, 'a.txt', 'after gc\n');
      git(r, 'commit', '-q', '-am', 'after gc');
    }],
    ['git commit --amend', () => {
      write(r, 'a.txt', 'amended\n');
      git(r, 'commit', '-q', '-a', '--amend', '-m', 'amended');
    }],
    ['a merge with a conflict', () => {
      write(r, 'a.txt', 'withdir side\n');
      git(r, 'commit', '-q', '-am', 'side');
      git(r, 'checkout', '-q', 'main');
      write(r, 'a.txt', 'main side\n');
      git(r, 'commit', '-q', '-am', 'main side');
      gitMay(r, 'merge', '-q', 'withdir');
    }],
    ['git merge --abort', () => git(r, 'merge', '--abort')],
    ['index rewritten as version 4 while warm', () => {
      write(r, 'b.txt', 'v4\n');
      git(r, 'update-index', '--index-version', '4');
    }],
    ['info/exclude edited', () => {
      write(r, 'excluded.txt', 'e');
      write(r, 'dir/excluded.txt', 'e');
      write(r, '.git/info/exclude', 'excluded.txt\n');
    }],
    ['core.excludesFile set', () => {
      writeFileSync(join(home, 'warm-excludes'), '*.warm\n');
      git(r, 'config', 'core.excludesFile', join(home, 'warm-excludes'));
      write(r, 'x.warm', 'w');
      write(r, 'x.cold', 'c');
    }],
    ['the excludes file edited (outside the repository)', () => writeFileSync(join(home, 'warm-excludes'), '*.cold\n')],
    ['git clean -fdx', () => git(r, 'clean', '-q', '-fdx')],
    ['a branch where a file became a directory', () => {
      git(r, 'checkout', '-q', '-b', 'shape');
      git(r, 'rm', '-q', '-f', 'b.txt');
      write(r, 'b.txt/x.txt', 'x');
      write(r, 'fresh-dir/y.txt', 'y');
      commitAll(r, 'shape');
      git(r, 'checkout', '-q', 'main');
    }],
    ['git checkout of that branch', () => git(r, 'checkout', '-q', 'shape')],
    ['an edit in a directory git checkout created', () => write(r, 'fresh-dir/y.txt', 'Y')],
    ['a new file there, same second', () => write(r, 'b.txt/new.txt', 'n')],
    ['git stash -u', () => git(r, 'stash', '-q', '-u')],
    ['git checkout main', () => git(r, 'checkout', '-q', 'main')],
    ['git stash pop on main', () => gitMay(r, 'stash', 'pop', '-q')],
    ['git reset --hard and git clean', () => {
      git(r, 'reset', '-q', '--hard');
      git(r, 'clean', '-q', '-fd');
    }],
    ['git init in a subdir (nested repository)', () => {
      makeRepo(r, 'inner');
      write(r, 'inner/f.txt', 'f');
    }],
    ['nested repository removed', () => rmSync(join(r, 'inner'), { recursive: true })],
  ];
  for (const [name, step] of steps) {
    step();
    await check(t, r, {}, name);
  }
  await checkAll(t, r, 'end');
});

t.test('the warm path: 50 random edits, each checked at once', async (t) => {
  const r = fresh(base);
  await check(t, r, {}, 'start');
  let seed = 0x2545f491;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const files = ['a.txt', 'b.txt', 'dir/c.txt', 'dir/sub/d.txt', 'dir/e.txt', 'new/f.txt', 'new/deep/g.txt', 'h.log', 'i j.txt'];
  const ops: Array<[string, (f: string) => void]> = [
    ['write', (f) => write(r, f, `v${rand(3)}\n`)],
    ['write longer', (f) => write(r, f, `longer content ${rand(1000)}\n`)],
    ['remove', (f) => rmSync(join(r, f), { force: true })],
    ['add', (f) => gitMay(r, 'add', '--', f)],
    ['rm --cached', (f) => gitMay(r, 'rm', '-q', '--cached', '--', f)],
    ['chmod', (f) => {
      try {
        chmodSync(join(r, f), rand(2) ? 0o755 : 0o644);
      } catch {
        /* gone */
      }
    }],
    ['rm -rf dir', () => rmSync(join(r, ['new', 'dir/sub', 'dir'][rand(3)]!), { recursive: true, force: true })],
    ['ignore', () => write(r, '.gitignore', ['', '*.log\n', 'new/\n', '!*.log\n*.txt\n'][rand(4)]!)],
    ['commit', () => gitMay(r, 'commit', '-q', '-a', '-m', 'random')],
    ['checkout file', (f) => gitMay(r, 'checkout', '-q', 'HEAD', '--', f)],
  ];
  for (let i = 0; i < 50; i++) {
    const [name, op] = ops[rand(ops.length)]!;
    const file = files[rand(files.length)]!;
    op(file);
    if (!(await check(t, r, i % 5 === 4 ? { ignored: true } : {}, `#${i} ${name} ${file}`))) break;
  }
});

t.test('which repository a path is in', async (t) => {
  const r = fresh(base);
  const sub = await d.client.call<any>('GET', `/git/status?repo=${encodeURIComponent(join(r, 'dir/sub/d.txt'))}`);
  t.equal(sub.repo, r, 'a file in a subdirectory answers with the worktree root');
  t.same(sub.entries, []);
  write(r, 'dir/new.txt', 'n');
  write(r, '.gitignore', '*.log\n');
  write(r, 'x.log', 'l');
  write(r, 'a.txt', 'changed\n');
  for (const flags of FLAGS) {
    const query = `repo=${encodeURIComponent(join(r, 'dir'))}&include_untracked=${flags.untracked !== false}&include_ignored=${flags.ignored === true}`;
    const got = await d.client.call<any>('GET', `/git/status?${query}`);
    t.same(got.entries, gitStatus(r, flags), `GET ${describe(flags)}`);
  }

  const errorOf = async (path: string) => {
    const res = await status({ repo: path });
    return [res.status, res.json.error?.code];
  };
  const plain = join(root, `plain-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(plain, 'x'), { recursive: true });
  t.same(await errorOf(join(plain, 'x')), [404, 'NOT_A_REPOSITORY']);
  t.same(await errorOf(join(plain, 'x')), [404, 'NOT_A_REPOSITORY'], 'asked twice');
  git(plain, 'init', '-q');
  write(plain, 'x/new.txt', 'n');
  await check(t, plain, {}, 'right after git init', join(plain, 'x'));
  t.same(await errorOf(tempDir('hearth-elsewhere-')), [403, 'PATH_OUTSIDE_ROOTS']);
  t.same(await errorOf('/etc'), [403, 'PATH_OUTSIDE_ROOTS']);
  t.same(await errorOf(join(r, 'missing/path')), [404, 'NOT_FOUND']);
});

t.test('CLI: --porcelain -z byte for byte, and --porcelain quoted as git quotes', async (t) => {
  const r = fresh(base);
  write(r, 'with space.txt', 's');
  write(r, 'naïve.txt', 'n');
  commitAll(r, 'names');
  write(r, 'with space.txt', 'changed');
  write(r, 'naïve.txt', 'changed');
  write(r, 'quote"d file.txt', 'q');
  write(r, 'back\\slash.txt', 'b');
  write(r, 'tab\tname.txt', 't');
  write(r, '日本語/ファイル.txt', 'j');
  write(r, 'a.txt', 'staged\n');
  git(r, 'add', 'a.txt');
  write(r, '.gitignore', '*.log\n');
  write(r, 'dir/x.log', 'l');
  const cli = ['--config', join(d.stateDir, 'config.json'), '--state-dir', d.stateDir, 'git', 'status'];
  const cases: Array<[string[], string[]]> = [
    [['--porcelain', '-z'], ['-z']],
    [['--porcelain', '-uall'], ['--untracked-files=all']],
    [['--porcelain', '-z', '--ignored', '--untracked-files=all'], ['-z', '--untracked-files=all', '--ignored']],
  ];
  const runs = await Promise.all(cases.map(([ours]) => runCli([...cli, join(r, 'dir'), ...ours], cleanEnv(), 60_000)));
  cases.forEach(([ours, theirs], i) => {
    const run = runs[i]!;
    t.equal(run.code, 0, run.stderr);
    t.equal(run.stdout, gitRaw(join(r, 'dir'), 'status', '--porcelain=v1', '--no-renames', ...theirs), ours.join(' '));
  });
});

scenario('modified files', base, (r) => {
  write(r, 'a.txt', 'alpha changed\n');
  write(r, 'dir/sub/d.txt', 'delta changed\n');
});
scenario('modified, same size', base, (r) => write(r, 'a.txt', 'ALPHA\n'));
scenario('staged', base, (r) => {
  write(r, 'a.txt', 'alpha staged\n');
  git(r, 'add', 'a.txt');
});
scenario('staged then modified again', base, (r) => {
  write(r, 'a.txt', 'alpha staged\n');
  git(r, 'add', 'a.txt');
  write(r, 'a.txt', 'alpha staged and again\n');
});
scenario('deleted in the worktree', base, (r) => {
  unlinkSync(join(r, 'a.txt'));
  rmSync(join(r, 'dir/sub'), { recursive: true });
});
scenario('deleted from the index only (git rm --cached)', base, (r) => git(r, 'rm', '-q', '--cached', 'a.txt', 'dir/c.txt'));
scenario('deleted from both (git rm)', base, (r) => git(r, 'rm', '-q', '-r', 'a.txt', 'dir/sub'));
scenario('added', base, (r) => {
  write(r, 'new.txt', 'new\n');
  write(r, 'dir/new/deep.txt', 'deep\n');
  git(r, 'add', 'new.txt', 'dir/new/deep.txt');
});
scenario('untracked in new and nested directories, and a nested repository', base, (r) => {
  write(r, 'top.txt', 'x');
  write(r, 'fresh/one.txt', '1');
  write(r, 'fresh/deeper/still/two.txt', '2');
  write(r, 'dir/sub/three.txt', '3');
  mkdirSync(join(r, 'empty/dirs/only'), { recursive: true });
  makeRepo(r, 'nested');
  write(r, 'nested/inside.txt', 'n');
});
scenario('ignored by nested .gitignore files', base, (r) => {
  write(r, '.gitignore', 'build/\n*.tmp\n');
  write(r, 'dir/.gitignore', '*.log\n/only-here.txt\n');
  write(r, 'dir/sub/.gitignore', '!keep.tmp\n');
  write(r, 'x.log', 'not ignored at the root');
  write(r, 'dir/x.log', 'ignored');
  write(r, 'dir/sub/y.log', 'ignored below');
  write(r, 'dir/only-here.txt', 'ignored');
  write(r, 'dir/sub/only-here.txt', 'not ignored');
  write(r, 'build/out/a.o', 'o');
  write(r, 'dir/build/b.o', 'o');
  write(r, 'a.tmp', 't');
  write(r, 'dir/sub/keep.tmp', 'kept');
  write(r, 'dir/c.tmp', 't');
});
scenario('negated patterns', base, (r) => {
  write(r, '.gitignore', '*.log\n!important.log\nlogs/*\n!logs/keep\nout/\n!out/keep.txt\n**/cache\n!dir/cache\n');
  write(r, 'a.log', 'a');
  write(r, 'important.log', 'i');
  write(r, 'dir/important.log', 'i');
  write(r, 'logs/x', 'x');
  write(r, 'logs/keep', 'k');
  write(r, 'out/keep.txt', 'stays ignored: its directory is excluded');
  write(r, 'cache/x', 'c');
  write(r, 'dir/cache/y', 'c');
  write(r, 'dir/sub/cache/z', 'c');
});
scenario('more ignore rules: middle slashes, an untracked dir with its own .gitignore, CRLF, trailing spaces, ignored nested repository', base, (r) => {
  write(r, '.gitignore', 'dir/sub/*.o\r\n*.tmp   \r\nvendor/\n\\#hash.txt\n');
  write(r, 'dir/.gitignore', 'sub/*.log\n');
  write(r, 'dir/sub/x.o', 'o');
  write(r, 'dir/x.o', 'o');
  write(r, 'dir/sub/y.log', 'l');
  write(r, 'dir/y.log', 'l');
  write(r, 'a.tmp', 't');
  write(r, '#hash.txt', 'h');
  write(r, 'untracked/.gitignore', '*.gen\n!keep.gen\n');
  write(r, 'untracked/a.gen', 'g');
  write(r, 'untracked/keep.gen', 'g');
  write(r, 'untracked/deep/b.gen', 'g');
  write(r, 'untracked/deep/c.txt', 'c');
  makeRepo(r, 'vendor/lib');
  write(r, 'vendor/lib/f.txt', 'f');
  write(r, 'vendor/plain.txt', 'p');
});
scenario('skip-worktree, assume-unchanged and core.fileMode false', base, (r) => {
  git(r, 'update-index', '--skip-worktree', 'a.txt');
  git(r, 'update-index', '--assume-unchanged', 'b.txt');
  write(r, 'a.txt', 'hidden change\n');
  write(r, 'b.txt', 'hidden change\n');
  git(r, 'config', 'core.fileMode', 'false');
  chmodSync(join(r, 'dir/c.txt'), 0o755);
  write(r, 'dir/sub/d.txt', 'seen\n');
});
scenario('an index with the untracked cache', (r) => {
  base(r);
  git(r, 'config', 'core.untrackedCache', 'true');
  git(r, 'update-index', '--untracked-cache');
  write(r, 'u1.txt', 'u');
  git(r, 'status', '--porcelain');
}, (r) => {
  write(r, 'u2.txt', 'u');
  write(r, 'dir/u3.txt', 'u');
  git(r, 'status', '--porcelain');
  write(r, 'a.txt', 'changed\n');
});
scenario('empty files, and a file emptied', (r) => {
  base(r);
  write(r, 'empty.txt', '');
  commitAll(r, 'empty');
}, (r) => {
  write(r, 'empty.txt', 'now something');
  write(r, 'a.txt', '');
  write(r, 'new-empty.txt', '');
});
scenario('.git/info/exclude', base, (r) => {
  write(r, '.git/info/exclude', '*.secret\nprivate/\n');
  write(r, 'a.secret', 's');
  write(r, 'dir/b.secret', 's');
  write(r, 'private/p.txt', 'p');
  write(r, 'public.txt', 'p');
});
scenario('core.excludesFile', base, (r) => {
  const file = join(home, `excludes-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, '*.bak\n/scratch/\n');
  git(r, 'config', 'core.excludesFile', file);
  write(r, 'a.bak', 'b');
  write(r, 'dir/c.bak', 'b');
  write(r, 'scratch/s.txt', 's');
  write(r, 'dir/scratch/t.txt', 'not ignored: anchored at the root');
});
scenario('executable bit', base, (r) => {
  chmodSync(join(r, 'a.txt'), 0o755);
  chmodSync(join(r, 'dir/c.txt'), 0o755);
  git(r, 'add', 'dir/c.txt');
});
scenario('symlinks: added, retargeted, a file replaced by a link', (r) => {
  base(r);
  symlinkSync('a.txt', join(r, 'link'));
  symlinkSync('dir', join(r, 'dirlink'));
  commitAll(r, 'links');
}, (r) => {
  unlinkSync(join(r, 'link'));
  symlinkSync('b.txt', join(r, 'link'));
  symlinkSync('dir/c.txt', join(r, 'newlink'));
  symlinkSync('nowhere', join(r, 'dangling'));
  git(r, 'add', 'dangling');
  unlinkSync(join(r, 'b.txt'));
  symlinkSync('a.txt', join(r, 'b.txt'));
  unlinkSync(join(r, 'dirlink'));
  write(r, 'dirlink', 'now a file');
});
scenario('a staged symlink that replaced a file', base, (r) => {
  unlinkSync(join(r, 'a.txt'));
  symlinkSync('b.txt', join(r, 'a.txt'));
  git(r, 'add', 'a.txt');
});
scenario('empty repository, nothing at all', () => {}, () => {});
scenario('empty repository with untracked files', () => {}, (r) => {
  write(r, 'u.txt', 'u');
  write(r, 'd/u.txt', 'u');
});
scenario('empty repository with staged files', () => {}, (r) => {
  write(r, 'a.txt', 'a');
  write(r, 'd/b.txt', 'b');
  write(r, 'u.txt', 'u');
  git(r, 'add', 'a.txt', 'd/b.txt');
  write(r, 'a.txt', 'a changed');
});
scenario('detached HEAD', (r) => {
  base(r);
  write(r, 'a.txt', 'second\n');
  commitAll(r, 'second');
}, (r) => {
  git(r, 'checkout', '-q', '--detach', 'HEAD~1');
  write(r, 'b.txt', 'bravo changed\n');
});
scenario('names with spaces, quotes and non-ASCII characters', (r) => {
  base(r);
  write(r, 'with space.txt', 's');
  write(r, 'naïve/ünïcode.txt', 'u');
  commitAll(r, 'names');
}, (r) => {
  write(r, 'with space.txt', 'changed');
  write(r, 'naïve/ünïcode.txt', 'changed');
  write(r, '日本語 ファイル.txt', 'j');
  write(r, 'quote"d.txt', 'q');
  write(r, 'back\\slash.txt', 'b');
  write(r, 'tab\there.txt', 't');
  write(r, 'new\nline.txt', 'n');
  write(r, 'emoji 😀/x.txt', 'e');
  write(r, 'Ä-upper.txt', 'a');
  write(r, 'z-last.txt', 'z');
  git(r, 'add', '日本語 ファイル.txt');
});
scenario('a file replaced by a directory, a directory replaced by a file', base, (r) => {
  unlinkSync(join(r, 'a.txt'));
  write(r, 'a.txt/inner.txt', 'inner');
  rmSync(join(r, 'dir/sub'), { recursive: true });
  write(r, 'dir/sub', 'now a file');
});
scenario('a tracked directory replaced by a symlink to a copy of it', base, (r) => {
  cpSync(join(r, 'dir/sub'), join(r, 'elsewhere'), { recursive: true });
  rmSync(join(r, 'dir/sub'), { recursive: true });
  symlinkSync('../elsewhere', join(r, 'dir/sub'));
});
scenario('a tracked directory moved away and linked back (the same files, the same stat data)', base, (r) => {
  renameSync(join(r, 'dir/sub'), join(r, 'moved'));
  symlinkSync('../moved', join(r, 'dir/sub'));
});
scenario('force-added files in ignored directories', (r) => {
  base(r);
  write(r, '.gitignore', 'build/\n*.log\n');
  write(r, 'build/kept.txt', 'k');
  write(r, 'tracked.log', 'l');
  git(r, 'add', '-f', 'build/kept.txt', 'tracked.log');
  commitAll(r, 'forced');
}, (r) => {
  write(r, 'build/kept.txt', 'changed');
  write(r, 'build/other.txt', 'ignored');
  write(r, 'build/deep/x.txt', 'ignored');
  write(r, 'tracked.log', 'changed');
  write(r, 'other.log', 'ignored');
});
scenario('merge conflicts: UU, AA, DU, UD', (r) => {
  write(r, 'both.txt', 'base\n');
  write(r, 'ours-deleted.txt', 'base\n');
  write(r, 'theirs-deleted.txt', 'base\n');
  write(r, 'clean.txt', 'base\n');
  commitAll(r, 'base');
  git(r, 'checkout', '-q', '-b', 'other');
  write(r, 'both.txt', 'theirs\n');
  write(r, 'ours-deleted.txt', 'theirs\n');
  unlinkSync(join(r, 'theirs-deleted.txt'));
  write(r, 'added.txt', 'theirs\n');
  write(r, 'clean.txt', 'merged cleanly\n');
  commitAll(r, 'other');
  git(r, 'checkout', '-q', 'main');
  write(r, 'both.txt', 'ours\n');
  unlinkSync(join(r, 'ours-deleted.txt'));
  write(r, 'theirs-deleted.txt', 'ours\n');
  write(r, 'added.txt', 'ours\n');
  commitAll(r, 'ours');
}, (r) => {
  gitMay(r, 'merge', '-q', 'other');
});
scenario('conflicts partly resolved', (r) => {
  write(r, 'f1.txt', 'base\n');
  write(r, 'f2.txt', 'base\n');
  commitAll(r, 'base');
  git(r, 'checkout', '-q', '-b', 'other');
  write(r, 'f1.txt', 'theirs\n');
  write(r, 'f2.txt', 'theirs\n');
  commitAll(r, 'other');
  git(r, 'checkout', '-q', 'main');
  write(r, 'f1.txt', 'ours\n');
  write(r, 'f2.txt', 'ours\n');
  commitAll(r, 'ours');
}, (r) => {
  gitMay(r, 'merge', '-q', 'other');
  write(r, 'f1.txt', 'resolved\n');
  git(r, 'add', 'f1.txt');
});
scenario('intent to add (git add -N)', base, (r) => {
  write(r, 'ita.txt', 'intent');
  write(r, 'dir/ita2.txt', 'intent');
  write(r, 'ita-gone.txt', 'gone');
  git(r, 'add', '-N', 'ita.txt', 'dir/ita2.txt', 'ita-gone.txt');
  unlinkSync(join(r, 'ita-gone.txt'));
});
scenario('an index written as version 4', (r) => {
  base(r);
  for (let i = 0; i < 30; i++) write(r, `many/prefix-${i}/file-${i}.txt`, `${i}\n`);
  commitAll(r, 'many');
  git(r, 'update-index', '--index-version', '4');
}, (r) => {
  write(r, 'many/prefix-7/file-7.txt', 'changed\n');
  write(r, 'many/prefix-12/file-12.txt', 'staged\n');
  git(r, 'add', 'many/prefix-12/file-12.txt');
  unlinkSync(join(r, 'many/prefix-20/file-20.txt'));
  write(r, 'many/prefix-3/new.txt', 'new\n');
});
scenario('an index with index.skipHash, rewritten', base, (r) => {
  git(r, 'config', 'index.skipHash', 'true');
  write(r, 'a.txt', 'rewrite\n');
  git(r, 'add', 'a.txt');
  git(r, 'update-index', '--index-version', '3');
  write(r, 'b.txt', 'unstaged\n');
});
scenario('status asked with a path in a subdirectory', base, (r) => write(r, 'dir/sub/d.txt', 'changed\n'), (r) => join(r, 'dir/sub'));
