// `hearth batch run|jobs|cancel|daemons`.
import { readFileSync } from 'node:fs';
import { defineCommands, positiveInt, UsageError } from '../../src/cli/spec.js';
import type { Client } from '../../src/client.js';
import { locateDaemon, numberAt } from '../../src/config-source.js';
import { DEFAULT_MAX_ITEMS } from './limits.js';

interface DaemonsView {
  queue: string;
  self: string;
  daemons: Array<{ id: string; host: string; roots: string[]; concurrency: number; chunks: number; last_seen: string }>;
}

interface JobView {
  job_id: string;
  operation: string;
  status: string;
  total_items: number;
  processed_items: number;
  failed_items: number;
  reason?: string;
  results?: unknown[];
  errors?: unknown[];
}

/** A JSON value when the text parses as one (numbers, quoted strings, objects), else the text itself. */
function item(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Items from the command line and `--file`: a file that is a JSON array gives its elements; any other file
 * gives one item per non-empty line, read like an argument. Appended in a loop: spreading a 150k-element
 * array into push() overflows the call stack.
 */
export function parseItems(args: string[], file?: string, stdinText?: () => string): unknown[] {
  const items: unknown[] = args.map(item);
  if (file !== undefined) {
    const text = file === '-' ? (stdinText ?? (() => readFileSync(0, 'utf8')))() : readFileSync(file, 'utf8');
    const trimmed = text.trim();
    let fromFile: unknown[];
    if (trimmed.startsWith('[')) {
      try {
        fromFile = JSON.parse(trimmed) as unknown[];
      } catch (err) {
        throw new UsageError(`${file === '-' ? 'standard input' : file} starts with "[" but is not a JSON array: ${(err as Error).message}`);
      }
    } else fromFile = trimmed.split(/\r?\n/).filter((l) => l.trim().length > 0).map(item);
    for (const value of fromFile) items.push(value);
  }
  return items;
}

export function progressLine(job: JobView, tty: boolean): string {
  const done = job.processed_items + job.failed_items;
  const pct = job.total_items === 0 ? 100 : Math.floor((done / job.total_items) * 100);
  if (!tty) return `${job.status} ${done}/${job.total_items} failed=${job.failed_items}\n`;
  const width = 30;
  const filled = Math.round((pct / 100) * width);
  return `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${done}/${job.total_items} ${job.status}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const FINAL = ['completed', 'failed', 'cancelled'];

/**
 * The job once it has ended. Asked again after 5 ms, then twice as long each time up to `maxMs`: a small job
 * is done within milliseconds, and a fixed 200 ms wait would be most of what the command costs.
 */
async function untilFinished(c: Client, first: JobView, maxMs: number, onUpdate?: (job: JobView) => void): Promise<JobView> {
  let job = first;
  for (let wait = 5; ; wait = Math.min(maxMs, wait * 2)) {
    onUpdate?.(job);
    if (job.results !== undefined || FINAL.includes(job.status)) return job;
    await sleep(wait);
    job = await c.call<JobView>('GET', `/batch/jobs/${encodeURIComponent(job.job_id)}`);
  }
}

export default defineCommands([
  {
    name: 'batch run',
    summary: 'run a batch as a job, show its progress, print its results as JSON (exit 1 when any item failed)',
    args: [
      { name: 'operation', required: true, description: 'double, sha256, hash_file, gzip_size, count_lines, or one a plugin adds' },
      { name: 'items', variadic: true, description: 'items (JSON values, else text)' },
    ],
    options: {
      file: { type: 'string', value: 'file', description: 'more items: a JSON array, or one item per line, each a JSON value or else text ("-": standard input)' },
      'batch-size': { type: 'string', value: 'n', description: 'items per worker task' },
      'max-concurrent': { type: 'string', value: 'n', description: 'chunks in flight at once' },
    },
    async run({ args, options: o, flags, client }) {
      const batchSize = positiveInt(o['batch-size'], 'batch-size');
      const maxConcurrent = positiveInt(o['max-concurrent'], 'max-concurrent');
      const items = parseItems(args[1] as string[], o.file as string | undefined);
      // Refused here with the daemon's own words: a body this large would only meet the body limit there.
      const maxItems = numberAt(locateDaemon(flags).doc, ['plugins', 'batch', 'max_items'], DEFAULT_MAX_ITEMS);
      if (items.length > maxItems) {
        process.stderr.write(`hearth: PAYLOAD_TOO_LARGE: ${items.length} items is more than plugins.batch.max_items (${maxItems})\n`);
        return 1;
      }
      const tty = process.stderr.isTTY === true;
      return client().use(async (c) => {
        const body = { items, operation: args[0], ...(batchSize ? { batch_size: batchSize } : {}), ...(maxConcurrent ? { max_concurrent: maxConcurrent } : {}) };
        const started = await c.call<JobView>('POST', '/batch/jobs', body);
        let last = '';
        const job = await untilFinished(c, await c.call<JobView>('GET', `/batch/jobs/${started.job_id}`), 200, (j) => {
          const line = progressLine(j, tty);
          if (line !== last) process.stderr.write(line);
          last = line;
        });
        if (tty) process.stderr.write('\n');
        const out = { job_id: job.job_id, status: job.status, results: job.results ?? null, errors: job.errors ?? [], ...(job.reason ? { reason: job.reason } : {}) };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        if (job.status !== 'completed') return 1;
        if (job.failed_items > 0) {
          process.stderr.write(`hearth: ${job.failed_items} of ${job.total_items} items failed (see "errors")\n`);
          return 1;
        }
        return 0;
      });
    },
  },
  {
    name: 'batch jobs',
    summary: 'list the jobs kept (newest first)',
    options: { json: { type: 'boolean', description: 'the whole list as JSON' } },
    async run({ options, client }) {
      const list = await client().use((c) => c.call<JobView[]>('GET', '/batch/jobs'));
      if (options.json) process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      else for (const j of list) process.stdout.write(`${j.job_id}  ${j.status.padEnd(9)}  ${j.operation}  ${j.processed_items + j.failed_items}/${j.total_items}${j.reason ? `  (${j.reason})` : ''}\n`);
    },
  },
  {
    name: 'batch cancel',
    summary: 'cancel a queued or running job, and print the state it ends in (a finished job is left as it is)',
    args: [{ name: 'id', required: true }],
    async run({ args, client }) {
      const job = await client().use(async (c) => untilFinished(c, await c.call<JobView>('DELETE', `/batch/jobs/${encodeURIComponent(args[0] as string)}`), 50));
      process.stdout.write(`${job.job_id} ${job.status}\n`);
    },
  },
  {
    name: 'batch daemons',
    summary: 'list the daemons alive on the batch queue (plugins.batch.queue): id, host, chunks run, shared roots',
    options: { json: { type: 'boolean', description: 'the whole answer as JSON' } },
    async run({ options, client }) {
      const view = await client().use((c) => c.call<DaemonsView>('GET', '/batch/daemons'));
      if (options.json) return void process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
      process.stdout.write(`queue ${view.queue}\n`);
      for (const d of view.daemons) {
        const self = d.id === view.self ? '  (this daemon)' : '';
        process.stdout.write(`${d.id}  ${d.host}  chunks=${d.chunks}  concurrency=${d.concurrency}  roots=${d.roots.join(',') || '-'}${self}\n`);
      }
    },
  },
]);
