// git's config rules against the git CLI: include.path and includeIf (gitdir:, gitdir/i:, onbranch:) as
// `git config` resolves them, the include depth limit, `~/` and relative excludes files, the default XDG
// excludes file, excludes set in an included file, submodule.<name>.ignore and diff.ignoreSubmodules, and
// a change in an included file (outside the repository) seen by the very next status answer.
import { mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { loadGitConfig, type GitConfig } from '../plugins/git/git-config.js';
import { findRepo } from '../plugins/git/repo.js';
import { wildmatch } from '../plugins/git/wildmatch.js';
import { gitDaemon } from './helpers/git-daemon.js';
import { commitAll, describe, FLAGS, git, gitHead, gitStatus, makeRepo, write, type StatusFlags } from './helpers/git.js';

t.setTimeout(120_000);

const { home, root, status } = await gitDaemon(t, 'hearth-gcr-');
const homeConfig = join(home, '.gitconfig');
const baseGlobal = '[user]\n\tname = Hearth Test\n\temail = hearth@example.com\n[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n';

/** The global config back to the helpers' own, plus `extra`. */
function setGlobal(extra = ''): void {
  writeFileSync(homeConfig, baseGlobal + extra);
}

/** The daemon's answer first, then `git -C <repo> status`, compared entry for entry. */
async function check(t: Tap.Test, repo: string, label: string, flags: StatusFlags = {}, knownHead?: ReturnType<typeof gitHead>): Promise<boolean> {
  const res = await status({ repo, include_untracked: flags.untracked !== false, include_ignored: flags.ignored === true });
  if (!res.json.success) return t.fail(`${label}: ${res.status} ${JSON.stringify(res.json.error)}`);
  const head = knownHead ?? gitHead(repo);
  const entries = gitStatus(repo, flags);
  const got = { branch: res.json.data.branch, head: res.json.data.head, entries: res.json.data.entries };
  return t.same(got, { ...head, entries }, `${label} ${describe(flags)}`);
}

async function checkAll(t: Tap.Test, repo: string, label: string): Promise<void> {
  for (const flags of FLAGS) await check(t, repo, label, flags);
}

/** `git config --get <key>` in `cwd` (null when unset). */
function gitGet(cwd: string, key: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const r = spawnSync('git', ['config', '--get', key], { cwd, encoding: 'utf8', env });
  return r.status === 0 ? r.stdout.replace(/\n$/, '') : null;
}

async function configOf(at: string): Promise<GitConfig> {
  const paths = await findRepo(at);
  if (!paths) throw new Error(`no repository at ${at}`);
  return loadGitConfig(paths);
}

let n = 0;
const uniq = (prefix: string): string => `${prefix}-${++n}`;

t.test('wildmatch as git (WM_PATHNAME)', async (t) => {
  const cases: Array<[string, string, boolean, boolean?]> = [
    ['foo', 'foo', true],
    ['f*', 'foo/bar', false],
    ['f*/bar', 'foo/bar', true],
    ['**/bar', 'bar', true],
    ['**/bar', 'a/b/bar', true],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**', 'a/x/y', true],
    ['a/**', 'a', false],
    ['a**b', 'axb', true],
    ['a**b', 'a/b', false],
    ['?', '/', false],
    ['[a-c]x', 'bx', true],
    ['[!a-c]x', 'bx', false],
    ['[^a-c]x', 'dx', true],
    ['[[:digit:]]', '7', true],
    ['[[:upper:]]', 'a', true, true],
    ['[A-Z]', 'q', true, true],
    ['FOO', 'foo', true, true],
    ['FOO', 'foo', false],
    ['\\*', '*', true],
    ['\\*', 'x', false],
    ['a[/]b', 'a/b', false],
  ];
  for (const [pattern, text, expected, icase] of cases) t.equal(wildmatch(pattern, text, icase ?? false), expected, `${pattern} ${icase ? '(i) ' : ''}~ ${text}`);
});

t.test('include.path: relative to the including file, absolute, ~/, nested, missing, in every file', async (t) => {
  const repo = makeRepo(root, uniq('inc'));
  const dir = join(home, uniq('incdir'));
  mkdirSync(join(dir, 'deeper'), { recursive: true });
  writeFileSync(join(dir, 'a.conf'), '[include]\n\tpath = deeper/b.conf\n[v]\n\ta = from-a\n');
  writeFileSync(join(dir, 'deeper', 'b.conf'), '[v]\n\tb = from-b\n\tover = b\n[include]\n\tpath = ../c.conf\n');
  writeFileSync(join(dir, 'c.conf'), '[v]\n\tc = from-c\n');
  writeFileSync(join(repo, '.git', 'rel.conf'), '[v]\n\trel = next-to-config\n');
  writeFileSync(join(home, 'tilde.conf'), '[v]\n\ttilde = home\n');
  git(repo, 'config', 'v.over', 'local-before');
  git(repo, 'config', '--add', 'include.path', join(dir, 'a.conf'));
  git(repo, 'config', '--add', 'include.path', 'rel.conf');
  git(repo, 'config', '--add', 'include.path', '~/tilde.conf');
  git(repo, 'config', '--add', 'include.path', 'missing.conf');
  // Global: relative to HOME; XDG: relative to $XDG_CONFIG_HOME/git.
  writeFileSync(join(home, 'global-inc.conf'), '[v]\n\tglobal = yes\n\tover = global\n');
  setGlobal('[include]\n\tpath = global-inc.conf\n');
  mkdirSync(join(home, '.config', 'git'), { recursive: true });
  writeFileSync(join(home, '.config', 'git', 'config'), '[include]\n\tpath = xdg-inc.conf\n');
  writeFileSync(join(home, '.config', 'git', 'xdg-inc.conf'), '[v]\n\txdg = yes\n');
  t.teardown(() => {
    setGlobal();
    rmSync(join(home, '.config', 'git', 'config'));
  });
  const config = await configOf(repo);
  for (const key of ['v.a', 'v.b', 'v.c', 'v.rel', 'v.tilde', 'v.global', 'v.xdg', 'v.over']) t.equal(config.get(key) ?? null, gitGet(repo, key), key);
  t.equal(config.get('v.over'), 'b', 'an include counts where it stands: after the local value before it');
  // The system file ($GIT_CONFIG_SYSTEM) and $GIT_CONFIG_GLOBAL, each with a relative include.
  const sysDir = join(home, uniq('sys'));
  mkdirSync(sysDir);
  writeFileSync(join(sysDir, 'system'), '[include]\n\tpath = sys-inc.conf\n');
  writeFileSync(join(sysDir, 'sys-inc.conf'), '[v]\n\tsys = yes\n\tover = sys\n');
  writeFileSync(join(sysDir, 'global'), '[include]\n\tpath = glob-inc.conf\n');
  writeFileSync(join(sysDir, 'glob-inc.conf'), '[v]\n\tglob = yes\n');
  const env = { ...process.env, GIT_CONFIG_SYSTEM: join(sysDir, 'system'), GIT_CONFIG_GLOBAL: join(sysDir, 'global') };
  delete env.GIT_CONFIG_NOSYSTEM;
  const paths = (await findRepo(repo))!;
  const withEnv = loadGitConfig(paths, env);
  for (const key of ['v.sys', 'v.glob', 'v.global', 'v.over']) t.equal(withEnv.get(key) ?? null, gitGet(repo, key, env), `${key} (GIT_CONFIG_SYSTEM, GIT_CONFIG_GLOBAL)`);
});

/**
 * Each condition includes a file of its own (setting `h.c<i>`), all in one config file: one `git config
 * --list` answers for all of them. Returns, per condition, whether git and hearth included its file.
 */
async function conditions(at: string, file: string, conds: string[], before = ''): Promise<Array<[string, boolean, boolean]>> {
  const lines = conds.map((cond, i) => {
    writeFileSync(join(home, `hit-${i}.conf`), `[h]\n\tc${i} = yes\n`);
    return `[includeIf "${cond.replace(/[\\"]/g, '\\$&')}"]\n\tpath = ${join(home, `hit-${i}.conf`)}\n`;
  });
  writeFileSync(file, before + lines.join(''));
  const listed = new Set(spawnSync('git', ['config', '--list'], { cwd: at, encoding: 'utf8' }).stdout.split('\n'));
  const ours = await configOf(at);
  return conds.map((cond, i) => [cond, listed.has(`h.c${i}=yes`), ours.get(`h.c${i}`) === 'yes']);
}

function same(t: Tap.Test, results: Array<[string, boolean, boolean]>, label: string): void {
  const differ = results.filter(([, g, h]) => g !== h).map(([cond, g]) => `${cond}: git ${g ? 'includes' : 'does not include'}`);
  t.same(differ, [], `${label}: ${results.length} conditions (${results.filter(([, g]) => g).length} true)`);
}

t.test('includeIf gitdir: and gitdir/i: patterns, as git decides them', async (t) => {
  const parent = join(root, uniq('gd'));
  const repo = makeRepo(parent, 'Proj');
  const localConfig = join(repo, '.git', 'config');
  const local = readFileSync(localConfig, 'utf8');
  const link = join(root, uniq('link'));
  symlinkSync(parent, link);
  const rel = parent.slice(root.length + 1);
  const patterns = [
    `${repo}/.git`, `${repo}/.git/`, `${repo}/`, repo, 'Proj/', 'proj/', 'Proj/.git', `${rel}/`, `${parent}/`, `${root}/*/Proj/`,
    `${root}/**/Proj/`, `${root}/*/`, `${root.toUpperCase()}/`, '.git', 'Proj', '**/Proj/.git', './', './.git', 'P?oj/', 'P[q-s]oj/', '[!P]roj/',
    '~/', `${root}/**`, `${root}/**/`, `**/${rel}/Proj/.git`, 'Pro*/', 'Pro*', '*/.git', '[[:upper:]]roj/',
  ];
  const conds = patterns.flatMap((p) => [`gitdir:${p}`, `gitdir/i:${p}`]);
  conds.push('hasconfig:remote.*.url:**', 'unknown:x', 'gitdir:', 'onbranch:');
  same(t, await conditions(repo, localConfig, conds, local), 'in .git/config');
  writeFileSync(localConfig, local);
  // `./` in a global file: the directory of that file (links resolved); `~/` patterns.
  const inHome = makeRepo(home, uniq('inhome'));
  const realHome = realpathSync(home);
  const globalConds = ['gitdir:./', 'gitdir:~/', `gitdir:${realHome}/`, `gitdir/i:~/`, 'gitdir:./inhome*/', `gitdir:${parent}/`];
  same(t, await conditions(inHome, homeConfig, globalConds, baseGlobal), 'in ~/.gitconfig, a repository under HOME');
  same(t, await conditions(repo, homeConfig, globalConds, baseGlobal), 'in ~/.gitconfig, a repository elsewhere');
  setGlobal();
  // A pattern through a link: git matches it when it runs from the link's path (its PWD).
  const hit = join(home, 'hit.conf');
  writeFileSync(hit, '[v]\n\thit = yes\n');
  writeFileSync(localConfig, `${local}[includeIf "gitdir:${link}/"]\n\tpath = ${hit}\n`);
  const viaLink = join(link, 'Proj');
  t.equal(gitGet(viaLink, 'v.hit', { ...process.env, PWD: viaLink }), 'yes', 'git matches through the link');
  t.equal((await configOf(repo)).get('v.hit'), 'yes', 'and so does hearth');
  writeFileSync(localConfig, local);
  // A linked worktree's git dir is .git/worktrees/<name>.
  git(repo, 'commit', '-q', '--allow-empty', '-m', 'x');
  const wt = join(parent, 'wt');
  git(repo, 'worktree', 'add', '-q', '-b', 'wtb', wt);
  same(t, await conditions(wt, localConfig, ['gitdir:Proj/.git/', 'gitdir:Proj/.git', 'gitdir:wt/', 'gitdir:**/worktrees/wt', 'onbranch:wtb', 'onbranch:main'], local), 'a linked worktree');
  // Its own config file (extensions.worktreeConfig), with an include relative to it.
  writeFileSync(localConfig, local);
  git(repo, 'config', 'extensions.worktreeConfig', 'true');
  git(wt, 'config', '--worktree', 'include.path', '../../wt-extra.conf');
  writeFileSync(join(repo, '.git', 'wt-extra.conf'), '[v]\n\twt = yes\n');
  for (const at of [repo, wt]) {
    const ours = await configOf(at);
    t.same([ours.get('v.wt') ?? null, ours.get('include.path') ?? null], [gitGet(at, 'v.wt'), gitGet(at, 'include.path')], `config.worktree, at ${at === wt ? 'the linked worktree' : 'the main one'}`);
  }
});

t.test('includeIf onbranch:', async (t) => {
  const repo = makeRepo(root, uniq('ob'));
  const localConfig = join(repo, '.git', 'config');
  const local = readFileSync(localConfig, 'utf8');
  const conds = ['main', 'ma*', 'm', 'feature/', 'feature/**', 'feature', '*', '**', 'feature/*', 'feature/a/', 'HEAD', 'MAIN'].map((c) => `onbranch:${c}`);
  const states: Array<[string, () => void]> = [
    ['unborn main', () => {}],
    ['main', () => git(repo, 'commit', '-q', '--allow-empty', '-m', 'x')],
    ['feature/a/b', () => git(repo, 'checkout', '-q', '-b', 'feature/a/b')],
    ['feature/x', () => git(repo, 'checkout', '-q', '-b', 'feature/x', 'main')],
    ['detached', () => git(repo, 'checkout', '-q', '--detach')],
  ];
  for (const [name, act] of states) {
    act();
    same(t, await conditions(repo, localConfig, conds, local), name);
    writeFileSync(localConfig, local);
  }
  // Branch names as texts for git's wildmatch: HEAD pointed at each (unborn is fine), many patterns at once.
  const patterns = [
    'a/*', 'a/**', 'a/**/c', '**/c', 'a*c', 'a/*/c', '*/b*', '?/b/c', 'a?b', '[a-c]b', '[!a-c]b', '[^a]b', 'A-[b]', '[A-Z]-b', '[[:upper:]]-b',
    '[[:alpha:]][[:punct:]]b', '[[:digit:][:lower:]]b', 'x[.]y', 'x\\.y', 'x\\*', '[]]', '[a-]b', '[[:bogus:]]b', '[ab', 'a\\', '[[:a]b', '***/c', 'a/**b',
    '[[:xdigit:]]b', '[[:alnum:]]b', '[[:space:]]b', '[[:blank:][:cntrl:][:graph:][:print:]]b', 'a/b/', 'a/**/', '**', 'x.*', '*.y', '[\\]]',
  ].map((p) => `onbranch:${p}`);
  for (const name of ['a/b/c', 'ab', 'A-b', 'x.y', 'a/bc', 'cb', '7b']) {
    git(repo, 'symbolic-ref', 'HEAD', `refs/heads/${name}`);
    same(t, await conditions(repo, localConfig, patterns, local), `patterns against ${name}`);
  }
  writeFileSync(localConfig, local);
});

t.test('include depth: 10 nested includes are read, 11 are an error, as a cycle is', async (t) => {
  const repo = makeRepo(root, uniq('depth'));
  write(repo, 'f.txt', 'f');
  const dir = join(home, uniq('chain'));
  mkdirSync(dir);
  const chain = (files: number): void => {
    for (let i = 1; i < files; i++) writeFileSync(join(dir, `d${i}.conf`), `[include]\n\tpath = d${i + 1}.conf\n`);
    writeFileSync(join(dir, `d${files}.conf`), `[v]\n\tlast = ${files}\n`);
  };
  git(repo, 'config', 'include.path', join(dir, 'd1.conf'));
  chain(10);
  t.equal((await configOf(repo)).get('v.last'), gitGet(repo, 'v.last'), '10 files');
  await check(t, repo, '10 nested includes');
  chain(11);
  t.equal(gitGet(repo, 'v.last'), null, 'git fails with 11');
  t.throws(() => loadGitConfig({ gitdir: join(repo, '.git'), commondir: join(repo, '.git') }), /maximum include depth/);
  const res = await status({ repo });
  t.equal(res.json.error?.code, 'GIT_FAILED', 'status fails as git status does');
  writeFileSync(join(dir, 'd1.conf'), '[include]\n\tpath = d2.conf\n');
  writeFileSync(join(dir, 'd2.conf'), '[include]\n\tpath = d1.conf\n');
  t.throws(() => loadGitConfig({ gitdir: join(repo, '.git'), commondir: join(repo, '.git') }), /maximum include depth/, 'a cycle');
  chain(3);
  await check(t, repo, 'mended');
});

t.test('excludes files: ~/, relative (from the worktree root, wherever git runs), default XDG, set in an included file', async (t) => {
  const repo = makeRepo(root, uniq('ex'));
  write(repo, 'tracked.txt', 't');
  commitAll(repo);
  for (const f of ['a.tilde', 'b.rel', 'c.top', 'd/e.top', 'd/f.sub', 'g.xdg', 'h.inc', 'i.inc2']) write(repo, f, 'x');
  write(repo, 'top-rules', '*.top\n');
  write(repo, 'd/top-rules', '*.sub\n');
  await checkAll(t, repo, 'no excludes file');
  writeFileSync(join(home, 'tilde-rules'), '*.tilde\n');
  git(repo, 'config', 'core.excludesFile', '~/tilde-rules');
  await checkAll(t, repo, '~/ excludes file');
  git(repo, 'config', 'core.excludesFile', 'top-rules');
  await checkAll(t, repo, 'relative excludes file');
  const res = await status({ repo: join(repo, 'd') });
  t.same(res.json.data.entries, gitStatus(join(repo, 'd')), 'asked from a subdirectory, as git run there');
  git(repo, 'config', 'core.excludesFile', 'd/top-rules');
  await check(t, repo, 'relative excludes file in a subdirectory');
  git(repo, 'config', '--unset', 'core.excludesFile');
  mkdirSync(join(home, '.config', 'git'), { recursive: true });
  writeFileSync(join(home, '.config', 'git', 'ignore'), '*.xdg\n');
  t.teardown(() => rmSync(join(home, '.config', 'git', 'ignore'), { force: true }));
  await checkAll(t, repo, 'default $XDG_CONFIG_HOME/git/ignore');
  // Set in a file included from the global config by a condition on this repository.
  const work = join(home, '.gitconfig-work');
  writeFileSync(work, '[core]\n\texcludesFile = ~/work-rules\n');
  writeFileSync(join(home, 'work-rules'), '*.inc\n');
  setGlobal(`[includeIf "gitdir:${repo}/"]\n\tpath = .gitconfig-work\n`);
  t.teardown(() => setGlobal());
  await checkAll(t, repo, 'excludes file set in an included file');
  // Changes outside the repository: each seen by the very next answer.
  writeFileSync(join(home, 'work-rules'), '*.inc2\n');
  await check(t, repo, 'the excludes file edited');
  writeFileSync(work, '[core]\n\texcludesFile = top-rules\n');
  await check(t, repo, 'the included file edited (now a relative excludes file)');
  unlinkSync(work);
  await check(t, repo, 'the included file removed');
  writeFileSync(work, '[core]\n\texcludesFile = ~/work-rules\n');
  await check(t, repo, 'the included file back');
  setGlobal();
  await check(t, repo, 'the include removed from the global config');
  setGlobal(`[includeIf "gitdir:${repo}/"]\n\tpath = .gitconfig-work\n`);
  await check(t, repo, 'and back');
});

t.test('submodules: submodule.<name>.ignore (.git/config, .gitmodules) and diff.ignoreSubmodules', async (t) => {
  const lib = makeRepo(root, uniq('lib'));
  write(lib, 'lib.txt', 'lib\n');
  commitAll(lib, 'lib');
  const sup = makeRepo(root, uniq('sup'));
  write(sup, 'top.txt', 'top\n');
  commitAll(sup);
  git(sup, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', lib, 'libs/lib');
  git(sup, 'commit', '-q', '-m', 'submodule');
  const sub = join(sup, 'libs/lib');
  // Settings are written as files (no git process each): the config and .gitmodules as committed, plus lines.
  const configFile = join(sup, '.git', 'config');
  const modulesFile = join(sup, '.gitmodules');
  const configText = readFileSync(configFile, 'utf8');
  const modulesText = readFileSync(modulesFile, 'utf8');
  const diffIgnore = (v: string): string => `[diff]\n\tignoreSubmodules = ${v}\n`;
  const ownIgnore = (v: string): string => `[submodule "libs/lib"]\n\tignore = ${v}\n`;
  const set = (config: string, modules = ''): void => {
    writeFileSync(configFile, configText + config);
    writeFileSync(modulesFile, modulesText + (modules ? `\tignore = ${modules}\n` : ''));
  };
  const settings: Array<[string, string, string?]> = [
    ['no setting', ''],
    ...['untracked', 'dirty', 'all'].map((v): [string, string] => [`diff.ignoreSubmodules=${v}`, diffIgnore(v)]),
    ['submodule.libs/lib.ignore=none', ownIgnore('none')],
    ['.gitmodules ignore=untracked', '', 'untracked'],
    ['.gitmodules all, .git/config none', ownIgnore('none'), 'all'],
    ['.gitmodules dirty, diff.ignoreSubmodules none', diffIgnore('none'), 'dirty'],
    ['.gitmodules all', '', 'all'],
  ];
  const states: Array<[string, () => void]> = [
    ['untracked content', () => write(sub, 'untracked.txt', 'u')],
    ['modified content', () => write(sub, 'lib.txt', 'modified\n')],
    ['a new commit inside', () => commitAll(sub, 'inside')],
    ['removed', () => rmSync(sub, { recursive: true, force: true })],
    ['replaced by a file', () => write(sup, 'libs/lib', 'a file\n')],
  ];
  for (const [state, act] of states) {
    act();
    const head = gitHead(sup);
    for (const [setting, config, modules] of settings) {
      set(config, modules);
      // -uno matters only where the submodule's one change is untracked content.
      for (const flags of state === 'untracked content' ? [{}, { untracked: false }] : [{}]) await check(t, sup, `${state}, ${setting}`, flags, head);
    }
  }
  set('');
  const config = await configOf(sup);
  t.equal(config.ignoreSubmodules('libs/lib'), 'none');
  t.equal(config.ignoreSubmodules('libs/lib', undefined, false), 'untracked', '-uno: untracked content does not count');
  set(ownIgnore('none'));
  t.equal((await configOf(sup)).ignoreSubmodules('libs/lib', undefined, false), 'none', "the submodule's own setting counts over -uno");
  t.equal((await configOf(sup)).ignoreSubmodules('libs/lib', 'dirty'), 'dirty', 'an override counts over the config');
  t.equal((await configOf(sup)).ignoreSubmodules('other'), 'none', 'a path that is no submodule');
});

t.test('a config decided by onbranch: follows HEAD, warm', async (t) => {
  const repo = makeRepo(root, uniq('obw'));
  write(repo, 'tracked.txt', 't');
  commitAll(repo);
  write(repo, 'x.ob', 'x');
  writeFileSync(join(home, 'ob-rules'), '*.ob\n');
  writeFileSync(join(home, 'ob.conf'), '[core]\n\texcludesFile = ~/ob-rules\n');
  git(repo, 'config', 'includeIf.onbranch:ign/.path', '~/ob.conf');
  await check(t, repo, 'on main');
  git(repo, 'checkout', '-q', '-b', 'ign/x');
  await check(t, repo, 'on ign/x');
  git(repo, 'checkout', '-q', 'main');
  await check(t, repo, 'on main again');
  git(repo, 'checkout', '-q', '--detach');
  await check(t, repo, 'detached');
});
