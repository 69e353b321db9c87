// The ways a status answer is asked (untracked and ignored modes, renames, v1 or v2), each compared byte
// for byte with `git status` given the same flags; shared by the restart and burst test files.
import { execFile } from 'node:child_process';
import { statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { porcelain, porcelainV2 } from '../../plugins/git/porcelain.js';
import type { StatusEntry } from '../../plugins/git/status.js';
import type { Answer, GitDaemon } from './git-daemon.js';
import { write } from './git.js';

/** The ways an answer is asked and how git prints the same. */
export type View = 'all' | 'default' | 'matching' | 'normal' | 'v2';
export const VIEWS: Record<View, { body: object; args: string[]; render: (e: StatusEntry[]) => string }> = {
  all: { body: { untracked: 'all' }, args: ['--porcelain=v1', '-z', '--no-renames', '-uall'], render: (e) => porcelain(e, true) },
  // What `git status` does without flags: status.showUntrackedFiles, renames as the config says (on).
  default: { body: { untracked: 'config', renames: 'config' }, args: ['--porcelain=v1', '-z'], render: (e) => porcelain(e, true) },
  matching: { body: { untracked: 'all', ignored: 'matching' }, args: ['--porcelain=v1', '-z', '--no-renames', '-uall', '--ignored=matching'], render: (e) => porcelain(e, true) },
  normal: { body: { untracked: 'normal', ignored: 'traditional' }, args: ['--porcelain=v1', '-z', '--no-renames', '-unormal', '--ignored=traditional'], render: (e) => porcelain(e, true) },
  v2: { body: { untracked: 'all', format: 'v2' }, args: ['--porcelain=v2', '-z', '--no-renames', '-uall'], render: (e) => porcelainV2(e, true) },
};
/** -z output shown one record a line (no test path holds a newline). */
const shown = (s: string): string => s.replaceAll('\0', '\n');

const run = promisify(execFile);
/** git's output, run asynchronously (several at once, while the daemon answers: they only read). */
export const gitOut = (repo: string, args: string[]): Promise<string> => run('git', ['--no-optional-locks', ...args], { cwd: repo, encoding: 'utf8' }).then((r) => r.stdout);
/** HEAD as gitHead gives it. */
export async function headOf(repo: string): Promise<{ branch: string | null; head: string | null }> {
  const [branch, head] = await Promise.all([gitOut(repo, ['symbolic-ref', '-q', '--short', 'HEAD']), gitOut(repo, ['rev-parse', '-q', '--verify', 'HEAD'])].map((p) => p.then((o) => o.trim(), () => null)));
  return { branch: branch!, head: head! };
}

/** The daemon's answers in each view (in order: the first is its first answer) and git's, for `verify`. */
export interface Observed {
  views: View[];
  answers: Answer[];
  head: { branch: string | null; head: string | null };
  expected: string[];
}

export async function observe(g: GitDaemon, repo: string, views: View[]): Promise<Observed> {
  // git's answers are made meanwhile; all of them awaited at once, so none is a rejection left unhandled.
  const oracles = Promise.all([headOf(repo), ...views.map((v) => gitOut(repo, ['status', ...VIEWS[v].args]))]);
  const answers: Answer[] = [];
  for (const view of views) answers.push(await g.status({ repo, ...VIEWS[view].body }));
  const [head, ...expected] = await oracles;
  return { views, answers, head: head as Observed['head'], expected: expected as string[] };
}

/**
 * Each answer equal to git's, rendered the same way; the first one's branch and HEAD too. `todo`: a known
 * difference, on each comparison (tap runs it and shows a failure as `# TODO`, not counted; a child test
 * given `todo` would not be run at all).
 */
export function verify(t: Tap.Test, label: string, o: Observed, todo?: string): void {
  const extra = todo ? { todo } : {};
  for (const [i, view] of o.views.entries()) {
    const res = o.answers[i]!;
    if (!res.json.success) {
      t.fail(`${label} ${view}: ${res.status} ${JSON.stringify(res.json.error)}`);
      continue;
    }
    const a = res.json.data;
    t.equal(shown(VIEWS[view].render(a.entries)), shown(o.expected[i]!), `${label}: ${i === 0 ? 'the first answer' : 'then'} (${view}) is git's`, extra);
    if (i === 0) t.same({ branch: a.branch, head: a.head }, o.head, `${label}: branch and HEAD are git's`);
  }
}

/** Each view asked in turn (the first is the daemon's first answer on the repository), each equal to git's. */
export async function check(t: Tap.Test, g: GitDaemon, repo: string, label: string, views: View[]): Promise<void> {
  verify(t, label, await observe(g, repo, views));
}

/** `fn` on each item, at most `limit` at once, results in order. */
export async function inParallel<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** A file with its mtime (and atime) set to `when` (seconds): long past, so its index entry is not racy. */
export function writeAt(repo: string, path: string, content: string, when: number): void {
  write(repo, path, content);
  utimesSync(join(repo, path), when, when);
}
export const PAST = 1_600_000_000;

/**
 * Waits until the clock is past the second of each file's ctime. git (built without USE_NSEC, as Debian's
 * 2.39 is) compares an entry's ctime and mtime to the second: a file rewritten with the same size and its
 * mtime restored in the same second as its `git add` is clean to git, whatever its content (hearth compares
 * nanoseconds and lists it modified). The oracle is only the content's when the rewrite is in a later second.
 */
export async function pastCtimeSecond(repo: string, paths: string[]): Promise<void> {
  const latest = Math.max(...paths.map((p) => Math.floor(statSync(join(repo, p)).ctimeMs / 1000)));
  const wait = (latest + 1) * 1000 + 20 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

