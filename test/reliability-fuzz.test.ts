// Fuzzing the control API: thousands of generated requests (seeded, so a failure replays) across every route
// that /openapi.json lists, over both transports: wrong types, huge and deep JSON, invalid UTF-8, odd methods
// and headers, path tricks, random query parameters. No answer may be a 5xx (client errors never trip a
// breaker, so not even 503), every error is an envelope with a code, and the daemon still answers after.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request, type Dispatcher } from 'undici';
import { bootDaemon, tempDir } from './helpers/daemon.js';
import { git, isolateGit, makeRepo, write } from './helpers/git.js';

const SEED = Number(process.env.HEARTH_FUZZ_SEED ?? 20261125);
const TOTAL = Number(process.env.HEARTH_FUZZ_REQUESTS ?? 5000);
const CONCURRENCY = 16;

isolateGit();
const root = tempDir('hearth-fuzz-');
const repo = makeRepo(root, 'repo');
write(repo, 'a.txt', 'a\n');
git(repo, 'add', '.');
git(repo, 'commit', '-qm', 'first');
mkdirSync(join(root, 'dir'));
writeFileSync(join(root, 'file.txt'), 'hello\n');

const d = await bootDaemon({
  config: {
    server: { body_limit_bytes: 65536 },
    plugins: { files: { roots: [root] }, git: { roots: [root] }, batch: { roots: [root], max_items: 1000 } },
  },
});
const agent = new Agent({ connect: { socketPath: d.socket } });
t.teardown(async () => {
  await agent.close();
  await d.close();
});

/** mulberry32: small, seeded, good enough to pick cases. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick, chance: (p: number) => next() < p };
}
const r = prng(SEED);

const PATH_TRICKS = [
  join(root, 'file.txt'),
  join(root, 'dir'),
  join(root, 'missing.txt'),
  repo,
  join(repo, 'a.txt'),
  `${root}/../../etc/passwd`,
  '/etc/passwd',
  '../../../../etc/shadow',
  `${root}/%2e%2e/%2e%2e/etc/passwd`,
  `${root}/file.txt\u0000.png`,
  '\u0000',
  '',
  '.',
  '/',
  '~',
  `${root}/${'a'.repeat(300)}`,
  `${root}/${'deep/'.repeat(200)}x`,
  'C:\\Windows\\system.ini',
  `${root}/\u00e9\u{1f600}`,
  `${root}/dir/`,
  '//',
  `file://${root}/file.txt`,
];

function randomString(): string {
  switch (r.int(7)) {
    case 0:
      return r.pick(PATH_TRICKS);
    case 1:
      return 'x'.repeat(r.int(5000));
    case 2:
      return String.fromCharCode(...Array.from({ length: r.int(40) }, () => r.int(0xffff)));
    case 3:
      return r.pick(['main', 'feature', 'bad..name', '-x', 'HEAD', '@{-1}', 'refs/heads/main', 'a b', 'double', 'sha256', 'files', 'nope']);
    case 4:
      return String(r.int(1e9) - 5e8);
    case 5:
      return '%' + r.int(256).toString(16) + '%zz%00%ff';
    default:
      return `v${r.int(100)}`;
  }
}

function randomValue(depth = 0): unknown {
  switch (r.int(depth > 3 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, 3]);
    case 3:
    case 4:
    case 5:
      return randomString();
    case 6:
      return Array.from({ length: r.int(5) }, () => randomValue(depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(5); i > 0; i--) o[r.pick(KEYS)] = randomValue(depth + 1);
      return o;
    }
  }
}

const KEYS = ['path', 'paths', 'content', 'encoding', 'if_match', 'repo', 'include_untracked', 'include_ignored', 'branch_name', 'base_branch', 'checkout', 'force', 'items', 'operation', 'batch_size', 'max_concurrent', 'namespace', 'limit', 'format', 'type', '__proto__', 'constructor', 'x'];

function deep(n: number): string {
  return r.chance(0.5) ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n);
}

interface Case {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

type Route = { method: string; path: string; query: string[]; body: string[] };

/** Percent-encodes the UTF-8 bytes (lone surrogates included, as U+FFFD), where encodeURIComponent throws. */
const enc = (s: string) => [...Buffer.from(s)].map((b) => (/[A-Za-z0-9._~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');

function makePath(route: Route): string {
  let path = route.path.replace(/\{[^}]+\}/g, () => enc(randomString()).slice(0, 200));
  if (r.chance(0.1)) path = r.pick([`${path}/..`, `${path}/../health`, `${path}%2F..%2F`, `${path}/`, `/${path}`, `${path}%00`, `${path}/${'z'.repeat(2000)}`, path.toUpperCase(), `/..${path}`]);
  const params: string[] = [];
  const n = r.chance(0.3) ? r.int(6) : r.int(3);
  for (let i = 0; i < n; i++) {
    const key = route.query.length && r.chance(0.7) ? r.pick(route.query) : r.chance(0.8) ? r.pick(KEYS) : enc(randomString()).slice(0, 100);
    const value = r.chance(0.1) ? r.pick(['%00', '%ff%fe', '%', '%zz', '..%2f..%2f']) : enc(randomString()).slice(0, 3000);
    params.push(`${key}=${value}`);
  }
  if (r.chance(0.05)) params.push('&&&==&');
  return params.length ? `${path}?${params.join('&')}` : path;
}

function makeBody(route: Route): string | Buffer | undefined {
  if (route.body.length && r.chance(0.5)) {
    // Near valid: the route's own fields, with values of any type (paths and names with tricks among them).
    const o: Record<string, unknown> = {};
    for (const key of route.body) if (r.chance(0.7)) o[key] = r.chance(0.5) ? randomString() : randomValue(1);
    return JSON.stringify(o);
  }
  switch (r.int(10)) {
    case 0:
      return undefined;
    case 1:
      return deep(r.pick([100, 1000, 5000, 20000]));
    case 2:
      return JSON.stringify({ items: Array.from({ length: r.int(3000) }, () => r.int(100)), operation: r.pick(['double', 'sha256', 'count_lines', 'nope']) });
    case 3:
      return Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]); // {"a":"<invalid UTF-8>"}
    case 4:
      return '{"a":' + 'x'.repeat(r.int(10)) + '}';
    case 5:
      return 'x'.repeat(r.pick([10, 70000, 200000]));
    default:
      return JSON.stringify(randomValue());
  }
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'PROPFIND', 'FOO'];

function makeCase(routes: Route[]): Case {
  const route = r.pick(routes);
  const method = r.chance(0.75) ? route.method : r.pick(METHODS);
  const headers: Record<string, string> = {};
  let body = method === 'GET' || method === 'HEAD' ? (r.chance(0.05) ? makeBody(route) : undefined) : makeBody(route);
  if (body !== undefined) headers['content-type'] = r.chance(0.85) ? 'application/json' : r.pick(['text/plain', 'application/json; charset=latin1', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', '', 'application/json; charset=utf-16']);
  if (r.chance(0.1)) headers[r.pick(['accept', 'x-request-id', 'if-none-match', 'accept-encoding', 'range', 'x-forwarded-for', 'cookie'])] = randomString().replace(/[^\x20-\x7e]/g, '').slice(0, 500);
  if (r.chance(0.03)) headers['content-encoding'] = r.pick(['gzip', 'deflate', 'br', 'identity', 'bogus']);
  if (body === undefined && r.chance(0.02)) body = '';
  return { method, path: makePath(route), headers, ...(body !== undefined ? { body } : {}) };
}

interface Result {
  status: number;
  contentType: string;
  text: string;
}

async function send(c: Case, tcp: boolean): Promise<Result> {
  const headers = { ...c.headers, ...(tcp ? { authorization: `Bearer ${d.token}` } : {}) };
  const origin = tcp ? d.url : 'http://localhost';
  const res = await request(`${origin}${c.path}`, {
    method: c.method as Dispatcher.HttpMethod,
    headers,
    ...(c.body !== undefined ? { body: c.body } : {}),
    ...(tcp ? {} : { dispatcher: agent }),
    headersTimeout: 20_000,
    bodyTimeout: 20_000,
  });
  const contentType = String(res.headers['content-type'] ?? '');
  if (contentType.startsWith('text/event-stream')) {
    // A stream that would never end: its headers are the answer.
    res.body.on('error', () => {});
    res.body.destroy();
    return { status: res.statusCode, contentType, text: '' };
  }
  return { status: res.statusCode, contentType, text: await res.body.text() };
}

t.test(`${TOTAL} generated requests (seed ${SEED}): no 5xx, every error an envelope, the daemon lives`, async (t) => {
  const spec = await d.client.call<any>('GET', '/openapi.json').catch(async () => JSON.parse((await d.client.raw('GET', '/openapi.json')).body));
  const routes: Route[] = [];
  for (const [path, ops] of Object.entries<Record<string, unknown>>(spec.paths)) {
    for (const [method, op] of Object.entries<any>(ops)) {
      if (!['get', 'post', 'put', 'delete', 'patch'].includes(method)) continue;
      const query = ((op.parameters ?? []) as Array<{ in: string; name: string }>).filter((p) => p.in === 'query').map((p) => p.name);
      const body = Object.keys(op.requestBody?.content?.['application/json']?.schema?.properties ?? {});
      routes.push({ method: method.toUpperCase(), path, query, body });
    }
  }
  t.ok(routes.length >= 20, `${routes.length} routes from /openapi.json`);
  const cases = Array.from({ length: TOTAL }, () => makeCase(routes));
  const transports = cases.map(() => r.chance(0.5));
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  let next = 0;
  const start = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < cases.length) {
        const i = next++;
        const c = cases[i]!;
        const describe = () => `#${i} ${transports[i] ? 'tcp' : 'socket'} ${c.method} ${c.path.slice(0, 200)} body=${String(c.body ?? '').slice(0, 100)}`;
        let res: Result;
        try {
          res = await send(c, transports[i]!);
        } catch (err) {
          failures.push(`${describe()}: request failed: ${(err as Error).message}`);
          continue;
        }
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500) failures.push(`${describe()}: ${res.status} ${res.text.slice(0, 300)}`);
        if (res.status >= 400 && c.method !== 'HEAD') {
          let json: any;
          try {
            json = JSON.parse(res.text);
          } catch {
            json = undefined;
          }
          if (json?.success !== false || typeof json?.error?.code !== 'string') failures.push(`${describe()}: ${res.status} not an envelope: ${res.text.slice(0, 200)}`);
        }
      }
    }),
  );
  const seconds = (Date.now() - start) / 1000;
  t.same(failures.slice(0, 20), [], `no 5xx, no non-envelope errors, no failed requests (${failures.length} in all)`);
  t.comment(`fuzz: ${TOTAL} requests in ${seconds.toFixed(1)} s, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  const health = await d.client.call<any>('GET', '/health');
  t.equal(health.status, 'ok', 'the daemon answers /health after, and is not degraded');
  const stats = await d.client.call<any>('GET', '/optimization/stats');
  for (const [name, b] of Object.entries<any>(stats.circuit_breakers ?? {})) t.equal(b.failures, 0, `${name} counted no failure`);
});
