// Results of shareable operations through the cache's shared tier (cache.shared): each item's result is
// kept under what it was computed from — the operation, its version, its options and the sha256 of the
// item's canonical JSON — so a daemon anywhere on the tier answers an item another one already computed,
// and only the items nobody has computed run. Without a shared tier operations run as they are.
import { createHash } from 'node:crypto';
import type { CacheNamespace } from '../../src/services/cache.js';
import type { OperationDefinition } from './operations.js';
import type { ChunkResult } from './task-kit.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** JSON with object keys sorted: equal items give equal keys whatever order their keys came in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The cache key of one item's result. */
export function resultKey(op: Pick<OperationDefinition, 'name' | 'version' | 'options'>, item: unknown): string {
  return `r:${op.name}:${op.version ?? '1'}:${sha256(canonicalJson(op.options ?? {})).slice(0, 16)}:${sha256(canonicalJson(item))}`;
}

/** `op.run`, answering from the shared tier what it holds and running the rest (in one chunk). */
export function withSharedResults(op: OperationDefinition, cache: CacheNamespace): OperationDefinition['run'] {
  return async (items, options): Promise<ChunkResult> => {
    const keys = items.map((item) => resultKey(op, item));
    const found = await cache.sharedGet(keys);
    const missing = found.flatMap((value, i) => (value === undefined ? [i] : []));
    const results: unknown[] = found.map((value) => value ?? null);
    if (missing.length === 0) return { results, errors: [] };
    const ran = await op.run(
      missing.map((i) => items[i]),
      options,
    );
    const failed = new Set(ran.errors.map((e) => e.index));
    const fresh: Array<[string, unknown]> = [];
    missing.forEach((at, j) => {
      const value = failed.has(j) ? null : (ran.results[j] ?? null);
      results[at] = value;
      if (value !== null) fresh.push([keys[at]!, value]);
    });
    await cache.sharedSet(fresh);
    return { results, errors: ran.errors.map((e) => ({ ...e, index: missing[e.index]! })) };
  };
}
