// Unit tests of the persisted warm state (warm-state.ts) and of a RepoState restored from it: real
// repositories in temp dirs, a real state dir, the real git CLI as the oracle; no mocks. The other modules
// of the status engine are in git-modules.test.ts.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseIndex, type IndexTable } from '../plugins/git/index-file.js';
import { RACY_MARGIN_MS, type Verdict } from '../plugins/git/worktree-compare.js';
import { KIND_FILE, statData, type StatData } from '../plugins/git/stat-data.js';
import { findRepo } from '../plugins/git/repo.js';
import { repoIdentity, stateFile, STATE_VERSION, trackedHashes, WarmState, type DirRecord } from '../plugins/git/warm-state.js';
import { RecordFile } from '../src/services/record-file.js';
import { DirWatchSet } from '../src/services/dir-watch.js';
import { ObjectReader } from '../plugins/git/objects.js';
import { RepoState } from '../plugins/git/status.js';
import { commitAll, git, gitMay, gitStatus, isolateGit, makeRepo, write } from './helpers/git.js';

t.setTimeout(240_000);
isolateGit();
const root = mkdtempSync(join(tmpdir(), 'hearth-mods-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

const readIndex = (repo: string): IndexTable => parseIndex(readFileSync(join(repo, '.git', 'index')));
/** Past the racy margin, so stats taken before are settled. */
const settle = () => new Promise((r) => setTimeout(r, RACY_MARGIN_MS + 100));
const stat = async (path: string): Promise<StatData> => statData(await lstat(path));

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
  const verdict: Verdict = { stat: { kind: KIND_FILE, mode: 0o100644, size: 5, mtimeMs: 123.456, ctimeMs: 124, ino: 99, uid: 0, gid: 0 }, letter: 'M', takenAt: 4000 };
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
  const record: DirRecord = { ino: s.ino, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, takenAt: Date.now(), gitignore: false, tracked: 'h', entries: ['f'] };
  t.ok(WarmState.valid(record, s, 'h'), 'same identity, settled, same tracked hash');
  t.notOk(WarmState.valid(undefined, s, 'h'), 'no record');
  t.notOk(WarmState.valid(record, undefined, 'h'), 'no stat');
  t.notOk(WarmState.valid({ ...record, ino: record.ino + 1 }, s, 'h'), 'other inode');
  t.notOk(WarmState.valid({ ...record, mtimeMs: record.mtimeMs - 1 }, s, 'h'), 'other mtime');
  t.notOk(WarmState.valid({ ...record, ctimeMs: record.ctimeMs + 0.001 }, s, 'h'), 'other ctime');
  t.notOk(WarmState.valid(record, { ...s, kind: KIND_FILE }, 'h'), 'not a directory');
  t.notOk(WarmState.valid(record, await stat(join(dir, 'f')), 'h'), "a file's stat");
  t.notOk(WarmState.valid({ ...record, takenAt: Math.max(s.mtimeMs, s.ctimeMs) + RACY_MARGIN_MS }, s, 'h'), 'racy: taken within the margin of its change');
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
