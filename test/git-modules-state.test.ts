// Unit tests of the directory cache (dir-cache.ts), the persisted warm state (warm-state.ts) and a RepoState
// restored from it: real repositories in temp dirs, real watches, a real state dir, the real git CLI as the
// oracle; no mocks. index-file and worktree-compare are in git-modules.test.ts.
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { comparePaths, parseIndex, type IndexTable } from '../plugins/git/index-file.js';
import { DirCache, type Tracked, type Watches } from '../plugins/git/dir-cache.js';
import { IgnoreRules } from '../plugins/git/ignore-rules.js';
import { loadGitConfig } from '../plugins/git/git-config.js';
import { GITLINK } from '../plugins/git/modes.js';
import { settledBefore, type Verdict } from '../plugins/git/worktree-compare.js';
import { KIND_FILE, statData, type StatData } from '../plugins/git/stat-data.js';
import { findRepo, type RepoPaths } from '../plugins/git/repo.js';
import { repoIdentity, stateFile, STATE_VERSION, trackedHashes, WarmState, type DirRecord } from '../plugins/git/warm-state.js';
import { RecordFile } from '../src/services/record-file.js';
import { DirWatchSet } from '../src/services/dir-watch.js';
import { ObjectReader } from '../plugins/git/objects.js';
import { RepoState } from '../plugins/git/status.js';
import { commitAll, git, gitMay, gitRaw, gitStatus, isolateGit, makeRepo, parsePorcelainZ, write } from './helpers/git.js';

t.setTimeout(240_000);
isolateGit();
const root = mkdtempSync(join(tmpdir(), 'hearth-mods-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

const readIndex = (repo: string): IndexTable => parseIndex(readFileSync(join(repo, '.git', 'index')));
/** Past a tick of the filesystem's clock, so times set before are older than a stamp taken after. */
const settle = () => new Promise((r) => setTimeout(r, 50));
/** The filesystem's time now: the mtime of a file written now in `dir`. */
async function fsStamp(dir: string): Promise<number> {
  const file = join(dir, `.stamp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, '');
  const { mtimeMs } = await lstat(file);
  unlinkSync(file);
  return mtimeMs;
}
const stat = async (path: string): Promise<StatData> => statData(await lstat(path));

/** What the DirCache asks of the index, from a real IndexTable (any stage counts as tracked). */
function trackedOf(current: () => IndexTable): Tracked {
  let dirsOf: { index: IndexTable; dirs: Set<string> } | null = null;
  return {
    isTracked: (path) => {
      const index = current();
      const i = index.lowerBound(path);
      return i < index.count && index.path(i) === path;
    },
    isGitlink: (path) => {
      const index = current();
      const i = index.find(path);
      return i >= 0 && index.mode(i) === GITLINK;
    },
    hasDir: (dir) => {
      const index = current();
      if (dirsOf?.index !== index) {
        const dirs = new Set<string>();
        for (let i = 0; i < index.count; i++) {
          const p = index.path(i);
          for (let s = p.indexOf('/'); s > 0; s = p.indexOf('/', s + 1)) dirs.add(p.slice(0, s));
        }
        dirsOf = { index, dirs };
      }
      return dirsOf.dirs.has(dir);
    },
  };
}

/** The watch interface, recording which directories are watched now. */
class Recorder implements Watches {
  readonly live = new Set<string>();
  constructor(readonly real?: DirWatchSet) {}
  add(dir: string): boolean {
    this.live.add(dir);
    return this.real ? this.real.add(dir) : true;
  }
  delete(dir: string): void {
    this.live.delete(dir);
    this.real?.delete(dir);
  }
}

interface Cache {
  cache: DirCache;
  watch: Recorder;
  paths: RepoPaths;
  /** Reads the index again (after git changed it). */
  reload(): void;
  /** New ignore rules, as status makes them at a build. */
  newRules(): void;
}

async function dirCacheOf(repo: string, real?: DirWatchSet): Promise<Cache> {
  const paths = (await findRepo(repo))!;
  let index = readIndex(repo);
  const watch = new Recorder(real);
  const cache = new DirCache(paths.worktree, trackedOf(() => index), watch);
  const newRules = () => {
    cache.rules = new IgnoreRules(paths.worktree, paths.commondir, loadGitConfig(paths));
  };
  newRules();
  return { cache, watch, paths, reload: () => (index = readIndex(repo)), newRules };
}

/** `git status -z` entries of one kind ('?' or '!'), sorted as hearth sorts. */
function gitListed(repo: string, kind: '?' | '!', untracked: 'normal' | 'all', ignored: 'traditional' | 'matching' | 'no' = 'no'): string[] {
  const out = parsePorcelainZ(gitRaw(repo, 'status', '--porcelain=v1', '-z', `-u${untracked}`, `--ignored=${ignored}`));
  return out.filter((e) => e.x === kind).map((e) => e.path).sort(comparePaths);
}

async function checkAgainstGit(t: Test, repo: string, cache: DirCache, label: string): Promise<void> {
  for (const u of ['normal', 'all'] as const) {
    t.same(cache.untrackedPaths(u), gitListed(repo, '?', u), `${label}: untracked -u${u}`);
    for (const i of ['traditional', 'matching'] as const) {
      const ours = (await cache.ignoredPaths(u, i)).filter(cache.listable).sort(comparePaths);
      t.same(ours, gitListed(repo, '!', u, i), `${label}: ignored -u${u} --ignored=${i}`);
    }
  }
}

function untrackedRepo(): string {
  const repo = makeRepo(root);
  write(repo, 'README', 'r\n');
  write(repo, 'src/a.ts', 'a\n');
  write(repo, 'src/deep/b.ts', 'b\n');
  write(repo, 'mixed/t.txt', 't\n');
  write(repo, 'logs/t.txt', 'tracked in an ignored dir\n');
  commitAll(repo);
  write(repo, '.gitignore', '*.log\nbuild/\n!keep.log\nlogs/\n');
  commitAll(repo); // logs/t.txt stays tracked
  for (const p of ['top.txt', 'src/new.ts', 'newdir/x/y.txt', 'newdir/z.txt', 'mixed/u.txt', 'err.log', 'src/deep/c.log', 'keep.log', 'build/out.o', 'build/sub/deep.o', 'logs/extra.txt', 'onlyignored/a.log', 'café/é.txt']) write(repo, p, `${p}\n`);
  mkdirSync(join(repo, 'emptydir'));
  mkdirSync(join(repo, 'src/emptysub'));
  const nested = makeRepo(repo, 'nested');
  write(nested, 'inner.txt', 'i\n');
  return repo;
}

t.test('dir-cache: walkAll lists untracked and ignored files as git does', async (t) => {
  const repo = untrackedRepo();
  const { cache, watch, paths } = await dirCacheOf(repo);
  await cache.walkAll();
  await checkAgainstGit(t, repo, cache, 'cold walk');
  t.ok(cache.untrackedPaths('all').includes('nested/'), 'a nested repository is listed as dir/');
  t.notOk(cache.dirs.has('nested'), 'and not walked');
  t.same(new Set(cache.dirs.get('src')!.entries), new Set(['new.ts', 'deep/', 'emptysub/']), 'src: the untracked file and the subdirectories, not a.ts');
  t.same(new Set(cache.dirs.get('')!.entries), new Set(['top.txt', 'err.log', 'keep.log', 'src/', 'newdir/', 'mixed/', 'logs/', 'build/', 'onlyignored/', 'café/', 'emptydir/', 'nested/']), 'root: no .git, no tracked file');
  t.equal(cache.dirs.get('')!.gitignore, true, 'the root has a .gitignore');
  t.equal(cache.dirs.get('logs')!.ignored, true, 'logs is walked for its tracked file, as ignored');
  t.notOk(cache.dirs.has('build'), 'an ignored directory without tracked files is not walked');
  t.ok(cache.dirs.has('newdir/x'), 'an untracked directory is walked');
  t.equal(cache.reads, cache.dirs.size, 'every walked directory read once');
  const expected = new Set([...cache.dirs.keys()].map((d) => (d ? join(paths.worktree, d) : paths.worktree)));
  expected.add(join(paths.worktree, 'nested'));
  t.same(watch.live, expected, 'every walked directory watched, and the nested repository');
});

t.test('dir-cache: walkAll takes a listing given by `listed` instead of reading', async (t) => {
  const repo = untrackedRepo();
  const { cache } = await dirCacheOf(repo);
  const id = { ino: 1, mtimeMs: 2, ctimeMs: 3, takenAt: 4, tracked: 'x' };
  const asked: string[] = [];
  await cache.walkAll((dir) => {
    asked.push(dir);
    return dir === 'src' ? { entries: ['fake.ts', 'a.ts', 'deep/'], gitignore: false, id } : undefined;
  });
  t.ok(asked.includes('') && asked.includes('src') && asked.includes('src/deep'), 'asked for every directory walked');
  t.equal(cache.reads, cache.dirs.size - 1, 'src was not read');
  const all = cache.untrackedPaths('all');
  t.ok(all.includes('src/fake.ts'), 'the given listing is used (a name not on the disk)');
  t.notOk(all.includes('src/new.ts'), 'the disk is not');
  t.notOk(all.includes('src/a.ts'), 'a tracked name in the listing is left out');
  t.same(cache.dirs.get('src')!.id, id, 'the node keeps the identity given');
  t.equal(cache.dirs.get('src/deep')!.id, undefined, 'a directory read has none');
  t.notOk(cache.dirs.has('src/emptysub'), 'a subdirectory the listing lacks is not walked');
  // Walked again without it: the disk again.
  await cache.walkAll();
  await checkAgainstGit(t, repo, cache, 'rewalked from the disk');
});

t.test('dir-cache: refresh after a change, rewalk after a .gitignore change', async (t) => {
  const repo = untrackedRepo();
  const c = await dirCacheOf(repo);
  const { cache } = c;
  await cache.walkAll();
  const src = () => cache.dirs.get('src')!;
  src().id = { ino: 1, mtimeMs: 1, ctimeMs: 1, takenAt: 1, tracked: '' };
  write(repo, 'src/made.ts', 'm\n');
  await cache.refresh('src/made.ts');
  t.ok(src().entries.has('made.ts'), 'a file made: listed');
  t.equal(src().id, undefined, 'the listing changed: its identity dropped');
  await checkAgainstGit(t, repo, cache, 'file made');
  unlinkSync(join(repo, 'src/made.ts'));
  await cache.refresh('src/made.ts');
  t.notOk(src().entries.has('made.ts'), 'deleted: gone');
  await checkAgainstGit(t, repo, cache, 'file deleted');
  write(repo, 'src/sub/one/f.txt', 'f\n');
  await cache.refresh('src/sub');
  t.ok(src().entries.has('sub/'), 'a directory made: listed as sub/');
  t.ok(cache.dirs.has('src/sub/one'), 'and walked');
  await checkAgainstGit(t, repo, cache, 'directory made');
  write(repo, 'src/tr.ts', 't\n');
  git(repo, 'add', 'src/tr.ts');
  c.reload();
  await cache.refresh('src/tr.ts');
  t.notOk(src().entries.has('tr.ts'), 'a tracked file is not listed');
  await checkAgainstGit(t, repo, cache, 'file tracked');
  rmSync(join(repo, 'src/sub'), { recursive: true });
  await cache.refresh('src/sub');
  t.notOk(cache.dirs.has('src/sub/one'), 'a directory removed: forgotten with what is below it');
  await checkAgainstGit(t, repo, cache, 'directory removed');
  // .gitignore: made in src, then the root's changed: decided again from the listings, none read again.
  const reads = cache.reads;
  write(repo, 'src/.gitignore', 'new.ts\n');
  await cache.refresh('src/.gitignore');
  t.ok(cache.ignoredFiles.has('src/new.ts'), 'src/new.ts ignored by the new src/.gitignore');
  await checkAgainstGit(t, repo, cache, 'src/.gitignore made');
  write(repo, '.gitignore', 'build/\n');
  await cache.refresh('.gitignore');
  t.ok(cache.untracked.has('err.log'), '*.log no longer ignored');
  await checkAgainstGit(t, repo, cache, 'root .gitignore changed');
  t.equal(cache.reads, reads, 'the .gitignore changes read no directory again');
  // A nested repository's .git removed: a plain directory, walked.
  rmSync(join(repo, 'nested/.git'), { recursive: true });
  await cache.refresh('nested/.git');
  t.ok(cache.untracked.has('nested/inner.txt'), 'no longer a repository: its files listed');
  await checkAgainstGit(t, repo, cache, 'nested .git removed');
});

t.test('dir-cache: the watches of directories no longer walked are closed after walkAll', async (t) => {
  const repo = untrackedRepo();
  const events: string[] = [];
  const set = new DirWatchSet((dir, name) => events.push(join(dir, name ?? '')));
  t.teardown(() => set.close());
  const { cache, watch, paths, newRules } = await dirCacheOf(repo, set);
  await cache.walkAll();
  t.equal(set.size, watch.live.size, 'the real set watches what was asked');
  t.ok(await set.settle(join(paths.worktree, 'newdir/x')), 'events come through');
  write(repo, 'newdir/x/event.txt', 'e\n');
  t.ok(await set.settle(join(paths.worktree, 'newdir/x')));
  t.ok(events.includes(join(paths.worktree, 'newdir/x/event.txt')), 'a file made in a walked directory is reported');
  rmSync(join(repo, 'newdir'), { recursive: true });
  rmSync(join(repo, 'nested'), { recursive: true });
  write(repo, '.gitignore', '*.log\nbuild/\n!keep.log\nlogs/\nmixed/\n');
  newRules();
  await cache.walkAll();
  for (const gone of ['newdir', 'newdir/x', 'nested']) t.notOk(watch.live.has(join(paths.worktree, gone)), `${gone}: watch closed`);
  t.ok(watch.live.has(join(paths.worktree, 'mixed')), 'mixed (ignored now, but tracked files in it) still walked and watched');
  t.equal(cache.dirs.get('mixed')!.ignored, true);
  const expected = new Set([...cache.dirs.keys()].map((d) => (d ? join(paths.worktree, d) : paths.worktree)));
  t.same(watch.live, expected, 'exactly the walked directories');
  t.equal(set.size, expected.size, 'and the real set closed the others');
  await checkAgainstGit(t, repo, cache, 'after the second walk');
});

t.test('dir-cache: ignore rules in depth, against git', async (t) => {
  const repo = makeRepo(root);
  write(repo, 'kept/t.txt', 't\n');
  write(repo, 'deep/a/b/t.txt', 't\n');
  write(repo, 'ign/keep/t.txt', 't\n');
  commitAll(repo);
  write(repo, '.gitignore', ['*.log', 'tmp/', '/rootonly', '**/gen/**', 'ign/*', '!ign/keep/', 'docs/*.md', '!docs/README.md', ''].join('\n'));
  write(repo, '.git/info/exclude', 'excluded.txt\n');
  for (const p of [
    'a.log', 'rootonly', 'kept/rootonly', 'kept/tmp', 'deep/tmp/x.txt', 'deep/a/gen/g.c', 'gen/top.c', 'ign/drop.txt', 'ign/keep/new.txt', 'ign/sub/s.txt',
    'docs/x.md', 'docs/README.md', 'docs/sub/y.md', 'excluded.txt', 'kept/excluded.txt', 'proj/.gitignore', 'proj/a.tmp', 'proj/b.txt', 'proj/in/c.tmp', 'deep/a/b/u.txt',
    'mixed/u.txt', 'mixed/v.log', 'sp ace/f i le.txt',
  ]) write(repo, p, `${p}\n`);
  write(repo, 'proj/.gitignore', '*.tmp\n');
  mkdirSync(join(repo, 'empty.log'));
  mkdirSync(join(repo, 'hollow/a/b'), { recursive: true });
  mkdirSync(join(repo, 'tmp'));
  const { cache } = await dirCacheOf(repo);
  await cache.walkAll();
  await checkAgainstGit(t, repo, cache, 'in depth');
});

t.test('dir-cache: refresh after replacements, a new nested repository, an untracked file untracked again', async (t) => {
  const repo = untrackedRepo();
  const c = await dirCacheOf(repo);
  const { cache } = c;
  await cache.walkAll();
  const step = async (label: string, paths: string[]) => {
    for (const p of paths) await cache.refresh(p);
    await checkAgainstGit(t, repo, cache, label);
  };
  unlinkSync(join(repo, 'top.txt'));
  write(repo, 'top.txt/inner.txt', 'now a dir\n');
  await step('a file replaced by a directory', ['top.txt']);
  rmSync(join(repo, 'top.txt'), { recursive: true });
  write(repo, 'top.txt', 'a file again\n');
  await step('and by a file again', ['top.txt']);
  makeRepo(repo, 'newdir/x');
  await step('git init in an untracked directory', ['newdir/x/.git']);
  t.ok(cache.untrackedPaths('all').includes('newdir/x/'), 'listed as a repository');
  renameSync(join(repo, 'mixed/u.txt'), join(repo, 'mixed/w.txt'));
  await step('a rename in a tracked directory', ['mixed/u.txt', 'mixed/w.txt']);
  renameSync(join(repo, 'onlyignored'), join(repo, 'renamed-dir'));
  await step('a directory renamed', ['onlyignored', 'renamed-dir']);
  write(repo, 'build/more/x.o', 'x\n');
  await step('inside an ignored directory not walked: nothing to do', ['build/more']);
  git(repo, 'rm', '-q', '--cached', 'src/a.ts');
  c.reload();
  await step('a file untracked (git rm --cached)', ['src/a.ts']);
  t.ok(cache.untracked.has('src/a.ts'));
  write(repo, 'src/deep/more/z.txt', 'z\n');
  write(repo, 'café/ü.txt', 'u\n');
  await step('the root refreshed: all walked again', ['']);
});

t.test('dir-cache: a .git in a directory with tracked files is never listed', async (t) => {
  const repo = makeRepo(root);
  write(repo, 't/file.txt', 'tracked\n');
  commitAll(repo);
  git(join(repo, 't'), 'init', '-q'); // t/.git: a repository inside a tracked directory
  write(repo, 't/new.txt', 'untracked\n');
  const { cache } = await dirCacheOf(repo);
  await cache.walkAll();
  t.notOk(cache.untrackedPaths('all').some((p) => p.startsWith('t/.git')), 'nothing of t/.git');
  await checkAgainstGit(t, repo, cache, 'a .git below a tracked directory');
});

t.test('dir-cache: a .git that is not a repository does not make a nested repository', async (t) => {
  const repo = makeRepo(root);
  write(repo, 'a.txt', 'a\n');
  commitAll(repo);
  write(repo, 'fake/.git', 'garbage\n');
  write(repo, 'fake/x.txt', 'x\n');
  mkdirSync(join(repo, 'emptygit/.git'), { recursive: true });
  write(repo, 'emptygit/y.txt', 'y\n');
  const { cache } = await dirCacheOf(repo);
  await cache.walkAll();
  t.same(gitListed(repo, '?', 'all'), ['emptygit/y.txt', 'fake/x.txt'], 'git walks both');
  await checkAgainstGit(t, repo, cache, 'invalid .git');
});

t.test('warm-state: trackedHashes, one hash per directory of its tracked names', async (t) => {
  const repo = makeRepo(root);
  for (const p of ['x', 'd/a', 'd/b', 'd/sub/f', 'e/c']) write(repo, p, `${p}\n`);
  commitAll(repo);
  const first = trackedHashes(readIndex(repo));
  t.same([...first.keys()].sort(), ['', 'd', 'd/sub', 'e'], 'a hash for each directory with tracked files directly in it');
  t.equal(new Set(first.values()).size, 4, 'all different');
  t.match(first.get('d'), /^[0-9a-f]{16}$/);
  write(repo, 'd/a', 'other content\n');
  commitAll(repo);
  t.same(trackedHashes(readIndex(repo)), first, 'same names, other content: same hashes');
  write(repo, 'd/new', 'n\n');
  git(repo, 'add', 'd/new');
  const added = trackedHashes(readIndex(repo));
  t.not(added.get('d'), first.get('d'), 'a file added to d: its hash changes');
  for (const dir of ['', 'd/sub', 'e']) t.equal(added.get(dir), first.get(dir), `${dir || 'root'} unchanged`);
  git(repo, 'rm', '-q', '--cached', 'd/new');
  t.same(trackedHashes(readIndex(repo)), first, 'removed again: the hashes of before');
  git(repo, 'rm', '-q', '--cached', 'e/c');
  const removed = trackedHashes(readIndex(repo));
  t.notOk(removed.has('e'), 'no tracked file left in e: no hash');
  t.equal(removed.get('d'), first.get('d'));

  // Stages of one path count once: a conflicted index hashes as the same names at stage 0.
  const merge = makeRepo(root);
  write(merge, 'k/c.txt', 'base\n');
  write(merge, 'k/other', 'o\n');
  commitAll(merge);
  const clean = trackedHashes(readIndex(merge));
  git(merge, 'checkout', '-q', '-b', 'side');
  write(merge, 'k/c.txt', 'theirs\n');
  commitAll(merge);
  git(merge, 'checkout', '-q', 'main');
  write(merge, 'k/c.txt', 'ours\n');
  commitAll(merge);
  t.equal(gitMay(merge, 'merge', '-q', 'side'), 1, 'a conflict');
  const conflicted = readIndex(merge);
  t.equal(conflicted.count, 4, 'three stages and one file');
  t.same(trackedHashes(conflicted), clean, 'the conflicted path counted once');

  // `ab` + `c` against `a` + `bc`: the names are not simply concatenated.
  const one = makeRepo(root);
  const two = makeRepo(root);
  write(one, 'q/ab', '1');
  write(one, 'q/c', '2');
  write(two, 'q/a', '1');
  write(two, 'q/bc', '2');
  git(one, 'add', '-A');
  git(two, 'add', '-A');
  t.not(trackedHashes(readIndex(one)).get('q'), trackedHashes(readIndex(two)).get('q'), "'ab'+'c' and 'a'+'bc' differ");
});

t.test('warm-state: a round trip through a real state dir', async (t) => {
  const repo = makeRepo(root);
  const paths = (await findRepo(repo))!;
  const stateDir = mkdtempSync(join(root, 'state-'));
  const opened = await WarmState.open(stateDir, paths.worktree, paths.gitdir);
  t.equal(opened.restored, null, 'nothing to restore at first');
  t.equal(opened.state.discarded, 'missing');
  const dirs = new Map<string, DirRecord>([
    ['', { ino: 11, mtimeMs: 1000.5, ctimeMs: 2000.25, takenAt: 5000, gitignore: true, tracked: 'abcdef0123456789', entries: ['u.txt', 'src/'] }],
    ['src', { ino: 12, mtimeMs: 3000, ctimeMs: 3001, takenAt: 6000, gitignore: false, tracked: '', entries: [] }],
    ['日本/é', { ino: 13, mtimeMs: 1, ctimeMs: 2, takenAt: 3, gitignore: false, tracked: 'x', entries: ['😀.txt'] }],
  ]);
  const verdict: Verdict = { stat: { kind: KIND_FILE, mode: 0o100644, size: 5, mtimeMs: 123.456, ctimeMs: 124, ino: 99, uid: 0, gid: 0 }, oid: '0123456789abcdef0123456789abcdef01234567', letter: 'M', takenAt: 4000 };
  for (const [dir, record] of dirs) opened.state.putDir(dir, record);
  opened.state.putVerdict('src/f.txt', verdict);
  opened.state.putVerdict('gone.txt', { ...verdict, letter: ' ' });
  opened.state.putMeta('c0ffee');
  await opened.state.flush();
  opened.state.putVerdict('gone.txt', undefined);
  await opened.state.close();
  t.ok(readFileSync(stateFile(stateDir, paths.worktree)).length > 0, 'the state file');

  const again = await WarmState.open(stateDir, paths.worktree, paths.gitdir);
  t.equal(again.state.discarded, null);
  t.same(again.restored?.dirs, dirs, 'the directories restored');
  t.same(again.restored?.verdicts, new Map([['src/f.txt', verdict]]), 'the verdicts (a deleted one gone)');
  t.equal(again.restored?.indexChecksum, 'c0ffee');
  // keepDirs: records of directories not walked now are dropped.
  again.state.keepDirs(new Map([['', true], ['日本/é', true]]));
  await again.state.close();
  const third = await WarmState.open(stateDir, paths.worktree, paths.gitdir);
  t.same([...third.restored!.dirs.keys()].sort(), ['', '日本/é'], 'src dropped');
  t.same(third.restored?.verdicts.size, 1, 'verdicts kept');
  await third.state.close();

  // Another version of the records: discarded whole.
  const other = await RecordFile.open({ file: stateFile(stateDir, paths.worktree), kind: 'hearth-git-state', version: STATE_VERSION + 1, identity: await repoIdentity(paths.worktree, paths.gitdir) });
  t.equal(other.discarded, 'version', 'the record file itself refuses the other version');
  other.file.put('d:', Buffer.from('[1,2,3,4,0,"",[]]'));
  await other.file.close();
  const back = await WarmState.open(stateDir, paths.worktree, paths.gitdir);
  t.equal(back.state.discarded, 'version', "a file of another version: discarded 'version'");
  t.equal(back.restored, null);
  await back.state.close();

  // A new repository made at the same path: another identity, the state discarded.
  const before = await repoIdentity(paths.worktree, paths.gitdir);
  const put = await WarmState.open(stateDir, paths.worktree, paths.gitdir);
  put.state.putMeta('old repo');
  await put.state.close();
  rmSync(join(repo, '.git'), { recursive: true });
  // Something made in between, so the new .git is unlikely to get the old inode back.
  mkdirSync(join(root, `spacer-${Date.now()}`));
  git(repo, 'init', '-q', '-b', 'main');
  const after = await repoIdentity(paths.worktree, paths.gitdir);
  t.not(after, before, 'a new repository at the same path: another identity');
  const fresh = await WarmState.open(stateDir, paths.worktree, paths.gitdir);
  t.equal(fresh.state.discarded, 'identity');
  t.equal(fresh.restored, null);
  await fresh.state.close();
});

t.test('warm-state: WarmState.valid', async (t) => {
  const dir = mkdtempSync(join(root, 'valid-'));
  writeFileSync(join(dir, 'f'), 'f');
  await settle();
  const s = await stat(dir);
  // The stamp as status takes it: the filesystem's time, after the stat and a tick later than the change.
  const record: DirRecord = { ino: s.ino, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, takenAt: await fsStamp(root), gitignore: false, tracked: 'h', entries: ['f'] };
  t.ok(settledBefore(s, record.takenAt), 'the stamp is newer than the directory');
  t.ok(WarmState.valid(record, s, 'h'), 'same identity, settled, same tracked hash');
  t.notOk(WarmState.valid(undefined, s, 'h'), 'no record');
  t.notOk(WarmState.valid(record, undefined, 'h'), 'no stat');
  t.notOk(WarmState.valid({ ...record, ino: record.ino + 1 }, s, 'h'), 'other inode');
  t.notOk(WarmState.valid({ ...record, mtimeMs: record.mtimeMs - 1 }, s, 'h'), 'other mtime');
  t.notOk(WarmState.valid({ ...record, ctimeMs: record.ctimeMs + 0.001 }, s, 'h'), 'other ctime');
  t.notOk(WarmState.valid(record, { ...s, kind: KIND_FILE }, 'h'), 'not a directory');
  t.notOk(WarmState.valid(record, await stat(join(dir, 'f')), 'h'), "a file's stat");
  const newest = Math.max(s.mtimeMs, s.ctimeMs);
  t.notOk(WarmState.valid({ ...record, takenAt: newest }, s, 'h'), 'racy: stamped in the same tick as its change');
  t.notOk(WarmState.valid({ ...record, takenAt: newest - 1 }, s, 'h'), 'racy: stamped before its change');
  t.ok(WarmState.valid({ ...record, takenAt: newest + 0.001 }, s, 'h'), 'a stamp just past its change: settled');
  t.notOk(WarmState.valid({ ...record, ctimeMs: s.mtimeMs + 10, takenAt: s.mtimeMs + 5 }, { ...s, ctimeMs: s.mtimeMs + 10 }, 'h'), 'racy by its ctime alone');
  t.notOk(WarmState.valid(record, s, 'other'), 'tracked hash differs');
  t.notOk(WarmState.valid(record, s, ''), 'no tracked file any more');
  unlinkSync(join(dir, 'f'));
  t.notOk(WarmState.valid(record, await stat(dir), 'h'), 'the directory changed since');
});

t.test('RepoState: restored from its persisted state, reading only the directories changed', async (t) => {
  const repo = makeRepo(root);
  for (const p of ['README', 'src/a.ts', 'src/lib/b.ts', 'src/lib/c.ts', 'docs/guide.md', 'docs/img/x.txt', 'tests/t.ts']) write(repo, p, `${p}\n`);
  write(repo, '.gitignore', '*.log\n');
  commitAll(repo);
  for (const p of ['notes.txt', 'src/lib/draft.ts', 'build/out.log', 'scratch/one/two.txt']) write(repo, p, `${p}\n`);
  write(repo, 'docs/guide.md', 'edited\n');
  const stateDir = mkdtempSync(join(root, 'state-'));
  const paths = (await findRepo(repo))!;
  const options = { untracked: 'all' as const, ignored: false };
  const readers: ObjectReader[] = [];
  t.teardown(() => readers.forEach((r) => r.close()));
  const reader = () => {
    readers.push(new ObjectReader(paths.commondir));
    return readers[readers.length - 1]!;
  };
  const make = () => new RepoState(paths, reader(), async () => ({ head: null, changed: false, untracked: false }), { watcher: { watchDirs: (onEvent) => new DirWatchSet(onEvent) }, stateDir });
  const plain = (entries: Array<{ path: string; x: string; y: string }>) => entries.map((e) => ({ path: e.path, x: e.x, y: e.y }));
  await settle(); // directories older than the margin: their listings can be vouched for when persisted
  const first = make();
  t.same(plain((await first.status(options)).entries), gitStatus(repo), 'first answer as git');
  t.equal(first.persist.restored, false, 'nothing to restore');
  const walked = first.persist.dirs_read;
  t.ok(walked >= 8, `every directory read (${walked})`);
  await first.close();

  // Changes: a file in src/lib, a new directory (and so the root), a tracked file edited (no directory).
  write(repo, 'src/lib/new.ts', 'n\n');
  write(repo, 'fresh/f.txt', 'f\n');
  write(repo, 'docs/img/x.txt', 'changed too\n');
  const second = make();
  t.teardown(() => second.close());
  t.same(plain((await second.status(options)).entries), gitStatus(repo), 'restored answer as git');
  t.equal(second.persist.restored, true, 'restored');
  t.equal(second.persist.discarded, null);
  t.ok(second.persist.dirs_reused > 0, `directories reused (${second.persist.dirs_reused})`);
  t.equal(second.persist.dirs_read, 3, 'read: src/lib, the root (fresh/ made in it) and fresh');
  t.equal(second.persist.dirs_reused + second.persist.dirs_read, walked + 1, 'every other directory reused');
});

t.test('RepoState: restored across an index change, a .gitignore edit and a verdict', async (t) => {
  const repo = makeRepo(root);
  for (const p of ['README', 'src/a.ts', 'src/lib/b.ts', 'src/lib/c.ts', 'docs/guide.md', 'same.txt']) write(repo, p, `${p}\n`);
  write(repo, '.gitignore', '*.log\n');
  commitAll(repo);
  for (const p of ['notes.txt', 'src/draft.ts', 'out.log']) write(repo, p, `${p}\n`);
  // same.txt: same content and size, another mtime: the stat cannot decide, the hash does (a verdict).
  const when = Date.now() / 1000 - 30;
  utimesSync(join(repo, 'same.txt'), when, when);
  const stateDir = mkdtempSync(join(root, 'state-'));
  const paths = (await findRepo(repo))!;
  const readers: ObjectReader[] = [];
  t.teardown(() => readers.forEach((r) => r.close()));
  const make = () => {
    const reader = new ObjectReader(paths.commondir);
    readers.push(reader);
    return new RepoState(paths, reader, async () => ({ head: null, changed: false, untracked: false }), { watcher: { watchDirs: (onEvent) => new DirWatchSet(onEvent) }, stateDir });
  };
  const plain = (entries: Array<{ path: string; x: string; y: string }>) => entries.map((e) => ({ path: e.path, x: e.x, y: e.y }));
  const options = { untracked: 'all' as const, ignored: 'traditional' as const };
  await settle();
  const first = make();
  t.same(plain((await first.status(options)).entries), gitStatus(repo, { ignored: true }), 'first answer as git');
  t.equal(first.persist.files_hashed, 1, 'same.txt hashed');
  await first.close();

  git(repo, 'rm', '-q', '--cached', 'src/lib/b.ts'); // src/lib: the same on disk, another set of tracked names
  writeFileSync(join(repo, '.gitignore'), '*.log\nnotes.txt\n'); // in place: the root directory itself unchanged
  const second = make();
  t.teardown(() => second.close());
  t.same(plain((await second.status(options)).entries), gitStatus(repo, { ignored: true }), 'restored answer as git');
  t.equal(second.persist.restored, true);
  t.equal(second.persist.files_hashed, 0, "same.txt's verdict restored: not hashed again");
  t.equal(second.persist.dirs_read, 1, 'only src/lib read (its tracked names changed)');
  t.ok(second.persist.dirs_reused >= 3, `the others reused (${second.persist.dirs_reused})`);
});
