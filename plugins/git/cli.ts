// `hearth git status|summary|branches|branch|checkout|log`.
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { Client } from '../../src/client.js';
import { keyValueLines, porcelain } from './porcelain.js';
import type { StatusEntry } from './status.js';

interface StatusAnswer {
  repo: string;
  branch: string | null;
  head: string | null;
  clean: boolean;
  entries: StatusEntry[];
}

const q = (repo: string | undefined) => encodeURIComponent(resolve(repo ?? '.'));
const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

export function gitCli(program: Command, client: () => Client): void {
  const git = program.command('git').description('git status, summary, branches, checkout and log from the daemon');
  const run = (fn: (c: Client) => Promise<void>) => client().use(fn);

  git
    .command('status')
    .argument('[repo]', 'a path inside the repository', '.')
    .option('--porcelain', 'git status --porcelain=v1 output')
    .option('-z', 'end entries with NUL (implies --porcelain), byte for byte as git')
    .option('--ignored', 'list ignored files too')
    .addOption(new Option('--untracked-files <mode>', 'list untracked files').choices(['all', 'no']).default('all'))
    .option('--json', 'the whole answer')
    .description('the status of a repository, as git status --porcelain=v1 --no-renames gives it')
    .action((repo: string, o: { porcelain?: boolean; z?: boolean; ignored?: boolean; untrackedFiles: string; json?: boolean }) =>
      run(async (c) => {
        const answer = await c.call<StatusAnswer>('POST', '/git/status', {
          repo: resolve(repo),
          include_untracked: o.untrackedFiles === 'all',
          include_ignored: o.ignored === true,
        });
        if (o.json) print(answer);
        else if (o.porcelain || o.z) process.stdout.write(porcelain(answer.entries, o.z === true));
        else {
          process.stdout.write(answer.branch ? `On branch ${answer.branch}\n` : answer.head ? `HEAD detached at ${answer.head.slice(0, 7)}\n` : 'No commits yet\n');
          process.stdout.write(answer.clean ? 'nothing to commit, working tree clean\n' : porcelain(answer.entries, false));
        }
      }),
    );

  git
    .command('summary')
    .argument('[repo]', 'a path inside the repository', '.')
    .option('--json', 'JSON instead of key=value lines')
    .description('what a shell prompt shows (key=value lines)')
    .action((repo: string, o: { json?: boolean }) =>
      run(async (c) => {
        const answer = await c.call<Record<string, unknown>>('GET', `/git/summary?repo=${q(repo)}`);
        if (o.json) print(answer);
        else process.stdout.write(keyValueLines(answer));
      }),
    );

  git
    .command('branches')
    .argument('[repo]', 'a path inside the repository', '.')
    .option('--json', 'the whole answer')
    .description('list local branches (* marks the current one)')
    .action((repo: string, o: { json?: boolean }) =>
      run(async (c) => {
        const answer = await c.call<{ current: string | null; branches: Array<{ name: string; oid: string }> }>('GET', `/git/branches?repo=${q(repo)}`);
        if (o.json) print(answer);
        else for (const b of answer.branches) process.stdout.write(`${b.name === answer.current ? '*' : ' '} ${b.name} ${b.oid.slice(0, 7)}\n`);
      }),
    );

  const branch = git.command('branch').description('create or delete a branch');
  branch
    .command('create')
    .argument('<name>')
    .option('--repo <path>', 'a path inside the repository', '.')
    .option('--base <branch>', 'start from this branch or commit (default HEAD)')
    .option('--checkout', 'switch to it')
    .action((name: string, o: { repo: string; base?: string; checkout?: boolean }) =>
      run(async (c) => {
        print(await c.call('POST', '/git/branches', { repo: resolve(o.repo), branch_name: name, ...(o.base ? { base_branch: o.base } : {}), checkout: o.checkout === true }));
      }),
    );
  branch
    .command('delete')
    .argument('<name>')
    .option('--repo <path>', 'a path inside the repository', '.')
    .option('--force', 'even when not merged into HEAD')
    .action((name: string, o: { repo: string; force?: boolean }) =>
      run(async (c) => {
        print(await c.call('DELETE', `/git/branches?repo=${q(o.repo)}&branch_name=${encodeURIComponent(name)}&force=${o.force === true}`));
      }),
    );

  git
    .command('checkout')
    .argument('<branch>')
    .option('--repo <path>', 'a path inside the repository', '.')
    .description('switch to a branch (refused when local changes would be overwritten)')
    .action((name: string, o: { repo: string }) =>
      run(async (c) => {
        print(await c.call('POST', '/git/checkout', { repo: resolve(o.repo), branch_name: name }));
      }),
    );

  git
    .command('log')
    .argument('[repo]', 'a path inside the repository', '.')
    .option('-n, --limit <n>', 'how many commits', '20')
    .option('--json', 'the whole answer')
    .action((repo: string, o: { limit: string; json?: boolean }) =>
      run(async (c) => {
        const commits = await c.call<Array<{ oid: string; message: string }>>('GET', `/git/log?repo=${q(repo)}&limit=${encodeURIComponent(o.limit)}`);
        if (o.json) print(commits);
        else for (const commit of commits) process.stdout.write(`${commit.oid.slice(0, 7)} ${commit.message.split('\n')[0]}\n`);
      }),
    );
}
