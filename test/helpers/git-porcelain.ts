// The daemon's status answer rendered as porcelain v1 and v2 with the --branch headers, compared byte for
// byte with `git status` given the same flags: shared by the renames and v2 test files.
import { mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { porcelain, porcelainV2, type BranchInfo } from '../../plugins/git/porcelain.js';
import { MAX_SCORE, parseRenameScore } from '../../plugins/git/renames.js';
import type { Answer } from './git-daemon.js';
import { commitAll, git, gitRaw, write } from './git.js';

/** git's flags -> the API's fields, as the CLI maps them. */
export function bodyFor(flags: string[]): Record<string, unknown> {
  const body: Record<string, unknown> = { renames: 'config' };
  for (const f of flags) {
    if (f === '--no-renames') body.renames = false;
    else if (f.startsWith('--find-renames=')) Object.assign(body, { renames: true, find_renames: (parseRenameScore(f.slice(15))! * 100) / MAX_SCORE });
    else if (f === '-M') body.renames = true;
    else if (f.startsWith('--ignore-submodules=')) body.ignore_submodules = f.slice(20);
    else if (f === '-uno') body.include_untracked = false;
    else if (f === '--ignored') body.include_ignored = true;
  }
  return body;
}

/** `git mv`, its target's directory made first. */
export function mv(repo: string, from: string, to: string): void {
  mkdirSync(dirname(join(repo, to)), { recursive: true });
  git(repo, 'mv', from, to);
}

export type Check = (t: Tap.Test, repo: string, label: string, flags?: string[], all?: boolean) => Promise<void>;

/** A `check` that asks `status` (POST /git/status) for the answer. */
export function porcelainCheck(status: (body: object) => Promise<Answer>): Check {
  /**
   * The daemon's answer rendered as v1 -b and v2 -b -z (with `all`, also v1 -z -b and v2 -b), each equal
   * to git's output with the same flags.
   */
  return async function check(t, repo, label, flags = [], all = false) {
    const res = await status({ repo, format: 'v2', tracking: true, ...bodyFor(flags) });
    if (!res.json.success) {
      t.fail(`${label}: ${res.status} ${JSON.stringify(res.json.error)}`);
      return;
    }
    const a = res.json.data;
    const info: BranchInfo = { branch: a.branch, head: a.head, upstream: a.upstream };
    const u = flags.includes('-uno') ? ['-uno'] : ['-uall'];
    const gflags = flags.filter((f) => f !== '-uno');
    const same = (ours: string, args: string[], what: string) => t.equal(ours, gitRaw(repo, 'status', ...args, ...u, ...gflags), `${label} ${what} ${flags.join(' ')}`.trim());
    same(porcelain(a.entries, false, info), ['--porcelain', '-b'], 'v1 -b');
    same(porcelainV2(a.entries, true, info), ['--porcelain=v2', '-z', '-b'], 'v2 -z -b');
    if (!all) return;
    same(porcelain(a.entries, true, info), ['--porcelain', '-z', '-b'], 'v1 -z -b');
    same(porcelainV2(a.entries, false, info), ['--porcelain=v2', '-b'], 'v2 -b');
  };
}

export const lines = (prefix: string, n: number, from = 0) => Array.from({ length: n }, (_, i) => `${prefix} line ${i + from}\n`).join('');
/** `body` with its first `k` of 20 lines replaced. */
export const edit = (k: number) => lines('edited', k) + lines('body', 20 - k, k);

/** a.txt, b.txt, dir/c.txt, dir/sub/d.txt, an empty file, body.c and a symlink, committed. */
export const base = (r: string): void => {
  write(r, 'a.txt', lines('alpha', 10));
  write(r, 'b.txt', lines('bravo', 10));
  write(r, 'dir/c.txt', lines('charlie', 12));
  write(r, 'dir/sub/d.txt', lines('delta', 8));
  write(r, 'empty', '');
  write(r, 'body.c', lines('body', 20));
  symlinkSync('a.txt', join(r, 'link'));
  commitAll(r, 'base');
};
