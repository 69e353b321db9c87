/// <reference lib="dom" />
// The dashboard in a real browser (Debian's chromium through puppeteer-core), against a real daemon with
// the dashboard, batch, git and files plugins on temp roots: a login exactly as a user does it (`hearth ui
// --print-url`), the page's numbers against the API's, a job's progress and its cancel button, the plots,
// a namespace's clear button, a page of another origin in the same browser getting nothing and changing
// nothing, the one-time login URL, logout, and a screenshot under load. One browser and one daemon for the
// whole file; no console error, page error or CSP violation on the dashboard.
import { copyFileSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import puppeteer, { type Browser, type Cookie, type Page } from 'puppeteer-core';
import t from 'tap';
import { BrowserSessions, LOGIN_TTL_MS } from '../../src/http/sessions.js';
import { faults } from './batch.js';
import { bootDaemon, cleanEnv, root, runCli, tcpRequest, tempDir } from './daemon.js';
import { commitAll, isolateGit, makeRepo, write } from './git.js';

// One TypeScript CLI run, one daemon, one browser: seconds each on a loaded machine.
t.setTimeout(120_000);

import { CHROMIUM } from './chromium.js';
/** Liveness bound of every wait on the page (never a performance assertion). */
const LIVE = 10_000;
/** Each item of a slow job blocks a worker thread this long (the fault plugin's fault.sleeps). */
const ITEM_MS = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- the daemon, a repository, the browser

isolateGit();
const work = realpathSync(tempDir('hearth-ui-'));
const repo = makeRepo(work, 'repo');
write(repo, 'a.txt', 'one\n');
write(repo, 'src/b.txt', 'two\n');
commitAll(repo);
write(repo, 'a.txt', 'one, edited\n');
const file = join(repo, 'src/b.txt');

// The daemon and the browser start together; whichever started is closed when the other fails.
const [booted, launched] = await Promise.allSettled([
  bootDaemon({
    config: {
      server: { port: 0 },
      pool: { max_threads: 2 },
      plugins: {
        dashboard: {},
        batch: {},
        git: { roots: [work] },
        files: { roots: [work] },
        'batch-faults': { module: faults, options: { ms: ITEM_MS } },
      },
    },
  }),
  puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu'],
    defaultViewport: { width: 1280, height: 900 },
  }),
]);
if (booted.status === 'rejected' || launched.status === 'rejected') {
  if (booted.status === 'fulfilled') await booted.value.close();
  if (launched.status === 'fulfilled') await launched.value.close();
  throw booted.status === 'rejected' ? booted.reason : (launched as PromiseRejectedResult).reason;
}
const d = booted.value;
const browser: Browser = launched.value;
const configPath = join(d.stateDir, 'config.json');
// A warm repository from the start: its row, its breaker.
await d.client.call('GET', `/git/summary?repo=${encodeURIComponent(repo)}`);

/** The page of another origin (same host, another port): it tries to read and change the daemon. */
let foreignJob = '';
const foreign: Server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(foreignPage(d.url, foreignJob));
});
await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', r));
const foreignUrl = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}`;

const jobsToCancel = new Set<string>();
t.teardown(async () => {
  for (const id of jobsToCancel) await d.client.call('DELETE', `/batch/jobs/${id}`).catch(() => undefined);
  await browser.close();
  await new Promise((r) => foreign.close(r));
  await d.close();
});

// ---------------------------------------------------------------- helpers

const api = <T = any>(method: string, path: string, body?: unknown) => d.client.call<T>(method, path, body);
const stats = () => api('GET', '/optimization/stats');

/** A slow job (each item blocks a worker thread ITEM_MS, one chunk at a time): running for ~items × ITEM_MS. */
async function slowJob(items: number): Promise<string> {
  const { job_id } = await api('POST', '/batch/jobs', { operation: 'fault.sleeps', items: Array.from({ length: items }, (_, i) => i), batch_size: 1, max_concurrent: 1 });
  jobsToCancel.add(job_id);
  return job_id;
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = LIVE): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out (${ms} ms) waiting for ${what}`);
    await sleep(50);
  }
}

/** The 403 answers the daemon gave so far, by `METHOD route` (its Prometheus series by status). */
async function refusals(): Promise<Map<string, number>> {
  const text = (await d.client.raw('GET', '/metrics')).body;
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^hearth_http_request_duration_seconds_count\{method="(\w+)",route="([^"]*)",status="403"\} (\d+)$/gm)) {
    out.set(`${m[1]} ${m[2]}`, Number(m[3]));
  }
  return out;
}
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

const text = (page: Page, selector: string) => page.$eval(selector, (e) => (e.textContent ?? '').trim());
/** A number as the page shows it ("2,000" -> 2000). */
const shownNumber = async (page: Page, selector: string) => Number((await text(page, selector)).replace(/[,\s]/g, ''));
const polls = (page: Page) => page.evaluate(() => Number(document.body.dataset.polls ?? 0));
/** Waits for `n` more stats polls rendered after now. */
async function morePolls(page: Page, n = 2): Promise<void> {
  const from = await polls(page);
  await page.waitForFunction((want) => Number(document.body.dataset.polls ?? 0) >= want, { timeout: LIVE, polling: 50 }, from + n);
}
const visible = (page: Page, selector: string) => page.$eval(selector, (e) => !(e as HTMLElement).hidden && (e as HTMLElement).offsetParent !== null);

async function sessionCookie(): Promise<Cookie | undefined> {
  return (await browser.defaultBrowserContext().cookies()).find((c) => c.name === `hearth_session_${d.port}`);
}

// What goes wrong on the dashboard's tab: console errors and warnings, uncaught errors, CSP violations.
const problems: string[] = [];
const page = await browser.newPage();
await page.exposeFunction('__hearthCsp', (v: string) => problems.push(`CSP violation: ${v}`));
await page.evaluateOnNewDocument(() => {
  const w = window as unknown as { __csp: string[]; __hearthCsp?: (v: string) => void };
  w.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    const v = `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`;
    w.__csp.push(v);
    w.__hearthCsp?.(v);
  });
});
page.on('console', (m) => {
  const type = m.type() as string;
  if (type === 'error' || type === 'warn' || type === 'warning') problems.push(`console.${type}: ${m.text()} (${m.location().url ?? ''})`);
});
page.on('pageerror', (err) => problems.push(`pageerror: ${(err as Error).message ?? String(err)}`));

let loginUrl = '';
/** The worker threads' first start (each loads TypeScript: many seconds on a loaded machine), begun early. */
let warmPool: Promise<unknown> = Promise.resolve();

// ---------------------------------------------------------------- 1. login as a user does

t.test('`hearth ui --print-url` prints a URL that logs the browser in: /ui with the dashboard shown', async (t) => {
  const cli = await runCli(['ui', '--print-url', '--config', configPath, '--state-dir', d.stateDir, '--no-spawn'], cleanEnv(), 60_000);
  t.equal(cli.code, 0, cli.stderr);
  loginUrl = cli.stdout.trim();
  warmPool = api('POST', '/batch/process', { operation: 'double', items: [1, 2], batch_size: 1, max_concurrent: 2 });
  t.match(loginUrl, new RegExp(`^${d.url}/ui/login\\?once=[\\w-]{20,}$`), 'one line: the login URL on the daemon\'s port');

  const res = await page.goto(loginUrl, { waitUntil: 'domcontentloaded' });
  t.equal(page.url(), `${d.url}/ui`, 'lands on /ui');
  t.equal(res?.status(), 200);
  const hop = res?.request().redirectChain()[0]?.response();
  t.equal(hop?.status(), 303, 'through a 303 from /ui/login');
  t.match(res?.headers()['content-security-policy'], /default-src 'none'; script-src 'self'/, 'the page is served with its CSP');

  await page.waitForSelector('body[data-ready="1"]', { timeout: LIVE });
  t.ok(await visible(page, '#dashboard'), '#dashboard is shown');
  t.notOk(await visible(page, '#login'), '#login is hidden');
  t.ok(await page.$eval('#login', (e) => (e as HTMLElement).hidden), '#login has the hidden attribute');

  const cookie = await sessionCookie();
  t.ok(cookie, `the browser holds hearth_session_${d.port}`);
  t.equal(cookie?.httpOnly, true, 'HttpOnly');
  t.equal(cookie?.sameSite, 'Strict', 'SameSite=Strict');
  t.equal(await page.evaluate(() => document.cookie), '', 'the page\'s script cannot read it');
  t.notMatch(await page.content(), /once=/, 'the login secret is nowhere on the page');
});

// ---------------------------------------------------------------- 7. the login URL works once; expiry

t.test('the login URL does not work twice, and a browser without the cookie has no session', async (t) => {
  const before = (await stats()).sessions;
  const again = await browser.newPage();
  const res = await again.goto(loginUrl);
  t.equal(res?.status(), 403, 'the second use is refused');
  t.equal(again.url(), loginUrl, 'no redirect to /ui');
  t.match(await again.evaluate(() => document.body.textContent), /used or has expired/);
  await again.close();

  const fresh = await browser.createBrowserContext();
  try {
    const p = await fresh.newPage();
    const r = await p.goto(loginUrl);
    t.equal(r?.status(), 403, 'a fresh context with the used URL: 403 too');
    t.same((await fresh.cookies()).filter((c) => c.name.startsWith('hearth_session')), [], 'and no cookie');
    await p.goto(`${d.url}/ui`);
    await p.waitForSelector('body[data-ready="1"]', { timeout: LIVE });
    t.ok(await visible(p, '#login'), '/ui shows #login');
    t.notOk(await visible(p, '#dashboard'), '#dashboard stays hidden');
    t.equal(await p.evaluate(async () => (await fetch('/ui/session')).status), 401, 'GET /ui/session: 401');
  } finally {
    await fresh.close();
  }
  const after = (await stats()).sessions;
  t.equal(after.logins_refused, before.logins_refused + 2, 'the daemon counts both refusals');
  t.equal(after.sessions, before.sessions, 'no session was made');
  await page.bringToFront();
});

t.test('a login secret expires after 60 s and is used once (BrowserSessions with a controlled clock)', async (t) => {
  let now = 1_000_000;
  const sessions = new BrowserSessions(() => now);
  sessions.listening('http://127.0.0.1:7433', 7433);
  const secretOf = (url: string) => new URL(url).searchParams.get('once')!;
  const a = sessions.issueLogin('/ui/login');
  const b = sessions.issueLogin('/ui/login');
  const c = sessions.issueLogin('/ui/login');
  t.equal(a.expires_at, new Date(now + LOGIN_TTL_MS).toISOString());
  t.equal(LOGIN_TTL_MS, 60_000);
  now += LOGIN_TTL_MS - 1;
  const cookie = sessions.redeem(secretOf(a.url));
  t.match(cookie, /^hearth_session_7433=[\w-]+; HttpOnly; SameSite=Strict; Path=\/$/, 'valid 1 ms before 60 s');
  t.equal(sessions.redeem(secretOf(a.url)), undefined, 'not twice');
  const id = cookie!.split(';')[0]!;
  t.ok(sessions.find({ cookie: id }), 'the session exists');
  now += 1;
  t.equal(sessions.redeem(secretOf(b.url)), undefined, 'refused at 60 s');
  now += 3_600_000;
  t.equal(sessions.redeem(secretOf(c.url)), undefined, 'refused an hour later');
  t.equal(sessions.redeem('made-up'), undefined, 'an unknown secret is refused');
  t.match(sessions.counts(), { sessions: 1, logins_issued: 3, logins_used: 1, logins_refused: 4 });
});

// ---------------------------------------------------------------- 2. the page's numbers are the API's

t.test("the page's numbers are those of /optimization/stats, /health and /plugins", async (t) => {
  const [s, health, plugins] = await Promise.all([stats(), api('GET', '/health'), api<any[]>('GET', '/plugins')]);
  await morePolls(page);
  t.equal(await text(page, '[data-field="version"]'), health.version, 'version');
  t.equal(await text(page, '[data-field="watcher.mode"]'), health.watcher.mode, 'watcher mode');
  t.equal(await shownNumber(page, '[data-field="pool.max_threads"]'), s.pool.max_threads, 'pool.max_threads');
  t.equal(s.pool.max_threads, 2, 'the configured pool size');
  t.equal(await shownNumber(page, '[data-field="pool.max_queue"]'), s.pool.max_queue, 'pool.max_queue');
  t.equal(await shownNumber(page, '[data-field="cache.max_size"]'), s.cache_stats.max_size, 'cache.max_size');
  // Values that may change (the pool's threads start meanwhile): after a poll, the page's must come to
  // equal what the API says right after.
  const changing: Record<string, (x: any) => number> = {
    'pool.threads': (x) => x.pool.threads,
    'pool.running': (x) => x.pool.running,
    'pool.queue_size': (x) => x.pool.queue_size,
    'cache.size': (x) => x.cache_stats.size,
  };
  const agreed = await until('the changing values as the API says', async () => {
    await morePolls(page, 1);
    const shown = Object.fromEntries(await Promise.all(Object.keys(changing).map(async (f) => [f, await shownNumber(page, `[data-field="${f}"]`)])));
    const now = await stats();
    const fromApi = Object.fromEntries(Object.entries(changing).map(([f, of]) => [f, of(now)]));
    return JSON.stringify(shown) === JSON.stringify(fromApi) ? { shown, fromApi } : undefined;
  });
  for (const f of Object.keys(changing)) t.equal(agreed.shown[f], agreed.fromApi[f], `${f}: ${agreed.shown[f]}`);
  t.equal(health.plugins.length, 6);
  for (const p of health.plugins) {
    t.equal(await text(page, `#plugins tr[data-plugin="${p.name}"] [data-col="state"]`), p.state, `plugin ${p.name}: ${p.state}`);
  }
  t.equal(await page.$$eval('#plugins tr[data-plugin]', (rows) => rows.length), plugins.length, 'a row per plugin');
  for (const name of Object.keys(s.circuit_breakers)) {
    t.equal(await text(page, `#breakers tr[data-breaker="${name}"] [data-col="state"]`), s.circuit_breakers[name].state, `breaker ${name}`);
  }
  const repos = await api<any[]>('GET', '/git/repos');
  t.equal(repos.length, 1, 'one repository is warm');
  for (const r of repos) {
    await page.waitForSelector(`#repos tr[data-repo="${r.repo}"]`, { timeout: LIVE });
    t.match(await text(page, `#repos tr[data-repo="${r.repo}"] [data-col="branch"]`), r.branch, `repo ${r.repo}: branch ${r.branch}`);
  }
  t.ok(Object.keys(s.circuit_breakers).length >= 1, 'a breaker to compare');
  t.equal(await text(page, '[data-field="status"]').then((v) => v.includes(health.status)), true, `status ${health.status}`);
});

// ---------------------------------------------------------------- 4. the plots

t.test('the requests plot has points and gains more as requests are made; the routes table counts them', async (t) => {
  const points = () => page.$eval('#plot-rps', (e) => Number((e as HTMLElement).dataset.points ?? 0));
  const n0 = await points();
  t.ok(n0 > 0, `#plot-rps has points (${n0})`);
  for (let i = 0; i < 25; i++) await api('GET', '/batch/operations');
  const total = (await stats()).metrics['http.GET /batch/operations'].total;
  t.equal(total, 25, 'the API counted 25 requests');
  await page.waitForFunction((n) => Number((document.querySelector('#plot-rps') as HTMLElement).dataset.points) > n, { timeout: LIVE, polling: 50 }, n0);
  t.ok((await points()) > n0, `more points (${n0} -> ${await points()})`);
  const cell = '#routes tr[data-route="GET /batch/operations"] [data-col="total"]';
  await page.waitForSelector(cell, { timeout: LIVE });
  await page.waitForFunction((sel, n) => Number(document.querySelector(sel)!.textContent!.replace(/[,\s]/g, '')) === n, { timeout: LIVE, polling: 50 }, cell, total);
  t.pass('the route\'s row shows the 25 requests');
  for (const id of ['#plot-latency', '#plot-pool', '#plot-process']) {
    t.ok(await page.$eval(id, (e) => Number((e as HTMLElement).dataset.points ?? 0)) > 0, `${id} has points`);
  }
});

// ---------------------------------------------------------------- 5. a namespace's clear button

t.test("a namespace's clear button empties it (through the API)", async (t) => {
  const read = () => api('GET', `/files/read?path=${encodeURIComponent(file)}`);
  await read();
  t.equal((await read()).cached, true, 'the file is cached in namespace files');
  const before = (await stats()).cache_stats;
  t.ok(before.namespaces.files?.size > 0, `namespace files has entries (${before.namespaces.files?.size})`);
  const row = '#namespaces tr[data-namespace="files"]';
  await page.waitForSelector(row, { timeout: LIVE });
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.textContent?.replace(/[,\s]/g, '')) > 0, { timeout: LIVE, polling: 50 }, `${row} [data-col="size"]`);
  t.pass("the namespace's row shows its entries");

  const cleared = page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === `${d.url}/cache/clear`, { timeout: LIVE });
  await page.click(`${row} button[data-action="clear"]`);
  const res = await cleared;
  t.equal(res.status(), 200);
  t.same(JSON.parse(res.request().postData() ?? '{}'), { namespace: 'files' }, 'the page asked for namespace files');
  const answer = (await res.json()).data;
  t.match(answer, { namespace: 'files' });
  t.ok(answer.cleared >= 1, `entries went (${answer.cleared})`);

  const after = (await stats()).cache_stats;
  t.equal(after.namespaces.files.size, 0, 'GET /optimization/stats: namespace files has size 0');
  t.equal(after.size, before.size - answer.cleared, `and the cache ${after.size} entries in all`);
  t.equal((await api('POST', '/cache/clear', { namespace: 'files' })).cleared, 0, 'namespace files is empty: clearing it again clears nothing');
  t.equal((await read()).cached, false, 'and a read misses');
  await morePolls(page);
  const now = (await stats()).cache_stats;
  t.equal(await shownNumber(page, '[data-field="cache.size"]'), now.size, 'the page shows the new size');
  t.equal(await shownNumber(page, `${row} [data-col="size"]`), now.namespaces.files.size, "and the namespace's");
});

// ---------------------------------------------------------------- 3. a job's progress; cancel

t.test('a job started through the API shows its progress growing; its cancel button cancels it', async (t) => {
  await warmPool;
  const items = 300;
  const id = await slowJob(items);
  const row = `#jobs [data-job="${id}"]`;
  await page.waitForSelector(row, { timeout: LIVE });
  t.equal(await text(page, `${row} [data-col="status"]`).then((s) => /queued|running/.test(s)), true, 'queued or running');
  const progress = `${row} progress[data-col="progress"]`;
  t.equal(await page.$eval(progress, (e) => (e as HTMLProgressElement).max), items, 'progress max = total_items');
  await page.waitForFunction((sel) => (document.querySelector(sel) as HTMLProgressElement | null)?.value! > 0, { timeout: LIVE, polling: 50 }, progress);
  const first = await page.$eval(progress, (e) => (e as HTMLProgressElement).value);
  await page.waitForFunction((sel, v) => (document.querySelector(sel) as HTMLProgressElement).value > v, { timeout: LIVE, polling: 50 }, progress, first);
  const second = await page.$eval(progress, (e) => (e as HTMLProgressElement).value);
  t.ok(second > first, `progress grows (${first} -> ${second})`);
  t.match(await text(page, `${row} [data-col="count"]`), new RegExp(`^\\d+\\s*/\\s*${items}$`), 'counts "n/300"');
  const job = await api('GET', `/batch/jobs/${id}`);
  t.ok(job.processed_items >= second, `the API is at least as far (${job.processed_items})`);

  const cancel = page.waitForResponse((r) => r.request().method() === 'DELETE' && r.url() === `${d.url}/batch/jobs/${id}`, { timeout: LIVE });
  await page.click(`${row} button[data-action="cancel"]`);
  t.equal((await cancel).status(), 200, 'the page sent DELETE /batch/jobs/:id');
  const done = await until('cancelled', async () => {
    const j = await api('GET', `/batch/jobs/${id}`);
    return j.status === 'cancelled' ? j : undefined;
  });
  t.equal(done.status, 'cancelled', 'GET /batch/jobs/:id says cancelled');
  t.ok(done.processed_items < items, `stopped early (${done.processed_items}/${items})`);
  jobsToCancel.delete(id);
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent?.includes('cancelled'), { timeout: LIVE, polling: 50 }, `${row} [data-col="status"]`);
  const button = await page.$eval(row, (r) => {
    const b = r.querySelector<HTMLButtonElement>('button[data-action="cancel"]');
    return b === null ? 'absent' : b.hidden || b.offsetParent === null ? 'hidden' : 'shown';
  });
  t.not(button, 'shown', `no cancel button once cancelled (${button})`);
});

// ---------------------------------------------------------------- 6. another origin gets nothing

/** The foreign page: reads, a cancel, a cache clear and an event stream at the daemon, with its cookie. */
function foreignPage(daemon: string, job: string): string {
  return `<!doctype html><title>elsewhere</title><script>
const D = ${JSON.stringify(daemon)};
const out = (window.__out = {});
async function attempt(name, run) {
  try {
    const r = await run();
    let body = null;
    try { body = await r.text(); } catch (e) { body = 'unreadable: ' + e.name; }
    out[name] = { threw: null, type: r.type, status: r.status, body };
  } catch (e) {
    out[name] = { threw: e.name };
  }
}
(async () => {
  await attempt('stats', () => fetch(D + '/optimization/stats', { credentials: 'include' }));
  await attempt('statsNoCors', () => fetch(D + '/optimization/stats', { credentials: 'include', mode: 'no-cors' }));
  await attempt('session', () => fetch(D + '/ui/session', { credentials: 'include' }));
  await attempt('jobs', () => fetch(D + '/batch/jobs', { credentials: 'include' }));
  await attempt('cancel', () => fetch(D + '/batch/jobs/${job}', { method: 'DELETE', credentials: 'include' }));
  await attempt('cancelPost', () => fetch(D + '/batch/jobs/${job}', { method: 'POST', mode: 'no-cors', credentials: 'include' }));
  await attempt('clear', () => fetch(D + '/cache/clear', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ namespace: 'files' }) }));
  out.events = await new Promise((resolve) => {
    const got = [];
    const es = new EventSource(D + '/events', { withCredentials: true });
    es.onopen = () => got.push('open');
    es.onmessage = (e) => got.push(e.data);
    es.onerror = () => { const state = es.readyState; es.close(); resolve({ error: true, state, got }); };
    setTimeout(() => { es.close(); resolve({ error: false, got }); }, 5000);
  });
  out.done = true;
})();
</script>`;
}

t.test('a page of another origin in the same browser, with the cookie present, gets nothing and changes nothing', async (t) => {
  const read = () => api('GET', `/files/read?path=${encodeURIComponent(file)}`);
  await read();
  t.equal((await read()).cached, true, 'namespace files has an entry');
  const size = (await stats()).cache_stats.namespaces.files.size;
  t.ok(size > 0);
  foreignJob = await slowJob(300);
  await until('the job running', async () => (await api('GET', `/batch/jobs/${foreignJob}`)).status === 'running');
  t.ok(await sessionCookie(), 'the dashboard\'s cookie is in this browser (127.0.0.1 is one site for every port)');
  const refusedBefore = await refusals();
  const sessionsBefore = (await stats()).sessions;

  // What went over the wire, as the browser's network layer saw it (CORS hides it from the page, not from
  // DevTools): each request to the daemon, whether it carried the session cookie, and the status it got.
  const tab = await browser.newPage();
  const cdp = await tab.createCDPSession();
  await cdp.send('Network.enable');
  const wire = new Map<string, { method?: string; url?: string; cookie?: boolean; status?: number }>();
  const entry = (id: string) => wire.get(id) ?? wire.set(id, {}).get(id)!;
  cdp.on('Network.requestWillBeSent', (e) => Object.assign(entry(e.requestId), { method: e.request.method, url: e.request.url }));
  cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
    const cookie = e.associatedCookies.some((c) => c.cookie.name === `hearth_session_${d.port}` && c.blockedReasons.length === 0);
    const headers = Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k.toLowerCase(), v]));
    entry(e.requestId).cookie = cookie && String(headers.cookie ?? '').includes(`hearth_session_${d.port}=`);
    // A CORS preflight has no requestWillBeSent of its own: its method is in its headers.
    entry(e.requestId).method ??= String(headers[':method'] ?? '');
  });
  cdp.on('Network.responseReceivedExtraInfo', (e) => (entry(e.requestId).status = e.statusCode));
  let out: any;
  try {
    await tab.goto(foreignUrl);
    await tab.waitForFunction(() => (window as any).__out?.done === true, { timeout: LIVE, polling: 50 });
    out = await tab.evaluate(() => (window as any).__out);
  } finally {
    await tab.close();
    await page.bringToFront();
  }

  for (const name of ['stats', 'session', 'jobs', 'cancel']) t.equal(out[name].threw, 'TypeError', `${name}: the fetch failed (TypeError)`);
  for (const name of ['statsNoCors', 'cancelPost', 'clear']) t.match(out[name], { threw: null, type: 'opaque', status: 0, body: '' }, `${name}: an opaque answer, nothing readable`);
  t.match(out.events, { error: true, state: 2 }, 'the EventSource failed and closed');
  t.same(out.events.got, [], 'and got no event');
  const toDaemon = [...wire.values()].filter((r) => r.url === undefined || r.url.startsWith(d.url));
  const seen = toDaemon.filter((r) => r.status !== undefined);
  t.ok(seen.length >= 8, `the browser sent its requests to the daemon (${seen.length})`);
  for (const r of seen) {
    const what = `${r.method} ${r.url?.slice(d.url.length) ?? '(preflight)'}`;
    t.equal(r.status, 403, `${what}: refused with 403`);
    if (r.method !== 'OPTIONS') t.equal(r.cookie, true, `${what}: sent with the session cookie`);
  }
  const cancel = (r: { method?: string; url?: string }) => r.url === `${d.url}/batch/jobs/${foreignJob}`;
  t.ok(toDaemon.some((r) => cancel(r) && r.method === 'OPTIONS' && r.status === 403), 'the DELETE\'s preflight was refused');
  t.notOk(seen.some((r) => cancel(r) && r.method === 'DELETE'), 'so the DELETE itself was never sent');

  const job = await api('GET', `/batch/jobs/${foreignJob}`);
  t.equal(job.status, 'running', 'the job still runs');
  t.equal((await stats()).cache_stats.namespaces.files.size, size, 'namespace files keeps its entries');
  t.equal((await read()).cached, true, 'namespace files was not cleared');
  const refusedAfter = await refusals();
  const sessionsAfter = (await stats()).sessions;
  t.ok(sum(refusedAfter) >= sum(refusedBefore) + seen.length, `the daemon answered 403 to each (${sum(refusedBefore)} -> ${sum(refusedAfter)})`);
  for (const route of ['GET /optimization/stats', 'POST /cache/clear', 'GET /events']) {
    t.ok((refusedAfter.get(route) ?? 0) > (refusedBefore.get(route) ?? 0), `${route}: 403 counted`);
  }
  t.equal(sessionsAfter.sessions, sessionsBefore.sessions, 'the session count is the same');
  t.equal(sessionsAfter.requests_refused, sessionsBefore.requests_refused, 'each refused by the origin check, before its cookie was looked at');

  await api('DELETE', `/batch/jobs/${foreignJob}`);
  jobsToCancel.delete(foreignJob);
});

// ---------------------------------------------------------------- 9. a screenshot under load

t.test('a screenshot of the dashboard under load', async (t) => {
  const id = await slowJob(400);
  await api('GET', `/git/summary?repo=${encodeURIComponent(repo)}`);
  let loading = true;
  const load = (async () => {
    let n = 0;
    while (loading) {
      await Promise.all([
        api('GET', `/git/summary?repo=${encodeURIComponent(repo)}`),
        api('POST', '/git/status', { repo }),
        api('GET', `/files/read?path=${encodeURIComponent(file)}`),
        api('GET', `/files/stat?path=${encodeURIComponent(file)}`),
        n++ % 3 === 0 ? api('POST', '/batch/process', { operation: 'sha256', items: ['a', 'b', 'c', 'd'] }) : undefined,
      ]);
      await sleep(20);
    }
  })();
  try {
    await page.waitForSelector(`#repos tr[data-repo="${repo}"]`, { timeout: LIVE });
    await page.waitForFunction(
      (sel) => (document.querySelector(sel) as HTMLProgressElement | null)?.value! > 2,
      { timeout: LIVE, polling: 50 },
      `#jobs [data-job="${id}"] progress[data-col="progress"]`,
    );
    await page.waitForSelector('#routes tr[data-route="POST /git/status"]', { timeout: LIVE });
    await morePolls(page, 2);
    t.match(await text(page, `#repos tr[data-repo="${repo}"] [data-col="branch"]`), /main/, 'the repository row shows its branch');
    const dir = tempDir('hearth-shot-');
    const path = join(dir, 'dashboard.png');
    await page.screenshot({ path, type: 'png' });
    const png = readFileSync(path);
    t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
    t.ok(statSync(path).size > 30_000, `not trivial (${statSync(path).size} bytes)`);
    t.same([png.readUInt32BE(16), png.readUInt32BE(20)], [1280, 900], '1280x900');
    if (process.env.HEARTH_WRITE_SCREENSHOT === '1') copyFileSync(path, join(root, 'plugins/dashboard/screenshot.png'));
  } finally {
    loading = false;
    await load;
    await api('DELETE', `/batch/jobs/${id}`);
    jobsToCancel.delete(id);
  }
});

// ---------------------------------------------------------------- 1 (end). nothing went wrong

t.test('the dashboard had no console error or warning, no page error and no CSP violation', async (t) => {
  t.same(await page.evaluate(() => (window as any).__csp), [], 'no securitypolicyviolation on the page');
  t.same(problems, [], 'nothing reported');
});

// ---------------------------------------------------------------- 8. logout

t.test('the logout button ends the session: #login shown, /ui/session 401 for that cookie', async (t) => {
  const cookie = await sessionCookie();
  t.ok(cookie);
  const header = { cookie: `${cookie!.name}=${cookie!.value}`, origin: d.url };
  t.equal((await tcpRequest(d.url, '/ui/session', { headers: header })).status, 200, 'the cookie authorises /ui/session before');
  const sessions = (await stats()).sessions.sessions;

  const out = page.waitForResponse((r) => r.url() === `${d.url}/ui/logout`, { timeout: LIVE });
  await page.click('button[data-action="logout"]');
  t.equal((await out).status(), 200, 'POST /ui/logout');
  await page.waitForSelector('#login', { visible: true, timeout: LIVE });
  t.notOk(await visible(page, '#dashboard'), '#dashboard hidden');
  const after = await tcpRequest(d.url, '/ui/session', { headers: header });
  t.equal(after.status, 401, 'GET /ui/session: 401 for that cookie');
  t.equal(after.json?.error?.code, 'UNAUTHORIZED');
  t.equal(await sessionCookie(), undefined, 'the browser dropped the cookie');
  t.equal((await stats()).sessions.sessions, sessions - 1, 'the daemon holds one session fewer');
  // Polling stopped: no request is made by the page any more.
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await sleep(2200);
  t.same(requests, [], 'the logged-out page polls nothing');
  t.same(problems.filter((p) => !/status of 401/.test(p)), [], 'no new problem (a 401 a poll in flight met is no error)');
});
