// The route table: every route's schemas compiled once, its input validated before its handler runs.
import Router from '@koa/router';
import type { Context } from 'koa';
import { HearthError } from '../errors.js';
import type { RouteDefinition } from '../plugin.js';
import { compileSchema, errorDetails, type Validator } from '../validation.js';
import { readJsonBody } from './body.js';

export interface CompiledRoute {
  owner: string;
  definition: RouteDefinition;
  /** The schemas as validated (defaults applied), also what /openapi.json shows. */
  schemas: { query: object; params: object; body?: object };
  validate: { query: Validator; params: Validator; body?: Validator };
}

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
    this.routes.push({
      owner,
      definition,
      schemas: { query, params, ...(body ? { body } : {}) },
      validate: {
        query: compileSchema(query, { coerce: true }),
        params: compileSchema(params, { coerce: true }),
        ...(body ? { body: compileSchema(body) } : {}),
      },
    });
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
   * A router whose handlers leave their answer in `ctx.state.data` (or set `ctx.body` themselves).
   * Body limits are read per request so SIGHUP can change them.
   */
  router(bodyLimit: () => number): Router {
    const router = new Router();
    for (const route of this.routes) {
      const { definition, validate } = route;
      const handler = async (ctx: Context): Promise<void> => {
        const query: Record<string, unknown> = ctx.querystring === '' ? {} : { ...ctx.query };
        if (!validate.query(query)) throw fail('query', validate.query);
        const params: Record<string, unknown> = { ...ctx.params };
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
          ctx.body = definition.text(data);
          return;
        }
        ctx.state.data = data;
        ctx.state.hasData = true;
      };
      router.register(definition.path, [definition.method], handler);
    }
    return router;
  }
}
