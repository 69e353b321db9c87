// The Koa app: envelope and errors, host/origin/token guards, routes, 404/405, timing.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Koa, { type Context } from 'koa';
import { HearthError, isHearthError } from '../errors.js';
import type { Logger } from '../services/logger.js';
import type { Metrics } from '../services/metrics.js';
import { writeData, writeError } from './envelope.js';
import { checkHost, checkOrigin, checkToken, tokenMatcher, type GuardSettings } from './guard.js';
import type { RouteTable } from './routes.js';

/** Marks requests that came through the unix socket (guarded by its file mode, not by the token). */
export const VIA_SOCKET = Symbol('hearth.viaSocket');

export interface AppSettings {
  guard: GuardSettings;
  bodyLimitBytes: number;
}

export interface AppOptions {
  routes: RouteTable;
  token: string;
  log: Logger;
  metrics: Metrics;
  /** Read on every request, so a reload takes effect at once. */
  settings: () => AppSettings;
  /** Called at the start of every request (idle tracking). */
  onRequest?: () => void;
}

function methodNotAllowed(ctx: Context): HearthError | undefined {
  const layers = (ctx as Context & { matched?: Array<{ methods: string[] }> }).matched ?? [];
  const allowed = [...new Set(layers.flatMap((l) => l.methods))];
  if (allowed.length === 0) return undefined;
  return new HearthError('METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${ctx.path}; allowed: ${allowed.join(', ')}`, {
    headers: { Allow: allowed.join(', ') },
  });
}

export function createApp(options: AppOptions): Koa {
  const { routes, log, metrics } = options;
  const app = new Koa();
  const isPublic = routes.isPublic();
  const tokenMatches = tokenMatcher(options.token);
  const router = routes.router(() => options.settings().bodyLimitBytes);
  const dispatch = router.routes();
  // Koa would print errors to stderr itself; every error is answered and logged here instead.
  app.silent = true;

  app.use(async (ctx, next) => {
    const start = performance.now();
    const requestId = randomUUID();
    ctx.set('X-Request-Id', requestId);
    options.onRequest?.();
    try {
      const settings = options.settings();
      const headers = ctx.req.headers;
      const viaSocket = (ctx.req as IncomingMessage & { [VIA_SOCKET]?: boolean })[VIA_SOCKET] === true;
      if (!viaSocket) checkHost(headers, settings.guard);
      checkOrigin(headers, settings.guard);
      if (!viaSocket && !isPublic(ctx.method, ctx.path)) checkToken(headers, tokenMatches);
      await dispatch(ctx as Parameters<typeof dispatch>[0], next);
      if (ctx.state.hasData) writeData(ctx, ctx.state.data, requestId, start);
    } catch (err) {
      if (isHearthError(err)) {
        writeError(ctx, err, requestId, start);
      } else {
        log.error({ err, request_id: requestId, method: ctx.method, path: ctx.path }, 'request failed');
        writeError(ctx, new HearthError('INTERNAL', 'Internal error; see the daemon log for this request_id'), requestId, start);
      }
    }
    const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
    const seconds = (performance.now() - start) / 1000;
    metrics.recordRequest(ctx.method, String(route), ctx.status, seconds);
    if (log.isLevelEnabled('debug')) {
      log.debug({ request_id: requestId, method: ctx.method, url: ctx.url, status: ctx.status, duration_ms: seconds * 1000 }, 'request');
    }
  });

  // Reached when no route took the request: 405 when the path exists with other methods, else 404.
  app.use(async (ctx) => {
    throw methodNotAllowed(ctx) ?? new HearthError('NOT_FOUND', `No route for ${ctx.method} ${ctx.path}`);
  });

  return app;
}
