// What a batch operation's worker module is made of: a function per item, wrapped so that one chunk of
// items is one worker task and one bad item fails alone (its error is returned, not thrown).
export type ItemCode = 'ITEM_INVALID' | 'ITEM_FAILED';

export interface ItemError {
  /** The item's index within the chunk (the runner maps it back to the request's index). */
  index: number;
  code: ItemCode;
  message: string;
}

export interface ChunkResult {
  /** One entry per item of the chunk; null where the item failed. */
  results: unknown[];
  errors: ItemError[];
}

export interface ChunkInput<C = undefined> {
  items: unknown[];
  /** Whatever the operation passes to every chunk (roots, options). */
  context?: C;
}

/** Thrown by an item function when the item itself is unacceptable (reported as ITEM_INVALID). */
export class InvalidItem extends Error {
  readonly code = 'ITEM_INVALID';
}

function codeOf(err: unknown): ItemCode {
  const e = err as { code?: unknown; name?: unknown } | null;
  if (e && (e.code === 'ITEM_INVALID' || e.code === 'PATH_OUTSIDE_ROOTS' || e.code === 'NOT_A_FILE')) return 'ITEM_INVALID';
  return 'ITEM_FAILED';
}

/** The default export of a worker module: runs `fn` on each item of a chunk, in order. */
export function perItem<I, C = undefined>(fn: (item: I, context: C) => unknown) {
  return async (input: ChunkInput<C>): Promise<ChunkResult> => {
    const results: unknown[] = new Array(input.items.length);
    const errors: ItemError[] = [];
    for (let i = 0; i < input.items.length; i++) {
      try {
        results[i] = await fn(input.items[i] as I, input.context as C);
      } catch (err) {
        results[i] = null;
        errors.push({ index: i, code: codeOf(err), message: err instanceof Error ? err.message : String(err) });
      }
    }
    return { results, errors };
  };
}
