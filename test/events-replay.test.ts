// Clocks on the event stream: every event's id is `c:<instance>:<n>`; a client that reconnects with
// Last-Event-ID (or ?since) gets every event it missed, once and in order, then the live stream; a clock
// the daemon cannot answer for (another instance, before a restart, older than the ring) gets `reset`.
// Real daemons, real sockets; the events come from the event-flood fixture plugin (the real bus).
import { join } from 'node:path';
import t from 'tap';
import { EventBus } from '../src/services/events.js';
import { bootDaemon } from './helpers/daemon.js';
import { openSse, type SseStream } from './helpers/sse.js';

t.setTimeout(120_000);

const flood = join(import.meta.dirname, 'fixtures/plugins/event-flood/index.js');
const RING = 50;
const config = { events: { ring_size: RING }, plugins: { 'event-flood': { module: flood } } };
const CLOCK = /^c:[0-9a-f]+:[0-9]+$/;

const d = await bootDaemon({ config });
t.teardown(() => d.close());

const publish = (count: number, type = 'test.flood') => d.client.call('POST', '/event-flood', { type, count, bytes: 0 });
const open = (path: string, headers?: Record<string, string>): Promise<SseStream> =>
  openSse({ socket: d.socket, ...(headers ? { headers } : {}) }, path).then((s) => {
    t.teardown(() => s.close());
    return s;
  });
const ids = (s: SseStream, type = 'test.flood') => s.records.filter((r) => r.event === type).map((r) => r.id);
const seq = (id: string | undefined) => Number(id!.split(':')[2]);

t.test('a client cut off mid-stream and back with Last-Event-ID gets every event in between, once, in order', async (t) => {
  // The reference: a subscriber connected the whole time.
  const all = await open('/events?type=test.flood');
  const b1 = await open('/events?type=test.flood');
  await publish(20);
  await b1.until('the first 20', (r) => r.length >= 20);
  b1.close();
  const last = ids(b1).at(-1)!;
  t.match(last, CLOCK, 'ids are clocks');
  // Published while the client is away, then more while it is back.
  await publish(15);
  const b2 = await open('/events?type=test.flood', { 'last-event-id': last });
  const live = publish(10);
  await live;
  await all.until('all 45', (r) => r.length >= 45);
  await b2.until('the missed 15 and the live 10', (r) => r.length >= 25);
  await new Promise((r) => setTimeout(r, 100));
  const reference = ids(all);
  t.equal(reference.length, 45);
  t.same([...ids(b1), ...ids(b2)], reference, 'the two connections together got exactly what the reference got');
  t.same(
    ids(b2).map(seq),
    [...ids(b2).map(seq)].sort((a, b) => a - b),
    'in order',
  );
  t.equal(new Set(ids(b2)).size, ids(b2).length, 'no event twice');
  t.ok(all.records.every((r) => r.data.clock === r.id), 'the data carries the clock');
});

t.test('?since does what Last-Event-ID does; Last-Event-ID wins when both are sent', async (t) => {
  const first = await open('/events?type=test.flood');
  await publish(6);
  await first.until('6 events', (r) => r.length >= 6);
  first.close();
  const [, second, , fourth] = ids(first);
  const bySince = await open(`/events?type=test.flood&since=${second}`);
  await bySince.until('4 replayed', (r) => r.length >= 4);
  t.same(ids(bySince), ids(first).slice(2), 'the events after the clock in ?since');
  const both = await open(`/events?type=test.flood&since=${second}`, { 'last-event-id': fourth! });
  await both.until('2 replayed', (r) => r.length >= 2);
  await new Promise((r) => setTimeout(r, 100));
  t.same(ids(both), ids(first).slice(4), 'Last-Event-ID is where a reconnecting EventSource is');
});

t.test('filters apply to the replay', async (t) => {
  const mark = await open('/events');
  await publish(1, 'test.mark');
  await mark.until('a mark', (r) => r.some((x) => x.event === 'test.mark'));
  mark.close();
  const since = ids(mark, 'test.mark')[0]!;
  await publish(3, 'test.a');
  await publish(2, 'test.b');
  const onlyB = await open(`/events?type=test.b&since=${since}`);
  await onlyB.until('2 of test.b', (r) => r.length >= 2);
  await new Promise((r) => setTimeout(r, 100));
  t.same(onlyB.records.map((r) => r.event), ['test.b', 'test.b']);
});

t.test('clocks the daemon cannot answer for get a reset first', async (t) => {
  const probe = await open('/events');
  await publish(1, 'test.mark');
  await probe.until('a mark', (r) => r.length >= 1);
  probe.close();
  const current = probe.records[0]!.id!;
  const instance = current.split(':')[1];
  const cases: Array<[string, string]> = [
    ['another instance', 'c:0123456789ab:1'],
    ['a clock ahead of this one', `c:${instance}:${seq(current) + 1000}`],
    ['an id of the old numeric kind', '17'],
  ];
  // Older than the ring holds: more than RING events after it.
  await publish(RING + 5);
  cases.push(['older than the ring', current]);
  for (const [name, clock] of cases) {
    const s = await open('/events?type=test.flood,reset', { 'last-event-id': clock });
    await s.until(`a reset for ${name}`, (r) => r.length >= 1);
    const first = s.records[0]!;
    t.equal(first.event, 'reset', name);
    t.equal(first.data.is_fresh_instance, true, name);
    t.match(first.id, CLOCK, `${name}: the reset's id is the clock to go on from`);
    s.close();
    // The clock of a reset is a good place to resume from: nothing before it comes again.
    const resumed = await open('/events?type=test.flood', { 'last-event-id': first.id! });
    await publish(1);
    await resumed.until('the next event', (r) => r.length >= 1);
    t.equal(resumed.records[0]!.event, 'test.flood', `${name}: resuming from the reset's clock replays nothing old`);
    resumed.close();
  }
  const bad = await d.client.raw('GET', '/events?since=yesterday');
  t.equal(bad.status, 400, 'a ?since that is no clock is refused');
  t.equal(JSON.parse(bad.body).error.code, 'VALIDATION_FAILED');
});

t.test('a clock from before a restart gets a reset', async (t) => {
  const s1 = await open('/events?type=test.flood');
  await publish(3);
  await s1.until('3 events', (r) => r.length >= 3);
  s1.close();
  const last = ids(s1).at(-1)!;
  await d.close();
  const d2 = await bootDaemon({ config, stateDir: d.stateDir });
  t.teardown(() => d2.close());
  const s2 = await openSse({ socket: d2.socket, headers: { 'last-event-id': last } }, '/events');
  t.teardown(() => s2.close());
  await s2.until('a reset', (r) => r.length >= 1);
  t.equal(s2.records[0]!.event, 'reset');
  t.not(s2.records[0]!.id!.split(':')[1], last.split(':')[1], 'a new instance');
  const stats = await d2.client.call<any>('GET', '/optimization/stats');
  t.equal(stats.events.ring.size, RING, 'the ring bound is in the stats');
  t.equal(stats.events.resets, 1, 'and the resets');
  t.ok(stats.events.cut_off_bytes > 0, 'and how far a client may fall behind');
  t.equal(stats.events.subscribers, 1);
});

t.test('the bus on its own: ring, since and wanted', async (t) => {
  const bus = new EventBus({ ringSize: 3, instance: 'abc' });
  t.equal(bus.clock, 'c:abc:0');
  t.same(bus.since('c:abc:0'), [], 'nothing after the start yet');
  for (let i = 0; i < 5; i++) bus.publish('x', { path: `/p/${i}` });
  t.equal(bus.clock, 'c:abc:5');
  t.same(bus.since('c:abc:2')!.map((e) => e.id), ['c:abc:3', 'c:abc:4', 'c:abc:5'], 'exactly what the ring holds');
  t.equal(bus.since('c:abc:1'), null, 'one more is gone');
  t.same(bus.since('c:abc:5'), [], 'up to date');
  t.equal(bus.since('c:abc:6'), null, 'ahead');
  t.equal(bus.sequence('c:other:3'), null);
  t.equal(bus.sequence('c:abc:3'), 3);
  t.notOk(bus.wanted('x'), 'no subscriber');
  const off = bus.subscribe({ types: ['x'], pathPrefix: '/p/' }, () => {});
  t.ok(bus.wanted('x', { path: '/p/9' }));
  t.notOk(bus.wanted('x', { path: '/q' }));
  t.notOk(bus.wanted('y', { path: '/p/9' }));
  off();
  t.same(bus.stats().ring, { size: 3, held: 3, oldest: 'c:abc:3' });
});
