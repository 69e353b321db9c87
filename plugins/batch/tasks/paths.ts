// Path items are contained in the worker, after symlinks are resolved, with the core's Roots (one
// instance per roots list per thread), so the main thread never stats or resolves them.
import { Roots } from '../../../src/roots.js';

export interface PathContext {
  roots: string[];
}

const cached = new Map<string, Roots>();

function rootsOf(context: PathContext): Roots {
  const key = JSON.stringify(context.roots);
  let roots = cached.get(key);
  if (!roots) {
    roots = new Roots(context.roots);
    cached.set(key, roots);
  }
  return roots;
}

/** The real path of `input` inside the roots; outside → ITEM_INVALID, missing → ITEM_FAILED. */
export function containedPath(input: string, context: PathContext): Promise<string> {
  return rootsOf(context).resolve(input);
}
