// Event streams over a real socket: a client that stops reading is cut off once it falls too far behind
// (GET /events and GET /batch/jobs/:id/events alike), while a client that reads gets every event.
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { MAX_BUFFERED } from '../src/http/sse.js';
import { faults } from './helpers/batch.js';
import { bootDaemon, tempDir } from './helpers/daemon.js';

t.setTimeout(120_000);

const flood = join(import.meta.dirname, 'fixtures/plugins/event-flood/index.js');
const d = await bootDaemon({
  config: {
    pool: { max_threads: 1 },
    plugins: {
      batch: { roots: [tempDir('hearth-sse-')] },
      'batch-faults': { module: faults, options: { ms: 200 } },
      'event-flood': { module: flood },
    },
  },
});
t.teardown(() => d.close());

// Four times the cutoff, in events small enough that many fit under it.
const COUNT = 128;
const BYTES = (4 * MAX_BUFFERED) / COUNT;

interface RawStream {
  /** Everything received so far, chunked transfer coding included. */
  text(): string;
  pause(): void;
  resume(): void;
  /** Resolves once the response has ended (its last chunk came), or rejects after `ms`. */
  ended(ms: number): Promise<void>;
  socket: Socket;
}

/** A GET over the daemon's socket, read by hand so that the test decides when the client reads. */
async function openRaw(path: string, firstLine: string): Promise<RawStream> {
  const socket = connect(d.socket);
  t.teardown(() => socket.destroy());
  let raw = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    raw += chunk;
  });
  socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  const until = async (what: () => boolean, ms: number, name: string) => {
    const deadline = Date.now() + ms;
    while (!what()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${name}; got ${raw.length} bytes`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await until(() => raw.includes(firstLine), 10_000, firstLine);
  return {
    text: () => raw,
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    ended: (ms) => until(() => raw.endsWith('\r\n0\r\n\r\n'), ms, 'the end of the response'),
    socket,
  };
}

const count = (text: string, type: string) => text.split(`event: ${type}\n`).length - 1;

t.test('GET /events: a client that reads gets every event', async (t) => {
  const stream = await openRaw('/events?type=test.flood', ': connected\n\n');
  t.match(stream.text(), /^HTTP\/1\.1 200 OK\r\n/);
  t.match(stream.text(), /\r\ncontent-type: text\/event-stream; charset=utf-8\r\n/i);
  await d.client.call('POST', '/event-flood', { type: 'test.flood', count: COUNT, bytes: BYTES });
  const deadline = Date.now() + 10_000;
  while (count(stream.text(), 'test.flood') < COUNT && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.equal(count(stream.text(), 'test.flood'), COUNT, 'every event arrived');
  t.notOk(stream.text().endsWith('\r\n0\r\n\r\n'), 'and the stream stays open');
});

t.test('GET /events: a client that does not read is cut off', async (t) => {
  const stream = await openRaw('/events?type=test.flood', ': connected\n\n');
  stream.pause();
  await d.client.call('POST', '/event-flood', { type: 'test.flood', count: COUNT, bytes: BYTES });
  stream.resume();
  await stream.ended(10_000);
  const got = count(stream.text(), 'test.flood');
  t.ok(got > 0 && got < COUNT, `the stream ended after ${got} of ${COUNT} events`);
  const stats = await d.client.call<{ events: { cut_off: number; cut_off_bytes: number } }>('GET', '/optimization/stats');
  t.ok(stats.events.cut_off >= 1, 'the cut-off is counted in the stats');
  t.equal(stats.events.cut_off_bytes, MAX_BUFFERED, 'with the bound');
});

t.test('GET /batch/jobs/:id/events: a client that does not read is cut off', async (t) => {
  const job = await d.client.call<{ job_id: string }>('POST', '/batch/jobs', { items: Array(100).fill(1), operation: 'fault.sleeps', batch_size: 1, max_concurrent: 1 });
  t.teardown(() => d.client.call('DELETE', `/batch/jobs/${job.job_id}`));
  const stream = await openRaw(`/batch/jobs/${job.job_id}/events`, 'event: batch.job.progress\n');
  t.match(stream.text(), /\r\ncontent-type: text\/event-stream; charset=utf-8\r\n/i);
  stream.pause();
  await d.client.call('POST', '/event-flood', { type: 'batch.job.progress', job_id: job.job_id, count: COUNT, bytes: BYTES });
  stream.resume();
  await stream.ended(10_000);
  const got = count(stream.text(), 'batch.job.progress');
  t.ok(got > 1 && got < COUNT, `the stream ended after ${got} progress events`);
  t.equal(count(stream.text(), 'batch.job.finished'), 0, 'before the job finished');
  t.match(await d.client.call('GET', `/batch/jobs/${job.job_id}`), { status: 'running' }, 'which is still running');
});
