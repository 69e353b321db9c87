// The registry of batch operations: each runs a chunk of items on the worker pool and has a JSON schema
// for its items. Built-ins are added by this plugin; other plugins add theirs through its API.
import type { CacheNamespace } from '../../src/services/cache.js';
import { compileSchema, type Validator } from '../../src/validation.js';
import { withSharedResults } from './shared-results.js';
import type { ChunkResult } from './task-kit.js';

export interface OperationDefinition {
  name: string;
  description?: string;
  /** The plugin that adds it (shown by GET /batch/operations). */
  owner?: string;
  /** JSON schema of one item; an item that fails it is reported as ITEM_INVALID and never sent to a worker. */
  itemSchema: object;
  /** Changes whenever the operation's output for an item changes (an upgrade): shared results are keyed by it. Default "1". */
  version?: string;
  /**
   * Whether an item's result depends on the item (and the options) alone, so that it may be shared with other
   * daemons through the cache's shared tier. Default false: not for results that depend on local files.
   */
  shareable?: boolean;
  /**
   * Whether the items are file paths. Through the queue (plugins.batch.queue), such a job's items must be under
   * a shared root and its chunks go only to the daemons declaring it. Default false. Never shareable.
   */
  paths?: boolean;
  /** Options every chunk of the operation runs with (part of a shared result's key). */
  options?: Record<string, unknown>;
  /** Runs one chunk (usually `ctx.runTask(task, {items, context}, {signal})` of the plugin that adds it). */
  run(items: unknown[], options: { signal: AbortSignal }): Promise<ChunkResult>;
}

export interface Operation extends OperationDefinition {
  validate: Validator;
  owner: string;
}

const NAME = /^[a-z][a-z0-9_.-]*$/;

export class Operations {
  #ops = new Map<string, Operation>();
  readonly #cache: CacheNamespace | undefined;

  /** With a cache that shares (cache.shared), shareable operations answer from the shared tier what it holds. */
  constructor(cache?: CacheNamespace) {
    this.#cache = cache;
  }

  add(owner: string, definition: OperationDefinition): void {
    if (!NAME.test(definition.name)) throw new Error(`batch operation name "${definition.name}" must be lower-case letters, digits, _, . or -`);
    const clash = this.#ops.get(definition.name);
    if (clash) throw new Error(`batch operation "${definition.name}" is already registered by ${clash.owner}`);
    if (definition.paths && definition.shareable) throw new Error(`batch operation "${definition.name}" takes paths, so its results depend on local files and cannot be shareable`);
    const run = definition.shareable && this.#cache?.sharing ? withSharedResults(definition, this.#cache) : definition.run;
    this.#ops.set(definition.name, { ...definition, run, owner, validate: compileSchema(definition.itemSchema) });
  }

  get(name: string): Operation | undefined {
    return this.#ops.get(name);
  }

  list(): Array<{ name: string; description: string; item_schema: object; owner: string; version: string; shareable: boolean; paths: boolean }> {
    return [...this.#ops.values()]
      .map((op) => ({
        name: op.name,
        description: op.description ?? '',
        item_schema: op.itemSchema,
        owner: op.owner,
        version: op.version ?? '1',
        shareable: op.shareable === true,
        paths: op.paths === true,
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}
