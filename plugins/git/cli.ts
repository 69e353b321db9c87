// `hearth git status|summary|branches|branch|checkout|log`.
import { resolve } from 'node:path';
import type { Client } from '../../src/client.js';
import { defineCommands, UsageError, type ArgSpec, type OptionSpec } from '../../src/cli/spec.js';
import { summaryText } from './in-progress.js';
import { porcelain, porcelainV2, type BranchInfo } from './porcelain.js';
import { MAX_SCORE, parseRenameScore } from './renames.js';
import type { StatusEntry } from './status.js';

interface StatusAnswer {
  repo: string;
  branch: string | null;
  head: string | null;
  clean: boolean;
  entries: StatusEntry[];
  upstream?: BranchInfo['upstream'];
}

/** What the rename flags ask the daemon for: -M / --find-renames win over --no-renames, as in git. */
function renameChoice(o: Record<string, string | boolean | undefined>): { renames: boolean | 'config'; find_renames?: number } {
  const find = o['find-renames'];
  if (typeof find === 'string') {
    if (find === '') return { renames: true };
    const score = parseRenameScore(find);
    if (score === null) throw new UsageError(`option --find-renames takes a similarity such as 50, 50% or .5, not "${find}"`, 'git status');
    return { renames: true, find_renames: (score * 100) / MAX_SCORE };
  }
  if (o.renames === false) return { renames: false };
  return { renames: 'config' };
}

const q = (repo: unknown) => encodeURIComponent(resolve(typeof repo === 'string' ? repo : '.'));
const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
const REPO_ARG: ArgSpec = { name: 'repo', description: 'a path inside the repository', default: '.' };
const REPO_OPTION: OptionSpec = { type: 'string', value: 'path', description: 'a path inside the repository', default: '.' };
const JSON_OPTION: OptionSpec = { type: 'boolean', description: 'the whole answer' };

export default defineCommands([
  {
    name: 'git status',
    summary: 'the status of a repository, as git status --porcelain gives it (-u<mode>, --ignored[=<mode>], -M<n>, --no-renames as git takes them)',
    args: [REPO_ARG],
    options: {
      porcelain: { type: 'string', value: 'version', implicit: 'v1', choices: ['v1', 'v2'], description: 'git status --porcelain[=v1|v2] output, byte for byte as git' },
      z: { type: 'boolean', short: 'z', description: 'end entries with NUL (implies --porcelain), byte for byte as git' },
      branch: { type: 'boolean', short: 'b', description: 'the branch and its upstream first (## or # branch. headers)' },
      'find-renames': { type: 'string', short: 'M', value: 'n', implicit: '', description: 'renames at least this similar (default 50%; -M<n> as git takes it)' },
      renames: { type: 'boolean', description: 'with --no-renames: no rename detection (default: status.renames / diff.renames, else on)' },
      'ignore-submodules': { type: 'string', value: 'when', implicit: 'all', choices: ['none', 'untracked', 'dirty', 'all'], description: 'leave out submodule changes, as git does' },
      ignored: { type: 'string', value: 'mode', implicit: 'traditional', description: 'list ignored files too, as git does (alone: traditional)', choices: ['traditional', 'matching', 'no'] },
      'untracked-files': {
        type: 'string',
        short: 'u',
        value: 'mode',
        implicit: 'all',
        description: 'which untracked files are listed, as git does (alone: all; not given: status.showUntrackedFiles, else normal)',
        choices: ['no', 'normal', 'all'],
      },
      json: JSON_OPTION,
    },
    async run({ args, options: o, client }) {
      const v2 = o.porcelain === 'v2';
      const branch = o.branch === true;
      if (o.ignored === 'matching' && o['untracked-files'] === 'no') throw new UsageError('unsupported combination of --ignored=matching and --untracked-files=no', 'git status');
      const answer = await client().use((c: Client) =>
        c.call<StatusAnswer>('POST', '/git/status', {
          repo: resolve(args[0] as string),
          // Without -u, the repository's own default, as git reads it (the daemon reads the config).
          untracked: o['untracked-files'] ?? 'config',
          ignored: o.ignored ?? 'no',
          ...renameChoice(o),
          format: v2 ? 'v2' : 'v1',
          tracking: branch,
          ...(typeof o['ignore-submodules'] === 'string' ? { ignore_submodules: o['ignore-submodules'] } : {}),
        }),
      );
      const info: BranchInfo | undefined = branch ? { branch: answer.branch, head: answer.head, upstream: answer.upstream ?? null } : undefined;
      if (o.json) print(answer);
      else if (v2) process.stdout.write(porcelainV2(answer.entries, o.z === true, info));
      else if (o.porcelain || o.z) process.stdout.write(porcelain(answer.entries, o.z === true, info));
      else {
        process.stdout.write(answer.branch ? `On branch ${answer.branch}\n` : answer.head ? `HEAD detached at ${answer.head.slice(0, 7)}\n` : 'No commits yet\n');
        process.stdout.write(answer.clean ? 'nothing to commit, working tree clean\n' : porcelain(answer.entries, false));
      }
    },
  },
  {
    name: 'git summary',
    summary: 'what a shell prompt shows (key=value lines)',
    args: [REPO_ARG],
    options: { json: { type: 'boolean', description: 'JSON instead of key=value lines' } },
    async run({ args, options, client }) {
      const answer = await client().use((c) => c.call<Record<string, unknown>>('GET', `/git/summary?repo=${q(args[0])}`));
      if (options.json) print(answer);
      else process.stdout.write(summaryText(answer));
    },
  },
  {
    name: 'git branches',
    summary: 'list local branches (* marks the current one)',
    args: [REPO_ARG],
    options: { json: JSON_OPTION },
    async run({ args, options, client }) {
      const answer = await client().use((c) =>
        c.call<{ current: string | null; branches: Array<{ name: string; oid: string }> }>('GET', `/git/branches?repo=${q(args[0])}`),
      );
      if (options.json) print(answer);
      else for (const b of answer.branches) process.stdout.write(`${b.name === answer.current ? '*' : ' '} ${b.name} ${b.oid.slice(0, 7)}\n`);
    },
  },
  {
    name: 'git branch create',
    summary: 'create a branch',
    args: [{ name: 'name', required: true }],
    options: {
      repo: REPO_OPTION,
      base: { type: 'string', value: 'branch', description: 'start from this branch or commit (default HEAD)' },
      checkout: { type: 'boolean', description: 'switch to it' },
    },
    async run({ args, options: o, client }) {
      const body = { repo: resolve(o.repo as string), branch_name: args[0], ...(o.base ? { base_branch: o.base } : {}), checkout: o.checkout === true };
      print(await client().use((c) => c.call('POST', '/git/branches', body)));
    },
  },
  {
    name: 'git branch delete',
    summary: 'delete a branch (refused when it is not merged, unless --force)',
    args: [{ name: 'name', required: true }],
    options: { repo: REPO_OPTION, force: { type: 'boolean', description: 'even when not merged into HEAD' } },
    async run({ args, options: o, client }) {
      const path = `/git/branches?repo=${q(o.repo)}&branch_name=${encodeURIComponent(args[0] as string)}&force=${o.force === true}`;
      print(await client().use((c) => c.call('DELETE', path)));
    },
  },
  {
    name: 'git checkout',
    summary: 'switch to a branch (refused when local changes would be overwritten)',
    args: [{ name: 'branch', required: true }],
    options: { repo: REPO_OPTION },
    async run({ args, options: o, client }) {
      print(await client().use((c) => c.call('POST', '/git/checkout', { repo: resolve(o.repo as string), branch_name: args[0] })));
    },
  },
  {
    name: 'git log',
    summary: 'the newest commits',
    args: [REPO_ARG],
    options: { limit: { type: 'string', short: 'n', value: 'n', description: 'how many commits', default: '20' }, json: JSON_OPTION },
    async run({ args, options: o, client }) {
      const commits = await client().use((c) =>
        c.call<Array<{ oid: string; message: string }>>('GET', `/git/log?repo=${q(args[0])}&limit=${encodeURIComponent(o.limit as string)}`),
      );
      if (o.json) print(commits);
      else for (const commit of commits) process.stdout.write(`${commit.oid.slice(0, 7)} ${commit.message.split('\n')[0]}\n`);
    },
  },
]);
