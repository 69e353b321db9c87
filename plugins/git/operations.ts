// Branches, checkout, log and the prompt summary, on isomorphic-git's reads and writes. Refusals follow
// git's: an existing branch, the current branch deleted, local changes a checkout would overwrite.
import * as fs from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HearthError } from '../../src/errors.js';
import type { GitConfig } from './git-config.js';
import { readInProgress, tagAt, type Action } from './in-progress.js';
import type { ObjectReader } from './objects.js';
import { iso } from './iso.js';
import { GitObjectError } from './odb.js';
import type { RepoPaths } from './repo.js';
import type { RepoStatus } from './status.js';

export interface Summary {
  branch: string | null;
  head: string | null;
  upstream: string | null;
  ahead: number;
  behind: number;
  staged: number;
  unstaged: number;
  untracked: number;
  conflicted: number;
  stashes: number;
  clean: boolean;
  /** The operation in progress, as git's prompt script names it, or null. */
  action: Action | null;
  /** The step and the number of steps of a rebase or am, where git's prompt script shows `n/m`. */
  action_step: number | null;
  action_total: number | null;
  /** The tag `git describe --tags --exact-match` gives for HEAD, or null. */
  tag: string | null;
}


/** git check-ref-format's rules for a branch name (refs/heads/<name>). */
export function validBranchName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= 255 &&
    name !== '@' &&
    name !== 'HEAD' &&
    !name.startsWith('-') &&
    !name.startsWith('/') &&
    !name.endsWith('/') &&
    !name.endsWith('.') &&
    !name.includes('..') &&
    !name.includes('//') &&
    !name.includes('@{') &&
    // eslint-disable-next-line no-control-regex
    !/[\x00-\x20\x7f~^:?*[\\]/.test(name) &&
    name.split('/').every((part) => !part.startsWith('.') && !part.endsWith('.lock'))
  );
}

export function checkBranchName(name: string, field = 'branch_name'): void {
  if (!validBranchName(name)) {
    throw new HearthError('VALIDATION_FAILED', `${JSON.stringify(name)} is not a valid branch name`, {
      details: [{ path: `/${field}`, message: 'is not a valid branch name (see git check-ref-format)' }],
    });
  }
}

/** Waits while another git command holds `index.lock`, up to `waitMs`; then 409. */
export async function waitForIndexLock(paths: RepoPaths, waitMs: number): Promise<void> {
  const lock = join(paths.gitdir, 'index.lock');
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await stat(lock);
    } catch {
      return;
    }
    if (Date.now() >= deadline) {
      throw new HearthError('CONFLICT', `the repository is locked by another git command (${lock} exists)`);
    }
    await new Promise((r) => setTimeout(r, Math.min(25, Math.max(1, deadline - Date.now()))));
  }
}

export async function listBranches(reader: ObjectReader, current: string | null): Promise<{ current: string | null; branches: Array<{ name: string; oid: string }> }> {
  const git = await iso();
  const names = await git.listBranches({ fs, gitdir: reader.commondir });
  const branches: Array<{ name: string; oid: string }> = [];
  for (const name of names.sort()) {
    const oid = await reader.resolve(`refs/heads/${name}`);
    if (oid) branches.push({ name, oid });
  }
  return { current, branches };
}

export async function createBranch(reader: ObjectReader, name: string, base: string | null, headOid: string | null): Promise<string> {
  checkBranchName(name);
  if (await reader.resolve(`refs/heads/${name}`)) throw new HearthError('CONFLICT', `a branch named ${JSON.stringify(name)} already exists`);
  const oid = base === null ? headOid : await resolveCommitish(reader, base);
  if (!oid) throw new HearthError(base === null ? 'CONFLICT' : 'NOT_FOUND', base === null ? 'HEAD has no commit yet to branch from' : `no branch or commit named ${JSON.stringify(base)}`);
  try {
    await (await iso()).writeRef({ fs, gitdir: reader.commondir, ref: `refs/heads/${name}`, value: oid });
  } catch (err) {
    const { AlreadyExistsError, InvalidRefNameError } = (await iso()).Errors;
    if (err instanceof AlreadyExistsError) throw new HearthError('CONFLICT', `a branch named ${JSON.stringify(name)} already exists`);
    if (err instanceof InvalidRefNameError) checkBranchName('');
    throw err;
  }
  return oid;
}

async function resolveCommitish(reader: ObjectReader, name: string): Promise<string | null> {
  const git = await iso();
  for (const ref of [`refs/heads/${name}`, `refs/tags/${name}`, `refs/remotes/${name}`, name]) {
    if (ref === name && !/^[0-9a-f]{40}$/.test(name) && !name.startsWith('refs/')) continue;
    try {
      const oid = await git.resolveRef({ fs, gitdir: reader.commondir, ref });
      // A tag may point at a tag object: peel it to its commit (and refuse what is no commit).
      await reader.commit(oid);
      return oid;
    } catch (err) {
      // No such ref, or it names no commit (a missing object, a tree): not this candidate. Damage is thrown.
      if (err instanceof GitObjectError ? err.reason === 'corrupt' : !(err instanceof git.Errors.NotFoundError)) throw err;
    }
  }
  return null;
}

export async function deleteBranch(reader: ObjectReader, name: string, current: string | null, headOid: string | null, force: boolean): Promise<string> {
  checkBranchName(name);
  const oid = await reader.resolve(`refs/heads/${name}`);
  if (!oid) throw new HearthError('NOT_FOUND', `no branch named ${JSON.stringify(name)}`);
  if (name === current) throw new HearthError('CONFLICT', `cannot delete the branch ${JSON.stringify(name)}: it is checked out`);
  if (!force && headOid && oid !== headOid && (await aheadBehind(reader, headOid, oid)).behind > 0) {
    throw new HearthError('CONFLICT', `the branch ${JSON.stringify(name)} is not fully merged into HEAD (use force to delete it anyway)`);
  }
  await (await iso()).deleteBranch({ fs, gitdir: reader.commondir, ref: name });
  return oid;
}

/** The paths whose entry differs between two trees (either may be null: the empty tree). */
export async function changedPaths(reader: ObjectReader, a: string | null, b: string | null, prefix = '', out = new Set<string>()): Promise<Set<string>> {
  if (a === b) return out;
  const left = a ? await reader.tree(a) : [];
  const right = b ? await reader.tree(b) : [];
  const byName = new Map(right.map((e) => [e.name, e]));
  for (const l of left) {
    const r = byName.get(l.name);
    byName.delete(l.name);
    const path = prefix ? `${prefix}/${l.name}` : l.name;
    if (r && r.oid === l.oid && r.mode === l.mode) continue;
    if (l.isTree || r?.isTree) await changedPaths(reader, l.isTree ? l.oid : null, r?.isTree ? r.oid : null, path, out);
    if (!l.isTree || (r && !r.isTree)) out.add(path);
  }
  for (const r of byName.values()) {
    const path = prefix ? `${prefix}/${r.name}` : r.name;
    if (r.isTree) await changedPaths(reader, null, r.oid, path, out);
    else out.add(path);
  }
  return out;
}

/**
 * Switches the worktree to `branch`. Refuses, as git does, when local changes (staged or not) touch a
 * path that differs between the two commits, when an untracked file would be overwritten, and while a
 * merge conflict is unresolved. Other local changes are carried over.
 */
export async function checkoutBranch(paths: RepoPaths, reader: ObjectReader, status: RepoStatus, branch: string): Promise<string> {
  checkBranchName(branch);
  const target = await reader.resolve(`refs/heads/${branch}`);
  if (!target) throw new HearthError('NOT_FOUND', `no branch named ${JSON.stringify(branch)}`);
  if (status.head.branch === branch) return target;
  if (paths.gitdir !== paths.commondir) throw new HearthError('CONFLICT', 'checkout in a linked worktree is not supported by hearth; use git');
  const conflicted = status.entries.filter((e) => 'UAD'.includes(e.x) && 'UAD'.includes(e.y) && (e.x === 'U' || e.y === 'U' || e.x === e.y));
  if (conflicted.length > 0) throw new HearthError('CONFLICT', 'you need to resolve your current index first (merge conflicts)');
  const headTree = status.head.oid ? await reader.commitTree(status.head.oid) : null;
  const changed = await changedPaths(reader, headTree, await reader.commitTree(target));
  const local = status.entries.filter((e) => e.x !== '?' && e.x !== '!' && changed.has(e.path)).map((e) => e.path);
  if (local.length > 0) {
    throw new HearthError('CONFLICT', `your local changes would be overwritten by checkout: ${local.slice(0, 20).join(', ')}`, { details: local.slice(0, 100).map((p) => ({ path: p, message: 'has local changes' })) });
  }
  const untracked = status.entries.filter((e) => e.x === '?' && (changed.has(e.path) || [...changed].some((c) => c.startsWith(e.path.endsWith('/') ? e.path : `${e.path}/`)))).map((e) => e.path);
  if (untracked.length > 0) {
    throw new HearthError('CONFLICT', `untracked files would be overwritten by checkout: ${untracked.slice(0, 20).join(', ')}`, { details: untracked.slice(0, 100).map((p) => ({ path: p, message: 'is untracked' })) });
  }
  const git = await iso();
  try {
    await git.checkout({ fs, dir: paths.worktree, gitdir: paths.gitdir, ref: branch, cache: {} });
  } catch (err) {
    if (err instanceof git.Errors.CheckoutConflictError) throw new HearthError('CONFLICT', err.message);
    throw err;
  }
  return target;
}

export async function readLog(reader: ObjectReader, head: string | null, limit: number): Promise<Array<{ oid: string; message: string; author: { name: string; email: string; timestamp: number } }>> {
  // Newest first by committer time, as git log shows a history without --topo-order.
  const out: Array<{ oid: string; message: string; author: { name: string; email: string; timestamp: number } }> = [];
  const queue = head ? [await reader.commit(head)] : [];
  const seen = new Set(queue.map((c) => c.oid));
  while (queue.length > 0 && out.length < limit) {
    queue.sort((a, b) => a.committer.timestamp - b.committer.timestamp);
    const c = queue.pop()!;
    out.push({ oid: c.oid, message: c.message, author: c.author });
    for (const p of c.parents) {
      if (seen.has(p)) continue;
      seen.add(p);
      queue.push(await reader.commit(p));
    }
  }
  return out;
}

/** The upstream of `branch` as git reads it from `branch.<name>.remote` and `.merge`. */
export function upstreamOf(config: GitConfig, branch: string | null): { name: string; ref: string } | null {
  if (!branch) return null;
  const remote = config.get(`branch.${branch}.remote`);
  const merge = config.get(`branch.${branch}.merge`);
  if (!remote || !merge) return null;
  const short = merge.replace(/^refs\/heads\//, '');
  if (remote === '.') return { name: short, ref: merge };
  return { name: `${remote}/${short}`, ref: `refs/remotes/${remote}/${short}` };
}

/**
 * Commits only `a` reaches and commits only `b` reaches (git rev-list --left-right --count a...b). Walks
 * newest first from both, carrying a flag per side down to parents (again when a commit learns a side
 * late), and stops once every commit still queued is reached by both and is a day older than any commit
 * reached by one side only (the slop for clocks that disagree, as git keeps some).
 */
export async function aheadBehind(reader: ObjectReader, a: string, b: string, limit = 200_000): Promise<{ ahead: number; behind: number }> {
  if (a === b) return { ahead: 0, behind: 0 };
  const BOTH = 3;
  const SLOP_SECONDS = 86_400;
  const flags = new Map<string, number>();
  const commits = new Map<string, { time: number; parents: string[] }>();
  const queue: string[] = []; // sorted oldest first; pop() takes the newest
  let oldestSingle = Infinity;
  const push = async (oid: string, flag: number): Promise<void> => {
    const had = flags.get(oid) ?? 0;
    if ((had | flag) === had) return;
    flags.set(oid, had | flag);
    let commit = commits.get(oid);
    if (!commit) {
      const read = await reader.commit(oid);
      commit = { time: read.committer.timestamp, parents: read.parents };
      commits.set(oid, commit);
    }
    if (queue.includes(oid)) return;
    let lo = 0;
    let hi = queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (commits.get(queue[mid]!)!.time <= commit.time) lo = mid + 1;
      else hi = mid;
    }
    queue.splice(lo, 0, oid);
  };
  await push(a, 1);
  await push(b, 2);
  for (let steps = 0; queue.length > 0 && steps < limit; steps++) {
    const newest = commits.get(queue[queue.length - 1]!)!.time;
    if (newest < oldestSingle - SLOP_SECONDS && queue.every((oid) => flags.get(oid) === BOTH)) break;
    const oid = queue.pop()!;
    const f = flags.get(oid)!;
    const commit = commits.get(oid)!;
    if (f !== BOTH) oldestSingle = Math.min(oldestSingle, commit.time);
    for (const p of commit.parents) await push(p, f);
  }
  let ahead = 0;
  let behind = 0;
  for (const f of flags.values()) {
    if (f === 1) ahead++;
    else if (f === 2) behind++;
  }
  return { ahead, behind };
}

export async function stashCount(paths: RepoPaths): Promise<number> {
  try {
    const log = await readFile(join(paths.commondir, 'logs', 'refs', 'stash'), 'utf8');
    return log.split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

/**
 * The summary. During a rebase `branch` is the branch being rebased (HEAD is detached meanwhile), as git's
 * prompt script shows it; upstream and ahead/behind stay those of HEAD's own branch.
 */
export async function summarize(paths: RepoPaths, reader: ObjectReader, config: GitConfig, status: RepoStatus): Promise<Summary> {
  let staged = 0;
  let unstaged = 0;
  let untracked = 0;
  let conflicted = 0;
  for (const e of status.entries) {
    if (e.x === '?') untracked++;
    else if (e.x === 'U' || e.y === 'U' || (e.x === e.y && (e.x === 'A' || e.x === 'D'))) conflicted++;
    else {
      if (e.x !== ' ') staged++;
      if (e.y !== ' ') unstaged++;
    }
  }
  const upstream = upstreamOf(config, status.head.branch);
  const upstreamOid = upstream ? await reader.resolve(upstream.ref) : null;
  const counts = status.head.oid && upstreamOid ? await aheadBehind(reader, status.head.oid, upstreamOid) : { ahead: 0, behind: 0 };
  const [progress, tag] = await Promise.all([readInProgress(paths.gitdir), tagAt(reader, status.head.oid)]);
  return {
    branch: progress.rebasing ?? status.head.branch,
    head: status.head.oid,
    upstream: upstream && upstreamOid ? upstream.name : null,
    ...counts,
    staged,
    unstaged,
    untracked,
    conflicted,
    stashes: await stashCount(paths),
    clean: status.entries.length === 0,
    action: progress.action,
    action_step: progress.step,
    action_total: progress.total,
    tag,
  };
}
