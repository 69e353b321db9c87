// The object database against git cat-file: loose objects, packs with offset deltas and with reference
// deltas, alternates, a pack that appears after the first read; objects that are missing, damaged or not
// what was asked for fail with GitObjectError, which the plugin answers as the repository's failure.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { HearthError } from '../src/errors.js';
import { asGitFailure } from '../plugins/git/failure.js';
import { IndexFormatError } from '../plugins/git/index-file.js';
import { iso } from '../plugins/git/iso.js';
import { GitObjectError, ObjectDatabase } from '../plugins/git/odb.js';
import { ObjectReader, parseCommit, parseTree } from '../plugins/git/objects.js';
import { tempDir } from './helpers/daemon.js';

const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 'A', GIT_AUTHOR_EMAIL: 'a@x', GIT_COMMITTER_NAME: 'A', GIT_COMMITTER_EMAIL: 'a@x' };
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env, maxBuffer: 1 << 28 });

/** A history where files grow a little each commit: the packer stores most versions as deltas. */
function history(dir: string, commits = 30): void {
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q');
  let text = '';
  for (let i = 0; i < commits; i++) {
    text += `line ${i} ${'x'.repeat(i % 7)}\n`;
    mkdirSync(join(dir, 'd', String(i % 3)), { recursive: true });
    writeFileSync(join(dir, 'd', String(i % 3), 'f.txt'), text);
    writeFileSync(join(dir, 'top.txt'), text.split('\n').reverse().join('\n'));
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', `commit ${i}\n\nbody ${i}`);
  }
  git(dir, 'tag', '-a', '-m', 'annotated', 'v1');
}

async function everyObjectMatches(t: Tap.Test, dir: string, what: string): Promise<void> {
  const odb = new ObjectDatabase(join(dir, '.git', 'objects'));
  // One git process for all: "<oid> <type> <size>\n<content>\n" per object.
  const all = git(dir, 'cat-file', '--batch-all-objects', '--batch');
  let pos = 0;
  let checked = 0;
  while (pos < all.length) {
    const lf = all.indexOf(10, pos);
    const [oid, type, size] = all.toString('latin1', pos, lf).split(' ');
    const expected = all.subarray(lf + 1, lf + 1 + Number(size));
    pos = lf + 1 + Number(size) + 1;
    const object = await odb.read(oid!);
    if (object.type !== type || !object.data.equals(expected)) {
      t.fail(`${what}: ${type} ${oid} differs`);
      return;
    }
    checked++;
  }
  t.ok(checked > 100, `${what}: all ${checked} objects equal git cat-file`);
  await odb.close();
}

t.test('loose objects, then packs with offset and reference deltas', async (t) => {
  const dir = join(tempDir('hearth-odb-'), 'r');
  history(dir);
  await everyObjectMatches(t, dir, 'loose');
  git(dir, 'gc', '-q', '--aggressive');
  const verify = git(dir, 'verify-pack', '-v', ...execFileSync('sh', ['-c', 'ls .git/objects/pack/*.idx'], { cwd: dir }).toString().trim().split('\n')).toString();
  t.match(verify, /chain length = [1-9]/, 'the pack holds deltas');
  await everyObjectMatches(t, dir, 'packed (offset deltas)');
  git(dir, '-c', 'repack.useDeltaBaseOffset=false', 'repack', '-adfq');
  await everyObjectMatches(t, dir, 'packed (reference deltas)');
});

t.test('commits and trees parse as git prints them; tags are objects of their own', async (t) => {
  const dir = join(tempDir('hearth-odb-'), 'r');
  history(dir, 3);
  git(dir, 'gc', '-q');
  const odb = new ObjectDatabase(join(dir, '.git', 'objects'));
  const head = git(dir, 'rev-parse', 'HEAD').toString().trim();
  const commit = parseCommit(head, (await odb.read(head)).data);
  t.equal(commit.tree, git(dir, 'rev-parse', 'HEAD^{tree}').toString().trim());
  t.same(commit.parents, [git(dir, 'rev-parse', 'HEAD~1').toString().trim()]);
  t.equal(commit.message, 'commit 2\n\nbody 2\n');
  t.match(commit.author, { name: 'A', email: 'a@x' });
  const tree = parseTree((await odb.read(commit.tree)).data);
  const lsTree = git(dir, 'ls-tree', 'HEAD').toString().trim().split('\n').map((l) => {
    const [meta, name] = l.split('\t');
    const [mode, , oid] = meta!.split(' ');
    return { name, mode: parseInt(mode!, 8), oid, isTree: mode === '040000' };
  });
  t.same(tree, lsTree);
  const tag = git(dir, 'rev-parse', 'v1').toString().trim();
  t.equal((await odb.read(tag)).type, 'tag');
  const missing = await odb.read('0'.repeat(40)).catch((err: unknown) => err);
  t.ok(missing instanceof GitObjectError, 'a missing object is a GitObjectError');
  t.equal((missing as GitObjectError).reason, 'missing');
  await odb.close();
});

t.test('a damaged object or one of the wrong kind is a GitObjectError; the plugin answers it as GIT_FAILED', async (t) => {
  const dir = join(tempDir('hearth-odb-'), 'r');
  history(dir, 2);
  const head = git(dir, 'rev-parse', 'HEAD').toString().trim();
  const reader = new ObjectReader(join(dir, '.git'));
  t.teardown(() => reader.close());
  const wrong = await reader.tree(head).catch((err: unknown) => err);
  t.ok(wrong instanceof GitObjectError && wrong.reason === 'wrong_type', 'a commit asked for as a tree');
  const loose = join(dir, '.git', 'objects', head.slice(0, 2), head.slice(2));
  chmodSync(loose, 0o644);
  writeFileSync(loose, 'not zlib at all');
  const damaged = await new ObjectDatabase(join(dir, '.git', 'objects')).read(head).catch((err: unknown) => err);
  t.ok(damaged instanceof GitObjectError && damaged.reason === 'corrupt', 'a loose object that does not inflate');

  const failures: Array<[string, unknown]> = [
    ['a damaged object', damaged],
    ['an object of the wrong kind', wrong],
    ['a damaged index', new IndexFormatError('index truncated')],
    // isomorphic-git is loaded on first use: its errors exist only once it is.
    ["isomorphic-git's own error", new (await iso()).Errors.NotFoundError('refs/heads/x')],
    ['a file of the repository that cannot be read', Object.assign(new Error('gone'), { code: 'ENOENT' })],
  ];
  for (const [what, err] of failures) {
    const failure = asGitFailure(err);
    t.ok(failure instanceof HearthError && failure.code === 'GIT_FAILED' && failure.cause === err, `${what}: GIT_FAILED, with its cause`);
  }
  const bug = new TypeError('a bug');
  t.equal(asGitFailure(bug), bug, 'anything else is left as it is (a 500: a bug)');
  const client = new HearthError('CONFLICT', 'locked');
  t.equal(asGitFailure(client), client, "the caller's errors stay theirs");
});

t.test('a pack made after the first read is found; alternates are followed', async (t) => {
  const root = tempDir('hearth-odb-');
  const dir = join(root, 'r');
  history(dir, 3);
  git(dir, 'gc', '-q');
  const odb = new ObjectDatabase(join(dir, '.git', 'objects'));
  await odb.read(git(dir, 'rev-parse', 'HEAD').toString().trim());
  writeFileSync(join(dir, 'new.txt'), 'new\n');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'later');
  git(dir, 'gc', '-q');
  const later = git(dir, 'rev-parse', 'HEAD').toString().trim();
  t.equal((await odb.read(later)).type, 'commit', 'the new pack is read');
  await odb.close();

  const shared = join(root, 'shared');
  git(root, 'clone', '-q', '--shared', dir, shared);
  const viaAlternates = new ObjectDatabase(join(shared, '.git', 'objects'));
  t.equal((await viaAlternates.read(later)).type, 'commit', 'an object only in the alternate is read');
  await viaAlternates.close();
});
