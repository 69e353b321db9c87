// Untracked and ignored files in each of git's modes (-unormal, -uall, -uno; --ignored=traditional,
// matching, no) and with status.showUntrackedFiles, against the real git CLI: cold, warm (asked again right
// after each change), through the HTTP API and, for a few cases, through `hearth git status`.
import { cpSync, mkdirSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { cleanEnv, runCli } from './helpers/daemon.js';
import { gitDaemon } from './helpers/git-daemon.js';
import { commitAll, git, gitRaw, makeRepo, parsePorcelainZ, write, type Entry } from './helpers/git.js';

t.setTimeout(180_000);

const { home, root, d, call, status } = await gitDaemon(t, 'hearth-untr-');

type Untracked = 'normal' | 'all' | 'no';
type Ignored = 'no' | 'traditional' | 'matching';
/** Every combination git accepts (matching with -uno it refuses). */
const MODES: Array<[Untracked, Ignored]> = [];
for (const u of ['normal', 'all', 'no'] as const) for (const i of ['no', 'traditional', 'matching'] as const) if (!(u === 'no' && i === 'matching')) MODES.push([u, i]);

/** git's own answer; `untracked` undefined: no -u flag (status.showUntrackedFiles decides). */
function oracle(repo: string, untracked: Untracked | undefined, ignored: Ignored): Entry[] {
  const args = ['status', '--porcelain=v1', '--no-renames', '-z', ...(untracked ? [`-u${untracked}`] : []), `--ignored=${ignored}`];
  return parsePorcelainZ(gitRaw(repo, ...args));
}

const run = promisify(execFile);
/**
 * git's answers in every mode, from five runs at once: an answer without ignored files is the one with them
 * less its `!!` entries (git lists the same untracked entries whatever the ignored mode).
 */
async function oracles(repo: string): Promise<Map<string, Entry[]>> {
  const asked: Array<[Untracked, Ignored]> = [['normal', 'traditional'], ['normal', 'matching'], ['all', 'traditional'], ['all', 'matching'], ['no', 'traditional']];
  const outs = await Promise.all(
    asked.map(([u, i]) => run('git', ['--no-optional-locks', 'status', '--porcelain=v1', '--no-renames', '-z', `-u${u}`, `--ignored=${i}`], { cwd: repo, encoding: 'utf8' })),
  );
  const answers = new Map<string, Entry[]>();
  asked.forEach(([u, i], n) => {
    const entries = parsePorcelainZ(outs[n]!.stdout);
    answers.set(`${u} ${i}`, entries);
    answers.set(`${u} no`, entries.filter((e) => e.x !== '!'));
  });
  return answers;
}

/** Only the three fields git's porcelain v1 has (others may be added to entries). */
const plain = (entries: Array<Entry & Record<string, unknown>>): Entry[] => entries.map((e) => ({ path: e.path, x: e.x, y: e.y }));

/** Every mode asked of hearth and compared with git; `untracked: config` too (with no status.showUntrackedFiles set: normal). */
async function checkModes(t: Tap.Test, repo: string, label: string): Promise<void> {
  const expected = await oracles(repo);
  for (const [untracked, ignored] of MODES) {
    const res = await status({ repo, untracked, ignored });
    if (!res.json.success) {
      t.fail(`${label} -u${untracked} --ignored=${ignored}: ${res.status} ${JSON.stringify(res.json.error)}`);
      continue;
    }
    t.same(plain(res.json.data.entries), expected.get(`${untracked} ${ignored}`), `${label} -u${untracked} --ignored=${ignored}`);
  }
  const res = await status({ repo, untracked: 'config' });
  t.same(plain(res.json.data.entries), expected.get('normal no'), `${label} untracked config (none set: normal)`);
}

/**
 * Every shape the modes tell apart: untracked directories nested and not, directories holding only ignored
 * files or only empty directories, ignored directories (empty, with files, with a nested repository) in
 * tracked, untracked and ignored directories, nested repositories, negated patterns, directories where the
 * index has a file.
 */
function populate(r: string): void {
  write(r, 'tracked.txt', 't');
  write(r, 'tr/t.txt', 't');
  write(r, 'tr/sub/s.txt', 's');
  write(r, 'out/keep.txt', 'k');
  write(r, '.gitignore', '*.log\nigdir/\nigempty/\nbuild\nnestign/\n!keep.log\nout/\nun3/igd/\n');
  for (const name of ['tfile', 'tfile2.log', 'tempty.log']) write(r, name, 'a tracked file, a directory in the worktree');
  git(r, 'add', '.gitignore', 'tracked.txt', 'tr', 'tfile');
  git(r, 'add', '-f', 'tfile2.log', 'tempty.log');
  git(r, 'add', '-f', 'out/keep.txt');
  git(r, 'commit', '-q', '-m', 'base');
  // Directories where the index has files: git does not list them as `dir/` (their files only with -uall).
  for (const name of ['tfile', 'tfile2.log', 'tempty.log']) rmSync(join(r, name));
  write(r, 'tfile/y', 'u');
  write(r, 'tfile/z.log', 'l');
  write(r, 'tfile/sub/u', 'u');
  write(r, 'tfile/sub/q.log', 'l');
  write(r, 'tfile2.log/x', 'l');
  mkdirSync(join(r, 'tempty.log'));
  write(r, 'u.txt', 'u');
  write(r, 'root.log', 'l');
  write(r, 'un/top.txt', 'u');
  write(r, 'un/deep/er/f.txt', 'u');
  write(r, 'onlyign/a.log', 'l');
  write(r, 'onlyign/x/b.log', 'l');
  write(r, 'mixed/m.log', 'l');
  write(r, 'mixed/u.txt', 'u');
  write(r, 'mixed/ig/c.log', 'l');
  write(r, 'mixed/sub/u', 'u');
  write(r, 'mixed/sub/s.log', 'l');
  write(r, 'tr/new.txt', 'u');
  write(r, 'tr/t.log', 'l');
  write(r, 'tr/untr/a/f', 'u');
  write(r, 'tr/ig2/x.log', 'l');
  write(r, 'tr/build/f', 'b');
  write(r, 'igdir/top', 'i');
  write(r, 'igdir/y/z', 'i');
  mkdirSync(join(r, 'igempty/a/b'), { recursive: true });
  mkdirSync(join(r, 'emptydir/e1/e2'), { recursive: true });
  mkdirSync(join(r, 'tr/emp'), { recursive: true });
  write(r, 'un3/f', 'u');
  write(r, 'un3/igd/q', 'i');
  write(r, 'un9/igd/q', 'i');
  write(r, 'un6/x.log', 'l');
  mkdirSync(join(r, 'un6/e'), { recursive: true });
  write(r, 'un2/.hidden', 'u');
  write(r, 'keep/keep.log', 'k');
  write(r, 'keep/other.log', 'l');
  write(r, 'build/x/f', 'b');
  write(r, 'out/gen.o', 'g');
  write(r, 'out/sub/x', 'g');
  makeRepo(r, 'nest/inner');
  makeRepo(r, 'nestign/n2');
  makeRepo(r, 'un10/repo');
  write(r, 'un10/a.log', 'l');
  makeRepo(r, 'toprepo');
  write(r, 'a-b/x', 'u'); // sorts between `a` entries: `a-b/` < `a.txt` < `a/`
  write(r, 'a.txt', 'u');
  write(r, 'a/x.log', 'l');
}

const fresh = (): string => mkdtempSync(join(root, 'repo-'));
const template = makeRepo(root, 'template');
populate(template);
/** A copy of the populated template (its index stats match nothing: every tracked file is hashed once). */
const populated = (): string => {
  const r = fresh();
  cpSync(template, r, { recursive: true });
  return r;
};

t.test('cold: every mode on every shape', async (t) => {
  const r = populated();
  // The state is built the same whatever the first question's modes: two of them suffice for a first answer.
  for (const [untracked, ignored] of [['normal', 'traditional'], ['all', 'matching']] as const) {
    const cold = populated();
    const res = await status({ repo: cold, untracked, ignored });
    t.same(plain(res.json.data.entries), oracle(cold, untracked, ignored), `first answer -u${untracked} --ignored=${ignored}`);
    t.equal(res.json.data.cached, false);
    rmSync(cold, { recursive: true, force: true });
  }
  await checkModes(t, r, 'built');
});

t.test('warm: each change in the very next answer, in every mode', async (t) => {
  const r = populated();
  await checkModes(t, r, 'before');
  const steps: Array<[string, () => void]> = [
    ['an untracked file in a tracked directory', () => write(r, 'tr/sub/new2.txt', 'n')],
    ['a new untracked directory tree', () => write(r, 'fresh/a/b/c.txt', 'c')],
    ['the only untracked file of a directory removed (ignored files left)', () => unlinkSync(join(r, 'mixed/u.txt'))],
    ['the last untracked file of mixed/ removed', () => rmSync(join(r, 'mixed/sub/u'))],
    ['an untracked file into a directory of ignored files', () => write(r, 'onlyign/x/now.txt', 'n')],
    ['an ignored file into an untracked directory', () => write(r, 'un/deep/new.log', 'l')],
    ['an empty directory made', () => mkdirSync(join(r, 'un/empty'))],
    ['a file into an empty ignored directory', () => write(r, 'igempty/a/b/f', 'f')],
    ['a directory of an untracked tree removed', () => rmSync(join(r, 'un/deep'), { recursive: true })],
    ['a directory made a nested repository', () => makeRepo(r, 'fresh/a')],
    ['a .gitignore ignoring a directory', () => write(r, 'un/.gitignore', 'top.txt\n')],
    ['a file of an untracked directory added: the directory is tracked', () => git(r, 'add', 'un2/.hidden')],
    ['committed', () => git(r, 'commit', '-q', '-m', 'un2')],
    ['a tracked directory deleted from the index, its files kept', () => git(r, 'rm', '-q', '-r', '--cached', 'tr/sub')],
    ['the rule ignoring igdir/ removed', () => write(r, '.gitignore', '*.log\nigempty/\nbuild\nnestign/\n!keep.log\nout/\nun3/igd/\n')],
    ['a whole untracked tree removed', () => rmSync(join(r, 'fresh'), { recursive: true })],
  ];
  for (const [label, act] of steps) {
    act();
    await checkModes(t, r, label);
  }
});

t.test('status.showUntrackedFiles decides when no mode is asked for', async (t) => {
  const r = populated();
  const asked = async (label: string) => {
    const res = await status({ repo: r, untracked: 'config' });
    t.same(plain(res.json.data.entries), oracle(r, undefined, 'no'), label);
    const withIgnored = await status({ repo: r, untracked: 'config', ignored: 'traditional' });
    t.same(plain(withIgnored.json.data.entries), oracle(r, undefined, 'traditional'), `${label}, --ignored`);
  };
  await asked('not set: normal');
  for (const value of ['all', 'no', 'normal']) {
    git(r, 'config', 'status.showUntrackedFiles', value);
    await asked(`set to ${value}`);
  }
  // The global config is read too.
  git(r, 'config', '--unset', 'status.showUntrackedFiles');
  git(home, 'config', '--global', 'status.showUntrackedFiles', 'all');
  await asked('set to all in the global config');
  git(home, 'config', '--global', '--unset', 'status.showUntrackedFiles');
  await asked('unset again');
  // An explicit mode wins over the config, as -u does.
  git(r, 'config', 'status.showUntrackedFiles', 'no');
  const explicit = await status({ repo: r, untracked: 'normal' });
  t.same(plain(explicit.json.data.entries), oracle(r, 'normal', 'no'), 'an explicit mode wins');
  const matching = await status({ repo: r, untracked: 'config', ignored: 'matching' });
  t.equal(matching.status, 400, 'matching with the configured no is refused, as git refuses it');
  // A value git does not know: git refuses to run, so does the answer.
  git(r, 'config', 'status.showUntrackedFiles', 'Normal');
  t.not(spawnGit(r, 'status', '--porcelain'), 0, 'git refuses');
  const bad = await status({ repo: r, untracked: 'config' });
  t.equal(bad.status, 502);
  t.equal(bad.json.error.code, 'GIT_FAILED');
  t.match(bad.json.error.message, /status\.showuntrackedfiles.*'Normal'/);
  const other = await status({ repo: r, untracked: 'all' });
  t.equal(other.status, 200, 'a request naming its mode does not read the value');
});

function spawnGit(cwd: string, ...args: string[]): number {
  try {
    git(cwd, ...args);
    return 0;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}

t.test('the API: defaults as before, the original switches, validation', async (t) => {
  const r = populated();
  const entries = async (body: object) => plain((await status({ repo: r, ...body })).json.data.entries);
  t.same(await entries({}), oracle(r, 'all', 'no'), 'no option: all, no ignored (as before)');
  t.same(await entries({ include_untracked: false }), oracle(r, 'no', 'no'), 'include_untracked false: no');
  t.same(await entries({ include_untracked: true, include_ignored: true }), oracle(r, 'all', 'traditional'), 'include_ignored: traditional');
  t.same(await entries({ untracked: 'normal', include_ignored: true }), oracle(r, 'normal', 'traditional'), 'a mode and the other switch mix');
  t.same(await entries({ ignored: 'matching' }), oracle(r, 'all', 'matching'), 'ignored alone: untracked all');
  const get = await call('GET', `/git/status?repo=${encodeURIComponent(join(r, 'tr'))}&untracked=normal&ignored=traditional`);
  t.same(plain(get.json.data.entries), oracle(r, 'normal', 'traditional'), 'GET takes the modes from the query');

  const refused: Array<[object, RegExp]> = [
    [{ untracked: 'sometimes' }, /untracked/],
    [{ ignored: true }, /ignored/],
    [{ ignored: 'yes' }, /ignored/],
    [{ untracked: 'all', include_untracked: true }, /either untracked or include_untracked/],
    [{ ignored: 'no', include_ignored: false }, /either ignored or include_ignored/],
    [{ untracked: 'no', ignored: 'matching' }, /unsupported combination/],
    [{ include_untracked: false, ignored: 'matching' }, /unsupported combination/],
  ];
  for (const [body, message] of refused) {
    const res = await status({ repo: r, ...body });
    t.equal(res.status, 400, JSON.stringify(body));
    t.equal(res.json.error?.code, 'VALIDATION_FAILED');
    t.match(JSON.stringify(res.json.error), message, `${JSON.stringify(body)}: says why`);
  }
  const bad = await call('GET', `/git/status?repo=${encodeURIComponent(r)}&untracked=1`);
  t.equal(bad.status, 400, 'a bad mode in the query');
  t.match(JSON.stringify(bad.json.error.details), /untracked/);
});

t.test('the summary counts files whatever the configured mode', async (t) => {
  const r = populated();
  git(r, 'config', 'status.showUntrackedFiles', 'normal');
  const res = await call('GET', `/git/summary?repo=${encodeURIComponent(r)}`);
  t.equal(res.json.data.untracked, oracle(r, 'all', 'no').filter((e) => e.x === '?').length);
});

t.test('a random worktree, every mode, cold and after random edits', async (t) => {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const names = ['a', 'b', 'c.log', 'd.tmp', 'e'];
  const pick = () => names[rand(names.length)]!;
  const randomPath = (): string => Array.from({ length: 1 + rand(4) }, pick).join('/');
  const r = makeRepo(fresh());
  write(r, '.gitignore', '*.log\nd.tmp/\nb/e\n!a/c.log\n');
  const put = (path: string) => {
    try {
      write(r, path, path);
    } catch {
      /* a file where a directory would go, or the reverse */
    }
  };
  for (let i = 0; i < 20; i++) put(randomPath());
  commitAll(r, 'random');
  for (let i = 0; i < 40; i++) put(randomPath());
  await checkModes(t, r, 'cold');
  for (let round = 0; round < 6; round++) {
    for (let i = 0; i < 4; i++) {
      const path = randomPath();
      const op = rand(3);
      if (op === 0) rmSync(join(r, path), { recursive: true, force: true });
      else if (op === 1) {
        try {
          mkdirSync(join(r, path), { recursive: true });
        } catch {
          /* a file on the way */
        }
      }
      else put(path);
    }
    await checkModes(t, r, `round ${round}`);
  }
});

t.test('CLI: git\'s flags, byte for byte', async (t) => {
  const r = populated();
  const configured = populated();
  git(configured, 'config', 'status.showUntrackedFiles', 'all');
  const cli = ['--config', join(d.stateDir, 'config.json'), '--state-dir', d.stateDir, 'git', 'status'];
  // Each run starts a node process (slow here): a few, in parallel.
  const cases: Array<[string, string[], string[]]> = [
    [r, ['--porcelain'], []],
    [configured, ['-z', '--ignored'], ['-z', '--ignored']],
    [r, ['--porcelain', '-u', '--ignored=matching'], ['-u', '--ignored=matching']],
  ];
  const runs = await Promise.all(cases.map(([repo, ours]) => runCli([...cli, join(repo, 'tr'), ...ours], cleanEnv(), 150_000)));
  cases.forEach(([repo, ours, theirs], i) => {
    const run = runs[i]!;
    t.equal(run.code, 0, run.stderr);
    t.equal(run.stdout, gitRaw(join(repo, 'tr'), 'status', '--porcelain=v1', '--no-renames', ...theirs), `${ours.join(' ')}${repo === configured ? ' (showUntrackedFiles=all)' : ''}`);
  });
});

t.test('CLI: -uno with --ignored=matching is refused before asking', async (t) => {
  const { default: commands } = await import('../plugins/git/cli.js');
  const spec = commands.find((c) => c.name === 'git status')!;
  const client = () => t.fail('no request is sent') as never;
  await t.rejects(
    Promise.resolve().then(() => spec.run({ args: ['.'], options: { 'untracked-files': 'no', ignored: 'matching' }, flags: {}, spawn: false, client })),
    { name: 'UsageError', message: /unsupported combination/ },
  );
});
