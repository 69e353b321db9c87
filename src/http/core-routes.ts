// The core's own routes: health, plugins, the API description.
import type { RouteDefinition } from '../plugin.js';
import type { PluginHost } from '../registry.js';
import { Serialized } from './envelope.js';
import { openApiDocument } from './openapi.js';
import type { RouteTable } from './routes.js';

export interface CoreSources {
  version: string;
  /** The build id (version + code hash): the CLI compares it with its own. */
  build: string;
  startedAt: number;
  plugins: PluginHost;
  watcher: () => { mode: string; watched_paths: number; watch_limit: number | null };
  reasons: () => string[];
  /** Clears one namespace, or all when none is given; answers how many entries went. */
  clearCache: (namespace?: string) => Promise<number>;
}

const healthResponse = {
  type: 'object',
  required: ['status', 'version', 'build', 'uptime_seconds', 'plugins', 'watcher', 'reasons'],
  properties: {
    status: { enum: ['ok', 'degraded'] },
    version: { type: 'string' },
    build: { type: 'string' },
    uptime_seconds: { type: 'number' },
    plugins: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, state: { type: 'string' } } } },
    watcher: { type: 'object', properties: { mode: { type: 'string' }, watched_paths: { type: 'integer' }, watch_limit: { type: ['integer', 'null'] } } },
    reasons: { type: 'array', items: { type: 'string' } },
  },
};

/** Same own keys with the same (===) values. */
function shallowEqual(a: object, b: object): boolean {
  let keys = 0;
  for (const k in a) {
    if ((a as Record<string, unknown>)[k] !== (b as Record<string, unknown>)[k]) return false;
    keys++;
  }
  for (const _ in b) keys--;
  return keys === 0;
}

/** The JSON of the last value given, reused while the next one is shallowly equal (element by element). */
function reusedJson<T extends object>(): (value: T | T[]) => string {
  let last: T | T[] | undefined;
  let json = '';
  const same = (a: T | T[], b: T | T[]): boolean =>
    Array.isArray(a) && Array.isArray(b) ? a.length === b.length && a.every((x, i) => shallowEqual(x, b[i]!)) : !Array.isArray(a) && !Array.isArray(b) && shallowEqual(a, b);
  return (value) => {
    if (last === undefined || !same(last, value)) {
      // A copy: a source that changes its object in place must not change what it is compared with.
      last = Array.isArray(value) ? value.map((x) => ({ ...x })) : { ...value };
      json = JSON.stringify(value);
    }
    return json;
  };
}

export function coreRoutes(sources: CoreSources, table: RouteTable): RouteDefinition[] {
  // /health is the request made most (prompts and `hearth start` poll it, monitors too): its JSON is put
  // together from parts kept while they do not change, rather than a JSON.stringify of it all each time.
  const identity = `"version":${JSON.stringify(sources.version)},"build":${JSON.stringify(sources.build)}`;
  const pluginsJson = reusedJson<{ name: string; state: string }>();
  const watcherJson = reusedJson<object>();
  const health = () => {
    const plugins = sources.plugins.list().map(({ name, state }) => ({ name, state }));
    const reasons: string[] = [];
    for (const p of plugins) if (p.state !== 'ready') reasons.push(`plugin ${p.name} is ${p.state}`);
    for (const r of sources.reasons()) reasons.push(r);
    const answer = {
      status: reasons.length === 0 ? 'ok' : 'degraded',
      version: sources.version,
      build: sources.build,
      uptime_seconds: Math.round((Date.now() - sources.startedAt) / 10) / 100,
      plugins,
      watcher: sources.watcher(),
      reasons,
    };
    const json =
      `{"status":"${answer.status}",${identity},"uptime_seconds":${answer.uptime_seconds},"plugins":${pluginsJson(plugins)},` +
      `"watcher":${watcherJson(answer.watcher)},"reasons":${reasons.length === 0 ? '[]' : JSON.stringify(reasons)}}`;
    return new Serialized(answer, json);
  };
  return [
    {
      method: 'GET',
      path: '/health',
      summary: 'Liveness and state; always 200 while the daemon serves (degraded is said in the body)',
      auth: false,
      schema: { response: healthResponse },
      handler: health,
      text: (h: ReturnType<typeof health>['value']) =>
        [`status=${h.status}`, `version=${h.version}`, `build=${h.build}`, `uptime_seconds=${h.uptime_seconds}`, ...h.reasons.map((r) => `reason=${r}`)].join('\n') + '\n',
    },
    {
      method: 'GET',
      path: '/plugins',
      summary: 'The loaded plugins, in setup order',
      handler: () => sources.plugins.list(),
    },
    {
      method: 'POST',
      path: '/cache/clear',
      summary: 'Clear the cache: every namespace, or the one named',
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { namespace: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$', maxLength: 100 } },
        },
        response: {
          type: 'object',
          required: ['message', 'cleared'],
          properties: { message: { type: 'string' }, cleared: { type: 'integer' }, namespace: { type: 'string' } },
        },
      },
      handler: async ({ body }: { body: { namespace?: string } }) => {
        const cleared = await sources.clearCache(body.namespace);
        return body.namespace === undefined
          ? { message: 'All caches cleared successfully', cleared }
          : { message: `Cache namespace "${body.namespace}" cleared successfully`, cleared, namespace: body.namespace };
      },
    },
    {
      method: 'GET',
      path: '/openapi.json',
      produces: 'application/json',
      summary: 'This API, described by the schemas that validate it',
      handler: ({ koa }) => {
        koa.type = 'application/json';
        koa.body = JSON.stringify(openApiDocument(table.routes, sources.version));
      },
    },
  ];
}
