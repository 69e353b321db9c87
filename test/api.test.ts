// The control API over both transports: the envelope, every error code of the core, route schemas (body,
// query, params), text answers, /plugins, /openapi.json, /optimization/stats and /metrics.
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { Agent } from 'undici';
import { bootDaemon, socketRequest, tcpRequest, type RawAnswer, type RequestInit, type TestDaemon } from './helpers/daemon.js';
// @ts-expect-error -- a plain JavaScript fixture without type declarations
import { bodySchema } from './fixtures/plugins/echo/index.js';

const echoModule = fileURLToPath(new URL('./fixtures/plugins/echo/index.js', import.meta.url));
const BODY_LIMIT = 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type Send = (path: string, init?: RequestInit) => Promise<RawAnswer>;

const d: TestDaemon = await bootDaemon({
  config: {
    server: { body_limit_bytes: BODY_LIMIT },
    plugins: { echo: { module: echoModule, options: { greeting: 'hi' } } },
  },
});
const socketAgent = new Agent({ connect: { socketPath: d.socket } });
t.teardown(async () => {
  await socketAgent.close();
  await d.close();
});

/** Raw requests over the unix socket (no token). */
const viaSocket: Send = (path, init = {}) => socketRequest(socketAgent, path, init);

/** Raw requests over TCP with the token. */
const viaTcp: Send = (path, init = {}) => tcpRequest(d.url, path, { ...init, headers: { authorization: `Bearer ${d.token}`, ...init.headers } });

const transports: Array<[string, Send]> = [
  ['socket', viaSocket],
  ['tcp', viaTcp],
];

const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

function checkSuccess(t: Test, res: RawAnswer, status = 200): any {
  t.equal(res.status, status, `status ${status}`);
  t.match(String(res.headers['content-type']), /^application\/json/, 'JSON content type');
  t.ok(res.json, 'the body is JSON');
  t.same(Object.keys(res.json ?? {}).sort(), ['data', 'duration_ms', 'request_id', 'success'], 'exactly the envelope keys');
  t.equal(res.json?.success, true, 'success is true');
  t.match(res.json?.request_id, UUID, 'request_id is a UUID');
  t.equal(res.headers['x-request-id'], res.json?.request_id, 'X-Request-Id equals request_id');
  t.type(res.json?.duration_ms, 'number', 'duration_ms is a number');
  t.ok(Number.isFinite(res.json?.duration_ms) && res.json.duration_ms >= 0, 'duration_ms is finite and not negative');
  return res.json?.data;
}

function checkError(t: Test, res: RawAnswer, status: number, code: string): any {
  t.equal(res.status, status, `status ${status}`);
  t.match(String(res.headers['content-type']), /^application\/json/, 'JSON content type');
  t.ok(res.json, `the body is JSON: ${res.text.slice(0, 200)}`);
  t.same(Object.keys(res.json ?? {}).sort(), ['duration_ms', 'error', 'request_id', 'success'], 'exactly the error envelope keys');
  t.equal(res.json?.success, false, 'success is false');
  t.equal(res.json?.error?.code, code, `code ${code}`);
  t.type(res.json?.error?.message, 'string', 'message is a string');
  t.ok(String(res.json?.error?.message ?? '').length > 0, 'message is not empty');
  t.match(res.json?.request_id, UUID, 'request_id is a UUID');
  t.equal(res.headers['x-request-id'], res.json?.request_id, 'X-Request-Id equals request_id');
  t.type(res.json?.duration_ms, 'number', 'duration_ms is a number');
  t.ok(res.json?.duration_ms >= 0, 'duration_ms is not negative');
  return res.json?.error;
}

const paths = (error: any): string[] => ((error?.details ?? []) as Array<{ path: string }>).map((x) => x.path);

for (const [name, send] of transports) {
  t.test(`${name}: success envelope`, async (t) => {
    const first = await send('/health');
    const data = checkSuccess(t, first);
    t.equal(data.status, 'ok');
    const second = await send('/health');
    checkSuccess(t, second);
    t.not(second.json.request_id, first.json.request_id, 'every request gets its own request_id');
  });

  t.test(`${name}: POST /echo echoes the validated body`, async (t) => {
    const data = checkSuccess(t, await send('/echo', json({ name: 'a', count: 3, tags: ['x'] })));
    t.same(data, { body: { name: 'a', count: 3, tags: ['x'] } });
    const withCharset = await send('/echo', {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: '{"name":"é"}',
    });
    t.same(checkSuccess(t, withCharset), { body: { name: 'é' } }, 'application/json; charset=utf-8 is JSON');
  });

  t.test(`${name}: POST with status 201`, async (t) => {
    t.same(checkSuccess(t, await send('/echo/created', json({ name: 'n' })), 201), { created: true, body: { name: 'n' } });
  });

  t.test(`${name}: an empty body is validated as {}`, async (t) => {
    t.same(checkSuccess(t, await send('/echo/created', { method: 'POST' }), 201), { created: true, body: {} }, 'no body at all');
    const zero = await send('/echo/created', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '' });
    t.same(checkSuccess(t, zero, 201), { created: true, body: {} }, 'an empty body needs no content type');
    const missing = checkError(t, await send('/echo', { method: 'POST' }), 400, 'VALIDATION_FAILED');
    t.same(paths(missing), ['/name'], '{} lacks the required name');
  });

  t.test(`${name}: a JSON null body is not an object`, async (t) => {
    const res = await send('/echo/created', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'null' });
    t.equal(res.status, 400, 'a literal null is not taken for a missing body');
    t.equal(res.json?.error?.code, 'VALIDATION_FAILED');
    t.same(paths(res.json?.error), ['/'], 'the body itself is the wrong type');
  });

  t.test(`${name}: BAD_JSON`, async (t) => {
    const malformed = await send('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": ' });
    checkError(t, malformed, 400, 'BAD_JSON');
    const trailing = await send('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"a"} x' });
    checkError(t, trailing, 400, 'BAD_JSON');
    // {"name":"<ff fe>"}: not UTF-8.
    const bytes = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    const invalid = await send('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: bytes });
    const error = checkError(t, invalid, 400, 'BAD_JSON');
    t.match(error.message, /UTF-8/, 'the message says why');
  });

  t.test(`${name}: VALIDATION_FAILED on the body`, async (t) => {
    const missing = checkError(t, await send('/echo', json({ count: 2 })), 400, 'VALIDATION_FAILED');
    t.same(paths(missing), ['/name']);
    t.ok(Array.isArray(missing.details) && missing.details.every((x: any) => typeof x.message === 'string' && x.in === 'body'), 'details say where and why');
    const wrongType = checkError(t, await send('/echo', json({ name: 5 })), 400, 'VALIDATION_FAILED');
    t.same(paths(wrongType), ['/name']);
    const tooSmall = checkError(t, await send('/echo', json({ name: 'a', count: 0 })), 400, 'VALIDATION_FAILED');
    t.same(paths(tooSmall), ['/count']);
    const notInteger = checkError(t, await send('/echo', json({ name: 'a', count: 1.5 })), 400, 'VALIDATION_FAILED');
    t.same(paths(notInteger), ['/count']);
    const extra = checkError(t, await send('/echo', json({ name: 'a', extra: true })), 400, 'VALIDATION_FAILED');
    t.same(paths(extra), ['/extra']);
    t.match(extra.details[0].message, /extra/, 'the message names the unknown key');
    const nested = checkError(t, await send('/echo', json({ name: 'a', tags: ['ok', 7] })), 400, 'VALIDATION_FAILED');
    t.same(paths(nested), ['/tags/1'], 'a JSON pointer into an array');
    const all = checkError(t, await send('/echo', json({ count: 'x', extra: 1 })), 400, 'VALIDATION_FAILED');
    t.same(paths(all).sort(), ['/count', '/extra', '/name'], 'every failure is reported at once');
    const array = checkError(t, await send('/echo', json([{ name: 'a' }])), 400, 'VALIDATION_FAILED');
    t.same(paths(array), ['/'], 'an array is not an object');
  });

  t.test(`${name}: query and params are coerced and validated`, async (t) => {
    const data = checkSuccess(t, await send('/echo/query?n=42&flag=true&color=red'));
    t.same(data, { query: { n: 42, flag: true, color: 'red', limit: 10 } }, 'coerced types, defaults filled');
    t.same(checkSuccess(t, await send('/echo/query?flag=false&limit=3')), { query: { flag: false, limit: 3 } });
    const notInt = checkError(t, await send('/echo/query?n=abc'), 400, 'VALIDATION_FAILED');
    t.same(paths(notInt), ['/query/n']);
    t.equal(notInt.details[0].in, 'query');
    const unknown = checkError(t, await send('/echo/query?zzz=1'), 400, 'VALIDATION_FAILED');
    t.same(paths(unknown), ['/query/zzz']);
    const notEnum = checkError(t, await send('/echo/query?color=purple'), 400, 'VALIDATION_FAILED');
    t.same(paths(notEnum), ['/query/color']);
    t.match(notEnum.details[0].message, /red/, 'the message lists the allowed values');
    const notBool = checkError(t, await send('/echo/query?flag=maybe'), 400, 'VALIDATION_FAILED');
    t.same(paths(notBool), ['/query/flag']);
    t.same(checkSuccess(t, await send('/echo/items/5')), { params: { id: 5 } }, 'params coerced to an integer');
    const badParam = checkError(t, await send('/echo/items/abc'), 400, 'VALIDATION_FAILED');
    t.same(paths(badParam), ['/params/id']);
    t.equal(badParam.details[0].in, 'params');
    checkError(t, await send('/echo/items/0'), 400, 'VALIDATION_FAILED');
    const onCore = checkError(t, await send('/plugins?x=1'), 400, 'VALIDATION_FAILED');
    t.same(paths(onCore), ['/query/x'], 'a route without a query schema takes no query');
  });

  t.test(`${name}: UNSUPPORTED_MEDIA_TYPE`, async (t) => {
    checkError(t, await send('/echo', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"name":"a"}' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    const form = await send('/echo', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=a' });
    checkError(t, form, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const multipart = await send('/echo', {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body: '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\na\r\n--x--\r\n',
    });
    checkError(t, multipart, 415, 'UNSUPPORTED_MEDIA_TYPE');
    checkError(t, await send('/echo', { method: 'POST', body: '{"name":"a"}' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    const latin1 = await send('/echo', { method: 'POST', headers: { 'content-type': 'application/json; charset=latin1' }, body: '{"name":"a"}' });
    checkError(t, latin1, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  t.test(`${name}: PAYLOAD_TOO_LARGE`, async (t) => {
    const fits = JSON.stringify({ name: 'x'.repeat(BODY_LIMIT - 11) });
    t.equal(Buffer.byteLength(fits), BODY_LIMIT);
    t.same(checkSuccess(t, await send('/echo', { ...json(null), body: fits })), { body: { name: 'x'.repeat(BODY_LIMIT - 11) } }, 'exactly the limit fits');
    const over = JSON.stringify({ name: 'x'.repeat(BODY_LIMIT - 10) });
    const error = checkError(t, await send('/echo', { ...json(null), body: over }), 413, 'PAYLOAD_TOO_LARGE');
    t.match(error.message, String(BODY_LIMIT), 'the message gives the limit');
    const big = await send('/echo', { ...json(null), body: JSON.stringify({ name: 'x'.repeat(BODY_LIMIT * 64) }) });
    checkError(t, big, 413, 'PAYLOAD_TOO_LARGE');
    // Without a Content-Length (chunked), the limit holds while reading.
    const chunks = [Buffer.from('{"name":"'), ...Array.from({ length: 8 }, () => Buffer.from('y'.repeat(512))), Buffer.from('"}')];
    const chunked = await send('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: Readable.from(chunks) });
    checkError(t, chunked, 413, 'PAYLOAD_TOO_LARGE');
    checkSuccess(t, await send('/health'), 200);
  });

  t.test(`${name}: NOT_FOUND`, async (t) => {
    const error = checkError(t, await send('/nope'), 404, 'NOT_FOUND');
    t.match(error.message, '/nope');
    checkError(t, await send('/echo/items/1/more'), 404, 'NOT_FOUND');
    checkError(t, await send('/nope', json({ a: 1 })), 404, 'NOT_FOUND');
  });

  t.test(`${name}: METHOD_NOT_ALLOWED`, async (t) => {
    const res = await send('/health', { method: 'POST' });
    checkError(t, res, 405, 'METHOD_NOT_ALLOWED');
    const allow = String(res.headers.allow ?? '').split(/,\s*/);
    t.ok(allow.includes('GET'), `Allow names GET: ${res.headers.allow}`);
    t.notOk(allow.includes('POST'), 'Allow does not name POST');
    const del = await send('/echo', { method: 'DELETE' });
    checkError(t, del, 405, 'METHOD_NOT_ALLOWED');
    t.equal(del.headers.allow, 'POST');
    const put = await send('/echo/items/3', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
    checkError(t, put, 405, 'METHOD_NOT_ALLOWED');
    t.match(String(put.headers.allow), /GET/);
  });

  t.test(`${name}: INTERNAL hides the cause and logs it`, async (t) => {
    const res = await send('/echo/boom');
    const error = checkError(t, res, 500, 'INTERNAL');
    t.notMatch(res.text, /secret detail/, 'the cause is not sent');
    t.notMatch(res.text, /\bat .*\.js:\d+/, 'no stack is sent');
    t.equal(error.details, undefined, 'no details');
    const entry = d.logs.find((l) => l.request_id === res.json.request_id && l.level === 50);
    t.ok(entry, 'an error is logged with the request_id');
    t.match(JSON.stringify(entry ?? {}), /secret detail/, 'the log has the cause');
    t.match(JSON.stringify(entry ?? {}), /\/echo\/boom/, 'the log has the path');
  });

  t.test(`${name}: HEAD /health`, async (t) => {
    const res = await send('/health', { method: 'HEAD' });
    t.equal(res.status, 200);
    t.equal(res.text, '', 'no body');
    t.match(String(res.headers['x-request-id']), UUID);
    t.match(String(res.headers['content-type']), /^application\/json/);
  });

  t.test(`${name}: ?format=text`, async (t) => {
    const health = await send('/health?format=text');
    t.equal(health.status, 200);
    t.match(String(health.headers['content-type']), /^text\/plain/);
    const lines = health.text.trimEnd().split('\n');
    t.equal(lines[0], 'status=ok');
    t.ok(lines.some((l) => /^version=\S+$/.test(l)), 'a version line');
    t.ok(lines.some((l) => /^uptime_seconds=[\d.]+$/.test(l)), 'an uptime line');
    t.ok(lines.every((l) => /^[a-z_]+=/.test(l)), 'every line is key=value');
    t.ok(health.text.endsWith('\n'), 'ends with a newline');
    t.equal(health.json, undefined, 'not JSON');

    const text = await send('/echo/text?format=text');
    t.equal(text.status, 200);
    t.match(String(text.headers['content-type']), /^text\/plain/);
    t.equal(text.text, 'greeting=hi\nline=one\nline=two\n', "the plugin's lines, with its configured options");
    t.same(checkSuccess(t, await send('/echo/text')), { greeting: 'hi', lines: ['one', 'two'] }, 'JSON by default');
    t.same(checkSuccess(t, await send('/echo/text?format=json')), { greeting: 'hi', lines: ['one', 'two'] });
    const bad = checkError(t, await send('/health?format=xml'), 400, 'VALIDATION_FAILED');
    t.same(paths(bad), ['/query/format']);
    const noText = checkError(t, await send('/plugins?format=text'), 400, 'VALIDATION_FAILED');
    t.same(paths(noText), ['/query/format'], 'routes without a text form refuse format');
  });
}

t.test('odd input is a client error, never a 500', async (t) => {
  const repeated = checkError(t, await viaTcp('/echo/query?n=1&n=2'), 400, 'VALIDATION_FAILED');
  t.same(paths(repeated), ['/query/n'], 'a repeated scalar is not an integer');
  const proto = checkError(t, await viaTcp('/echo/query?__proto__=1'), 400, 'VALIDATION_FAILED');
  t.same(paths(proto), ['/query/__proto__']);
  const protoBody = checkError(t, await viaTcp('/echo', json(JSON.parse('{"name":"a","__proto__":{"x":1}}'))), 400, 'VALIDATION_FAILED');
  t.same(paths(protoBody), ['/__proto__']);
  const badEscape = await viaTcp('/echo/items/%E0%A4%A');
  t.ok(badEscape.status >= 400 && badEscape.status < 500, `a bad escape in a param is a client error (${badEscape.status})`);
  t.equal(badEscape.json?.success, false);
  const badQueryEscape = await viaTcp('/echo/query?n=%zz');
  checkError(t, badQueryEscape, 400, 'VALIDATION_FAILED');
});

t.test('GET /plugins lists the plugins with their state', async (t) => {
  const data = checkSuccess(t, await viaTcp('/plugins'));
  t.same(
    data.map((p: { name: string }) => p.name),
    ['stats', 'echo'],
  );
  for (const p of data) t.equal(p.state, 'ready', `${p.name} is ready`);
  t.match(data[0], { name: 'stats', source: 'builtin', depends_on: [] });
  t.match(data[1], { name: 'echo', source: echoModule });
  const health = checkSuccess(t, await viaSocket('/health'));
  t.same(health.plugins, [
    { name: 'stats', state: 'ready' },
    { name: 'echo', state: 'ready' },
  ]);
});

t.test('GET /openapi.json describes every route', async (t) => {
  const res = await viaTcp('/openapi.json');
  t.equal(res.status, 200);
  t.match(String(res.headers['content-type']), /^application\/json/);
  const doc = res.json;
  t.equal(doc.openapi, '3.1.0');
  t.type(doc.info?.title, 'string');
  t.type(doc.info?.version, 'string');
  t.same(Object.keys(doc.paths).sort(), [
    '/cache/clear',
    '/echo',
    '/echo/bare/{slug}',
    '/echo/boom',
    '/echo/created',
    '/echo/items/{id}',
    '/echo/open',
    '/echo/query',
    '/echo/text',
    '/events',
    '/health',
    '/metrics',
    '/openapi.json',
    '/optimization/stats',
    '/plugins',
  ]);
  t.same(Object.keys(doc.paths['/echo/open']).sort(), ['get', 'post']);
  t.same(doc.paths['/echo'].post.requestBody.content['application/json'].schema, bodySchema, 'the body schema as declared');
  t.ok(doc.paths['/echo/created'].post.responses['201'], 'the declared status');
  t.same(doc.paths['/health'].get.security, [], '/health needs no token');
  t.equal(doc.paths['/plugins'].get.security, undefined, 'other routes keep the global bearer security');
  t.ok(doc.components.securitySchemes.bearer, 'the bearer scheme');
  const params = doc.paths['/echo/items/{id}'].get.parameters;
  t.match(params, [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }]);
  const query = doc.paths['/echo/query'].get.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`).sort();
  t.same(query, ['query:color', 'query:flag', 'query:limit', 'query:n']);
  t.ok(
    doc.paths['/echo/text'].get.parameters.some((p: { name: string }) => p.name === 'format'),
    'routes with a text form document format',
  );
  for (const [path, ops] of Object.entries(doc.paths) as Array<[string, Record<string, any>]>) {
    t.notMatch(path, /:/, `${path}: templated with {name}, not :name`);
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
    for (const [method, op] of Object.entries(ops)) {
      t.ok(['get', 'post', 'put', 'patch', 'delete'].includes(method), `${path}: ${method} is an HTTP method`);
      t.ok(op.responses && Object.keys(op.responses).length > 0, `${method} ${path}: has responses`);
      t.ok((op.parameters ?? []).every((p: any) => ['query', 'path'].includes(p.in) && typeof p.name === 'string' && p.schema), `${method} ${path}: parameters are well formed`);
      const declared = (op.parameters ?? []).filter((p: any) => p.in === 'path').map((p: any) => p.name).sort();
      t.same(declared, templated, `${method} ${path}: every path template parameter is declared (OpenAPI requires it)`);
    }
  }
  const ids = Object.values(doc.paths).flatMap((ops: any) => Object.values(ops).map((op: any) => op.operationId));
  t.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  const codes = doc.paths['/plugins'].get.responses.default.content['application/json'].schema.properties.error.properties.code.enum;
  t.ok(codes.includes('VALIDATION_FAILED') && codes.includes('INTERNAL'), 'the error catalogue is listed');
});

t.test('GET /optimization/stats', async (t) => {
  for (let i = 0; i < 3; i++) await viaSocket('/health');
  await viaSocket('/echo/items/7');
  const before = checkSuccess(t, await viaTcp('/optimization/stats'));
  // The cache's own section: its fields are checked in cache-api.test.ts.
  t.match(before.cache_stats, { store: 'sqlite', max_size: 2000, ttl_seconds: 300 }, 'the cache adds cache_stats');
  t.type(before.timestamp, 'string');
  t.equal(new Date(before.timestamp).toISOString(), before.timestamp, 'timestamp is ISO 8601');
  t.ok(Math.abs(Date.parse(before.timestamp) - Date.now()) < 60_000, 'timestamp is now');
  const health = before.metrics['http.GET /health'];
  t.ok(health, 'an entry for GET /health');
  t.ok(before.metrics['http.GET /echo/items/:id'], 'entries are named by route pattern');
  t.notOk(before.metrics['http.GET /echo/items/7'], 'never by raw URL');
  for (const [key, m] of Object.entries(before.metrics) as Array<[string, any]>) {
    t.equal(m.name, key, `${key}: name`);
    t.equal(m.unit, 'seconds', `${key}: unit`);
    for (const f of ['count', 'min', 'max', 'avg', 'latest', 'p50', 'p95', 'p99']) {
      t.ok(typeof m[f] === 'number' && Number.isFinite(m[f]) && m[f] >= 0, `${key}: ${f} is a number >= 0`);
    }
    t.ok(Number.isInteger(m.count) && m.count >= 1, `${key}: count`);
    t.ok(m.min <= m.p50 && m.p50 <= m.p95 && m.p95 <= m.p99 && m.p99 <= m.max, `${key}: min <= p50 <= p95 <= p99 <= max`);
    t.ok(m.min <= m.avg && m.avg <= m.max, `${key}: min <= avg <= max`);
    t.ok(m.min <= m.latest && m.latest <= m.max, `${key}: min <= latest <= max`);
    t.ok(m.max < 5, `${key}: seconds, not milliseconds (${m.max})`);
  }
  t.ok(health.count >= 3, 'the health requests are counted');
  for (let i = 0; i < 4; i++) await viaSocket('/health');
  const after = checkSuccess(t, await viaTcp('/optimization/stats'));
  t.equal(after.metrics['http.GET /health'].count, health.count + 4, 'count grows by the requests made');
  t.ok(after.metrics['http.GET /optimization/stats'].count >= 1, 'the stats request itself is timed');
});

t.test('GET /metrics is Prometheus text', async (t) => {
  await viaSocket('/health');
  await viaSocket('/echo/items/9');
  await viaSocket('/no/such/path/1');
  await viaSocket('/no/such/path/2');
  const res = await viaTcp('/metrics');
  t.equal(res.status, 200);
  t.match(String(res.headers['content-type']), /^text\/plain/);
  t.equal(res.json, undefined, 'not an envelope');
  const text = res.text;
  t.match(text, /# TYPE hearth_http_request_duration_seconds histogram/);
  const series = text.split('\n').filter((l) => l.startsWith('hearth_http_request_duration_seconds_count{'));
  const has = (labels: Record<string, string>) =>
    series.some((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  t.ok(has({ method: 'GET', route: '/health', status: '200' }), 'GET /health 200 is counted');
  t.ok(has({ method: 'GET', route: '/echo/items/:id', status: '200' }), 'routes are labelled by pattern');
  t.ok(has({ route: 'unmatched', status: '404' }), 'unknown paths share one label');
  t.notMatch(text, /route="\/echo\/items\/9"/, 'never the raw URL');
  t.notMatch(text, /route="\/no\/such/, 'unknown paths do not make new series');
  t.match(text, /^hearth_process_cpu_user_seconds_total \d/m, 'process metrics');
  t.match(text, /^hearth_nodejs_heap_size_used_bytes \d/m, 'Node.js metrics');
});

t.test('a request the guards refuse is recorded under the route it was for; unknown paths under one label', async (t) => {
  const stats = async () => checkSuccess(t, await viaSocket('/optimization/stats')).metrics;
  const count = (m: Record<string, { count: number }>, name: string) => m[name]?.count ?? 0;
  const before = await stats();
  checkError(t, await tcpRequest(d.url, '/optimization/stats'), 401, 'UNAUTHORIZED');
  checkError(t, await tcpRequest(d.url, '/optimization/stats', { headers: { authorization: 'Bearer nope' } }), 401, 'UNAUTHORIZED');
  checkError(t, await viaTcp('/optimization/stats', { headers: { host: 'evil.example' } }), 403, 'HOST_NOT_ALLOWED');
  checkError(t, await tcpRequest(d.url, '/echo/items/12'), 401, 'UNAUTHORIZED');
  checkError(t, await tcpRequest(d.url, '/no/such/route/3'), 401, 'UNAUTHORIZED');
  const after = await stats();
  t.equal(count(after, 'http.GET /optimization/stats'), count(before, 'http.GET /optimization/stats') + 4, 'the refused requests (and one stats read) under the stats route');
  t.equal(count(after, 'http.GET /echo/items/:id'), count(before, 'http.GET /echo/items/:id') + 1, 'a refused request to a route with parameters: its pattern');
  t.equal(count(after, 'http.GET unmatched'), count(before, 'http.GET unmatched') + 1, 'a path no route has: the one fixed label');
  t.notOk(Object.keys(after).some((k) => k.includes('/no/such') || k.includes('/echo/items/12')), 'never the raw URL');
  const text = (await viaSocket('/metrics')).text;
  t.match(text, /^hearth_http_request_duration_seconds_count\{method="GET",route="\/optimization\/stats",status="401"\} 2$/m, 'Prometheus: status 401 on the stats route');
  t.match(text, /^hearth_http_request_duration_seconds_count\{method="GET",route="\/optimization\/stats",status="403"\} 1$/m, 'and the 403');
  t.match(text, /^hearth_http_request_duration_seconds_count\{method="GET",route="\/echo\/items\/:id",status="401"\} 1$/m);
});

t.test('GET /health: the JSON put together from kept parts is what JSON.stringify would write', async (t) => {
  const res = await viaSocket('/health');
  const data = checkSuccess(t, res);
  t.equal(res.text, JSON.stringify(res.json), 'the exact bytes JSON.stringify writes for the answer');
  t.same(Object.keys(data), ['status', 'version', 'build', 'uptime_seconds', 'plugins', 'watcher', 'reasons'], 'in the documented order');
  t.same(data.plugins.map((p: { name: string }) => p.name).sort(), ['echo', 'stats'].sort());
  const text = await viaSocket('/health?format=text');
  t.match(text.text, /^status=ok\nversion=\S+\nbuild=\S+\nuptime_seconds=[\d.]+\n$/, 'the text form reads the same answer');
});
