// `hearth files read|write|hash|changes|stat`.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineCommands } from '../../src/cli/spec.js';

const abs = (p: unknown) => resolve(p as string);
const PATH = { name: 'path', required: true };

export default defineCommands([
  {
    name: 'files read',
    summary: 'print a file (its bytes)',
    args: [PATH],
    options: { json: { type: 'boolean', description: 'the whole answer (content, sha256, mtime, cached)' } },
    async run({ args, options, client }) {
      const answer = await client().use((c) =>
        c.call<{ content: string; encoding: 'utf8' | 'base64' }>('GET', `/files/read?path=${encodeURIComponent(abs(args[0]))}`),
      );
      if (options.json) process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
      else process.stdout.write(Buffer.from(answer.content, answer.encoding === 'utf8' ? 'utf8' : 'base64'));
    },
  },
  {
    name: 'files write',
    summary: 'write a file atomically',
    args: [PATH],
    options: {
      content: { type: 'string', value: 'text', description: 'the new content (default: standard input)' },
      'if-match': { type: 'string', value: 'sha256', description: 'only if the file is still this version' },
    },
    async run({ args, options: o, client }) {
      const bytes = typeof o.content === 'string' ? Buffer.from(o.content) : readFileSync(0);
      const body = { path: abs(args[0]), content: bytes.toString('base64'), encoding: 'base64', ...(o['if-match'] ? { if_match: o['if-match'] } : {}) };
      process.stdout.write(`${JSON.stringify(await client().use((c) => c.call('POST', '/files/write', body)))}\n`);
    },
  },
  {
    name: 'files hash',
    summary: 'sha256 and git blob id of files (exit 1 when any of them could not be hashed)',
    args: [{ name: 'paths', required: true, variadic: true }],
    async run({ args, client }) {
      const paths = (args[0] as string[]).map(abs);
      const answer = await client().use((c) =>
        c.call<Array<{ path: string; sha256?: string; git_oid?: string; error?: { code: string; message: string } }>>('POST', '/files/hash', { paths }),
      );
      for (const h of answer) {
        if (h.error) process.stderr.write(`hearth: ${h.path}: ${h.error.code}: ${h.error.message}\n`);
        else process.stdout.write(`${h.sha256}  ${h.git_oid}  ${h.path}\n`);
      }
      return answer.some((h) => h.error) ? 1 : 0;
    },
  },
  {
    name: 'files changes',
    summary: 'what changed under a directory since a clock (the first call starts its watch and gives the clock to start from)',
    args: [{ name: 'dir', required: true }],
    options: {
      since: { type: 'string', value: 'clock', description: 'the clock of an earlier answer' },
      json: { type: 'boolean', description: 'the whole answer' },
    },
    async run({ args, options, client }) {
      const query = `root=${encodeURIComponent(abs(args[0]))}${typeof options.since === 'string' ? `&since=${encodeURIComponent(options.since)}` : ''}`;
      const answer = await client().use((c) =>
        c.call<{ clock: string; is_fresh_instance: boolean; reason?: string; changes: Array<{ path: string; type: string }> }>('GET', `/files/changes?${query}`),
      );
      if (options.json) return void process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
      // The changes on stdout (`<type> <path>`), what to pass as --since next time on stderr.
      for (const change of answer.changes) process.stdout.write(`${change.type} ${change.path}\n`);
      if (answer.is_fresh_instance) process.stderr.write(`hearth: a fresh start${answer.reason ? ` (${answer.reason})` : ''}: scan the directory yourself\n`);
      process.stderr.write(`clock ${answer.clock}\n`);
    },
  },
  {
    name: 'files stat',
    summary: 'type, size, times and mode of a path',
    args: [PATH],
    async run({ args, client }) {
      process.stdout.write(`${JSON.stringify(await client().use((c) => c.call('GET', `/files/stat?path=${encodeURIComponent(abs(args[0]))}`)), null, 2)}\n`);
    },
  },
]);
