// Real git repositories in temp directories, and the real git CLI as the oracle: `git status` parsed into
// the entries hearth answers with, HEAD as `git symbolic-ref` and `git rev-parse` give it.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface Entry {
  path: string;
  x: string;
  y: string;
}

/**
 * git and the in-process daemon both read their config from this process's environment: no system
 * config, a temp HOME and XDG dir, so the caller's own git setup never leaks into an answer.
 */
export function isolateGit(): string {
  const home = mkdtempSync(join(tmpdir(), 'hearth-home-'));
  process.env.GIT_CONFIG_NOSYSTEM = '1';
  process.env.HOME = home;
  process.env.XDG_CONFIG_HOME = join(home, '.config');
  delete process.env.GIT_CONFIG_GLOBAL;
  delete process.env.GIT_DIR;
  delete process.env.GIT_WORK_TREE;
  delete process.env.GIT_INDEX_FILE;
  writeFileSync(join(home, '.gitconfig'), '[user]\n\tname = Hearth Test\n\temail = hearth@example.com\n[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n');
  return home;
}

/** Runs git in `cwd` and returns its stdout; throws (with stderr) when it fails. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs git in `cwd`, failure allowed (a merge with conflicts exits 1). */
export function gitMay(cwd: string, ...args: string[]): number {
  return spawnSync('git', args, { cwd, stdio: 'ignore' }).status ?? -1;
}

/** The raw bytes git prints, as a string: for byte-for-byte comparisons with the CLI. */
export function gitRaw(cwd: string, ...args: string[]): string {
  // Oracle runs never take the index lock: a refresh written by git would hide what hearth has to find itself.
  return execFileSync('git', ['--no-optional-locks', ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A new repository with an initial branch `main` under `parent`. */
export function makeRepo(parent: string, name?: string): string {
  const dir = name ? join(parent, name) : mkdtempSync(join(parent, 'repo-'));
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  return dir;
}

/** Writes a file (parents made), relative to `repo`. */
export function write(repo: string, path: string, content: string | Buffer): void {
  const abs = join(repo, path);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, content);
}

export function commitAll(repo: string, message = 'commit'): void {
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '--allow-empty', '-m', message);
}

export interface StatusFlags {
  untracked?: boolean;
  ignored?: boolean;
}

/** The three option combinations the status tests ask each state with. */
export const FLAGS: StatusFlags[] = [{}, { untracked: false }, { ignored: true }];
/** A combination as git's flag. */
export const describe = (f: StatusFlags) => (f.untracked === false ? '-uno' : f.ignored ? '--ignored' : '-uall');

export function statusArgs(flags: StatusFlags = {}): string[] {
  return [`--untracked-files=${flags.untracked === false ? 'no' : 'all'}`, ...(flags.ignored ? ['--ignored'] : [])];
}

/** `git status --porcelain=v1 --no-renames -z` split into entries. */
export function parsePorcelainZ(out: string): Entry[] {
  const entries: Entry[] = [];
  for (const record of out.split('\0')) {
    if (!record) continue;
    entries.push({ x: record[0]!, y: record[1]!, path: record.slice(3) });
  }
  return entries;
}

/** What git says the status is, as entries. */
export function gitStatus(cwd: string, flags: StatusFlags = {}): Entry[] {
  return parsePorcelainZ(gitRaw(cwd, 'status', '--porcelain=v1', '--no-renames', '-z', ...statusArgs(flags)));
}

/** HEAD as git gives it: the branch (short name, null when detached) and the commit (null when unborn). */
export function gitHead(cwd: string): { branch: string | null; head: string | null } {
  const ref = spawnSync('git', ['symbolic-ref', '-q', '--short', 'HEAD'], { cwd, encoding: 'utf8' });
  const oid = spawnSync('git', ['rev-parse', '-q', '--verify', 'HEAD'], { cwd, encoding: 'utf8' });
  return { branch: ref.status === 0 ? ref.stdout.trim() : null, head: oid.status === 0 ? oid.stdout.trim() : null };
}

/** The worktree root as git gives it. */
export function gitToplevel(cwd: string): string {
  return git(cwd, 'rev-parse', '--show-toplevel').trim();
}
