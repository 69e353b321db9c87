// The dashboard of a daemon in a team setup, in a real browser (Debian's chromium through puppeteer-core):
// one real redis-server, daemon A (the page's) and daemon B sharing its cache tier and batch queue. The
// page's shared-tier line shows the numbers of A's /optimization/stats and says when Redis goes away; its
// queue line lists both daemons. Skipped without chromium or redis-server (CI installs both).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CHROMIUM, haveChromium } from './helpers/chromium.js';
import { bootDaemon, tempDir, type TestDaemon } from './helpers/daemon.js';
import { waitFor } from './helpers/processes.js';
import { skipWithoutRedis, startRedis, type TestRedis } from './helpers/redis.js';

t.setTimeout(120_000);
const LIVE = 10_000;

const noBrowser = !haveChromium() && process.env.CI !== 'true' ? `no ${CHROMIUM}: apt-get install chromium` : false;

async function teamDaemon(t: Tap.Test, redis: TestRedis, secret: string, extra: object = {}): Promise<TestDaemon> {
  const target = { socket: redis.socket };
  const d = await bootDaemon({
    config: {
      server: { port: 0 },
      cache: { shared: target, shared_secret_file: secret, shared_timeout_ms: 200 },
      circuit_breaker: { failure_threshold: 2, reset_timeout_seconds: 1 },
      pool: { max_threads: 1 },
      plugins: { batch: { queue: { ...target, heartbeat_ms: 500 } }, ...extra },
    },
  });
  t.teardown(() => d.close());
  return d;
}

t.test('the dashboard shows the shared tier and the daemons on the queue', { skip: skipWithoutRedis || noBrowser }, async (t) => {
  const puppeteer = (await import('puppeteer-core')).default;
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const secret = join(tempDir('hearth-ui-team-'), 'secret');
  writeFileSync(secret, 'team-secret-0123456789abcdef\n', { mode: 0o600 });
  const a = await teamDaemon(t, redis, secret, { dashboard: {} });
  const b = await teamDaemon(t, redis, secret);
  const idOf = async (d: TestDaemon) => (await d.client.call<any>('GET', '/batch/daemons')).self as string;
  const [idA, idB] = [await idOf(a), await idOf(b)];

  // Computed on B, then asked of A: three shared-tier hits on A.
  const items = ['one', 'two', 'three'];
  await b.client.call('POST', '/batch/process', { operation: 'sha256', items });
  await a.client.call('POST', '/batch/process', { operation: 'sha256', items });
  const shared = (await a.client.call<any>('GET', '/optimization/stats')).cache_stats.shared;
  t.equal(shared.hits, 3, 'A answered the three from the shared tier');

  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${String(err)}`));
  const { url } = await a.client.call<{ url: string }>('POST', '/ui/login-url');
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('body[data-ready="1"]', { timeout: LIVE });
  const line = (selector: string) => page.$eval(selector, (e) => ((e as HTMLElement).hidden ? '(hidden)' : (e.textContent ?? '').trim()));

  const cacheLine = await waitFor('the shared-tier line', async () => {
    const text = await line('#cache-shared');
    return text.includes('connected') ? text : undefined;
  }, LIVE);
  t.match(cacheLine, `shared unix:${redis.socket}: connected`, 'where the tier is, and that it is connected');
  t.match(cacheLine, `${shared.hits} hits`, "the hits of A's stats");
  t.match(cacheLine, `${shared.misses} misses`, "and its misses");

  const queueLine = await waitFor('the queue line', async () => {
    const text = await line('#queue-daemons');
    return text.includes(idA) && text.includes(idB) ? text : undefined;
  }, LIVE);
  t.match(queueLine, `queue unix:${redis.socket}: 2 daemons`);
  t.match(queueLine, `${idA} (this one)`, 'A is marked as the page\'s daemon');
  t.notMatch(queueLine, `${idB} (this one)`);

  // Redis goes away: the page says so, and keeps working.
  await redis.stop();
  const away = await waitFor('unreachable', async () => {
    const text = await line('#cache-shared');
    return text.includes('unreachable') ? text : undefined;
  }, LIVE);
  t.match(away, `shared unix:${redis.socket}: unreachable`);
  const status = await waitFor('degraded on the page', async () => {
    const reasons = await page.$eval('#reasons', (e) => e.textContent ?? '');
    return reasons.includes('shared cache') ? reasons : undefined;
  }, LIVE);
  t.match(status, /shared cache unix:.* unreachable/, "/health's reason is on the page");
  const queueAway = await waitFor('the queue line to say so', async () => {
    const text = await line('#queue-daemons');
    return text.includes('unreachable') ? text : undefined;
  }, LIVE);
  t.match(queueAway, `batch queue unix:${redis.socket} unreachable`);
  t.same(problems.filter((p) => !/status of 503/.test(p)), [], 'no console error or page error (a 503 from /batch/daemons while Redis is away aside)');
});

t.test('without a queue or a shared tier, neither line is shown', { skip: noBrowser }, async (t) => {
  const puppeteer = (await import('puppeteer-core')).default;
  const d = await bootDaemon({ config: { server: { port: 0 }, plugins: { dashboard: {}, batch: {} } } });
  t.teardown(() => d.close());
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const requests: string[] = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  const { url } = await d.client.call<{ url: string }>('POST', '/ui/login-url');
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('body[data-ready="1"]', { timeout: LIVE });
  await waitFor('a few polls', async () => requests.filter((p) => p === '/optimization/stats').length >= 3, LIVE);
  t.ok(await page.$eval('#cache-shared', (e) => (e as HTMLElement).hidden), 'no shared-tier line');
  t.ok(await page.$eval('#queue-daemons', (e) => (e as HTMLElement).hidden), 'no queue line');
  t.equal(requests.filter((p) => p === '/batch/daemons').length, 0, '/batch/daemons never asked (no batch_queue in the stats)');
});
