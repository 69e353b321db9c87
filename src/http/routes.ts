// The route table: every route's schemas checked when it is added and compiled once, when it first runs;
// its input validated before its handler runs.
import Router, { type Layer as RouterLayer } from '@koa/router';
import type { Context } from 'koa';
import { HearthError } from '../errors.js';
import type { RouteDefinition } from '../plugin.js';
import { checkSchema, compileSchema, errorDetails, type Validator } from '../validation.js';
import { readJsonBody } from './body.js';
import { Serialized } from './envelope.js';

export interface CompiledRoute {
  owner: string;
  definition: RouteDefinition;
  /** The schemas as validated (defaults applied), also what /openapi.json shows. */
  schemas: { query: object; params: object; body?: object };
}

interface Validators {
  query: Validator;
  params: Validator;
  body?: Validator;
}

/** Runs a matched route; `params` are the path parameters (a fresh object, or undefined for none). */
export type Run = (ctx: Context, params: Record<string, string> | undefined) => Promise<void>;

export interface RouteMatch {
  kind: 'route';
  /** The route's path pattern (`/batch/jobs/:id`): its metric label, never the raw URL. */
  pattern: string;
  /** Needs no token (see RouteTable.isPublic). */
  isPublic: boolean;
  run: Run;
  params: Record<string, string> | undefined;
}

/** The path exists, for other methods only: a 405 with these in `Allow`. */
export interface MethodMismatch {
  kind: 'method';
  allowed: string[];
  isPublic: boolean;
}

export type Match = RouteMatch | MethodMismatch;

export interface Dispatcher {
  /** What the request is for, undefined when no route has its path. Never throws, runs nothing. */
  match(method: string, path: string): Match | undefined;
}

const notDispatched = (): never => {
  throw new Error('routes run through the dispatcher, not through the router');
};

type Layer = RouterLayer & { path: string; methods: string[]; paramNames: unknown[] };

const EMPTY_OBJECT = { type: 'object', additionalProperties: false };
const HAS_BODY = new Set(['POST', 'PUT', 'PATCH']);

function withFormat(query: object, text: boolean): object {
  if (!text) return query;
  const q = query as { properties?: Record<string, unknown> };
  return {
    ...q,
    properties: { ...q.properties, format: { enum: ['json', 'text'], default: 'json', description: 'text: plain lines for shells' } },
  };
}

function fail(where: string, validator: Validator): HearthError {
  return new HearthError('VALIDATION_FAILED', `The request ${where} is not valid`, {
    details: errorDetails(validator.errors, where === 'body' ? '' : `/${where}`).map((d) => ({ ...d, in: where })),
  });
}

export class RouteTable {
  readonly routes: CompiledRoute[] = [];

  add(owner: string, definition: RouteDefinition): void {
    const clash = this.routes.find((r) => r.definition.method === definition.method && r.definition.path === definition.path);
    if (clash) {
      throw new Error(`route ${definition.method} ${definition.path} is already registered by ${clash.owner}`);
    }
    if (definition.auth === false && definition.path.includes(':')) {
      throw new Error(`route ${definition.method} ${definition.path}: only a route without path parameters can skip the token`);
    }
    const schema = definition.schema ?? {};
    const query = withFormat(schema.query ?? EMPTY_OBJECT, definition.text !== undefined);
    const params = schema.params ?? { type: 'object' };
    const body = HAS_BODY.has(definition.method) ? schema.body ?? EMPTY_OBJECT : undefined;
    // A schema that is not one is refused here, as compiling it would be; the compile itself waits for the
    // route's first request (~100 compiles, a third of the boot's CPU, most for routes a daemon may never see).
    for (const s of [query, params, body]) if (s) checkSchema(s);
    this.routes.push({ owner, definition, schemas: { query, params, ...(body ? { body } : {}) } });
  }

  /**
   * Whether a request needs no token: it is for a route declared `auth: false` (HEAD counts as GET), or
   * for another method on such a route's path that no route takes (so it gets its 405 without a token).
   */
  isPublic(): (method: string, path: string) => boolean {
    const open = this.routes.filter((r) => r.definition.auth === false);
    const exact = new Set(open.map((r) => `${r.definition.method} ${r.definition.path}`));
    const paths = new Set(open.map((r) => r.definition.path));
    return (method, path) => {
      if (!paths.has(path)) return false;
      const m = method === 'HEAD' ? 'GET' : method;
      return exact.has(`${m} ${path}`) || !this.routes.some((r) => r.definition.path === path && r.definition.method === m);
    };
  }

  /**
   * The dispatcher: matches a request to its route (without running it, so the guards can run first and a
   * refused request is still labelled with the route it was for), then runs it. Handlers leave their
   * answer in `ctx.state.data` (or set `ctx.body` themselves). Body limits are read per request so SIGHUP
   * can change them.
   */
  dispatcher(bodyLimit: () => number): Dispatcher {
    const router = new Router();
    const runs = new Map<object, Run>();
    for (const route of this.routes) {
      const run = this.#runner(route, bodyLimit);
      // The router only matches; the route runs through `runs`, never through the router's middleware.
      const layer = router.register(route.definition.path, [route.definition.method], notDispatched) as Layer;
      runs.set(layer, run);
    }
    const isPublic = this.isPublic();
    const matchRouter = (method: string, path: string): Match | undefined => {
      const result = router.match(path, method);
      if (result.route) {
        // The first layer for the path and method is the one @koa/router would run (ours never call next).
        const layer = result.pathAndMethod.find((l) => l.methods.length > 0) as Layer;
        const params = layer.params(path, layer.captures(path), {});
        return { kind: 'route', pattern: layer.path, isPublic: isPublic(method, path), run: runs.get(layer)!, params };
      }
      if (result.path.length === 0) return undefined;
      return { kind: 'method', allowed: [...new Set(result.path.flatMap((l) => l.methods))], isPublic: isPublic(method, path) };
    };
    // Most routes are fixed paths: those answer from a map (@koa/router tests every route's regexp per
    // request, ~1 µs with 30 routes). Only where the router itself would pick that very route for the
    // exact path, so the answer never differs; anything else (parameters, case, a trailing slash) goes to it.
    const fixed = new Map<string, Map<string, RouteMatch>>();
    for (const layer of router.stack as Layer[]) {
      if (layer.paramNames.length > 0 || /[:*?(){}\\]/.test(layer.path)) continue;
      for (const method of layer.methods) {
        const match = matchRouter(method, layer.path);
        if (match?.kind !== 'route' || match.run !== runs.get(layer)) continue;
        let byMethod = fixed.get(layer.path);
        if (!byMethod) fixed.set(layer.path, (byMethod = new Map()));
        if (!byMethod.has(method)) byMethod.set(method, { ...match, params: undefined });
      }
    }
    return {
      match: (method, path) => fixed.get(path)?.get(method) ?? matchRouter(method, path),
    };
  }

  #runner(route: CompiledRoute, bodyLimit: () => number): Run {
    const { definition, schemas } = route;
    let validators: Validators | undefined;
    const compile = (): Validators => ({
      query: compileSchema(schemas.query, { coerce: true }),
      params: compileSchema(schemas.params, { coerce: true }),
      ...(schemas.body ? { body: compileSchema(schemas.body) } : {}),
    });
    return async (ctx, matched) => {
      const validate = (validators ??= compile());
      const query: Record<string, unknown> = ctx.querystring === '' ? {} : { ...ctx.query };
      if (!validate.query(query)) throw fail('query', validate.query);
      const params: Record<string, unknown> = matched ?? {};
      if (!validate.params(params)) throw fail('params', validate.params);
      let body: unknown;
      if (validate.body) {
        const raw = await readJsonBody(ctx, bodyLimit());
        body = raw === undefined ? {} : raw;
        if (!validate.body(body)) throw fail('body', validate.body);
      }
      const data = await definition.handler({ query, params, body, koa: ctx });
      if (ctx.body !== undefined) return;
      ctx.status = definition.status ?? 200;
      if (query.format === 'text' && definition.text) {
        ctx.type = 'text/plain; charset=utf-8';
        ctx.body = definition.text(data instanceof Serialized ? data.value : data);
        return;
      }
      ctx.state.data = data;
      ctx.state.hasData = true;
    };
  }
}
