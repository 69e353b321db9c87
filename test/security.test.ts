// The guards of a local daemon: the bearer token on TCP, the Host allow-list (DNS rebinding), the Origin and
// Sec-Fetch-Site checks (cross-origin browser requests), no CORS, private files, and no token in the logs.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { Agent } from 'undici';
import { startDaemon } from '../src/daemon.js';
import { hostName, tokenMatcher } from '../src/http/guard.js';
import { bootDaemon, cleanEnv, socketRequest, tcpRequest, tempDir, type RawAnswer, type RequestInit, type TestDaemon } from './helpers/daemon.js';

const echoModule = fileURLToPath(new URL('./fixtures/plugins/echo/index.js', import.meta.url));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const d: TestDaemon = await bootDaemon({
  config: { log: { level: 'debug' }, plugins: { echo: { module: echoModule } } },
});
const socketAgent = new Agent({ connect: { socketPath: d.socket } });
t.teardown(async () => {
  await socketAgent.close();
  await d.close();
});

const WRONG_TOKEN = 'wrong-token-0123456789abcdefghijklmnop';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Every answer seen in this file, to check that none carries CORS headers. */
const seen: Array<{ what: string; res: RawAnswer }> = [];

async function tcp(path: string, init: RequestInit = {}): Promise<RawAnswer> {
  const res = await tcpRequest(d.url, path, init);
  seen.push({ what: `TCP ${init.method ?? 'GET'} ${path} ${JSON.stringify(init.headers ?? {})}`, res });
  return res;
}

async function viaSocket(path: string, init: RequestInit = {}): Promise<RawAnswer> {
  const res = await socketRequest(socketAgent, path, init);
  seen.push({ what: `socket ${init.method ?? 'GET'} ${path}`, res });
  return res;
}

/** Bytes written as is on a TCP connection (to send no Host at all); resolves with what came back. */
function rawTcp(payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(d.port, '127.0.0.1');
    let out = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (out += chunk));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve(out);
    });
    socket.write(payload);
  });
}

function checkError(t: Test, res: RawAnswer, status: number, code: string): void {
  t.equal(res.status, status, `status ${status}`);
  t.equal(res.json?.success, false, 'success is false');
  t.equal(res.json?.error?.code, code, `code ${code}`);
  t.type(res.json?.error?.message, 'string', 'message is a string');
  t.match(res.json?.request_id, UUID, 'request_id is a UUID');
  t.equal(res.headers['x-request-id'], res.json?.request_id, 'X-Request-Id equals request_id');
  t.notOk('data' in (res.json ?? {}), 'no data');
}

function checkOk(t: Test, res: RawAnswer, what: string): void {
  t.equal(res.status, 200, `${what}: 200`);
  t.equal(res.json?.success, true, `${what}: success`);
}

t.test('TCP needs the token', async (t) => {
  for (const path of ['/plugins', '/optimization/stats', '/openapi.json', '/metrics', '/echo/text']) {
    const res = await tcp(path);
    checkError(t, res, 401, 'UNAUTHORIZED');
    t.match(String(res.headers['www-authenticate']), /^Bearer\b/, `${path}: WWW-Authenticate names Bearer`);
  }
  const unknown = await tcp('/no/such/route');
  checkError(t, unknown, 401, 'UNAUTHORIZED');
  t.comment('an unknown path answers 401 too, so routes cannot be probed without the token');

  const post = await tcp('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"a"}' });
  checkError(t, post, 401, 'UNAUTHORIZED');

  for (const [what, authorization] of [
    ['wrong token', `Bearer ${WRONG_TOKEN}`],
    ['empty bearer', 'Bearer '],
    ['token without scheme', d.token],
    ['Basic scheme', `Basic ${Buffer.from(`user:${d.token}`).toString('base64')}`],
    ['token prefix', `Bearer ${d.token.slice(0, -1)}`],
    ['token with a suffix', `Bearer ${d.token}x`],
    ['token twice', `Bearer ${d.token}${d.token}`],
  ] as const) {
    const res = await tcp('/plugins', { headers: { authorization } });
    t.equal(res.status, 401, `${what}: 401`);
    t.equal(res.json?.error?.code, 'UNAUTHORIZED', `${what}: UNAUTHORIZED`);
    t.notOk(res.text.includes(d.token), `${what}: the answer does not echo the token`);
  }

  checkOk(t, await tcp('/plugins', { headers: bearer(d.token) }), 'right token');
  checkOk(t, await tcp('/echo', { method: 'POST', headers: { ...bearer(d.token), 'content-type': 'application/json' }, body: '{"name":"a"}' }), 'right token, POST');
});

t.test('GET /health needs no token', async (t) => {
  const res = await tcp('/health');
  checkOk(t, res, '/health');
  t.equal(res.json?.data?.status, 'ok');
  const wrong = await tcp('/health', { headers: bearer(WRONG_TOKEN) });
  checkOk(t, wrong, '/health with a wrong token');
  checkOk(t, await tcp('/echo/open'), 'a plugin route declared auth: false');
});

t.test('auth: false is per route, not per path', async (t) => {
  // GET /echo/open is public; POST /echo/open is not (auth defaults to true).
  const res = await tcp('/echo/open', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.equal(res.status, 401, 'POST on a path whose GET is public still needs the token');
  t.equal(res.json?.error?.code, 'UNAUTHORIZED');
  t.notMatch(res.text, /posted/, 'the guarded handler did not run');
  const withToken = await tcp('/echo/open', {
    method: 'POST',
    headers: { ...bearer(d.token), 'content-type': 'application/json' },
    body: '{}',
  });
  checkOk(t, withToken, 'POST /echo/open with the token');
});

t.test('the Host header must be an allowed loopback name', async (t) => {
  for (const host of ['evil.example', '127.0.0.1.nip.io', 'localhost.evil.example', `evil.example:${d.port}`, '127.0.0.2', '0.0.0.0', '[::2]']) {
    const res = await tcp('/plugins', { headers: { ...bearer(d.token), host } });
    t.test(`Host: ${host}`, async (t) => checkError(t, res, 403, 'HOST_NOT_ALLOWED'));
    const health = await tcp('/health', { headers: { host } });
    t.equal(health.status, 403, `Host: ${host}: /health is guarded too (DNS rebinding)`);
    t.equal(health.json?.error?.code, 'HOST_NOT_ALLOWED');
  }
  for (const host of ['localhost:1234', `[::1]:7433`, '127.0.0.1', `127.0.0.1:${d.port}`, 'localhost', 'LocalHost:9', '[::1]']) {
    checkOk(t, await tcp('/plugins', { headers: { ...bearer(d.token), host } }), `Host: ${host}`);
  }
});

t.test('a request without a Host header is refused', async (t) => {
  // HTTP/1.0 may omit Host; the guard must refuse it.
  const old = await rawTcp(`GET /plugins HTTP/1.0\r\nAuthorization: Bearer ${d.token}\r\n\r\n`);
  t.match(old, /^HTTP\/1\.[01] 403 /, 'HTTP/1.0 without Host: 403');
  t.match(old, /"code":"HOST_NOT_ALLOWED"/, 'HOST_NOT_ALLOWED');
  t.notMatch(old, /"success":true/);
  // HTTP/1.1 requires Host; whoever refuses it, nothing is served.
  const modern = await rawTcp(`GET /plugins HTTP/1.1\r\nAuthorization: Bearer ${d.token}\r\nConnection: close\r\n\r\n`);
  t.match(modern, /^HTTP\/1\.1 4\d\d /, 'HTTP/1.1 without Host: a 4xx');
  t.notMatch(modern, /"success":true/, 'no data');
});

t.test('only our own Origin is allowed', async (t) => {
  const foreign = [
    'http://evil.example',
    'null',
    `http://localhost:${d.port + 1}`,
    `http://127.0.0.1:${d.port === 80 ? 81 : d.port + 1}`,
    `https://127.0.0.1:${d.port}`,
    `https://localhost:${d.port}`,
    'http://127.0.0.1',
    `http://evil.example:${d.port}`,
    `http://127.0.0.1.nip.io:${d.port}`,
    'file://',
    'not a url',
  ];
  for (const origin of foreign) {
    const res = await tcp('/plugins', { headers: { ...bearer(d.token), origin } });
    t.test(`Origin: ${origin}`, async (t) => checkError(t, res, 403, 'ORIGIN_NOT_ALLOWED'));
    const health = await tcp('/health', { headers: { origin } });
    t.equal(health.json?.error?.code, 'ORIGIN_NOT_ALLOWED', `Origin: ${origin}: /health is guarded too`);
    const post = await tcp('/echo', {
      method: 'POST',
      headers: { ...bearer(d.token), origin, 'content-type': 'application/json' },
      body: '{"name":"a"}',
    });
    t.equal(post.status, 403, `Origin: ${origin}: a POST is refused`);
  }
  for (const origin of [`http://127.0.0.1:${d.port}`, `http://localhost:${d.port}`, `http://[::1]:${d.port}`]) {
    checkOk(t, await tcp('/plugins', { headers: { ...bearer(d.token), origin } }), `Origin: ${origin}`);
  }
});

t.test('Sec-Fetch-Site must be same-origin or none', async (t) => {
  for (const site of ['cross-site', 'same-site']) {
    const res = await tcp('/plugins', { headers: { ...bearer(d.token), 'sec-fetch-site': site } });
    t.test(`Sec-Fetch-Site: ${site}`, async (t) => checkError(t, res, 403, 'ORIGIN_NOT_ALLOWED'));
    const health = await tcp('/health', { headers: { 'sec-fetch-site': site } });
    t.equal(health.status, 403, `Sec-Fetch-Site: ${site} on /health`);
  }
  for (const site of ['same-origin', 'none']) {
    checkOk(t, await tcp('/plugins', { headers: { ...bearer(d.token), 'sec-fetch-site': site } }), `Sec-Fetch-Site: ${site}`);
  }
});

t.test('the guard checks Host before the token', async (t) => {
  const res = await tcp('/plugins', { headers: { host: 'evil.example' } });
  checkError(t, res, 403, 'HOST_NOT_ALLOWED');
  const origin = await tcp('/plugins', { headers: { origin: 'http://evil.example' } });
  checkError(t, origin, 403, 'ORIGIN_NOT_ALLOWED');
});

t.test('the unix socket needs no token', async (t) => {
  checkOk(t, await viaSocket('/plugins'), 'socket /plugins');
  checkOk(t, await viaSocket('/optimization/stats'), 'socket /optimization/stats');
  const wrong = await viaSocket('/plugins', { headers: bearer(WRONG_TOKEN) });
  checkOk(t, wrong, 'a wrong token on the socket is ignored');
  const res = await viaSocket('/no/such/route');
  checkError(t, res, 404, 'NOT_FOUND');
});

t.test('no CORS, ever', async (t) => {
  const preflight = await tcp('/plugins', {
    method: 'OPTIONS',
    headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
  });
  checkError(t, preflight, 403, 'ORIGIN_NOT_ALLOWED');
  const ownOrigin = await tcp('/health', {
    method: 'OPTIONS',
    headers: { origin: `http://127.0.0.1:${d.port}`, 'access-control-request-method': 'GET' },
  });
  checkError(t, ownOrigin, 405, 'METHOD_NOT_ALLOWED');
  const withToken = await tcp('/plugins', { method: 'OPTIONS', headers: bearer(d.token) });
  checkError(t, withToken, 405, 'METHOD_NOT_ALLOWED');
  const noToken = await tcp('/plugins', { method: 'OPTIONS' });
  t.ok([401, 403, 405].includes(noToken.status), `OPTIONS without a token: ${noToken.status}`);
  t.equal(noToken.json?.success, false, 'an envelope');
  await viaSocket('/health', { method: 'OPTIONS', headers: { origin: `http://127.0.0.1:${d.port}` } });

  t.ok(seen.length > 50, `many answers were checked (${seen.length})`);
  const withCors = seen.filter(({ res }) => Object.keys(res.headers).some((h) => h.toLowerCase().startsWith('access-control-')));
  t.same(
    withCors.map((s) => s.what),
    [],
    'no answer in this file carried an Access-Control-* header',
  );
  t.ok(
    seen.every(({ res }) => res.headers.vary === undefined || !/origin/i.test(String(res.headers.vary))),
    'nothing varies by Origin (no CORS middleware)',
  );
});

t.test('files are private: state dir 0700, token 0600, socket 0600', async (t) => {
  t.equal(statSync(d.stateDir).mode & 0o777, 0o700, 'state dir');
  const tokenFile = join(d.stateDir, 'token');
  t.equal(statSync(tokenFile).mode & 0o777, 0o600, 'token file');
  t.equal(readFileSync(tokenFile, 'utf8').trim(), d.token, 'the token file holds the token');
  t.ok(d.token.length >= 32, 'a long token');
  t.equal(statSync(d.socket).mode & 0o777, 0o600, 'socket');
  t.ok(statSync(d.socket).isSocket(), 'the socket is a socket');
});

t.test('the token never appears in the logs', async (t) => {
  // Requests carrying the right and a wrong token, on success and error paths, at log level debug.
  await tcp('/plugins', { headers: bearer(d.token) });
  await tcp('/plugins', { headers: bearer(WRONG_TOKEN) });
  await tcp('/echo/boom', { headers: bearer(d.token) });
  await tcp('/echo/boom', { headers: bearer(WRONG_TOKEN) });
  await tcp('/no/such', { headers: bearer(d.token) });
  await tcp('/plugins', { headers: { ...bearer(d.token), host: 'evil.example' } });
  await tcp('/echo', { method: 'POST', headers: { ...bearer(d.token), 'content-type': 'application/json' }, body: '{"name": ' });
  const text = d.logText();
  t.ok(
    d.logs.some((l) => l.msg === 'request' && l.level === 20),
    'debug request lines are written (so the check below means something)',
  );
  t.ok(d.logs.some((l) => l.level === 50 && JSON.stringify(l).includes('secret detail')), 'the 500 was logged');
  t.notOk(text.includes(d.token), 'the token is not in the log');
  t.notOk(text.includes(WRONG_TOKEN), 'a wrong token is not in the log');
  t.notOk(text.includes(d.token.slice(0, 16)), 'not even part of the token');
});

t.test('the token is made once and kept across restarts', async (t) => {
  const stateDir = join(tempDir(), 'state');
  mkdirSync(stateDir, { mode: 0o755 });
  chmodSync(stateDir, 0o755);
  let logText = '';
  const sink = () =>
    new Writable({
      write(chunk, _enc, done) {
        logText += String(chunk);
        done();
      },
    });
  const env = cleanEnv();
  const first = await startDaemon({ flags: { stateDir, port: 0 }, env, logDestination: sink() });
  let second: Awaited<ReturnType<typeof startDaemon>> | undefined;
  t.teardown(async () => {
    await first.close();
    await second?.close();
  });
  const tokenFile = join(stateDir, 'token');
  t.equal(statSync(stateDir).mode & 0o777, 0o700, 'a looser state dir is tightened to 0700');
  t.equal(statSync(tokenFile).mode & 0o777, 0o600, 'token file 0600');
  t.equal(readFileSync(tokenFile, 'utf8').trim(), first.token);
  t.equal(statSync(first.listening.socket).mode & 0o777, 0o600, 'socket 0600');
  const firstUrl = `http://127.0.0.1:${first.listening.port}`;
  checkOk(t, await tcpRequest(firstUrl, '/plugins', { headers: bearer(first.token) }), 'first daemon with its token');
  const socket = first.listening.socket;
  await first.close();
  t.notOk(existsSync(socket), 'the socket is removed on close');

  chmodSync(tokenFile, 0o644);
  second = await startDaemon({ flags: { stateDir, port: 0 }, env, logDestination: sink() });
  t.equal(second.token, first.token, 'the same token after a restart');
  t.equal(readFileSync(tokenFile, 'utf8').trim(), first.token, 'the file was not rewritten');
  t.equal(statSync(tokenFile).mode & 0o777, 0o600, 'a looser token file is tightened to 0600');
  const secondUrl = `http://127.0.0.1:${second.listening.port}`;
  checkOk(t, await tcpRequest(secondUrl, '/plugins', { headers: bearer(first.token) }), 'the old token works on the new daemon');
  const wrong = await tcpRequest(secondUrl, '/plugins', { headers: bearer(WRONG_TOKEN) });
  t.equal(wrong.status, 401);
  t.ok(logText.includes('hearth is listening'), 'both daemons logged');
  t.notOk(logText.includes(first.token), 'the token is not in their logs');

  const other = tempDir();
  const third = await startDaemon({ flags: { stateDir: other, port: 0 }, env, logDestination: sink() });
  t.not(third.token, first.token, 'another state dir has another token');
  await third.close();
});

t.test('tokenMatcher', async (t) => {
  const token = 'abcdefghijklmnopqrstuvwxyz012345';
  const matches = tokenMatcher(token);
  t.equal(matches(`Bearer ${token}`), true, 'the token');
  t.equal(matches(undefined), false, 'no header');
  t.equal(matches(''), false, 'empty header');
  t.equal(matches('Bearer '), false, 'empty token');
  t.equal(matches('Bearer'), false, 'scheme alone');
  t.equal(matches(token), false, 'no scheme');
  t.equal(matches(`Basic ${token}`), false, 'another scheme');
  t.equal(matches(`Bearer ${token.slice(0, -1)}`), false, 'a prefix');
  t.equal(matches(`Bearer ${token}0`), false, 'longer');
  t.equal(matches(`Bearer ${token.toUpperCase()}`), false, 'case matters in the token');
  t.equal(matches(`Bearer ${'x'.repeat(10_000)}`), false, 'a long wrong token does not throw');
  t.equal(matches(`Bearer ${'x'.repeat(token.length)}`), false, 'a wrong token of the same length');
  t.equal(matches(`Bearer ${token.slice(0, -2)}é`), false, 'multi-byte characters do not throw');
  t.equal(tokenMatcher('another-token-0123456789abcdef')(`Bearer ${token}`), false, 'each matcher knows its own token');
});

t.test('hostName', async (t) => {
  t.equal(hostName('localhost'), 'localhost');
  t.equal(hostName('localhost:7433'), 'localhost');
  t.equal(hostName('LocalHost:1'), 'localhost');
  t.equal(hostName('127.0.0.1'), '127.0.0.1');
  t.equal(hostName('127.0.0.1:80'), '127.0.0.1');
  t.equal(hostName('[::1]'), '[::1]');
  t.equal(hostName('[::1]:7433'), '[::1]');
  t.equal(hostName('[::1'), '[::1', 'an unclosed bracket stays as is (and matches nothing)');
  t.equal(hostName('  localhost:1  '), 'localhost', 'whitespace is trimmed');
  t.equal(hostName('127.0.0.1.nip.io:7433'), '127.0.0.1.nip.io');
  t.equal(hostName('evil.example'), 'evil.example');
});
