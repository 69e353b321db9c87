// The git plugin's request and answer schemas (what validates requests, documents /openapi.json and types the
// client library), and the reading of a status request's modes.
import { HearthError } from '../../src/errors.js';
import type { SubmoduleIgnore } from './git-config.js';
import type { IgnoredMode, StatusOptions, UntrackedMode } from './status.js';

export const repo = { type: 'string', minLength: 1, maxLength: 4096, description: 'Any path inside the worktree' };
export const branchName = { type: 'string', minLength: 1, maxLength: 255 };
export const statusProps = {
  repo,
  untracked: {
    type: 'string',
    enum: ['normal', 'all', 'no', 'config'],
    description:
      'Untracked files as git\'s -u<mode>: `all` lists every file (the default here), `normal` lists a directory without tracked files as `dir/`, `no` none; ' +
      '`config` is what `git status` does without -u: status.showUntrackedFiles of the repository\'s git config, else `normal`. Not together with include_untracked.',
  },
  ignored: {
    type: 'string',
    enum: ['no', 'traditional', 'matching'],
    description:
      'Ignored files as git\'s --ignored=<mode>: `no` (the default), `traditional` (with untracked `normal`, a directory holding only ignored files as `dir/`; ' +
      'with `all`, every file), `matching` (what the patterns match: ignored directories as `dir/`; refused with untracked `no`). Not together with include_ignored.',
  },
  include_untracked: { type: 'boolean', description: 'The original design\'s switch (default true): true is untracked `all`, false is `no`. Not together with untracked.' },
  include_ignored: { type: 'boolean', description: 'The original design\'s switch (default false): true is ignored `traditional`, false is `no`. Not together with ignored.' },
  renames: {
    type: ['boolean', 'string'],
    // 'true' and 'false' as strings too: a query's value is a string, and with a string type allowed no coercion happens.
    enum: [true, false, 'config', 'true', 'false'],
    default: false,
    description: 'Renames between HEAD and the index (x R, with orig_path and score): true, false, or "config" for what status.renames / diff.renames say (git\'s default: on)',
  },
  find_renames: { type: 'number', minimum: 0, maximum: 100, description: 'The rename threshold in percent (git\'s -M<n>; default 50); turns renames on' },
  format: {
    type: 'string',
    enum: ['v1', 'v2'],
    default: 'v1',
    description: 'v2: each entry also has mode_head, mode_index, mode_worktree (octal), oid_head, oid_index and submodule (N... or S<c><m><u>); unmerged entries have stages (1, 2, 3) and mode_worktree',
  },
  tracking: { type: 'boolean', default: false, description: 'Include upstream: {name, gone, ahead, behind} (null when the branch has none), as git status --branch prints it' },
  ignore_submodules: { type: 'string', enum: ['none', 'untracked', 'dirty', 'all'], description: 'git\'s --ignore-submodules=<when>' },
};

export interface StatusRequest {
  repo: string;
  untracked?: UntrackedMode;
  ignored?: IgnoredMode;
  include_untracked?: boolean;
  include_ignored?: boolean;
  renames: boolean | 'config' | 'true' | 'false';
  find_renames?: number;
  format: 'v1' | 'v2';
  tracking: boolean;
  ignore_submodules?: SubmoduleIgnore;
}

/** The modes a status request asks for: a mode and its original-design switch together are refused. */
export function statusModes(input: StatusRequest): StatusOptions {
  const both = (['untracked', 'ignored'] as const).filter((name) => input[name] !== undefined && input[`include_${name}`] !== undefined);
  if (both.length > 0) {
    throw new HearthError('VALIDATION_FAILED', `give either ${both.map((n) => `${n} or include_${n}`).join(', and either ')}, not both`, {
      details: both.map((n) => ({ path: `include_${n}`, message: `must not be given together with ${n}` })),
    });
  }
  return { untracked: input.untracked ?? input.include_untracked ?? 'all', ignored: input.ignored ?? input.include_ignored ?? 'no' };
}

export const repoQuery = { type: 'object', required: ['repo'], additionalProperties: false, properties: { repo } };

/** GET /git/summary's answer (the Summary of operations.ts, with the repository). */
const count = { type: 'integer', minimum: 0 };
const nullableString = { type: ['string', 'null'] };
export const summaryResponse = {
  type: 'object',
  required: ['repo', 'branch', 'head', 'upstream', 'ahead', 'behind', 'staged', 'unstaged', 'untracked', 'conflicted', 'stashes', 'clean', 'action', 'action_step', 'action_total', 'tag'],
  properties: {
    repo: { type: 'string', description: 'the worktree (real path)' },
    branch: { ...nullableString, description: 'null when HEAD is detached' },
    head: { ...nullableString, description: "HEAD's commit, null in a repository without commits" },
    upstream: nullableString,
    ahead: count,
    behind: count,
    staged: count,
    unstaged: count,
    untracked: count,
    conflicted: count,
    stashes: count,
    clean: { type: 'boolean' },
    action: { enum: ['REBASE', 'AM', 'AM/REBASE', 'MERGING', 'CHERRY-PICKING', 'REVERTING', 'BISECTING', null], description: 'the operation in progress, as git-prompt.sh names it' },
    action_step: { type: ['integer', 'null'] },
    action_total: { type: ['integer', 'null'] },
    tag: { ...nullableString, description: 'the tag git describe --tags --exact-match gives for HEAD' },
  },
};

/** GET /git/branches' answer. */
const knownCount = { type: ['integer', 'null'], description: 'from the newest summary known (null when none is)' };
export const reposResponse = {
  type: 'array',
  description: 'The warm repositories, most recently asked about first',
  items: {
    type: 'object',
    required: ['repo', 'branch', 'head', 'warm', 'held', 'last_status_at', 'release_in_seconds', 'watched_dirs', 'tracked_files', 'degraded'],
    properties: {
      repo: { type: 'string' },
      branch: { type: ['string', 'null'] },
      head: { type: ['string', 'null'] },
      warm: { type: 'boolean', description: 'its state is built: the next status is answered from the watches' },
      held: { type: 'boolean', description: 'an event subscriber keeps it warm' },
      last_status_at: { type: ['string', 'null'], format: 'date-time' },
      release_in_seconds: { type: ['number', 'null'], description: 'when it is released unless asked about again (null while held)' },
      watched_dirs: { type: 'integer' },
      tracked_files: { type: 'integer' },
      degraded: { type: ['string', 'null'] },
      staged: knownCount,
      unstaged: knownCount,
      untracked: knownCount,
      conflicted: knownCount,
      clean: { type: ['boolean', 'null'] },
    },
  },
};

export const branchesResponse = {
  type: 'object',
  required: ['current', 'branches'],
  properties: {
    current: { type: ['string', 'null'], description: 'the branch checked out, null when HEAD is detached' },
    branches: { type: 'array', items: { type: 'object', required: ['name', 'oid'], properties: { name: { type: 'string' }, oid: { type: 'string' } } } },
  },
};

/** GET /git/log's answer, newest first. */
export const logResponse = {
  type: 'array',
  items: {
    type: 'object',
    required: ['oid', 'message', 'author'],
    properties: {
      oid: { type: 'string' },
      message: { type: 'string' },
      author: {
        type: 'object',
        required: ['name', 'email', 'timestamp'],
        properties: { name: { type: 'string' }, email: { type: 'string' }, timestamp: { type: 'integer', description: 'seconds since the epoch' } },
      },
    },
  },
};

export const statusResponse = {
  type: 'object',
  properties: {
    repo: { type: 'string' },
    branch: { type: ['string', 'null'] },
    head: { type: ['string', 'null'] },
    clean: { type: 'boolean' },
    entries: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          path: { type: 'string' },
          x: { type: 'string' },
          y: { type: 'string' },
          orig_path: { type: 'string', description: 'renames: the path in HEAD' },
          score: { type: 'integer', description: 'renames: the similarity in percent, as git prints it after R' },
          mode_head: { type: 'string' },
          mode_index: { type: 'string' },
          mode_worktree: { type: 'string' },
          oid_head: { type: 'string' },
          oid_index: { type: 'string' },
          submodule: { type: 'string' },
          stages: { type: 'array', items: { type: 'object', properties: { mode: { type: 'string' }, oid: { type: 'string' } } } },
        },
      },
    },
    upstream: {
      type: ['object', 'null'],
      description: 'With tracking: the upstream branch; gone when its ref does not exist (then ahead and behind are null)',
      properties: { name: { type: 'string' }, gone: { type: 'boolean' }, ahead: { type: ['integer', 'null'] }, behind: { type: ['integer', 'null'] } },
    },
    cached: { type: 'boolean' },
  },
};
