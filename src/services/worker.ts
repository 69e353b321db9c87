// The one worker entry of the pool: imports the task module named by URL (once per thread, then cached by
// the module loader) and runs its default export on the input.
export interface WorkerTask {
  /** file: URL of a module whose default export is `(input) => result` (sync or async). */
  module: string;
  input: unknown;
}

export default async function run(task: WorkerTask): Promise<unknown> {
  const mod = (await import(task.module)) as { default?: unknown };
  if (typeof mod.default !== 'function') throw new Error(`${task.module} has no default export function`);
  return (mod.default as (input: unknown) => unknown)(task.input);
}
