// Lifecycle of the real `hearth` CLI as child processes on temp state dirs: the foreground daemon, status,
// the one-daemon-per-state-dir lock, stats, graceful close on SIGTERM/SIGINT and recovery after kill -9.
// (`hearth start/stop` are in lifecycle-start.test.ts; SIGHUP, idle shutdown and the top-level command line
// in lifecycle-config.test.ts; they are split so each file stays well under the time budget.)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type NetConnectOpts, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from './helpers/daemon.js';
import {
  checkCleanedUp,
  healthOverSocket,
  isAlive,
  launchDaemon,
  packageVersion,
  readPidFile,
  runHearth,
  stateFiles,
  waitFor,
  within,
  type Health,
} from './helpers/processes.js';

// Child processes compile the TypeScript sources, which takes seconds on a small machine; the groups below
// are independent (each on its own state dir), so two run side by side.
t.jobs = 2;

function open(options: NetConnectOpts): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(options);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Reads one HTTP/1.1 response (Content-Length framed, as the daemon answers) from a raw connection. */
function readResponse(socket: Socket): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffer.length < end + 4 + length) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve({ status: Number(head.split(' ')[1]), head, body: buffer.subarray(end + 4, end + 4 + length).toString('utf8') });
    };
    const onClose = () => reject(new Error(`connection closed before a full response; got: ${buffer.toString('utf8')}`));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.on('error', () => {});
  });
}

// An external plugin with a slow route, written to a temp dir at run time: the core has no slow route, and
// graceful close is about requests that are still running when the signal comes.
const SLOW_PLUGIN = `
import { writeFileSync } from 'node:fs';
export default {
  name: 'slowpoke',
  configSchema: {
    type: 'object', additionalProperties: false, required: ['marker'],
    properties: { marker: { type: 'string' } },
  },
  setup(ctx) {
    ctx.route({
      method: 'GET',
      path: '/slowpoke',
      schema: { query: { type: 'object', additionalProperties: false, properties: { ms: { type: 'integer', minimum: 0, maximum: 20000 } } } },
      handler: async ({ query }) => {
        writeFileSync(ctx.config.marker, String(process.pid));
        await new Promise((r) => setTimeout(r, query.ms));
        return { slept_ms: query.ms };
      },
    });
  },
};
`;

t.test('a foreground daemon: status, the state dir lock, stats, graceful close on SIGTERM', async (t) => {
  const dir = tempDir('hl-');
  const f = stateFiles(dir);
  const plugin = join(dir, 'slowpoke.mjs');
  const marker = join(dir, 'slow-started');
  writeFileSync(plugin, SLOW_PLUGIN);
  const config = join(dir, 'config.json');
  // trace: the daemon logs as much as it can, which gives the token check below something to look through.
  // close_timeout_ms 10000: a close held open by an idle connection shows as an exit after ~10 s.
  writeFileSync(
    config,
    JSON.stringify({
      log: { level: 'trace' },
      server: { close_timeout_ms: 10000 },
      plugins: { slowpoke: { module: plugin, options: { marker } } },
    }),
  );
  const d = await launchDaemon(t, ['--state-dir', dir, '--port', '0', '--config', config]);
  const pid = d.pid;

  await t.test('serves /health over the unix socket', async (t) => {
    const health = await healthOverSocket(f.socket);
    t.equal(health.status, 'ok');
    t.equal(health.version, packageVersion);
    t.same(health.plugins.map((p) => p.name).sort(), ['batch', 'dashboard', 'files', 'git', 'slowpoke', 'stats']);
    t.equal(readPidFile(dir), pid, 'the pid file holds the daemon pid');
    const info = JSON.parse(readFileSync(f.runtime, 'utf8')) as { pid: number; port: number; socket: string };
    t.equal(info.pid, pid, 'daemon.json names the daemon pid');
    t.equal(info.socket, f.socket);
    t.ok(info.port > 0, 'daemon.json has the real TCP port, not 0');
  });

  // The CLI runs below go two or three at a time: each child spends seconds of CPU compiling TypeScript,
  // and more at once only makes each slower. The /health call above comes first, so stats has a timing for it.
  const startedAt = Date.now();

  // A second daemon for the same state dir, started while the status commands run.
  const secondRun = runHearth(['daemon', '--state-dir', dir, '--port', '0']);
  secondRun.catch(() => {});

  await t.test('hearth status prints running, pid and socket; --json prints the health answer', async (t) => {
    const [text, json] = await Promise.all([
      runHearth(['status', '--state-dir', dir]),
      runHearth(['status', '--state-dir', dir, '--json']),
    ]);
    t.equal(text.code, 0, text.stderr);
    t.match(text.stdout, /\brunning\b/);
    t.match(text.stdout, `(pid ${pid})`);
    t.match(text.stdout, f.socket);
    t.equal(json.code, 0, json.stderr);
    const health = JSON.parse(json.stdout) as Health;
    t.equal(health.status, 'ok');
    t.equal(health.version, packageVersion);
    t.ok(Array.isArray(health.plugins) && health.plugins.some((p) => p.name === 'stats' && p.state === 'ready'));
  });

  await t.test('a second hearth daemon on the same state dir exits 1 naming the pid; the first keeps serving', async (t) => {
    const second = await secondRun;
    t.equal(second.code, 1, 'exit code 1');
    t.match(second.stderr, `pid ${pid}`, 'stderr names the pid holding the state dir');
    t.ok(isAlive(pid), 'the first daemon is still running');
    t.equal(readPidFile(dir), pid, 'the pid file still names the first daemon');
    t.ok(existsSync(f.socket), 'the socket file is still there');
    t.equal((await healthOverSocket(f.socket)).status, 'ok', 'the first daemon still answers');
  });

  await t.test('hearth stats prints the timings of /health; --json prints metrics and timestamp', async (t) => {
    const [text, json] = await Promise.all([
      runHearth(['stats', '--state-dir', dir]),
      runHearth(['stats', '--state-dir', dir, '--json']),
    ]);
    t.equal(text.code, 0, text.stderr);
    t.match(text.stdout, /^operation\s+count\s+avg ms/m, 'a table header');
    t.match(text.stdout, /^http\.GET \/health\s+\d+\s/m, 'a row for http.GET /health');
    t.equal(json.code, 0, json.stderr);
    const stats = JSON.parse(json.stdout) as { metrics: Record<string, { count: number; unit: string }>; timestamp: string };
    const row = stats.metrics['http.GET /health'];
    t.ok(row && row.count >= 1, 'metrics has http.GET /health with a count');
    t.equal(row?.unit, 'seconds');
    const at = Date.parse(stats.timestamp);
    t.ok(Number.isFinite(at) && at >= startedAt - 1000 && at <= Date.now() + 1000, `timestamp is now (${stats.timestamp})`);
  });

  await t.test('SIGTERM: stop accepting, finish the in-flight request, drop the idle keep-alive connection, clean up, exit 0', async (t) => {
    const info = JSON.parse(readFileSync(f.runtime, 'utf8')) as { port: number };
    const token = readFileSync(f.token, 'utf8').trim();
    const sockets: Socket[] = [];
    t.teardown(() => sockets.forEach((s) => s.destroy()));

    // An idle keep-alive TCP connection that has been answered once.
    const idle = await open({ host: '127.0.0.1', port: info.port });
    sockets.push(idle);
    idle.write(`GET /plugins HTTP/1.1\r\nHost: 127.0.0.1:${info.port}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    const first = await within(readResponse(idle), 5000, 'the keep-alive answer');
    t.equal(first.status, 200, 'the keep-alive connection was answered');
    t.notMatch(first.head, /connection: close/i, 'and left open');
    let idleClosedAt: number | undefined;
    idle.once('close', () => (idleClosedAt = Date.now()));

    // A request still running when the signal comes.
    const slow = await open({ path: f.socket });
    sockets.push(slow);
    const answer = readResponse(slow);
    answer.catch(() => {});
    slow.write('GET /slowpoke?ms=1500 HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await waitFor('the slow handler to start', () => existsSync(marker));

    const signalledAt = Date.now();
    d.child.kill('SIGTERM');

    // While the slow request runs, the daemon no longer accepts connections.
    const refused = await waitFor(
      'the socket to refuse new connections',
      () =>
        open({ path: f.socket }).then(
          (s) => {
            s.destroy();
            return undefined;
          },
          (err: NodeJS.ErrnoException) => err.code ?? 'error',
        ),
      1300,
      20,
    ).catch((err: Error) => err.message);
    t.match(refused, /^(ECONNREFUSED|ENOENT)$/, 'new connections are refused while the in-flight request runs');

    await waitFor('the idle connection to be closed', () => idleClosedAt !== undefined, 2500).catch(() => undefined);
    t.ok(
      idleClosedAt !== undefined && idleClosedAt - signalledAt < 2500,
      'the idle keep-alive connection is closed at once, before the in-flight request is done',
    );

    let slowClosedAt: number | undefined;
    slow.once('close', () => (slowClosedAt = Date.now()));
    const res = await within(answer, 5000, 'the in-flight answer');
    const answeredAt = Date.now();
    t.equal(res.status, 200, 'the in-flight request finished');
    t.same(JSON.parse(res.body).data, { slept_ms: 1500 });
    // Once answered, that connection is idle too and must not hold the close open either.
    await waitFor('the in-flight connection to be closed', () => slowClosedAt !== undefined, 2500).catch(() => undefined);
    t.ok(
      slowClosedAt !== undefined && slowClosedAt - answeredAt < 2500,
      `the connection of the in-flight request is closed once it is answered (${res.head.match(/connection: .*/i)?.[0] ?? 'no Connection header'})`,
    );

    const code = await within(d.exited, 8000, 'daemon exit');
    const took = Date.now() - signalledAt;
    t.equal(code, 0, 'exit code 0');
    t.ok(took < 6000, `exited ${took} ms after SIGTERM: the in-flight request (1.5 s) and little more, not close_timeout_ms (10 s)`);
    checkCleanedUp(t, dir);
  });

  await t.test('the daemon never logs the token', async (t) => {
    const token = readFileSync(f.token, 'utf8').trim();
    t.ok(token.length >= 16, 'a token was made');
    t.match(d.output(), 'hearth is listening', 'the daemon output was captured');
    t.match(d.output(), '"msg":"request"', 'trace level: requests were logged');
    t.notOk(d.output().includes(token), 'the token is not in the daemon stdout/stderr');
  });
});

t.test('kill -9 leaves the pid file and socket; the next daemon cleans them up and serves; SIGINT exits 0', async (t) => {
  const dir = tempDir('hl-');
  const f = stateFiles(dir);
  const first = await launchDaemon(t, ['--state-dir', dir, '--port', '0']);
  const firstPid = first.pid;
  first.child.kill('SIGKILL');
  t.equal(await within(first.exited, 5000, 'exit after SIGKILL'), null, 'killed by the signal');
  t.ok(existsSync(f.pid), 'pid file left behind');
  t.equal(readPidFile(dir), firstPid);
  t.ok(existsSync(f.socket), 'socket file left behind');

  const status = await runHearth(['status', '--state-dir', dir]);
  t.equal(status.code, 3, 'status on a stale socket exits 3');
  t.match(status.stdout, 'not running');

  // close_timeout_ms 8000: a close held open by a connection shows as an exit after ~8 s.
  const config = join(tempDir('hl-cfg-'), 'config.json');
  writeFileSync(config, JSON.stringify({ server: { close_timeout_ms: 8000 } }));
  const second = await launchDaemon(t, ['--state-dir', dir, '--port', '0', '--config', config]);
  const secondPid = second.pid;
  t.equal((await healthOverSocket(f.socket)).status, 'ok', 'the new daemon serves on the same socket path');
  t.equal(readPidFile(dir), secondPid, 'the stale pid file was replaced');
  t.equal((JSON.parse(readFileSync(f.runtime, 'utf8')) as { pid: number }).pid, secondPid, 'daemon.json was rewritten');

  // A client that connected and has not sent a request yet (a browser's preconnect, a port probe) is not
  // an in-flight request: it must not hold the close open until close_timeout_ms.
  const silent = await open({ path: f.socket });
  silent.on('error', () => {});
  t.teardown(() => silent.destroy());
  const signalledAt = Date.now();
  second.child.kill('SIGINT');
  t.equal(await within(second.exited, 10_000, 'exit after SIGINT'), 0, 'SIGINT: exit code 0');
  const took = Date.now() - signalledAt;
  t.ok(took < 4000, `exited ${took} ms after SIGINT with a connected client that sent nothing (expected < 4 s, close_timeout_ms 8 s)`);
  checkCleanedUp(t, dir);
  const token = readFileSync(f.token, 'utf8').trim();
  t.notOk(second.output().includes(token) || first.output().includes(token), 'the token is not in the daemon output');
});
