// `hearth files read|write|hash|stat`.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Client } from '../../src/client.js';

const abs = (p: string) => resolve(p);

export function filesCli(program: Command, client: () => Client): void {
  const files = program.command('files').description('read, write, hash and stat files through the daemon');
  const run = (fn: (c: Client) => Promise<void>) => client().use(fn);
  files
    .command('read')
    .argument('<path>')
    .option('--json', 'the whole answer (content, sha256, mtime, cached)')
    .description('print a file (its bytes)')
    .action((path: string, o: { json?: boolean }) =>
      run(async (c) => {
        const answer = await c.call<{ content: string; encoding: 'utf8' | 'base64' }>('GET', `/files/read?path=${encodeURIComponent(abs(path))}`);
        if (o.json) process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
        else process.stdout.write(Buffer.from(answer.content, answer.encoding === 'utf8' ? 'utf8' : 'base64'));
      }),
    );
  files
    .command('write')
    .argument('<path>')
    .option('--content <text>', 'the new content (default: standard input)')
    .option('--if-match <sha256>', 'only if the file is still this version')
    .description('write a file atomically')
    .action((path: string, o: { content?: string; ifMatch?: string }) =>
      run(async (c) => {
        const bytes = o.content !== undefined ? Buffer.from(o.content) : readFileSync(0);
        const answer = await c.call('POST', '/files/write', {
          path: abs(path),
          content: bytes.toString('base64'),
          encoding: 'base64',
          ...(o.ifMatch ? { if_match: o.ifMatch } : {}),
        });
        process.stdout.write(`${JSON.stringify(answer)}\n`);
      }),
    );
  files
    .command('hash')
    .argument('<paths...>')
    .description('sha256 and git blob id of files')
    .action((paths: string[]) =>
      run(async (c) => {
        const answer = await c.call<Array<{ path: string; sha256?: string; git_oid?: string; error?: { code: string } }>>('POST', '/files/hash', {
          paths: paths.map(abs),
        });
        for (const h of answer) process.stdout.write(h.error ? `${h.error.code}  ${h.path}\n` : `${h.sha256}  ${h.git_oid}  ${h.path}\n`);
      }),
    );
  files
    .command('stat')
    .argument('<path>')
    .description('type, size, times and mode of a path')
    .action((path: string) =>
      run(async (c) => {
        process.stdout.write(`${JSON.stringify(await c.call('GET', `/files/stat?path=${encodeURIComponent(abs(path))}`), null, 2)}\n`);
      }),
    );
}
