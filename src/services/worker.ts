// The one worker entry of the pool: imports the task module named by URL (once per thread, then cached by
// the module loader), tells the pool the task has started (its deadline counts from here, so loading the
// module is not charged to it), and runs its default export on the input.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { Piscina } from 'piscina';

/**
 * Lowers this thread's scheduling priority, so that when the cores are busy the daemon's event loop still
 * gets the CPU at once and /health stays fast. On Linux setpriority() with a thread id applies to that
 * thread only; /proc/thread-self names it. Elsewhere this does nothing (best effort).
 */
export function lowerThreadPriority(nice: number): boolean {
  if (!(nice > 0)) return false;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid === process.pid) return false; // never the main thread
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}

if (parentPort) lowerThreadPriority(Number((Piscina.workerData as { nice?: number } | undefined)?.nice ?? 0));

export interface WorkerTask {
  /** Set by the pool: echoed in the "started" message. */
  id?: number;
  /** file: URL of a module whose default export is `(input) => result` (sync or async). */
  module: string;
  input: unknown;
}

export default async function run(task: WorkerTask): Promise<unknown> {
  const mod = (await import(task.module)) as { default?: unknown };
  if (typeof mod.default !== 'function') throw new Error(`${task.module} has no default export function`);
  if (task.id !== undefined) parentPort?.postMessage({ hearth_task_started: task.id });
  return (mod.default as (input: unknown) => unknown)(task.input);
}
