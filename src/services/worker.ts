// The one worker entry of the pool: imports the task module named by URL (once per thread, then cached by
// the module loader), tells the pool the task has started (its deadline counts from here, so loading the
// module is not charged to it), and runs its default export on the input. The thread's priority is
// Piscina's (niceIncrement, set before the thread takes its first task).
import { parentPort } from 'node:worker_threads';

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
