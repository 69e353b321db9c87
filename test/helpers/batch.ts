// A daemon with the batch plugin on temp roots and the fault plugin (tasks that throw, exit or loop), shared
// by the batch test files.
import { join } from 'node:path';
import type { Client } from '../../src/client.js';
import { bootDaemon, tempDir, type TestDaemon } from './daemon.js';

export const faults = join(import.meta.dirname, '../fixtures/plugins/batch-faults/index.js');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Setup {
  root: string;
  d: TestDaemon;
}

export async function setup(t: Tap.Test, extra: { pool?: object; batch?: object; faults?: object; server?: object } = {}): Promise<Setup> {
  const root = tempDir('hearth-batch-');
  const d = await bootDaemon({
    config: {
      pool: { max_threads: 2, task_timeout_ms: 3000, ...extra.pool },
      ...(extra.server ? { server: extra.server } : {}),
      plugins: { batch: { roots: [root], ...extra.batch }, 'batch-faults': { module: faults, options: { ms: 20, ...extra.faults } } },
    },
  });
  t.teardown(() => d.close());
  return { root, d };
}

export async function answer(client: Client, method: string, path: string, body?: unknown) {
  const res = await client.raw(method, path, body);
  return { status: res.status, headers: res.headers, json: JSON.parse(res.body) };
}
