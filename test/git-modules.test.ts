// Unit tests of the status engine's modules (index-file, worktree-compare, dir-cache, warm-state) and of a
// RepoState restored from its persisted state: real files, real repositories in temp dirs, the real git CLI
// as the oracle where it has an answer; no mocks.
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { comparePaths, F_ASSUME_VALID, F_INTENT_TO_ADD, F_SKIP_WORKTREE, IndexFormatError, IndexTable, parseIndex, S_CTIME, S_GID, S_INO, S_MTIME, S_SIZE, S_UID, STAT_FIELDS } from '../plugins/git/index-file.js';
import { fromStat, RACY_MARGIN_MS, scanEntries, scanned, settledBefore, WorktreeCompare, type CompareRules } from '../plugins/git/worktree-compare.js';
import { KIND_DIR, KIND_FILE, statData } from '../plugins/git/stat-data.js';
import { DirCache, type Tracked, type Watches } from '../plugins/git/dir-cache.js';
import { IgnoreRules } from '../plugins/git/ignore-rules.js';
import { loadGitConfig } from '../plugins/git/git-config.js';
import { findRepo, type RepoPaths } from '../plugins/git/repo.js';
import { repoIdentity, stateFile, STATE_VERSION, trackedHashes, WarmState, type DirRecord } from '../plugins/git/warm-state.js';
import { GITLINK, SYMLINK } from '../plugins/git/modes.js';
import { RecordFile } from '../src/services/record-file.js';
import { DirWatchSet } from '../src/services/dir-watch.js';
import { ObjectReader } from '../plugins/git/objects.js';
import { RepoState } from '../plugins/git/status.js';
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
function throwsFormat(t: Tap.Test, fn: () => unknown, message?: string): void {
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

t.test('index-file: an extension cut short is an IndexFormatError', { todo: 'parseIndex does not check that an extension fits before the trailing hash: a buffer cut inside the TREE extension parses (with a wrong checksum and a partial cache-tree)' }, async (t) => {
  const repo = makeRepo(root);
  fillVaried(repo);
  commitAll(repo);
  const raw = readFileSync(join(repo, '.git', 'index'));
  const treeAt = raw.indexOf('TREE', 12, 'latin1');
  throwsFormat(t, () => parseIndex(raw.subarray(0, treeAt + 40)));
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
