// Unit tests of the status engine's modules index-file and worktree-compare: real files, real repositories
// in temp dirs, the real git CLI as the oracle where it has an answer; no mocks. The directory cache, the
// warm state and a RepoState restored from it are in git-modules-state.test.ts.
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync } from 'node:fs';
import { stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { comparePaths, F_ASSUME_VALID, F_INTENT_TO_ADD, F_SKIP_WORKTREE, IndexFormatError, IndexTable, parseIndex, S_CTIME, S_GID, S_INO, S_MTIME, S_SIZE, S_UID, STAT_FIELDS } from '../plugins/git/index-file.js';
import { fromStat, scanEntries, scanned, settledBefore, WorktreeCompare, type CompareRules } from '../plugins/git/worktree-compare.js';
import { KIND_DIR, statData } from '../plugins/git/stat-data.js';
import { GITLINK, SYMLINK } from '../plugins/git/modes.js';
import { commitAll, git, gitMay, gitRaw, gitStatus, isolateGit, makeRepo, parsePorcelainZ, write } from './helpers/git.js';

t.setTimeout(240_000);
isolateGit();
const root = mkdtempSync(join(tmpdir(), 'hearth-mod-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

const readIndex = (repo: string): IndexTable => parseIndex(readFileSync(join(repo, '.git', 'index')));

/** Sets the mtime of files (relative to repo) `seconds` back, so an index written after them never finds them racy. */
function age(repo: string, paths: string[], seconds = 10): void {
  const when = Date.now() / 1000 - seconds;
  for (const p of paths) utimesSync(join(repo, p), when, when);
}

interface GitIndexEntry {
  path: string;
  oid: string;
  mode: number;
  stage: number;
  ctime: number;
  mtime: number;
  ino: number;
  uid: number;
  gid: number;
  size: number;
}

/** `git ls-files -s --debug`: every entry (all stages) with its stat data, paths unquoted. */
function gitEntries(repo: string): GitIndexEntry[] {
  const out = gitRaw(repo, '-c', 'core.quotepath=off', 'ls-files', '-s', '--debug').split('\n');
  const entries: GitIndexEntry[] = [];
  for (let i = 0; i + 5 < out.length; i += 6) {
    const m = /^(\d+) ([0-9a-f]+) (\d)\t(.*)$/.exec(out[i]!)!;
    const num = (line: string, key: string): number => Number(new RegExp(`${key}: (\\d+)`).exec(line)![1]);
    entries.push({
      mode: parseInt(m[1]!, 8),
      oid: m[2]!,
      stage: Number(m[3]),
      path: m[4]!,
      ctime: num(out[i + 1]!, 'ctime'),
      mtime: num(out[i + 2]!, 'mtime'),
      ino: num(out[i + 3]!, 'ino'),
      uid: num(out[i + 4]!, 'uid'),
      gid: num(out[i + 4]!, 'gid'),
      size: num(out[i + 5]!, 'size'),
    });
  }
  return entries;
}

function ourEntries(index: IndexTable): GitIndexEntry[] {
  const out: GitIndexEntry[] = [];
  for (let i = 0; i < index.count; i++) {
    const o = i * STAT_FIELDS;
    out.push({
      path: index.path(i),
      oid: index.oid(i),
      mode: index.mode(i),
      stage: index.stage(i),
      ctime: index.stat[o + S_CTIME]!,
      mtime: index.stat[o + S_MTIME]!,
      ino: index.stat[o + S_INO]!,
      uid: index.stat[o + S_UID]!,
      gid: index.stat[o + S_GID]!,
      size: index.stat[o + S_SIZE]!,
    });
  }
  return out;
}

/** Many paths sharing prefixes, longer and shorter than the one before, and non-ASCII ones (é, 日本, an emoji). */
function fillVaried(repo: string): void {
  const paths = [
    'a.c', 'a-b', 'a/b', 'a/b.c', 'a/bb/c/d/e/f/deep.txt', 'a/bb/c/d/e/g.txt', 'a/bb/c/x', 'a/bbb/ccc/ddd/eee/fff/ggg.txt', 'a/z', 'a0',
    'b', 'src/lib/one.ts', 'src/lib/one.test.ts', 'src/lib/two.ts', 'src/main.ts', 'src/m', 'café/menu.txt', 'cafe/menu.txt',
    '日本/語.txt', '日本語', 'emoji/😀.txt', 'emoji/😀😀/x', 'emoji/z', 'z', 'zz/' + 'long'.repeat(40) + '.txt',
  ];
  for (const p of paths) write(repo, p, `content of ${p}\n`);
  write(repo, 'run.sh', '#!/bin/sh\n');
  chmodSync(join(repo, 'run.sh'), 0o755);
  symlinkSync('a.c', join(repo, 'link'));
}

/** Whether `fn` throws an IndexFormatError (tap's t.throws matches a class by its fields, not instanceof). */
function throwsFormat(t: Test, fn: () => unknown, message?: string): void {
  try {
    fn();
    t.fail(`${message ?? 'parsed'}: no error`);
  } catch (err) {
    t.ok(err instanceof IndexFormatError, `${message ?? 'IndexFormatError'}: ${(err as Error).message}`);
  }
}

t.test('index-file: versions 2, 3 and 4 and skipHash, every entry as git lists it', async (t) => {
  const repo = makeRepo(root);
  fillVaried(repo);
  commitAll(repo);
  write(repo, 'ita.txt', 'intent\n');
  git(repo, 'add', '-N', 'ita.txt');
  git(repo, 'update-index', '--skip-worktree', 'src/m');
  git(repo, 'update-index', '--assume-unchanged', 'b');
  const v3 = readIndex(repo);
  t.equal(v3.version, 3, 'intent-to-add and skip-worktree make a version 3 index');
  t.same(ourEntries(v3), gitEntries(repo), 'v3 entries');
  const flagged = (index: IndexTable, flag: number) => [...Array(index.count).keys()].filter((i) => index.has(i, flag)).map((i) => index.path(i));
  t.same(flagged(v3, F_INTENT_TO_ADD), ['ita.txt']);
  t.same(flagged(v3, F_SKIP_WORKTREE), ['src/m']);
  t.same(flagged(v3, F_ASSUME_VALID), ['b']);
  t.equal(v3.entry(v3.find('ita.txt')).intentToAdd, true);
  t.equal(v3.mode(v3.find('run.sh')), 0o100755);
  t.equal(v3.mode(v3.find('link')), SYMLINK);
  // ls-files -v agrees on the flags: S skip-worktree, lowercase assume-unchanged.
  const tags = new Map(gitRaw(repo, '-c', 'core.quotepath=off', 'ls-files', '-v').trim().split('\n').map((l) => [l.slice(2), l[0]!]));
  t.equal(tags.get('src/m'), 'S');
  t.equal(tags.get('b'), 'h');

  git(repo, 'update-index', '--index-version', '4');
  const v4 = readIndex(repo);
  t.equal(v4.version, 4);
  t.same(ourEntries(v4), gitEntries(repo), 'v4 entries (prefix-compressed paths)');
  t.same(flagged(v4, F_SKIP_WORKTREE), ['src/m']);
  t.same(flagged(v4, F_INTENT_TO_ADD), ['ita.txt']);

  git(repo, 'update-index', '--no-skip-worktree', 'src/m');
  git(repo, 'update-index', '--no-assume-unchanged', 'b');
  git(repo, 'rm', '-q', '--cached', 'ita.txt');
  git(repo, 'update-index', '--index-version', '2');
  const v2 = readIndex(repo);
  t.equal(v2.version, 2);
  t.same(ourEntries(v2), gitEntries(repo), 'v2 entries');
  const raw2 = readFileSync(join(repo, '.git', 'index'));
  t.equal(v2.checksum, raw2.toString('hex', raw2.length - 20), 'checksum: the trailing hash');

  // index.skipHash came with git 2.40 (2.39 here ignores it): what it writes is the same file with a zero
  // trailing hash, which git 2.39 cannot read back, so the zeroed copy is compared with this index's listing.
  write(repo, 'skip.txt', 'skip hash\n');
  git(repo, '-c', 'index.skipHash=true', 'add', 'skip.txt');
  const raw = readFileSync(join(repo, '.git', 'index'));
  raw.fill(0, raw.length - 20);
  const skip = parseIndex(raw);
  t.same(ourEntries(skip), gitEntries(repo), 'skipHash entries');
  t.equal(skip.checksum, createHash('sha1').update(raw).digest('hex'), 'checksum: sha1 of the file');
  t.not(skip.checksum, v2.checksum);
});

t.test('index-file: the stages of a real merge conflict', async (t) => {
  const repo = makeRepo(root);
  write(repo, 'c.txt', 'base\n');
  write(repo, 'd/e.txt', 'base\n');
  write(repo, 'gone.txt', 'base\n');
  commitAll(repo);
  git(repo, 'checkout', '-q', '-b', 'other');
  write(repo, 'c.txt', 'theirs\n');
  write(repo, 'd/e.txt', 'theirs\n');
  write(repo, 'gone.txt', 'theirs\n');
  commitAll(repo);
  git(repo, 'checkout', '-q', 'main');
  write(repo, 'c.txt', 'ours\n');
  write(repo, 'd/e.txt', 'ours\n');
  git(repo, 'rm', '-q', 'gone.txt');
  commitAll(repo);
  t.equal(gitMay(repo, 'merge', '-q', 'other'), 1, 'conflicts');
  const index = readIndex(repo);
  const ours = ourEntries(index);
  t.same(ours, gitEntries(repo));
  t.same(ours.filter((e) => e.path === 'c.txt').map((e) => e.stage), [1, 2, 3]);
  t.same(ours.filter((e) => e.path === 'gone.txt').map((e) => e.stage), [1, 3], 'deleted by us: no stage 2');
  t.equal(index.find('c.txt'), -1, 'find() is of stage 0 only');
  t.equal(index.path(index.lowerBound('c.txt')), 'c.txt');
  t.equal(index.stage(index.lowerBound('c.txt')), 1, 'lowerBound finds the first stage');
});

t.test('index-file: the cache-tree against git write-tree and ls-tree -d', async (t) => {
  const repo = makeRepo(root);
  fillVaried(repo);
  commitAll(repo);
  const index = readIndex(repo);
  const expected = new Map<string, string>([['', git(repo, 'write-tree').trim()]]);
  for (const line of gitRaw(repo, '-c', 'core.quotepath=off', 'ls-tree', '-r', '-d', 'HEAD').trim().split('\n')) {
    const m = /^040000 tree ([0-9a-f]+)\t(.*)$/.exec(line)!;
    expected.set(m[2]!, m[1]!);
  }
  t.same(new Map([...index.trees].sort()), new Map([...expected].sort()), 'every directory with its tree id');
  // A change in a/bb/c invalidates it and the directories above it, nothing else.
  write(repo, 'a/bb/c/x', 'changed\n');
  git(repo, 'add', 'a/bb/c/x');
  const after = readIndex(repo);
  for (const dir of ['', 'a', 'a/bb', 'a/bb/c']) t.notOk(after.trees.has(dir), `${dir || 'root'} invalidated`);
  for (const dir of ['a/bb/c/d', 'src/lib', '日本', 'emoji/😀😀']) t.equal(after.trees.get(dir), expected.get(dir), `${dir} kept`);
  git(repo, 'write-tree');
  t.equal(readIndex(repo).trees.get(''), git(repo, 'write-tree').trim(), 'valid again after write-tree');
});

t.test('index-file: truncated and bad buffers throw IndexFormatError', async (t) => {
  const repo = makeRepo(root);
  fillVaried(repo);
  commitAll(repo);
  for (const version of ['2', '4']) {
    git(repo, 'update-index', '--index-version', version);
    const raw = readFileSync(join(repo, '.git', 'index'));
    const entriesEnd = raw.indexOf('TREE', 12, 'latin1');
    t.ok(entriesEnd > 0);
    const wrong: string[] = [];
    for (let n = 0; n < entriesEnd; n++) {
      try {
        parseIndex(raw.subarray(0, n));
        wrong.push(`${n}: parsed`);
      } catch (err) {
        if (!(err instanceof IndexFormatError)) wrong.push(`${n}: ${(err as Error).name} ${(err as Error).message}`);
      }
    }
    t.same(wrong, [], `v${version}: cut anywhere in the entries, an IndexFormatError`);
    const bad = Buffer.from(raw);
    bad.write('DIRD', 0, 'latin1');
    throwsFormat(t, () => parseIndex(bad), 'bad signature');
    const v9 = Buffer.from(raw);
    v9.writeUInt32BE(9, 4);
    throwsFormat(t, () => parseIndex(v9), 'unknown version');
    const many = Buffer.from(raw);
    many.writeUInt32BE(1_000_000, 8);
    throwsFormat(t, () => parseIndex(many), 'more entries than the file holds');
  }
  throwsFormat(t, () => parseIndex(Buffer.alloc(0)), 'empty');
  throwsFormat(t, () => parseIndex(Buffer.from('not an index at all, no')));
});

t.test('index-file: an extension cut short is an IndexFormatError', async (t) => {
  const repo = makeRepo(root);
  fillVaried(repo);
  commitAll(repo);
  const raw = readFileSync(join(repo, '.git', 'index'));
  const treeAt = raw.indexOf('TREE', 12, 'latin1');
  throwsFormat(t, () => parseIndex(raw.subarray(0, treeAt + 40)), 'cut inside TREE');
  // The entries, then less than an extension header before the trailing hash: leftover bytes.
  const hash = raw.subarray(raw.length - 20);
  throwsFormat(t, () => parseIndex(Buffer.concat([raw.subarray(0, treeAt), Buffer.from('TRE', 'latin1'), hash])), 'bytes left before the hash');
  t.ok(parseIndex(Buffer.concat([raw.subarray(0, treeAt), hash])), 'the entries alone, without extensions, parse');
});

t.test('index-file: other extensions git writes (UNTR, REUC, EOIE), and the split index refused', async (t) => {
  const repo = makeRepo(root);
  fillVaried(repo);
  commitAll(repo);
  // The untracked cache (UNTR) and, after a conflict resolved, the resolve-undo list (REUC).
  git(repo, 'update-index', '--untracked-cache');
  gitRaw(repo, '-c', 'core.untrackedCache=true', 'status', '--porcelain');
  git(repo, 'checkout', '-q', '-b', 'side');
  write(repo, 'b', 'side\n');
  commitAll(repo);
  git(repo, 'checkout', '-q', 'main');
  write(repo, 'b', 'main\n');
  commitAll(repo);
  gitMay(repo, 'merge', '-q', 'side');
  write(repo, 'b', 'resolved\n');
  git(repo, 'add', 'b');
  // The end-of-index-entries extension (EOIE), which git writes after the others.
  git(repo, '-c', 'index.recordEndOfIndexEntries=true', 'update-index', '--index-version', '2', '--force-write-index');
  const raw = readFileSync(join(repo, '.git', 'index'));
  const has = (sig: string) => raw.indexOf(sig, 12, 'latin1') > 0;
  t.ok(has('UNTR') && has('REUC') && has('EOIE'), 'the index has UNTR, REUC and EOIE');
  const index = parseIndex(raw);
  t.same(ourEntries(index), gitEntries(repo), 'entries read past the other extensions');
  t.equal(index.trees.get('src/lib'), git(repo, 'rev-parse', 'HEAD:src/lib').trim(), 'and the cache-tree among them');
  // A split index keeps its entries in another file: refused, not misread.
  git(repo, 'update-index', '--split-index');
  throwsFormat(t, () => readIndex(repo), 'split index (link extension)');
});

t.test('index-file: a sha256 index (32-byte ids)', async (t) => {
  // The entry is ctime..size (40 bytes), the id (32), the flags: a sha256 repository's status reads this.
  const sha = join(root, 'sha256');
  mkdirSync(sha);
  git(sha, 'init', '-q', '--object-format=sha256');
  fillVaried(sha);
  git(sha, 'add', '-A');
  const wide = parseIndex(readFileSync(join(sha, '.git', 'index')), 32);
  t.equal(wide.oidLength, 32);
  t.same(ourEntries(wide), gitEntries(sha), 'a sha256 index read with oidLength 32');
  t.equal(wide.oid(0).length, 64);
});

t.test('index-file: find, lowerBound and the path order (UTF-8 bytes)', async (t) => {
  const repo = makeRepo(root);
  fillVaried(repo);
  commitAll(repo);
  const index = readIndex(repo);
  const paths = ourEntries(index).map((e) => e.path);
  // git's order is the order of the UTF-8 bytes.
  const byBytes = [...paths].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  t.same(paths, byBytes, 'the index is in UTF-8 byte order');
  t.same([...paths].sort(comparePaths), byBytes, 'comparePaths sorts the same');
  t.ok(comparePaths('emoji/😀.txt', 'emoji/\uffff') > 0, 'a surrogate pair sorts after U+FFFF (4 UTF-8 bytes after 3)');
  t.ok(comparePaths('a', 'a.c') < 0 && comparePaths('a.c', 'a/b') < 0 && comparePaths('a-b', 'a.c') < 0, "'-' < '.' < '/'");
  for (const [i, p] of paths.entries()) {
    t.equal(index.find(p), i, `find ${p}`);
    t.equal(index.lowerBound(p), i);
  }
  for (const absent of ['a/bb/c', 'a/', 'a', 'src', 'src/lib', 'café', '日', 'emoji/😀', 'zzz', '', 'a/bb/c/d/e/f/deep.tx', 'a/b/']) {
    t.equal(index.find(absent), -1, `find ${JSON.stringify(absent)} (absent, some a prefix)`);
    const lb = index.lowerBound(absent);
    t.ok(lb === index.count || comparePaths(index.path(lb), absent) > 0, `lowerBound ${JSON.stringify(absent)} is past it`);
    t.ok(lb === 0 || comparePaths(index.path(lb - 1), absent) < 0, 'and right after the one before');
  }
  // The entries below a directory come right after its name with '/', before a sibling that extends the name.
  t.equal(index.path(index.lowerBound('a/bb/')), 'a/bb/c/d/e/f/deep.txt');
  t.equal(index.path(index.lowerBound('a/bb0')), 'a/bbb/ccc/ddd/eee/fff/ggg.txt', "'0' sorts after '/'");
  t.equal(index.path(index.lowerBound('a/b/')), 'a/bb/c/d/e/f/deep.txt', "'a/b/' is after 'a/b.c' ('.' < '/')");
  t.equal(index.path(index.lowerBound('a')), 'a-b');
  t.equal(IndexTable.empty().find('a'), -1);
  t.equal(IndexTable.empty().lowerBound('a'), 0);
});

/** The compare rules for a repository as status makes them: core.filemode, and the index file's mtime. */
function rulesOf(repo: string, fileMode = true): CompareRules {
  const s = lstatSync(join(repo, '.git', 'index'), { bigint: true });
  return { fileMode, trustCtime: true, checkStat: true, indexMtimeSec: Number(s.mtimeNs / 1_000_000_000n), indexMtimeNsec: Number(s.mtimeNs % 1_000_000_000n) };
}
const statOf = (repo: string, path: string) => statData(lstatSync(join(repo, path), { throwIfNoEntry: false }));
/** Past a tick of the filesystem's clock, so times set before are older than a stamp taken after. */
const settle = () => new Promise((r) => setTimeout(r, 50));
/**
 * The filesystem's time now as status takes it (the mtime of a file written now in the repository's .git),
 * counting its calls; `fixed` makes it return a given time instead, for a case that must not depend on a tick.
 */
function stampOf(repo: string): { fn: () => Promise<number>; calls: number; fixed: number | null } {
  let seq = 0;
  const stamp = {
    calls: 0,
    fixed: null as number | null,
    fn: async (): Promise<number> => {
      stamp.calls++;
      if (stamp.fixed !== null) return stamp.fixed;
      const file = join(repo, '.git', `test-stamp-${++seq}`);
      await writeFile(file, '');
      const { mtimeMs } = await stat(file);
      await unlink(file);
      return mtimeMs;
    },
  };
  return stamp;
}
const noSubmodule = async () => ({ head: null, changed: false, untracked: false });

/** A repository whose files are older than its index (no entry racy), committed. */
function agedRepo(files: Record<string, string>): string {
  const repo = makeRepo(root);
  for (const [p, c] of Object.entries(files)) write(repo, p, c);
  age(repo, Object.keys(files));
  commitAll(repo);
  return repo;
}

t.test('worktree-compare: fromStat, case by case, against git status', async (t) => {
  const files = { 'clean.txt': 'clean\n', 'size.txt': 'short\n', 'exec.sh': 'echo\n', 'tolink.txt': 'x\n', 'gone.txt': 'g\n', 'dir.txt': 'd\n', 'touched.txt': 'same\n', 'ita.txt': 'ita\n', 'fm.sh': 'fm\n' };
  const repo = agedRepo(files);
  write(repo, 'size.txt', 'much longer now\n');
  chmodSync(join(repo, 'exec.sh'), 0o755);
  unlinkSync(join(repo, 'tolink.txt'));
  symlinkSync('clean.txt', join(repo, 'tolink.txt'));
  unlinkSync(join(repo, 'gone.txt'));
  unlinkSync(join(repo, 'dir.txt'));
  mkdirSync(join(repo, 'dir.txt'));
  write(repo, 'dir.txt/inside', 'i\n');
  age(repo, ['touched.txt'], 5); // the same size, another mtime
  write(repo, 'new-ita.txt', 'new\n');
  age(repo, ['new-ita.txt']);
  git(repo, 'add', '-N', 'new-ita.txt');
  const index = readIndex(repo);
  const rules = rulesOf(repo);
  const letter = (p: string, r = rules) => fromStat(index, index.find(p), statOf(repo, p), r);
  t.equal(letter('clean.txt'), ' ', 'clean');
  t.equal(letter('size.txt'), 'M', 'size change');
  t.equal(letter('exec.sh'), 'M', 'mode change to 755');
  t.equal(letter('tolink.txt'), 'T', 'file to symlink');
  t.equal(letter('gone.txt'), 'D', 'missing');
  t.equal(letter('dir.txt'), 'D', 'a directory in place of a file');
  t.equal(letter('touched.txt'), null, 'same size, other mtime: the content decides');
  t.equal(letter('new-ita.txt'), 'A', 'intent-to-add');
  const racy = { ...rules, indexMtimeSec: index.stat[index.find('clean.txt') * STAT_FIELDS + S_MTIME]!, indexMtimeNsec: 0 };
  t.equal(letter('clean.txt', racy), null, 'racily clean (as new as the index): not trusted');
  t.equal(letter('clean.txt', { ...rules, indexMtimeSec: 0, indexMtimeNsec: 0 }), ' ', 'no index mtime known: no racy rule');
  chmodSync(join(repo, 'fm.sh'), 0o755);
  t.equal(letter('fm.sh'), 'M', 'core.filemode true: +x is a change');
  t.equal(letter('fm.sh', { ...rules, fileMode: false }), null, 'core.filemode false: not a mode change (the ctime moved: content decides)');
  t.equal(letter('fm.sh', { ...rules, fileMode: false, trustCtime: false }), ' ', 'and core.trustctime false: the ctime does not count, clean by the stat');
  t.equal(letter('fm.sh', { ...rules, fileMode: false, checkStat: false }), ' ', 'and core.checkStat minimal: only mtime and size count');
  t.equal(letter('touched.txt', { ...rules, checkStat: false }), null, 'core.checkStat minimal: the mtime still counts');
  const y = new Map(gitStatus(repo).filter((e) => e.x !== '?').map((e) => [e.path, e.y]));
  const ours = new WorktreeCompare(repo, noSubmodule, stampOf(repo).fn);
  ours.rules = rules;
  for (let i = 0; i < index.count; i++) await ours.compare(index, i);
  t.same(new Map([...ours.letters].sort()), new Map([...y].filter(([, l]) => l !== ' ').sort()), 'compare() agrees with git status on every entry');
  const noMode = new WorktreeCompare(repo, noSubmodule, stampOf(repo).fn);
  noMode.rules = { ...rules, fileMode: false };
  await noMode.compare(index, index.find('fm.sh'));
  await noMode.compare(index, index.find('exec.sh'));
  const fm = new Map(parsePorcelainZ(gitRaw(repo, '-c', 'core.filemode=false', 'status', '--porcelain=v1', '-z')).map((e) => [e.path, e.y]));
  t.equal(fm.get('fm.sh'), undefined, 'git -c core.filemode=false: fm.sh clean');
  t.equal(noMode.letters.get('fm.sh'), undefined, 'and ours');
  t.equal(noMode.letters.get('exec.sh'), fm.get('exec.sh'));
});

t.test('worktree-compare: core.filemode false, a symlink replaced by a regular file is a type change', async (t) => {
  const repo = makeRepo(root);
  write(repo, 'target', 'target\n');
  symlinkSync('target', join(repo, 'ln'));
  symlinkSync('target', join(repo, 'ln2'));
  commitAll(repo);
  unlinkSync(join(repo, 'ln'));
  write(repo, 'ln', 'a much longer content\n');
  unlinkSync(join(repo, 'ln2'));
  write(repo, 'ln2', 'abcdef'); // as long as the link's target
  const fm = new Map(parsePorcelainZ(gitRaw(repo, '-c', 'core.filemode=false', 'status', '--porcelain=v1', '-z')).map((e) => [e.path, e.y]));
  t.equal(fm.get('ln'), 'T', 'git: T');
  t.equal(fm.get('ln2'), 'T', 'git: T');
  const index = readIndex(repo);
  const rules = { ...rulesOf(repo), fileMode: false };
  t.equal(fromStat(index, index.find('ln'), statOf(repo, 'ln'), rules), 'T', 'fromStat: T');
  const cmp = new WorktreeCompare(repo, noSubmodule, stampOf(repo).fn);
  cmp.rules = rules;
  await cmp.compare(index, index.find('ln2'));
  t.equal(cmp.letters.get('ln2'), 'T', 'compare: T');
});

t.test('worktree-compare: scanEntries on this thread returns only what a stat did not find clean', async (t) => {
  const files: Record<string, string> = { 'a.txt': 'a\n', 'd/b.txt': 'b\n', 'd/c.txt': 'c\n', 'd/e/f.txt': 'f\n', 'skip.txt': 's\n', 'assumed.txt': 'u\n', 'z.txt': 'z\n' };
  const repo = agedRepo(files);
  git(repo, 'update-index', '--skip-worktree', 'skip.txt');
  git(repo, 'update-index', '--assume-unchanged', 'assumed.txt');
  write(repo, 'd/b.txt', 'bigger than before\n');
  unlinkSync(join(repo, 'd/e/f.txt'));
  unlinkSync(join(repo, 'skip.txt'));
  write(repo, 'assumed.txt', 'changed, but assumed unchanged\n');
  age(repo, ['z.txt'], 3);
  const index = readIndex(repo);
  const rules = rulesOf(repo);
  const result = scanEntries({ root: repo, names: index.names, starts: index.starts, from: 0, stat: index.stat, flags: index.flags, rules });
  const found = [...scanned(result)];
  t.same(found.map(([i]) => index.path(i)), ['d/b.txt', 'd/e/f.txt', 'z.txt'], 'only the non-clean; skip-worktree and assume-unchanged skipped');
  for (const [i, d] of found) t.same(d, statOf(repo, index.path(i)), `${index.path(i)}: its stat`);
  // A range of the index, as status sends to the pool: `from` and the names of that range.
  const from = index.find('d/c.txt');
  const to = index.count;
  const part = scanEntries({ root: repo, names: index.names.slice(index.starts[from]!, index.starts[to]!), starts: index.starts.slice(from, to + 1).map((s) => s - index.starts[from]!), from, stat: index.stat, flags: index.flags, rules });
  t.same([...scanned(part)].map(([i]) => index.path(i)), ['d/e/f.txt', 'z.txt'], 'a range: entry numbers of the whole index');
});

t.test('worktree-compare: verdicts: hashed once while the stat holds, again after a change', async (t) => {
  const repo = agedRepo({ 'f.txt': 'one\n', 'g.txt': 'gee\n', 'd/in.txt': 'in\n', 'exec.sh': 'x\n', 'sub/keep': 'k\n' });
  const index = readIndex(repo);
  const stamp = stampOf(repo);
  const cmp = new WorktreeCompare(repo, noSubmodule, stamp.fn);
  cmp.rules = rulesOf(repo);
  const i = index.find('f.txt');
  /** One update of status: a new stamp (taken only if a file is read), then the entry compared. */
  const update = async (how: 'compare' | 'decide' = 'compare') => {
    cmp.startUpdate();
    if (how === 'compare') await cmp.compare(index, i);
    else await cmp.decide(index, i, statOf(repo, 'f.txt'), false);
  };
  age(repo, ['f.txt'], 20); // same size and content, another mtime: the stat cannot decide
  await settle(); // utimes moved the ctime to now: a verdict is trusted once the ctime is older than the stamp
  await update('decide');
  t.equal(cmp.hashed, 1, 'hashed');
  t.equal(cmp.letters.get('f.txt'), undefined, 'clean');
  const first = cmp.verdicts.get('f.txt')!;
  t.equal(first.letter, ' ');
  t.equal(first.oid, index.oid(i), 'the verdict names the blob it was compared with');
  t.ok(settledBefore(first.stat, first.takenAt), 'the stamp, taken after the stat, is newer than it');
  t.ok(cmp.changedVerdicts.has('f.txt'));
  await update('decide');
  await update('compare');
  t.equal(cmp.hashed, 1, 'the verdict is reused while the stat holds');
  write(repo, 'f.txt', 'two\n'); // same size, other content
  age(repo, ['f.txt'], 15);
  await settle();
  await update();
  t.equal(cmp.hashed, 2, 'a changed stat: hashed again');
  t.equal(cmp.letters.get('f.txt'), 'M');
  await update();
  t.equal(cmp.hashed, 2, 'the new verdict is reused');
  t.equal(cmp.letters.get('f.txt'), 'M');
  // A file written in the same tick of the filesystem's clock as the stamp (made so with a fixed stamp):
  // a change later in that tick would keep its times, so what was read cannot vouch for the stat.
  write(repo, 'f.txt', 'one\n');
  const written = statOf(repo, 'f.txt');
  stamp.fixed = Math.max(written.mtimeMs, written.ctimeMs);
  await update();
  t.equal(cmp.hashed, 3);
  t.equal(cmp.letters.get('f.txt'), undefined, 'clean again');
  const fresh = cmp.verdicts.get('f.txt')!;
  t.equal(fresh.takenAt, stamp.fixed, "the update's stamp");
  t.notOk(settledBefore(fresh.stat, fresh.takenAt), 'a file as new as the stamp is not settled');
  await update();
  t.equal(cmp.hashed, 4, 'an unsettled verdict is not trusted: hashed again');
  // Past a tick, the real stamp is newer than the file: that verdict holds.
  stamp.fixed = null;
  await settle();
  await update();
  t.equal(cmp.hashed, 5, 'hashed with a stamp of now');
  t.ok(settledBefore(cmp.verdicts.get('f.txt')!.stat, cmp.verdicts.get('f.txt')!.takenAt), 'settled');
  await update();
  t.equal(cmp.hashed, 5, 'and reused');
  t.equal(stamp.calls, 5, 'one stamp per update that read a file, none for an update that read nothing');
  // A verdict against another blob (the index changed, the file did not): not used.
  const other = cmp.verdicts.get('f.txt')!;
  cmp.verdicts.set('f.txt', { ...other, oid: '0'.repeat(40), letter: 'M' });
  await update();
  t.equal(cmp.hashed, 6, 'a verdict of another blob: hashed');
  t.equal(cmp.letters.get('f.txt'), undefined, 'and found clean');
  t.equal(cmp.verdicts.get('f.txt')!.oid, index.oid(i), 'the verdict now of the index blob');

  // Verdicts made by hand around the stamp: a wrong letter proves which one was used.
  const g = index.find('g.txt');
  const oid = index.oid(g);
  age(repo, ['g.txt'], 30);
  const d = statOf(repo, 'g.txt');
  const newest = Math.max(d.mtimeMs, d.ctimeMs);
  t.ok(d.ctimeMs > d.mtimeMs, 'utimes: the ctime is the newest');
  cmp.verdicts.set('g.txt', { stat: d, oid, letter: 'M', takenAt: newest + 0.001 });
  await cmp.decide(index, g, d, false);
  t.equal(cmp.letters.get('g.txt'), 'M', 'a settled verdict (stamp newer than mtime and ctime) is taken as it is');
  t.equal(cmp.hashed, 6);
  cmp.verdicts.set('g.txt', { stat: d, oid, letter: 'M', takenAt: newest });
  await cmp.decide(index, g, d, false);
  t.equal(cmp.hashed, 7, 'a ctime as new as the stamp: hashed');
  t.equal(cmp.letters.get('g.txt'), undefined, 'and found clean');
  cmp.verdicts.set('g.txt', { stat: d, oid, letter: 'M', takenAt: d.mtimeMs + 0.001 });
  await cmp.decide(index, g, d, false);
  t.equal(cmp.hashed, 8, 'a stamp newer than the mtime only: hashed');
  cmp.verdicts.set('g.txt', { stat: { ...d, ino: d.ino + 1 }, oid, letter: 'M', takenAt: newest + 1000 });
  await cmp.decide(index, g, d, false);
  t.equal(cmp.hashed, 9, 'a verdict of another stat is not used');
  t.equal(cmp.letters.get('g.txt'), undefined);
  cmp.forget('g.txt');
  t.notOk(cmp.verdicts.has('g.txt'));
  t.ok(cmp.changedVerdicts.has('g.txt'), 'forgotten: changed for the persisted state');

  // realLeading: a directory replaced by a symlink to a copy of it deletes the tracked files below it.
  renameSync(join(repo, 'd'), join(repo, 'd-real'));
  symlinkSync('d-real', join(repo, 'd'));
  const cmp2 = new WorktreeCompare(repo, noSubmodule, stamp.fn);
  cmp2.rules = rulesOf(repo);
  await cmp2.compare(index, index.find('d/in.txt'));
  t.equal(cmp2.letters.get('d/in.txt'), 'D', 'below a symlinked directory: D');
  t.equal(gitStatus(repo).find((e) => e.path === 'd/in.txt')?.y, 'D', 'as git says');
  cmp2.startUpdate();
  await cmp2.decide(index, index.find('d/in.txt'), statOf(repo, 'd/in.txt'), true);
  t.equal(cmp2.letters.get('d/in.txt'), 'D', 'decide with checkLeading: D too (the stat followed the link)');
  // A stat taken through the link, decided without the leading check, is what the scan alone would give.
  unlinkSync(join(repo, 'd'));
  renameSync(join(repo, 'd-real'), join(repo, 'd'));
  cmp2.startUpdate();
  await cmp2.compare(index, index.find('d/in.txt'));
  t.equal(cmp2.letters.get('d/in.txt'), undefined, 'a real directory again (after startUpdate): clean');

  // worktreeMode: the mode git's diff would record for the worktree file.
  chmodSync(join(repo, 'exec.sh'), 0o755);
  symlinkSync('f.txt', join(repo, 'ln'));
  t.equal(await cmp2.worktreeMode('exec.sh', 0o100644), 0o100755);
  t.equal(await cmp2.worktreeMode('f.txt', 0o100644), 0o100644);
  t.equal(await cmp2.worktreeMode('ln', 0o100644), SYMLINK);
  t.equal(await cmp2.worktreeMode('missing', 0o100644), 0);
  t.equal(await cmp2.worktreeMode('sub', 0o100644), 0, 'a directory: none');
  t.equal(await cmp2.worktreeMode('sub', GITLINK), GITLINK, 'a directory for a gitlink');
  cmp2.rules = { ...cmp2.rules, fileMode: false };
  t.equal(await cmp2.worktreeMode('exec.sh', 0o100644), 0o100644, 'core.filemode false: the index mode');
  t.equal(await cmp2.worktreeMode('exec.sh', SYMLINK), 0o100644, 'core.filemode false, was a link: 644');
});

t.test('worktree-compare: a gitlink, by its directory and the submodule check', async (t) => {
  const repo = agedRepo({ 'f.txt': 'f\n' });
  const head = git(repo, 'rev-parse', 'HEAD').trim();
  for (const p of ['sub', 'gone', 'file']) git(repo, 'update-index', '--add', '--cacheinfo', `160000,${head},${p}`);
  mkdirSync(join(repo, 'sub'));
  write(repo, 'file', 'a file where a submodule was\n');
  const index = readIndex(repo);
  const rules = rulesOf(repo);
  t.equal(index.mode(index.find('sub')), GITLINK);
  t.equal(fromStat(index, index.find('sub'), statOf(repo, 'sub'), rules), null, 'a directory: the submodule decides');
  t.equal(fromStat(index, index.find('gone'), statOf(repo, 'gone'), rules), 'D', 'missing: D');
  t.equal(fromStat(index, index.find('file'), statOf(repo, 'file'), rules), 'T', 'a file: T');
  const y = new Map(gitStatus(repo).map((e) => [e.path, e.y]));
  t.equal(y.get('gone'), 'D', 'git: D');
  t.equal(y.get('file'), 'T', 'git: T');
  t.equal(y.get('sub'), ' ', 'git: an empty directory for a submodule is clean in the worktree (staged A)');
  const answers: Array<{ head: string | null; changed: boolean; untracked: boolean }> = [
    { head: null, changed: false, untracked: false },
    { head: 'f'.repeat(40), changed: false, untracked: false },
    { head, changed: true, untracked: false },
    { head, changed: false, untracked: true },
    { head, changed: false, untracked: false },
  ];
  const asked: string[] = [];
  const cmp = new WorktreeCompare(
    repo,
    async (worktree) => {
      asked.push(worktree);
      return answers.shift()!;
    },
    stampOf(repo).fn,
  );
  cmp.rules = rules;
  const seen: Array<[string | undefined, string | undefined]> = [];
  for (let k = 0; k < 5; k++) {
    await cmp.compare(index, index.find('sub'));
    seen.push([cmp.letters.get('sub'), cmp.subChange.get('sub')]);
  }
  t.same(seen, [[undefined, undefined], ['M', 'commit'], ['M', 'dirty'], ['M', 'untracked'], [undefined, undefined]], 'not checked out, new commit, modified, untracked, clean');
  t.same(asked, Array(5).fill(join(repo, 'sub')), 'asked with the submodule worktree');
  t.equal(cmp.hashed, 0, 'nothing hashed');
});
