// The Koa app: envelope and errors, host/origin/token (or session) guards, routes, 404/405, timing.
//
// This middleware is the whole stack of every request, so it is kept to what a request needs: the route is
// matched once (a map lookup for fixed paths), before the guards, so that a refused request is still
// recorded under the route it was for; the timing goes to a recorder bound to that route.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Koa from 'koa';
import { HearthError, isHearthError } from '../errors.js';
import type { Logger } from '../services/logger.js';
import type { Metrics } from '../services/metrics.js';
import { writeData, writeError } from './envelope.js';
import { checkHost, checkOrigin, tokenMatcher, unauthorized, type GuardSettings } from './guard.js';
import type { BrowserSessions } from './sessions.js';
import type { Match, RouteTable } from './routes.js';

/** Marks requests that came through the unix socket (guarded by its file mode, not by the token). */
export const VIA_SOCKET = Symbol('hearth.viaSocket');

/** The route label of requests no route takes (404, 405): one fixed word, never the raw URL. */
export const UNMATCHED = 'unmatched';

export interface AppSettings {
  guard: GuardSettings;
  bodyLimitBytes: number;
}

export interface AppOptions {
  routes: RouteTable;
  token: string;
  /** What authorises a browser's request without the token (a dashboard session's cookie). */
  sessions: BrowserSessions;
  log: Logger;
  metrics: Metrics;
  /** Read on every request, so a reload takes effect at once. */
  settings: () => AppSettings;
  /** Called at the start of every request (idle tracking). */
  onRequest?: () => void;
}

function notRouted(method: string, path: string, match: Match | undefined): HearthError {
  if (match?.kind === 'method') {
    const allow = match.allowed.join(', ');
    return new HearthError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; allowed: ${allow}`, { headers: { Allow: allow } });
  }
  return new HearthError('NOT_FOUND', `No route for ${method} ${path}`);
}

export function createApp(options: AppOptions): Koa {
  const { routes, sessions, log, metrics } = options;
  const app = new Koa();
  const tokenMatches = tokenMatcher(options.token);
  const dispatcher = routes.dispatcher(() => options.settings().bodyLimitBytes);
  // Koa would print errors to stderr itself; every error is answered and logged here instead.
  app.silent = true;

  app.use(async (ctx) => {
    const start = performance.now();
    const requestId = randomUUID();
    ctx.res.setHeader('X-Request-Id', requestId);
    options.onRequest?.();
    const method = ctx.method;
    const path = ctx.path;
    const match = dispatcher.match(method, path);
    try {
      const settings = options.settings();
      const headers = ctx.req.headers;
      const viaSocket = (ctx.req as IncomingMessage & { [VIA_SOCKET]?: boolean })[VIA_SOCKET] === true;
      if (!viaSocket) checkHost(headers, settings.guard);
      checkOrigin(headers, settings.guard);
      if (!viaSocket && match?.isPublic !== true && !tokenMatches(headers.authorization)) {
        // Without the token, only a session may authorise it (and only for what sessions are granted).
        ctx.state.session = sessions.authorize(headers, method, match?.kind === 'route' ? match.pattern : undefined);
        if (!ctx.state.session) throw unauthorized();
      }
      if (match?.kind !== 'route') throw notRouted(method, path, match);
      await match.run(ctx, match.params);
      if (ctx.state.hasData) writeData(ctx, ctx.state.data, requestId, start);
    } catch (err) {
      if (isHearthError(err)) {
        writeError(ctx, err, requestId, start);
      } else {
        log.error({ err, request_id: requestId, method, path }, 'request failed');
        writeError(ctx, new HearthError('INTERNAL', 'Internal error; see the daemon log for this request_id'), requestId, start);
      }
    }
    const seconds = (performance.now() - start) / 1000;
    metrics.requestRecorder(method, match?.kind === 'route' ? match.pattern : UNMATCHED).record(ctx.status, seconds);
    if (log.isLevelEnabled('debug')) {
      log.debug({ request_id: requestId, method, url: ctx.url, status: ctx.status, duration_ms: seconds * 1000 }, 'request');
    }
  });

  return app;
}
