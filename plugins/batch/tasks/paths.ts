// Path items are contained in the worker, after symlinks are resolved, with the core's Roots (one
// instance per roots list per thread), so the main thread never stats or resolves them.
import { open } from 'node:fs/promises';
import { Roots } from '../../../src/roots.js';
import { InvalidItem } from '../task-kit.js';

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

const CHUNK = 1024 * 1024;

/** Streams a regular file in 1 MiB reads (one buffer reused), calling `each` on every piece. */
export async function readPieces(path: string, each: (piece: Buffer) => void): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new InvalidItem(`${path} is not a regular file`);
    const buffer = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, info.size)));
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      each(buffer.subarray(0, bytesRead));
      total += bytesRead;
    }
    if (total !== info.size) throw new Error(`${path} changed while it was read`);
    return total;
  } finally {
    await handle.close();
  }
}
