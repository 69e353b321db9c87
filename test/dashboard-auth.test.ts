// The dashboard's doors over real HTTP: the one-time login URL, the session cookie, what a session may and
// may not call, the origin and CSRF checks, logout, and sessions ending with the daemon. (The page itself,
// in a real browser: dashboard-browser.test.ts.)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { BrowserSessions, LOGIN_TTL_MS } from '../src/http/sessions.js';
import { faults, sleep } from './helpers/batch.js';
import { bootDaemon, runCli, cleanEnv, tcpRequest, tempDir, type RawAnswer, type TestDaemon } from './helpers/daemon.js';
import { openSse } from './helpers/sse.js';
import { commitAll, git, isolateGit, makeRepo, write } from './helpers/git.js';

isolateGit();
const root = tempDir('hearth-ui-');
const repo = makeRepo(root, 'repo');
write(repo, 'a.txt', 'a\n');
commitAll(repo);
writeFileSync(join(root, 'note.txt'), 'hello');
const config = () => ({
  server: { port: 0 },
  plugins: {
    dashboard: {},
    files: { roots: [root] },
    git: { roots: [root] },
    batch: { roots: [root] },
    'batch-faults': { module: faults, options: { ms: 200 } },
  },
});

let d: TestDaemon = await bootDaemon({ config: config() });
t.teardown(() => d.close());

interface Login {
  cookie: string;
  csrf: string;
}

const header = (res: RawAnswer, name: string): string => {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join('\n') : (v ?? '');
};

async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !check(); await sleep(20)) if (Date.now() > end) throw new Error('timed out');
}

async function loginUrl(): Promise<string> {
  const answer = await d.client.call<{ url: string; expires_at: string }>('POST', '/ui/login-url');
  return answer.url;
}

/** Logs in as a browser would: the one-time URL, then the page's first call for its CSRF value. */
async function login(): Promise<Login> {
  const url = new URL(await loginUrl());
  const res = await tcpRequest(d.url, `${url.pathname}${url.search}`);
  const cookie = header(res, 'set-cookie').split(';')[0]!;
  const session = await tcpRequest(d.url, '/ui/session', { headers: { cookie, 'sec-fetch-site': 'same-origin' } });
  return { cookie, csrf: session.json.data.csrf };
}

/** A request as the dashboard page makes it: its cookie, its own origin, and (for a change) its CSRF header. */
function asPage(s: Login, path: string, init: { method?: string; body?: unknown; csrf?: string | null; headers?: Record<string, string> } = {}) {
  const method = init.method ?? 'GET';
  const headers: Record<string, string> = { cookie: s.cookie, origin: d.url, ...init.headers };
  if (method !== 'GET' && init.csrf !== null) headers['x-hearth-csrf'] = init.csrf ?? s.csrf;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  return tcpRequest(d.url, path, { method, headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
}

t.test('hearth ui --print-url prints a one-time login URL of this daemon', async (t) => {
  const res = await runCli(['ui', '--print-url', '--state-dir', d.stateDir, '--config', join(d.stateDir, 'config.json'), '--no-spawn'], cleanEnv());
  t.equal(res.code, 0, res.stderr);
  const url = new URL(res.stdout.trim());
  t.equal(url.origin, d.url, 'the daemon’s own TCP origin');
  t.equal(url.pathname, '/ui/login');
  t.match(url.searchParams.get('once'), /^[A-Za-z0-9_-]{43}$/, 'a 256-bit secret');
  t.notOk(res.stdout.includes(d.token), 'the API token is not in the URL');
  const first = await tcpRequest(d.url, `${url.pathname}${url.search}`);
  t.equal(first.status, 303);
  t.equal(header(first, 'location'), '/ui');
  const cookie = header(first, 'set-cookie');
  t.match(cookie, new RegExp(`^hearth_session_${d.port}=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/$`), 'HttpOnly, SameSite=Strict, Path=/, named by port');
  t.notOk(cookie.includes(d.token), 'the cookie is not the token');
  t.equal(header(first, 'referrer-policy'), 'no-referrer', 'the secret in the URL is not passed on as a referrer');
  const again = await tcpRequest(d.url, `${url.pathname}${url.search}`);
  t.equal(again.status, 403, 'a login URL works once');
  t.match(header(again, 'content-type'), /^text\/html/, 'a page for the browser, not data');
  t.match(again.text, /hearth ui/, 'which says how to get a new one');
  t.equal(header(again, 'set-cookie'), '', 'and sets no cookie');
  for (const bad of ['', '?once=', '?once=nonsense', `?once=${'A'.repeat(43)}`]) {
    t.equal((await tcpRequest(d.url, `/ui/login${bad}`)).status, 403, `login${bad} is refused`);
  }
  t.equal((await tcpRequest(d.url, `/ui/login?once=${'A'.repeat(300)}`)).status, 400, 'an over-long secret is invalid input');
});

t.test('hearth ui opens the URL with xdg-open where there is one, else says to open it', async (t) => {
  const bin = tempDir('hearth-ui-bin-');
  const seen = join(bin, 'opened.txt');
  writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > '${seen}'\n`, { mode: 0o755 });
  const args = ['ui', '--state-dir', d.stateDir, '--config', join(d.stateDir, 'config.json'), '--no-spawn'];
  const opened = await runCli(args, cleanEnv({ PATH: `${bin}:${process.env.PATH}` }));
  t.equal(opened.code, 0, opened.stderr);
  await waitFor(() => existsSync(seen) && readFileSync(seen, 'utf8').length > 0);
  t.equal(readFileSync(seen, 'utf8'), opened.stdout.trim(), 'xdg-open was given the URL it printed');
  // The CLI runs by process.execPath: PATH can be a directory with nothing in it.
  const none = await runCli(args, cleanEnv({ PATH: tempDir('hearth-ui-empty-') }));
  t.equal(none.code, 0);
  t.match(none.stderr, /open the URL above in a browser/, 'without one, it says what to do');
  t.match(none.stdout, /^http:\/\/127\.0\.0\.1:\d+\/ui\/login\?once=/);
});

t.test('login secrets expire after 60 s, are kept hashed, and sessions are bounded', async (t) => {
  let now = 1_000_000;
  const sessions = new BrowserSessions(() => now);
  t.throws(() => sessions.issueLogin('/ui/login'), { code: 'UNAVAILABLE' }, 'no URL before the daemon listens on TCP');
  sessions.listening('http://127.0.0.1:7433', 7433);
  const once = (url: string) => new URL(url).searchParams.get('once')!;
  const a = sessions.issueLogin('/ui/login');
  t.equal(a.expires_at, new Date(now + LOGIN_TTL_MS).toISOString());
  const b = sessions.issueLogin('/ui/login');
  now += LOGIN_TTL_MS - 1;
  t.match(sessions.redeem(once(a.url)), /^hearth_session_7433=/, 'valid just before 60 s');
  now += 1;
  t.equal(sessions.redeem(once(b.url)), undefined, 'not at 60 s');
  t.equal(sessions.redeem(once(a.url)), undefined, 'nor a second time');
  t.same(sessions.counts(), { sessions: 1, logins_issued: 2, logins_used: 1, logins_refused: 2, requests_refused: 0 });
  const cookies = Array.from({ length: 40 }, () => sessions.redeem(once(sessions.issueLogin('/ui/login').url))!.split(';')[0]!);
  t.equal(sessions.counts().sessions, 32, 'at most 32 sessions');
  t.equal(sessions.find({ cookie: cookies[0] }), undefined, 'the oldest ended');
  t.ok(sessions.find({ cookie: cookies[39] }), 'the newest is there');
  t.ok(sessions.find({ cookie: `other=1; ${cookies[39]}; more=2` }), 'found among other cookies');
  t.equal(sessions.find({ cookie: cookies[39]!.replace('7433', '7434') }), undefined, 'the cookie of another port is not this daemon’s');
  sessions.clear();
  t.equal(sessions.find({ cookie: cookies[39] }), undefined, 'clear ends every session');
});

t.test('a session reads what the page shows, from the page’s own origin only', async (t) => {
  const s = await login();
  for (const path of ['/ui/session', '/plugins', '/optimization/stats', '/optimization/stats?window=5', '/batch/jobs', '/git/repos']) {
    const res = await asPage(s, path);
    t.equal(res.status, 200, `${path} with Origin`);
    t.equal(res.headers['access-control-allow-origin'], undefined, 'no CORS');
    const viaFetchSite = await tcpRequest(d.url, path, { headers: { cookie: s.cookie, 'sec-fetch-site': 'same-origin' } });
    t.equal(viaFetchSite.status, 200, `${path} with Sec-Fetch-Site: same-origin (a GET without Origin)`);
  }
  const noOrigin = await tcpRequest(d.url, '/optimization/stats', { headers: { cookie: s.cookie } });
  t.equal(noOrigin.status, 403, 'the cookie alone authorises nothing');
  t.equal(noOrigin.json.error.code, 'ORIGIN_NOT_ALLOWED');
  for (const origin of ['http://evil.example', `http://127.0.0.1:${d.port + 1}`, `http://localhost:${d.port}`, 'null']) {
    const res = await tcpRequest(d.url, '/optimization/stats', { headers: { cookie: s.cookie, origin } });
    t.equal(res.status, 403, `not from ${origin}`);
    t.notOk(res.text.includes('cache_stats'), 'and no data');
  }
  for (const site of ['cross-site', 'same-site', 'none']) {
    const res = await tcpRequest(d.url, '/optimization/stats', { headers: { cookie: s.cookie, 'sec-fetch-site': site } });
    t.equal(res.status, 403, `not with Sec-Fetch-Site: ${site}`);
  }
  const rebinding = await tcpRequest(d.url, '/optimization/stats', { headers: { cookie: s.cookie, origin: 'http://evil.example:1', host: 'evil.example:1' } });
  t.equal(rebinding.json.error.code, 'HOST_NOT_ALLOWED', 'the Host guard holds (DNS rebinding)');
  t.equal((await asPage(s, '/no/such/route')).status, 404, 'a path no route takes is a plain 404');
  const health = await d.client.call<{ watcher: { watch_limit: number | null } }>('GET', '/health');
  t.ok(health.watcher.watch_limit === null || health.watcher.watch_limit > 0, '/health says the OS watch limit');
});

t.test('a session may not write files, check out, change branches, start jobs or make login URLs', async (t) => {
  const s = await login();
  const target = join(root, 'written-by-session.txt');
  const refused: Array<[string, string, unknown?]> = [
    ['POST', '/files/write', { path: target, content: 'x' }],
    ['GET', `/files/read?path=${encodeURIComponent(join(root, 'note.txt'))}`],
    ['POST', '/git/checkout', { repo, branch: 'main' }],
    ['POST', '/git/branches', { repo, name: 'from-session' }],
    ['DELETE', `/git/branches?repo=${encodeURIComponent(repo)}&name=main`],
    ['GET', `/git/status?repo=${encodeURIComponent(repo)}`],
    ['POST', '/batch/jobs', { operation: 'double', items: [1] }],
    ['POST', '/batch/process', { operation: 'double', items: [1] }],
    ['POST', '/ui/login-url'],
    ['GET', '/metrics'],
    ['GET', '/openapi.json'],
  ];
  const before = (await d.client.call<{ sessions: { requests_refused: number } }>('GET', '/optimization/stats')).sessions.requests_refused;
  for (const [method, path, body] of refused) {
    const res = await asPage(s, path, { method, body });
    t.equal(res.status, 403, `${method} ${path.split('?')[0]} is refused`);
    t.equal(res.json.error.code, 'SESSION_NOT_ALLOWED');
  }
  t.notOk(existsSync(target), 'no file was written');
  t.equal(git(repo, 'branch', '--list', 'from-session').trim(), '', 'no branch was made');
  const after = (await d.client.call<{ sessions: { requests_refused: number } }>('GET', '/optimization/stats')).sessions.requests_refused;
  t.equal(after - before, refused.length, 'each refusal is counted');
  t.equal((await tcpRequest(d.url, '/ui/login-url', { method: 'POST', headers: { authorization: `Bearer ${d.token}` } })).status, 200, 'the token still may');
});

t.test('cancel and clear need the session’s CSRF header', async (t) => {
  const s = await login();
  const { job_id } = await d.client.call<{ job_id: string }>('POST', '/batch/jobs', { operation: 'fault.sleeps', items: Array.from({ length: 40 }, (_, i) => i), batch_size: 1, max_concurrent: 1 });
  for (const csrf of [null, '', 'wrong', `${s.csrf}x`]) {
    const res = await asPage(s, `/batch/jobs/${job_id}`, { method: 'DELETE', csrf });
    t.equal(res.status, 403, `cancel with CSRF ${JSON.stringify(csrf)} is refused`);
    t.equal(res.json.error.code, 'CSRF_FAILED');
  }
  const other = await login();
  t.equal((await asPage(s, `/batch/jobs/${job_id}`, { method: 'DELETE', csrf: other.csrf })).status, 403, 'another session’s CSRF value is not this one’s');
  t.match((await d.client.call<{ status: string }>('GET', `/batch/jobs/${job_id}`)).status, /^(queued|running)$/, 'the job still runs');
  const cancelled = await asPage(s, `/batch/jobs/${job_id}`, { method: 'DELETE' });
  t.equal(cancelled.status, 200);
  t.equal((await d.client.call<{ status: string }>('GET', `/batch/jobs/${job_id}`)).status, 'cancelled', 'cancelled with it');

  await d.client.call('GET', `/files/read?path=${encodeURIComponent(join(root, 'note.txt'))}`);
  const size = async () => (await d.client.call<{ cache_stats: { namespaces: Record<string, { size: number }> } }>('GET', '/optimization/stats')).cache_stats.namespaces.files?.size ?? 0;
  t.ok((await size()) > 0, 'the files namespace has entries');
  t.equal((await asPage(s, '/cache/clear', { method: 'POST', body: { namespace: 'files' }, csrf: null })).status, 403, 'clear without CSRF is refused');
  t.ok((await size()) > 0, 'and cleared nothing');
  const cleared = await asPage(s, '/cache/clear', { method: 'POST', body: { namespace: 'files' } });
  t.equal(cleared.json.data.namespace, 'files');
  t.equal(await size(), 0, 'cleared with it');
});

t.test('the page’s files need no session, carry a strict CSP, and are refused to other sites', async (t) => {
  const page = await tcpRequest(d.url, '/ui');
  t.equal(page.status, 200);
  t.match(header(page, 'content-type'), /^text\/html/);
  const csp = header(page, 'content-security-policy');
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
    t.ok(csp.includes(directive), directive);
  }
  t.notMatch(csp, /unsafe-inline|unsafe-eval|\*/, 'no inline script or style, no wildcard');
  t.equal(header(page, 'x-frame-options'), 'DENY');
  t.equal(header(page, 'x-content-type-options'), 'nosniff');
  t.notOk(page.text.includes(d.token), 'the token is not in the page');
  const lib = await tcpRequest(d.url, '/ui/uPlot.iife.min.js');
  t.equal(lib.status, 200);
  t.match(header(lib, 'content-type'), /^text\/javascript/);
  t.ok(lib.text.includes('uPlot'), 'uPlot from node_modules');
  const etag = header(lib, 'etag');
  t.equal((await tcpRequest(d.url, '/ui/uPlot.iife.min.js', { headers: { 'if-none-match': etag } })).status, 304, 'a reload costs a 304');
  for (const path of ['/ui/app.js', '/ui/app.css', '/ui/uPlot.min.css']) t.equal((await tcpRequest(d.url, path)).status, 200, path);
  t.equal((await tcpRequest(d.url, '/ui/app.js', { headers: { 'sec-fetch-site': 'cross-site' } })).status, 403, 'another site cannot include the script');
  t.equal((await tcpRequest(d.url, '/ui', { headers: { origin: 'http://evil.example' } })).status, 403);
});

t.test('logout ends the session', async (t) => {
  const s = await login();
  const stream = await openSse({ port: d.port, headers: { host: `127.0.0.1:${d.port}`, cookie: s.cookie, 'sec-fetch-site': 'same-origin' } }, '/events');
  t.teardown(() => stream.close());
  t.equal(stream.status, 200, 'the session opened an event stream');
  t.equal((await asPage(s, '/ui/logout', { method: 'POST', csrf: null })).status, 403, 'logout needs the CSRF header too');
  const out = await asPage(s, '/ui/logout', { method: 'POST' });
  t.same(out.json.data, { ended: true });
  t.match(header(out, 'set-cookie'), new RegExp(`^hearth_session_${d.port}=; .*Max-Age=0`), 'the cookie is removed');
  const after = await asPage(s, '/optimization/stats');
  t.equal(after.status, 401, 'the cookie authorises nothing any more');
  t.equal((await asPage(s, '/ui/session')).status, 401);
  await stream.until('the stream ends with the session', () => stream.ended(), 2000);
  t.ok(stream.ended());
});

t.test('sessions end with the daemon', async (t) => {
  const s = await login();
  const { port, stateDir } = d;
  await d.close();
  d = await bootDaemon({ stateDir, config: config() });
  // The same session id under the new daemon's cookie name (its port may differ).
  const old = { ...s, cookie: s.cookie.replace(`hearth_session_${port}=`, `hearth_session_${d.port}=`) };
  t.equal((await asPage(old, '/optimization/stats')).status, 401, 'the old session is nothing to the new daemon');
  t.equal((await login()).csrf.length, 43, 'a new login works');
});

t.test('GET /git/repos lists the warm repositories without renewing them', async (t) => {
  await d.client.call('GET', `/git/summary?repo=${encodeURIComponent(repo)}`);
  const [first] = await d.client.call<Array<Record<string, any>>>('GET', '/git/repos');
  t.match(first, {
    repo,
    branch: git(repo, 'rev-parse', '--abbrev-ref', 'HEAD').trim(),
    head: git(repo, 'rev-parse', 'HEAD').trim(),
    warm: true,
    held: false,
    degraded: null,
    clean: git(repo, 'status', '--porcelain').trim() === '',
  });
  t.equal(first!.tracked_files, git(repo, 'ls-files').trim().split('\n').length, 'tracked files as git ls-files');
  t.ok(Date.parse(first!.last_status_at) <= Date.now(), 'last status time');
  await sleep(300);
  const [second] = await d.client.call<Array<Record<string, any>>>('GET', '/git/repos');
  t.ok(second!.release_in_seconds < first!.release_in_seconds, 'listing does not renew the idle time');
  t.equal(second!.last_status_at, first!.last_status_at, 'nor is it a status');
});

t.test('/optimization/stats: window, total and the process section', async (t) => {
  for (let i = 0; i < 5; i++) await d.client.call('GET', '/plugins');
  const all = await d.client.call<any>('GET', '/optimization/stats');
  const plugins = all.metrics['http.GET /plugins'];
  t.ok(plugins.total >= 5 && plugins.total >= plugins.count, 'total counts every sample');
  t.match(all.process, { rss_bytes: Number, heap_used_bytes: Number, heap_total_bytes: Number, external_bytes: Number, uptime_seconds: Number });
  await sleep(1100);
  await d.client.call('GET', '/health');
  const recent = await d.client.call<any>('GET', '/optimization/stats?window=1');
  t.equal(recent.metrics['http.GET /plugins'], undefined, 'an operation with no sample in the window is left out');
  t.equal(recent.metrics['http.GET /health'].count, 1, 'the window counts its own samples');
  t.ok(recent.metrics['http.GET /health'].total >= 1);
  t.not(recent.process.event_loop_delay, null, 'the event-loop delay once the monitor has run between two reads');
  t.ok(recent.process.event_loop_delay.p99 >= 0);
  // What the loop was late by, not the monitor's own 100 ms period between wakes (which Node's histogram holds).
  t.ok(recent.process.event_loop_delay.min < 0.05, `the least delay of an idle loop is not the timer period: ${recent.process.event_loop_delay.min} s`);
  const bad = await tcpRequest(d.url, '/optimization/stats?window=0', { headers: { authorization: `Bearer ${d.token}` } });
  t.equal(bad.json.error.code, 'VALIDATION_FAILED');
  const text = await (await d.client.raw('GET', '/metrics')).body;
  t.match(text, /^hearth_nodejs_eventloop_lag_p99_seconds 0$/m, 'the first scrape starts the monitor (nothing measured yet)');
  t.notMatch(text, /^hearth_nodejs_eventloop_lag_seconds /m, "prom-client's own always-on monitor is not there");
  await sleep(350); // a few of the monitor's 100 ms samples
  t.match(await (await d.client.raw('GET', '/metrics')).body, /^hearth_nodejs_eventloop_lag_p99_seconds (?!0$)[\d.e-]+$/m, 'the next has figures');
});

t.test('"dashboard": false turns it off', async (t) => {
  const off = await bootDaemon({ config: { server: { port: 0 } } });
  t.teardown(() => off.close());
  t.equal((await tcpRequest(off.url, '/ui')).status, 401, 'no such public page: /ui needs the token like any unknown path');
  t.equal((await off.client.raw('GET', '/ui')).status, 404);
  t.equal((await off.client.raw('POST', '/ui/login-url')).status, 404);
});
