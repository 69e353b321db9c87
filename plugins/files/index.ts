// The files plugin: read, raw bytes, atomic writes, stat and hashes of files under the configured roots,
// fresh on every answer (see content.ts) and cached in the two-level cache.
import { lstat, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname } from 'node:path';
import { CLOCK_PATTERN } from '../../src/clock.js';
import { HearthError } from '../../src/errors.js';
import { definePlugin } from '../../src/plugin.js';
import { ChangeRoots, changesResponse } from './changes.js';
import { ContentCache } from './content.js';
import { cachedHashes, hashFile, type FileHash, type Hasher } from './hash.js';
import { Roots } from '../../src/roots.js';
import { journalDir, sweepJournal, WriteJournal, writeAtomic } from './write.js';

export interface FilesOptions {
  /** Default: the user's home directory (never `/`). */
  roots?: string[];
  /** Paths kept in the change log of each root watched for GET /files/changes. */
  max_changes: number;
  /** Roots watched for GET /files/changes at once. */
  max_change_roots: number;
}

/** What other plugins get with ctx.use('files') or ctx.useOptional('files'). */
export interface FilesApi {
  /** The directories the files API serves (real paths). */
  readonly roots: readonly string[];
}

/** GET /files/read's answer (FileContent of content.ts). */
const readResponse = {
  type: 'object',
  required: ['path', 'size', 'mtime', 'sha256', 'encoding', 'content'],
  properties: {
    path: { type: 'string', description: 'the real path' },
    size: { type: 'integer' },
    mtime: { type: 'string', format: 'date-time' },
    sha256: { type: 'string' },
    encoding: { enum: ['utf8', 'base64'], description: 'base64 when the bytes are not valid UTF-8' },
    content: { type: 'string' },
  },
};

/** GET /files/stat's answer. */
const statResponse = {
  type: 'object',
  required: ['path', 'type', 'symlink', 'size', 'mtime', 'ctime', 'mode', 'inode'],
  properties: {
    path: { type: 'string' },
    type: { enum: ['file', 'directory', 'other'], description: 'of the target, when the path is a symlink' },
    symlink: { type: 'boolean', description: 'whether the path named is a symlink' },
    size: { type: 'integer' },
    mtime: { type: 'string', format: 'date-time' },
    ctime: { type: 'string', format: 'date-time' },
    mode: { type: 'string', description: 'octal, e.g. 0644' },
    inode: { type: 'integer' },
  },
};

const pathQuery = {
  type: 'object',
  required: ['path'],
  additionalProperties: false,
  properties: { path: { type: 'string', minLength: 1, maxLength: 4096 } },
};

const RAW_LIMIT = 256 * 1024 * 1024;
/** Files at least this large are hashed on the worker pool; smaller ones cost less than a round trip to it. */
export const POOL_HASH_MIN_BYTES = 1024 * 1024;
const MAX_HASH_PATHS = 10_000;

export default definePlugin<FilesOptions, FilesApi>({
  name: 'files',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      roots: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Directories the files API may touch. Default: your home directory.' },
      max_changes: {
        type: 'integer',
        minimum: 1,
        default: 100000,
        description: 'Paths kept in the change log of each root GET /files/changes watches; a since older than the oldest dropped change is answered with is_fresh_instance.',
      },
      max_change_roots: {
        type: 'integer',
        minimum: 1,
        default: 8,
        description: 'Directory trees GET /files/changes watches at once; the least recently queried is closed (its next query starts over).',
      },
    },
  },
  tasks: { hash: new URL(import.meta.url.endsWith('.ts') ? './hash-task.ts' : './hash-task.js', import.meta.url) },
  async setup(ctx) {
    const roots = new Roots(ctx.config.roots ?? [homedir()]);
    // Temp files of writes a kill -9 interrupted, found through the journal (never by walking the roots),
    // removed before this daemon serves its first write. A sweep that fails is logged: it must not stop a start.
    const journalError = (err: unknown, context: string) => ctx.log.warn({ err, context }, 'files write journal');
    const journal = new WriteJournal(journalDir(ctx.core.state_dir), journalError);
    const swept = await sweepJournal(journal.dir, journalError);
    ctx.onClose(() => journal.close());
    if (swept.removed.length > 0) ctx.log.info({ removed: swept.removed }, `removed ${swept.removed.length} temp file(s) left by interrupted writes`);
    const content = new ContentCache(ctx.cache);
    const hasher: Hasher = (path, size) => (size >= POOL_HASH_MIN_BYTES ? ctx.runTask<FileHash>('hash', { path, size }) : hashFile(path, size));
    const hashOf = cachedHashes(ctx.cache, hasher);
    // Events are an early invalidation and a feed for GET /events; freshness itself rests on the stat check.
    ctx.onClose(
      ctx.watcher.onChange((path) => {
        void Promise.all([ctx.cache.delete(`content:${path}`), ctx.cache.delete(`hash:${path}`)]).then(([a, b]) => {
          if (a || b) ctx.events.publish('cache.invalidated', { namespace: 'files', path });
        });
      }),
    );

    ctx.route({
      method: 'GET',
      path: '/files/read',
      summary: 'A file\'s content (utf8, or base64 when not valid UTF-8), size, mtime and sha256; always fresh',
      schema: { query: pathQuery, response: readResponse },
      handler: async ({ query }) =>
        ctx.metrics.timed('files.read', async () => {
          const path = await roots.resolve(query.path);
          const answer = await content.read(path);
          ctx.watcher.watchDir(dirname(path));
          return answer;
        }),
    });

    ctx.route({
      method: 'GET',
      path: '/files/raw',
      produces: 'application/octet-stream',
      summary: 'A file\'s bytes, with ETag (sha256) and 304 on If-None-Match',
      schema: { query: pathQuery },
      handler: async ({ query, koa }) => {
        const path = await roots.resolve(query.path);
        const file = await content.read(path, RAW_LIMIT);
        const etag = `"${file.sha256}"`;
        koa.set('ETag', etag);
        const ifNoneMatch = koa.get('if-none-match');
        if (ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}`)) {
          koa.status = 304;
          koa.body = null;
          return;
        }
        koa.type = 'application/octet-stream';
        koa.body = Buffer.from(file.content, file.encoding === 'utf8' ? 'utf8' : 'base64');
      },
    });

    ctx.route({
      method: 'POST',
      path: '/files/write',
      summary: 'Write a file atomically (temp file + rename, mode kept); if_match makes it conditional (409)',
      schema: {
        body: {
          type: 'object',
          required: ['path', 'content'],
          additionalProperties: false,
          properties: {
            path: { type: 'string', minLength: 1, maxLength: 4096 },
            content: { type: 'string' },
            encoding: { enum: ['utf8', 'base64'], default: 'utf8' },
            if_match: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          },
        },
      },
      handler: async ({ body }) => {
        const path = await roots.resolve(body.path, { forCreate: true });
        const bytes = Buffer.from(body.content, body.encoding);
        if (body.encoding === 'base64' && bytes.toString('base64').replace(/=+$/, '') !== body.content.replace(/=+$/, '')) {
          throw new HearthError('VALIDATION_FAILED', 'content is not valid base64', { details: [{ path: '/content', message: 'is not valid base64' }] });
        }
        return ctx.metrics.timed('files.write', () => writeAtomic(content, journal, { path, bytes, ...(body.if_match ? { ifMatch: body.if_match } : {}) }));
      },
    });

    ctx.route({
      method: 'GET',
      path: '/files/stat',
      summary: 'Type (of the target), whether the path named is a symlink, size, times, mode and inode of a path (a directory too)',
      schema: { query: pathQuery, response: statResponse },
      handler: async ({ query }) => {
        // Containment is decided on the real path; the link itself (if the path given is one) is lstat'd
        // where it was named, so `symlink` says whether the caller's path is a link and `type` is its target's.
        const path = await roots.resolve(query.path);
        const [s, l] = await Promise.all([stat(path), lstat(roots.absolute(query.path))]);
        return {
          path,
          type: s.isFile() ? 'file' : s.isDirectory() ? 'directory' : 'other',
          symlink: l.isSymbolicLink(),
          size: s.size,
          mtime: s.mtime.toISOString(),
          ctime: s.ctime.toISOString(),
          mode: (s.mode & 0o7777).toString(8).padStart(4, '0'),
          inode: s.ino,
        };
      },
    });

    ctx.route({
      method: 'POST',
      path: '/files/hash',
      summary: 'sha256 and git blob id of each path; a path that is missing or not a file gets an error entry',
      schema: {
        body: {
          type: 'object',
          required: ['paths'],
          additionalProperties: false,
          properties: { paths: { type: 'array', minItems: 1, maxItems: MAX_HASH_PATHS, items: { type: 'string', minLength: 1, maxLength: 4096 } } },
        },
      },
      handler: async ({ body }: { body: { paths: string[] } }) => {
        // Containment is checked for all paths first: one path outside the roots refuses the request.
        const resolved = await Promise.all(
          body.paths.map((p) =>
            roots.resolve(p).catch((err: unknown) => {
              if (err instanceof HearthError && err.code !== 'PATH_OUTSIDE_ROOTS') return err;
              throw err;
            }),
          ),
        );
        return ctx.metrics.timed('files.hash', () =>
          Promise.all(
            resolved.map(async (r, i) => {
              try {
                if (r instanceof HearthError) throw r;
                return await hashOf(r);
              } catch (err) {
                if (!(err instanceof HearthError)) throw err;
                return { path: body.paths[i]!, error: { code: err.code, message: err.message } };
              }
            }),
          ),
        );
      },
    });
    const changes = new ChangeRoots(ctx, { maxRoots: ctx.config.max_change_roots, maxChanges: ctx.config.max_changes });
    ctx.onClose(() => changes.close());
    ctx.metrics.provide('files_changes', () => changes.stats());
    ctx.route({
      method: 'GET',
      path: '/files/changes',
      summary: 'The paths under a directory that changed after a clock (since); is_fresh_instance when that cannot be told',
      schema: {
        query: {
          type: 'object',
          required: ['root'],
          additionalProperties: false,
          properties: {
            root: { type: 'string', minLength: 1, maxLength: 4096 },
            since: { type: 'string', maxLength: 64, pattern: CLOCK_PATTERN },
          },
        },
        response: changesResponse,
      },
      handler: async ({ query }: { query: { root: string; since?: string } }) => {
        const dir = await roots.resolve(query.root);
        if (!(await stat(dir)).isDirectory()) {
          throw new HearthError('VALIDATION_FAILED', `${JSON.stringify(query.root)} is not a directory`, { details: [{ path: '/root', message: 'is not a directory' }] });
        }
        return ctx.metrics.timed('files.changes', () => changes.query(dir, query.since));
      },
    });
    return { roots: Object.freeze([...roots.dirs]) };
  },
});
