// `npm run gen:client`: writes src/client/routes.gen.ts, the client library's typed methods, from the
// GET /openapi.json of a real daemon running the built-in plugins on a temp state dir. The schemas that
// validate the requests are the ones the types are made from, so the two cannot drift: test/client.test.ts
// regenerates the file and fails when the committed one differs.
//
// Method names, from the method and the path: the path's words in camelCase, `:name` parameters as
// `By<Name>`, and for a method other than GET the method first: GET /git/status → gitStatus,
// POST /git/status → postGitStatus, GET /batch/jobs/:id → batchJobsById, DELETE /batch/jobs/:id →
// deleteBatchJobsById. A method's one argument holds its path parameters and its body when the route declares
// a body, else its query (DELETE /git/branches takes a query); the `format` parameter of text answers is
// left to call().
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { compile, type JSONSchema } from 'json-schema-to-typescript';
import { Client } from '../client.js';
import { startDaemon } from '../daemon.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The checkout: src/client/ in the sources, dist/src/client/ when built. */
export const checkout = resolve(here, here.includes(`${join('dist', 'src')}`) ? '../../..' : '../..');
export const OUTPUT = join(checkout, 'src/client/routes.gen.ts');

type Schema = Record<string, unknown>;
interface Parameter {
  name: string;
  in: 'query' | 'path';
  required: boolean;
  schema: Schema;
}
interface Operation {
  summary?: string;
  parameters: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
}

/** The OpenAPI document of a daemon with every built-in plugin, started and closed here. */
export async function fetchOpenApi(): Promise<{ paths: Record<string, Record<string, Operation>> }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'hearth-gen-'));
  const config = join(stateDir, 'config.json');
  writeFileSync(config, JSON.stringify({ plugins: { git: { roots: [stateDir] }, files: { roots: [stateDir] }, batch: {}, stats: {} } }));
  const env: Record<string, string | undefined> = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('HEARTH_') && !k.startsWith('PERFORMANCE_')),
  );
  env.XDG_CONFIG_HOME = join(stateDir, 'no-config');
  const daemon = await startDaemon({
    flags: { stateDir, config, port: 0 },
    env,
    logDestination: new Writable({ write: (_chunk, _enc, done) => done() }),
  });
  const client = new Client({ socket: daemon.listening.socket });
  try {
    return JSON.parse((await client.raw('GET', '/openapi.json')).body);
  } finally {
    await client.close();
    await daemon.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

const upper = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);
const camel = (text: string) => text.split(/[^A-Za-z0-9]+/).filter(Boolean).map(upper).join('');

/** The method name of a route (see the rule at the top). */
export function methodName(method: string, path: string): string {
  const words = path
    .split('/')
    .filter(Boolean)
    .map((segment) => (segment.startsWith('{') ? `By${camel(segment.slice(1, -1))}` : camel(segment)))
    .join('');
  const name = method === 'get' ? words : `${method}${words}`;
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/** Reads as one JSON value: strip what only validation needs and what would name types of its own. */
function clean(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(clean);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'title' || key === '$id' || key === 'examples') continue;
    out[key] = key === 'properties' ? Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, clean(v)])) : clean(value);
  }
  return out;
}

async function typeOf(schema: Schema, name: string): Promise<string> {
  const text = await compile(clean(schema) as JSONSchema, name, {
    bannerComment: '',
    additionalProperties: false,
    declareExternallyReferenced: false,
    format: true,
    strictIndexSignatures: true,
    style: { singleQuote: true, printWidth: 120 },
  });
  return text.trim();
}

/** The client's own members, which no route may be named as. */
const RESERVED = new Set(['raw', 'call', 'close', 'use', 'where', 'openStream', 'invoke', 'stream', 'subscribe', 'constructor']);

/** The file's text. */
export async function generate(doc?: Awaited<ReturnType<typeof fetchOpenApi>>): Promise<string> {
  doc ??= await fetchOpenApi();
  const types: string[] = [];
  const table: string[] = [];
  const methods: string[] = [];
  const entries = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })));
  entries.sort((a, b) => (a.path === b.path ? a.method.localeCompare(b.method) : a.path.localeCompare(b.path)));
  const names = new Map<string, string>();
  for (const { path, method, op } of entries) {
    const name = methodName(method, path);
    const route = `${method.toUpperCase()} ${path}`;
    if (RESERVED.has(name)) throw new Error(`${route} would be named ${name}, a member of the client: rename the route`);
    if (names.has(name)) throw new Error(`${route} and ${names.get(name)} would both be named ${name}`);
    names.set(name, route);
    const Name = upper(name);
    const pathParams = op.parameters.filter((p) => p.in === 'path');
    const query = op.parameters.filter((p) => p.in === 'query' && p.name !== 'format');
    const body = op.requestBody?.content['application/json']?.schema;
    // The argument: path parameters, and the query (GET) or the body (other methods).
    const argProps: Record<string, Schema> = {};
    const required: string[] = [];
    const byBody = body !== undefined;
    for (const p of [...pathParams, ...(byBody ? [] : query)]) {
      argProps[p.name] = p.schema;
      if (p.required) required.push(p.name);
    }
    let argSchema: Schema | undefined;
    if (byBody) {
      const b = body as { properties?: Record<string, Schema>; required?: string[] };
      argSchema = { ...body, properties: { ...argProps, ...b.properties }, required: [...required, ...(b.required ?? [])] };
    } else if (Object.keys(argProps).length > 0) {
      argSchema = { type: 'object', additionalProperties: false, properties: argProps, required };
    }
    const success = Object.entries(op.responses).find(([status]) => status !== 'default')?.[1];
    const [contentType, content] = Object.entries(success?.content ?? {})[0] ?? ['application/json', { schema: { properties: { success: {} } } }];
    // The envelope's `data`, JSON outside the envelope (the OpenAPI document), an event stream, bytes or text.
    const enveloped = contentType === 'application/json' && (content.schema as { properties?: { success?: unknown } }).properties?.success !== undefined;
    const kind = enveloped
      ? 'json'
      : { 'application/json': 'document', 'text/event-stream': 'events', 'application/octet-stream': 'bytes' }[contentType] ?? 'text';
    let result: string;
    if (kind === 'json') {
      const data = (content.schema as { properties?: { data?: Schema } }).properties?.data ?? {};
      if (Object.keys(data).length === 0) result = 'unknown';
      else {
        types.push(await typeOf(data, `${Name}Response`));
        result = `${Name}Response`;
      }
    } else result = { document: 'Record<string, unknown>', events: 'AsyncGenerator<HearthEvent, void, undefined>', bytes: 'Buffer', text: 'string' }[kind]!;
    let arg = '';
    if (argSchema) {
      types.push(await typeOf(argSchema, `${Name}Args`));
      const optional = ((argSchema.required as string[] | undefined) ?? []).length === 0;
      arg = `args${optional ? '?' : ''}: ${Name}Args`;
    }
    const ret = kind === 'events' ? result : `Promise<${result}>`;
    const argIn = byBody ? 'body' : 'query';
    table.push(`  ${name}: { method: '${method.toUpperCase()}', path: '${path.replace(/\{([^}]+)\}/g, ':$1')}', args: '${argIn}', answer: '${kind}' },`);
    methods.push(`  /** ${method.toUpperCase()} ${path}${op.summary ? `: ${op.summary.replace(/\*\//g, '*\\/')}` : ''} */\n  ${name}(${arg}): ${ret};`);
  }
  return [
    '// Generated by `npm run gen:client` (src/client/generate.ts) from GET /openapi.json of a daemon with the',
    '// built-in plugins: the route schemas. Do not edit; test/client.test.ts fails when this file is stale.',
    "import type { HearthEvent } from './events.js';",
    '',
    ...types.map((t) => `${t}\n`),
    '/** How each typed method is sent: its route, whether its argument is the query or the body, how the answer is read. */',
    'export const ROUTES = {',
    ...table,
    '} as const;',
    '',
    '/** The typed methods, one per route. */',
    'export interface RouteMethods {',
    ...methods,
    '}',
    '',
  ].join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(OUTPUT, await generate());
  process.stdout.write(`wrote ${OUTPUT}\n`);
}
