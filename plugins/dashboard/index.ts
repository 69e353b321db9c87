// The dashboard: a page at /ui that shows what the daemon is doing, live, over the same routes as any
// client. A browser is never given the API token: `hearth ui` asks for a one-time login URL (POST
// /ui/login-url, token or socket only), whose secret /ui/login exchanges for a session cookie. The session
// may call only what the page shows or does (see GRANTED); the core checks the cookie, the origin and the
// CSRF header (src/http/sessions.ts). The page's files need no session: they hold no data.
import { HearthError } from '../../src/errors.js';
import { CSRF_HEADER, type Session } from '../../src/http/sessions.js';
import { definePlugin } from '../../src/plugin.js';
import { EXPIRED_PAGE, FILES, sendFile, setPageHeaders } from './static-files.js';

/**
 * What a dashboard session may call: the read routes the page shows, job cancel and cache clear. Never a
 * file write, a checkout or a branch change. Routes of plugins that are off simply do not exist.
 */
export const GRANTED = [
  { method: 'GET', path: '/ui/session' },
  { method: 'POST', path: '/ui/logout' },
  { method: 'GET', path: '/plugins' },
  { method: 'GET', path: '/optimization/stats' },
  { method: 'GET', path: '/events' },
  { method: 'POST', path: '/cache/clear' },
  { method: 'GET', path: '/batch/jobs' },
  { method: 'GET', path: '/batch/jobs/:id' },
  { method: 'GET', path: '/batch/daemons' },
  { method: 'DELETE', path: '/batch/jobs/:id' },
  { method: 'GET', path: '/git/repos' },
] as const;

const LOGIN_PATH = '/ui/login';

export default definePlugin({
  name: 'dashboard',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  setup(ctx) {
    ctx.sessions.grant(GRANTED);
    for (const [path, entry] of Object.entries(FILES)) {
      ctx.route({
        method: 'GET',
        path,
        auth: false,
        produces: entry.type.split(';')[0]!,
        summary: path === '/ui' ? 'The dashboard (log in with `hearth ui`)' : 'A file of the dashboard',
        handler: ({ koa }) => sendFile(koa, entry),
      });
    }
    ctx.route({
      method: 'POST',
      path: '/ui/login-url',
      summary: 'A one-time dashboard login URL, valid once for 60 s (what `hearth ui` opens); never for a session',
      schema: {
        response: { type: 'object', required: ['url', 'expires_at'], properties: { url: { type: 'string' }, expires_at: { type: 'string', format: 'date-time' } } },
      },
      handler: ({ koa }) => {
        if (koa.state.session) throw new HearthError('SESSION_NOT_ALLOWED', 'A dashboard session may not make login URLs');
        return ctx.sessions.issueLogin(LOGIN_PATH);
      },
    });
    ctx.route({
      method: 'GET',
      path: LOGIN_PATH,
      auth: false,
      produces: 'text/html',
      summary: 'Exchanges a one-time login secret for a session cookie and redirects to /ui',
      schema: { query: { type: 'object', additionalProperties: false, properties: { once: { type: 'string', maxLength: 200 } } } },
      handler: ({ query, koa }) => {
        const cookie = query.once ? ctx.sessions.redeem(String(query.once)) : undefined;
        koa.set('Cache-Control', 'no-store');
        if (!cookie) return sendFile(koa, EXPIRED_PAGE, 403);
        setPageHeaders(koa);
        koa.set('Set-Cookie', cookie);
        koa.status = 303;
        koa.redirect('/ui');
      },
    });
    ctx.route({
      method: 'GET',
      path: '/ui/session',
      summary: "The dashboard session's CSRF value (401 without a session)",
      schema: {
        response: { type: 'object', required: ['csrf', 'csrf_header'], properties: { csrf: { type: 'string' }, csrf_header: { type: 'string' } } },
      },
      handler: ({ koa }) => {
        // The session that authorised this request (the core's check set it); none with the token or on the socket.
        const session = koa.state.session as Session | undefined;
        if (!session) throw new HearthError('UNAUTHORIZED', 'No dashboard session: run `hearth ui` to log in');
        koa.set('Cache-Control', 'no-store');
        return { csrf: session.csrf, csrf_header: CSRF_HEADER };
      },
    });
    ctx.route({
      method: 'POST',
      path: '/ui/logout',
      summary: 'Ends the dashboard session of this browser',
      schema: { response: { type: 'object', required: ['ended'], properties: { ended: { type: 'boolean' } } } },
      handler: ({ koa }) => {
        koa.set('Set-Cookie', ctx.sessions.clearCookie);
        return { ended: ctx.sessions.end(koa.req.headers) };
      },
    });
  },
});
