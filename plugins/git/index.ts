// The git plugin: status as `git status --porcelain` (v1, or v2's fields) gives it, from warm state; the
// prompt summary; branches, checkout and log. Every operation on a repository goes through that
// repository's circuit breaker and is timed as `git_operations.<name>`.
import { homedir } from 'node:os';
import { HearthError } from '../../src/errors.js';
import { definePlugin, type PluginContext } from '../../src/plugin.js';
import { Roots } from '../../src/roots.js';
import { asGitFailure } from './failure.js';
import { summaryText } from './in-progress.js';
import { RepoManager } from './manager.js';
import { RepoEvents } from './repo-events.js';
import { aheadBehind, checkoutBranch, createBranch, deleteBranch, listBranches, readLog, summarize, upstreamOf, waitForIndexLock } from './operations.js';
import { scoreFromPercent } from './renames.js';
import { branchName, branchesResponse, logResponse, repo, repoQuery, statusModes, reposResponse, statusProps, statusResponse, summaryResponse, type StatusRequest } from './schemas.js';
import type { RepoPaths } from './repo.js';
import type { RepoStatus, StatusOptions } from './status.js';
import type { ScanResult, ScanTask } from './worktree-compare.js';

export interface GitOptions {
  roots?: string[];
  max_watched_repos: number;
  idle_release_seconds: number;
  lock_wait_ms: number;
}


export default definePlugin<GitOptions>({
  name: 'git',
  tasks: { scan: new URL(import.meta.url.endsWith('.ts') ? './scan-task.ts' : './scan-task.js', import.meta.url) },
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      roots: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Directories whose repositories may be asked about. Default: your home directory.' },
      max_watched_repos: { type: 'integer', minimum: 1, maximum: 1024, default: 32, description: 'Repositories kept warm at once; the least recently used is released.' },
      idle_release_seconds: { type: 'number', minimum: 1, default: 1800, description: 'A repository not asked about for this long is released.' },
      lock_wait_ms: { type: 'integer', minimum: 0, maximum: 60000, default: 1000, description: 'How long a write waits for another git command\'s index.lock before 409.' },
    },
  },
  setup(ctx: PluginContext<GitOptions>) {
    let options = ctx.config;
    // Summaries for subscribers, computed when a warm repository's watches report a change.
    const repoEvents: RepoEvents = new RepoEvents({
      events: ctx.events,
      summary: async (worktree) => {
        const paths = await manager.locate(worktree);
        if (paths.worktree !== worktree) throw new HearthError('NOT_A_REPOSITORY', `${worktree} is no longer a worktree`);
        return summaryOf(paths);
      },
      onError: (err, worktree) => ctx.log.debug({ err, worktree }, 'git: the summary for subscribers could not be computed'),
    });
    ctx.onClose(() => repoEvents.close());
    const manager = new RepoManager({
      onChange: (worktree) => repoEvents.changed(worktree),
      onRelease: (worktree, heldEvicted) => {
        repoEvents.forget(worktree);
        // A subscriber's repository pushed out by max_watched_repos: its stream would go quiet, so it is told.
        if (heldEvicted) ctx.events.publish('git.repo.released', { repo: worktree, reason: `more than max_watched_repos (${options.max_watched_repos}) repositories were asked about` });
      },
      roots: new Roots(options.roots ?? [homedir()]),
      maxRepos: options.max_watched_repos,
      idleMs: options.idle_release_seconds * 1000,
      watcher: ctx.watcher,
      scan: (task) => ctx.runTask<ScanResult>('scan', task),
      // One empty scan per thread: each thread starts and loads the task module before real work comes.
      warmPool: () => {
        const empty: ScanTask = { root: '/', names: '', starts: Uint32Array.of(0), from: 0, stat: new Uint32Array(0), flags: new Uint8Array(0), rules: { fileMode: true, trustCtime: true, checkStat: true, indexMtimeSec: 0, indexMtimeNsec: 0 } };
        for (let i = 0; i < ctx.pool.stats().max_threads; i++) void ctx.runTask('scan', empty).catch(() => {});
      },
      stateDir: ctx.core.state_dir,
      onPersistError: (err) => ctx.log.warn({ err }, 'git: the warm state could not be persisted'),
    });
    ctx.onClose(() => manager.close());
    void manager.prewarm();
    ctx.onReconfigure((next) => {
      options = next; // lock_wait_ms applies at once; roots and limits at the next start
    });
    ctx.metrics.provide('git', () => ({ ...manager.stats(), events: repoEvents.counts }));
    // GET /events?repo=PATH: one repository's events; the repository stays warm while the stream is open.
    ctx.events.addScope('repo', {
      schema: { ...repo, description: 'only events of this repository (any path inside its worktree, under the git roots); keeps it warm while the stream is open' },
      open: async (input) => {
        const paths = await manager.locate(input);
        const unpin = manager.pin(paths);
        repoEvents.baseline(paths.worktree);
        return { match: (event) => event.repo === paths.worktree, close: unpin };
      },
    });

    /** Locates the repository (not counted by the breaker: a bad path is the caller's) and runs `fn` through its breaker. */
    const operate = async <T>(name: string, input: string, fn: (paths: RepoPaths) => Promise<T>): Promise<T> => {
      const paths = await manager.locate(input);
      return ctx.metrics.timed(`git_operations.${name}`, () =>
        ctx.breakers.run(`git:${paths.worktree}`, async () => {
          try {
            return await fn(paths);
          } catch (err) {
            throw asGitFailure(err);
          }
        }),
      );
    };

    const status = async (body: StatusRequest) => {
      const renames = body.renames === 'true' ? true : body.renames === 'false' ? false : body.renames;
      if (body.find_renames !== undefined && renames === false) {
        throw new HearthError('VALIDATION_FAILED', 'find_renames turns renames on: it cannot go with renames: false', {
          details: [{ path: '/find_renames', message: 'must not be given with renames: false' }],
        });
      }
      const options: StatusOptions = {
        ...statusModes(body),
        renames,
        ...(body.find_renames !== undefined ? { renameScore: scoreFromPercent(body.find_renames) } : {}),
        detail: body.format === 'v2',
        ...(body.ignore_submodules ? { ignoreSubmodules: body.ignore_submodules } : {}),
      };
      return operate('status', body.repo, async (paths) => {
        const state = manager.state(paths);
        const cached = state.built;
        const result = await state.status(options);
        const answer: Record<string, unknown> = { repo: paths.worktree, branch: result.head.branch, head: result.head.oid, clean: result.entries.length === 0, entries: result.entries };
        if (body.tracking) answer.upstream = await tracking(paths, result);
        answer.cached = cached;
        return answer;
      });
    };

    /** The upstream of HEAD's branch and the commits each side has (the summary's reading of it). */
    const tracking = async (paths: RepoPaths, result: RepoStatus) => {
      const upstream = upstreamOf(manager.state(paths).config, result.head.branch);
      if (!upstream) return null;
      const reader = manager.reader(paths);
      const oid = await reader.resolve(upstream.ref);
      if (!oid || !result.head.oid) return { name: upstream.name, gone: true, ahead: null, behind: null };
      return { name: upstream.name, gone: false, ...(await aheadBehind(reader, result.head.oid, oid)) };
    };

    const freshStatus = (paths: RepoPaths): Promise<RepoStatus> => manager.status(paths, { untracked: true, ignored: false });
    const summaryOf = async (paths: RepoPaths) => {
      const result = await freshStatus(paths); // first: the config is read by the update
      return summarize(paths, manager.reader(paths), manager.state(paths).config, result);
    };

    ctx.route({
      method: 'POST',
      path: '/git/status',
      summary: 'The status of a repository, entry for entry as `git status --porcelain -uall` gives it (by default with --no-renames; -u<untracked> --ignored=<ignored>)',
      schema: { body: { type: 'object', required: ['repo'], additionalProperties: false, properties: statusProps }, response: statusResponse },
      handler: ({ body }) => status(body as StatusRequest),
    });
    ctx.route({
      method: 'GET',
      path: '/git/status',
      summary: 'The same as POST /git/status, from the query',
      schema: { query: { type: 'object', required: ['repo'], additionalProperties: false, properties: statusProps }, response: statusResponse },
      handler: ({ query }) => status(query as StatusRequest),
    });

    ctx.route({
      method: 'GET',
      path: '/git/repos',
      summary: 'The repositories kept warm: branch, HEAD, last status time, watches, and the counts of the newest summary known',
      schema: { response: reposResponse },
      text: (list: Array<{ repo: string; branch: string | null; warm: boolean }>) => list.map((r) => `${r.repo} ${r.branch ?? '(detached)'} ${r.warm ? 'warm' : 'cold'}`).join('\n') + (list.length ? '\n' : ''),
      handler: () =>
        manager.list().map(({ state, held, releaseInMs }) => {
          const worktree = state.paths.worktree;
          const known = repoEvents.last(worktree);
          return {
            repo: worktree,
            branch: state.head.branch,
            head: state.head.oid,
            warm: state.built,
            held,
            last_status_at: state.lastStatusAt === null ? null : new Date(state.lastStatusAt).toISOString(),
            release_in_seconds: releaseInMs === null ? null : Math.round(releaseInMs / 100) / 10,
            watched_dirs: state.watchedDirs,
            tracked_files: state.trackedFiles,
            degraded: state.degraded,
            staged: known?.staged ?? null,
            unstaged: known?.unstaged ?? null,
            untracked: known?.untracked ?? null,
            conflicted: known?.conflicted ?? null,
            clean: known?.clean ?? null,
          };
        }),
    });

    ctx.route({
      method: 'GET',
      path: '/git/summary',
      summary: 'What a shell prompt shows: branch, upstream, ahead/behind, counts of staged, unstaged, untracked and conflicted entries, stashes, the operation in progress (action, action_step, action_total) and the tag at HEAD',
      schema: { query: repoQuery, response: summaryResponse },
      text: summaryText,
      handler: ({ query }) =>
        operate('summary', query.repo, async (paths) => {
          const summary = await summaryOf(paths);
          repoEvents.seen(paths.worktree, summary);
          return { repo: paths.worktree, ...summary };
        }),
    });

    ctx.route({
      method: 'GET',
      path: '/git/branches',
      summary: 'Local branches and the current one',
      schema: { query: repoQuery, response: branchesResponse },
      handler: ({ query }) =>
        operate('list_branches', query.repo, async (paths) => {
          const reader = manager.reader(paths);
          return listBranches(reader, (await reader.head(paths.gitdir)).branch);
        }),
    });

    ctx.route({
      method: 'POST',
      path: '/git/branches',
      status: 201,
      summary: 'Create a branch (from base_branch, default HEAD), and check it out when asked',
      schema: {
        body: {
          type: 'object',
          required: ['repo', 'branch_name'],
          additionalProperties: false,
          properties: { repo, branch_name: branchName, base_branch: branchName, checkout: { type: 'boolean', default: false } },
        },
      },
      handler: ({ body }) =>
        operate('create_branch', body.repo, async (paths) => {
          await waitForIndexLock(paths, options.lock_wait_ms);
          const reader = manager.reader(paths);
          const head = await reader.head(paths.gitdir);
          const oid = await createBranch(reader, body.branch_name, body.base_branch ?? null, head.oid);
          if (body.checkout) await checkoutBranch(paths, reader, await freshStatus(paths), body.branch_name);
          return { name: body.branch_name, oid, checked_out: body.checkout };
        }),
    });

    ctx.route({
      method: 'DELETE',
      path: '/git/branches',
      summary: 'Delete a branch (not the current one; one not merged into HEAD only with force)',
      schema: {
        query: {
          type: 'object',
          required: ['repo', 'branch_name'],
          additionalProperties: false,
          properties: { repo, branch_name: branchName, force: { type: 'boolean', default: false } },
        },
      },
      handler: ({ query }) =>
        operate('delete_branch', query.repo, async (paths) => {
          await waitForIndexLock(paths, options.lock_wait_ms);
          const reader = manager.reader(paths);
          const head = await reader.head(paths.gitdir);
          const oid = await deleteBranch(reader, query.branch_name, head.branch, head.oid, query.force);
          return { name: query.branch_name, oid, deleted: true };
        }),
    });

    ctx.route({
      method: 'POST',
      path: '/git/checkout',
      summary: 'Switch to a branch; refused (409) when local changes would be overwritten, as git refuses',
      schema: { body: { type: 'object', required: ['repo', 'branch_name'], additionalProperties: false, properties: { repo, branch_name: branchName } } },
      handler: ({ body }) =>
        operate('checkout', body.repo, async (paths) => {
          await waitForIndexLock(paths, options.lock_wait_ms);
          const reader = manager.reader(paths);
          const head = await checkoutBranch(paths, reader, await freshStatus(paths), body.branch_name);
          return { branch: body.branch_name, head };
        }),
    });

    ctx.route({
      method: 'GET',
      path: '/git/log',
      summary: 'The latest commits reachable from HEAD, newest first',
      schema: {
        query: {
          type: 'object',
          required: ['repo'],
          additionalProperties: false,
          properties: { repo, limit: { type: 'integer', minimum: 1, maximum: 10000, default: 20 } },
        },
        response: logResponse,
      },
      handler: ({ query }) =>
        operate('log', query.repo, async (paths) => {
          const reader = manager.reader(paths);
          return readLog(reader, (await reader.head(paths.gitdir)).oid, query.limit);
        }),
    });

    return { manager };
  },
});
