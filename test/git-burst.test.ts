// Bursts of changes against the real git CLI: one warm daemon, a burst made (an editor's "save all", a
// formatter's run, a checkout of thousands of files, a fast-forward, an `npm install`-like tree, a directory
// renamed or deleted, files that come and go within the burst, two bursts back to back), and the very next
// answer compared with `git status` (v1 -uall, the default view, and others for some).
import { renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { gitDaemon } from './helpers/git-daemon.js';
import { commitAll, git, makeRepo, write } from './helpers/git.js';
import { check, observe, pastCtimeSecond, PAST, verify, writeAt, type View } from './helpers/git-views.js';

t.setTimeout(240_000);

const g = await gitDaemon(t, 'hearth-burst-');
const { root } = g;

const lines = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix} ${i}\n`).join('');
const pad = (n: number) => String(n).padStart(4, '0');

/** A repository made by `setup`, warmed by one answer (checked too), then `burst`, then the next answers checked. */
async function scenario(name: string, setup: (r: string) => void | Promise<void>, burst: (r: string, t: Tap.Test) => void | Promise<void>, views: View[] = ['all', 'default']): Promise<void> {
  await t.test(name, async (t) => {
    const r = makeRepo(root, name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40));
    await setup(r);
    await check(t, g, r, `${name}: before`, ['all']);
    await burst(r, t);
    const o = await observe(g, r, views);
    verify(t, name, o);
    t.equal(o.answers[0]!.json.data?.cached, true, `${name}: answered by the warm state`);
  });
}

/** `n` tracked files under `dir`, `perDir` a subdirectory, committed. */
function tree(r: string, dir: string, n: number, perDir = 50, content = (i: number) => lines(`${dir} ${i}`, 3)): string[] {
  const paths: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = `${dir}/d${Math.floor(i / perDir)}/f${pad(i)}.txt`;
    write(r, p, content(i));
    paths.push(p);
  }
  return paths;
}

await scenario(
  'an editor saves all: 50 tracked files rewritten',
  (r) => {
    tree(r, 'src', 80, 20);
    write(r, '.gitignore', '*.swp\n');
    commitAll(r, 'base');
  },
  (r) => {
    for (let i = 0; i < 50; i++) {
      const p = `src/d${Math.floor(i / 20)}/f${pad(i)}.txt`;
      if (i % 5 === 0) write(r, p, lines(`src ${i}`, 3)); // saved unchanged
      else if (i % 5 === 1) {
        // An atomic save: a temp file renamed over the file (a new inode).
        write(r, `${p}.swp`, lines(`saved ${i}`, 4));
        renameSync(join(r, `${p}.swp`), join(r, p));
      } else write(r, p, lines(`saved ${i}`, i % 3 === 0 ? 3 : 5));
    }
  },
  ['all', 'default', 'v2'],
);

await scenario(
  'a formatter rewrites every file of a directory (same sizes, some mtimes restored)',
  async (r) => {
    for (let i = 0; i < 60; i++) writeAt(r, `fmt/sub${i % 3}/f${pad(i)}.js`, `const value_${pad(i)} = 'abcdef';\n`, PAST);
    writeAt(r, 'other.js', 'untouched\n', PAST);
    commitAll(r, 'base');
    // git compares ctimes to the second: a rewrite in the second of the commit with the mtime restored
    // would be clean to it whatever the content (see pastCtimeSecond).
    await pastCtimeSecond(r, ['fmt/sub0/f0000.js']);
  },
  (r) => {
    for (let i = 0; i < 60; i++) {
      const p = `fmt/sub${i % 3}/f${pad(i)}.js`;
      const content = i % 4 === 3 ? `const value_${pad(i)} = 'abcdef';\n` : `const VALUE_${pad(i)} = "abcdef";\n`;
      if (i % 2 === 0) writeAt(r, p, content, PAST);
      else write(r, p, content);
    }
  },
  ['all', 'v2', 'default'],
);

await scenario(
  'git checkout of a branch that differs in ~2,600 files',
  (r) => {
    write(r, '.gitignore', '*.o\n');
    tree(r, 'common', 40);
    tree(r, 'm', 1300);
    commitAll(r, 'main');
    git(r, 'checkout', '-q', '-b', 'big');
    rmSync(join(r, 'm'), { recursive: true });
    tree(r, 'b', 1300);
    for (let i = 0; i < 40; i += 4) write(r, `common/d0/f${pad(i)}.txt`, 'changed on big\n');
    write(r, '.gitignore', '*.tmp\n');
    commitAll(r, 'big');
    git(r, 'checkout', '-q', 'main');
    write(r, 'x.o', 'object\n');
    write(r, 'y.tmp', 'tmp\n');
    write(r, 'common/d0/untracked.txt', 'u\n');
  },
  async (r, t) => {
    git(r, 'checkout', '-q', 'big');
    await check(t, g, r, 'checked out big', ['all', 'default']);
    git(r, 'checkout', '-q', 'main');
  },
  ['all', 'matching', 'v2'],
);

await scenario(
  'a git pull-like fast-forward (files added, deleted, modified)',
  (r) => {
    tree(r, 'lib', 120, 30);
    write(r, 'README', 'readme\n');
    commitAll(r, 'base');
    git(r, 'checkout', '-q', '-b', 'upstream');
    for (let i = 0; i < 120; i += 3) write(r, `lib/d${Math.floor(i / 30)}/f${pad(i)}.txt`, `upstream ${i}\n`);
    for (let i = 1; i < 120; i += 7) unlinkSync(join(r, `lib/d${Math.floor(i / 30)}/f${pad(i)}.txt`));
    tree(r, 'newpkg', 60, 15);
    commitAll(r, 'upstream 1');
    rmSync(join(r, 'lib/d3'), { recursive: true });
    write(r, 'README', 'readme, upstream\n');
    commitAll(r, 'upstream 2');
    git(r, 'checkout', '-q', 'main');
    write(r, 'local.txt', 'untracked, kept\n');
  },
  (r) => {
    git(r, 'merge', '-q', '--ff-only', 'upstream');
  },
  ['all', 'default', 'v2'],
);

await scenario(
  'a new untracked tree of 500 files (not ignored)',
  (r) => {
    tree(r, 'src', 20);
    commitAll(r, 'base');
  },
  (r) => {
    for (let i = 0; i < 500; i++) write(r, `vendor/pkg${i % 25}/lib/sub${i % 4}/f${pad(i)}.js`, `${i}\n`);
    write(r, 'src/d0/new.txt', 'n\n');
  },
  ['all', 'normal', 'default'],
);

await scenario(
  'an npm install-like tree of 500 files in an ignored node_modules/',
  (r) => {
    write(r, '.gitignore', 'node_modules/\n');
    write(r, 'package.json', '{}\n');
    commitAll(r, 'base');
  },
  (r) => {
    for (let i = 0; i < 500; i++) {
      const pkg = `node_modules/pkg${i % 40}`;
      write(r, i % 3 === 0 ? `${pkg}/node_modules/dep${i % 7}/index.js` : `${pkg}/lib/f${pad(i)}.js`, `${i}\n`);
    }
    write(r, 'package.json', '{"dependencies":{}}\n');
    write(r, 'package-lock.json', '{}\n');
  },
  ['all', 'matching', 'normal', 'default'],
);

await scenario(
  'a directory renamed',
  (r) => {
    tree(r, 'src', 60, 20);
    write(r, 'keep.txt', 'k\n');
    commitAll(r, 'base');
    write(r, 'src/d1/untracked.txt', 'u\n');
  },
  (r) => renameSync(join(r, 'src'), join(r, 'lib')),
  ['all', 'default', 'normal'],
);

await scenario(
  'a directory deleted with its tracked files',
  (r) => {
    tree(r, 'src', 60, 20);
    tree(r, 'keep', 10);
    commitAll(r, 'base');
    write(r, 'src/d2/untracked.txt', 'u\n');
  },
  (r) => rmSync(join(r, 'src'), { recursive: true }),
  ['all', 'v2'],
);

await scenario(
  'files created and deleted within the same burst',
  (r) => {
    tree(r, 'src', 40, 20);
    commitAll(r, 'base');
  },
  (r) => {
    for (let i = 0; i < 100; i++) write(r, `tmp/build/o${pad(i)}.tmp`, `${i}\n`);
    for (let i = 0; i < 100; i++) unlinkSync(join(r, `tmp/build/o${pad(i)}.tmp`));
    rmSync(join(r, 'tmp'), { recursive: true });
    for (let i = 0; i < 10; i++) write(r, `src/d0/.#lock${i}`, 'l\n');
    for (let i = 0; i < 10; i += 2) unlinkSync(join(r, `src/d0/.#lock${i}`));
    // A tracked file deleted and made again with its content; another with other content.
    unlinkSync(join(r, 'src/d0/f0001.txt'));
    write(r, 'src/d0/f0001.txt', lines('src 1', 3));
    unlinkSync(join(r, 'src/d1/f0021.txt'));
    write(r, 'src/d1/f0021.txt', 'other\n');
    // A tracked file made a directory and back to a file.
    unlinkSync(join(r, 'src/d0/f0002.txt'));
    write(r, 'src/d0/f0002.txt/inner', 'x\n');
    rmSync(join(r, 'src/d0/f0002.txt'), { recursive: true });
    write(r, 'src/d0/f0002.txt', 'back as a file\n');
  },
  ['all', 'default', 'v2'],
);

await scenario(
  'a burst followed at once by a second burst before the answer',
  (r) => {
    tree(r, 'src', 60, 20);
    write(r, '.gitignore', 'out/\n');
    commitAll(r, 'base');
  },
  (r) => {
    for (let i = 0; i < 40; i++) write(r, `src/d${Math.floor(i / 20)}/f${pad(i)}.txt`, `first burst ${i}\n`);
    for (let i = 0; i < 30; i++) write(r, `gen/g${pad(i)}.txt`, `${i}\n`);
    for (let i = 0; i < 30; i++) write(r, `out/o${pad(i)}.txt`, `${i}\n`);
    // The second: half of the edits reverted, some files deleted, the generated tree removed, more made.
    for (let i = 0; i < 40; i += 2) write(r, `src/d${Math.floor(i / 20)}/f${pad(i)}.txt`, lines(`src ${i}`, 3));
    for (let i = 41; i < 60; i += 3) unlinkSync(join(r, `src/d${Math.floor(i / 20)}/f${pad(i)}.txt`));
    rmSync(join(r, 'gen'), { recursive: true });
    for (let i = 0; i < 10; i++) write(r, `gen2/deep/g${pad(i)}.txt`, `${i}\n`);
    writeFileSync(join(r, '.gitignore'), 'out/\ngen2/deep/g0001.txt\n');
  },
  ['all', 'matching', 'default'],
);

await scenario(
  'a directory renamed, then files changed at its new place and its old one made again',
  (r) => {
    tree(r, 'src', 40, 20);
    commitAll(r, 'base');
  },
  async (r, t) => {
    renameSync(join(r, 'src'), join(r, 'lib'));
    await check(t, g, r, 'renamed', ['all']);
    // The new place must be watched: changes inside it come only as its own events.
    write(r, 'lib/d0/new.txt', 'n\n');
    write(r, 'lib/d1/f0021.txt', 'edited at the new place\n');
    write(r, 'lib/d1/deeper/x.txt', 'x\n');
    await check(t, g, r, 'changed at the new place', ['all']);
    write(r, 'src/d0/f0000.txt', lines('src 0', 3));
    write(r, 'src/d0/f0001.txt', 'back, other content\n');
  },
  ['all', 'default', 'v2'],
);

await scenario(
  'a directory deleted and made again in the burst, then a change inside it',
  (r) => {
    tree(r, 'src', 40, 20);
    commitAll(r, 'base');
  },
  async (r, t) => {
    rmSync(join(r, 'src/d1'), { recursive: true });
    for (let i = 20; i < 40; i += 2) write(r, `src/d1/f${pad(i)}.txt`, lines(`src ${i}`, 3));
    write(r, 'src/d1/new/y.txt', 'y\n');
    await check(t, g, r, 'made again', ['all']);
    // The directory made again is another inode: its watch must be new too.
    write(r, 'src/d1/f0020.txt', 'edited after\n');
    write(r, 'src/d1/new/z.txt', 'z\n');
    unlinkSync(join(r, 'src/d1/f0022.txt'));
  },
  ['all', 'normal', 'v2'],
);

await scenario(
  'a new untracked tree, then half of it deleted and a file of it added',
  (r) => {
    tree(r, 'src', 10);
    commitAll(r, 'base');
  },
  async (r, t) => {
    for (let i = 0; i < 300; i++) write(r, `gen/p${i % 10}/q${i % 3}/f${pad(i)}.txt`, `${i}\n`);
    await check(t, g, r, 'made', ['all']);
    for (let i = 0; i < 10; i += 2) rmSync(join(r, `gen/p${i}`), { recursive: true });
    write(r, 'gen/p1/q1/more.txt', 'm\n');
    git(r, 'add', 'gen/p1/q0');
  },
  ['all', 'normal', 'default'],
);
