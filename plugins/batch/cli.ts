// `hearth batch run|jobs|cancel`.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import type { Client } from '../../src/client.js';

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

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`not a positive integer: ${v}`);
  return n;
};

/** Items from the command line: JSON values when they parse (numbers, quoted strings), else the text. */
export function parseItems(args: string[], file?: string, stdinText?: () => string): unknown[] {
  const items: unknown[] = args.map((a) => {
    try {
      return JSON.parse(a) as unknown;
    } catch {
      return a;
    }
  });
  if (file !== undefined) {
    const text = file === '-' ? (stdinText ?? (() => readFileSync(0, 'utf8')))() : readFileSync(file, 'utf8');
    const trimmed = text.trim();
    if (trimmed.startsWith('[')) items.push(...(JSON.parse(trimmed) as unknown[]));
    else items.push(...trimmed.split('\n').filter((l) => l.length > 0));
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

export function batchCli(program: Command, client: () => Client): void {
  const batch = program.command('batch').description('run batch operations on the daemon\'s worker pool');
  const run = (fn: (c: Client) => Promise<void>) => client().use(fn);
  batch
    .command('run')
    .argument('<operation>', 'double, sha256, hash_file, gzip_size, count_lines, or one a plugin adds')
    .argument('[items...]', 'items (JSON values, else text)')
    .option('--file <file>', 'more items: a JSON array, or one item per line ("-": standard input)')
    .option('--batch-size <n>', 'items per worker task', int)
    .option('--max-concurrent <n>', 'chunks in flight at once', int)
    .description('run a batch as a job, show its progress, print its results as JSON')
    .action((operation: string, args: string[], o: { file?: string; batchSize?: number; maxConcurrent?: number }) =>
      run(async (c) => {
        const items = parseItems(args, o.file);
        const tty = process.stderr.isTTY === true;
        const started = await c.call<{ job_id: string }>('POST', '/batch/jobs', {
          items,
          operation,
          ...(o.batchSize ? { batch_size: o.batchSize } : {}),
          ...(o.maxConcurrent ? { max_concurrent: o.maxConcurrent } : {}),
        });
        let last = '';
        let job: JobView;
        for (;;) {
          job = await c.call<JobView>('GET', `/batch/jobs/${started.job_id}`);
          const line = progressLine(job, tty);
          if (line !== last) process.stderr.write(line);
          last = line;
          if (job.results !== undefined || ['completed', 'failed', 'cancelled'].includes(job.status)) break;
          await sleep(200);
        }
        if (tty) process.stderr.write('\n');
        process.stdout.write(`${JSON.stringify({ job_id: job.job_id, status: job.status, results: job.results ?? null, errors: job.errors ?? [] , ...(job.reason ? { reason: job.reason } : {}) }, null, 2)}\n`);
        if (job.status !== 'completed') process.exitCode = 1;
      }),
    );
  batch
    .command('jobs')
    .option('--json', 'the whole list as JSON')
    .description('list the jobs kept (newest first)')
    .action((o: { json?: boolean }) =>
      run(async (c) => {
        const list = await c.call<JobView[]>('GET', '/batch/jobs');
        if (o.json) process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        else for (const j of list) process.stdout.write(`${j.job_id}  ${j.status.padEnd(9)}  ${j.operation}  ${j.processed_items + j.failed_items}/${j.total_items}${j.reason ? `  (${j.reason})` : ''}\n`);
      }),
    );
  batch
    .command('cancel')
    .argument('<id>')
    .description('cancel a queued or running job')
    .action((id: string) =>
      run(async (c) => {
        const job = await c.call<JobView>('DELETE', `/batch/jobs/${encodeURIComponent(id)}`);
        process.stdout.write(`${job.job_id} ${job.status}\n`);
      }),
    );
}
