// The watcher and the event stream through a real daemon: a file read by the files plugin has its
// directory watched; a change made by another writer arrives on GET /events and invalidates the cache.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import { COOKIE_PREFIX } from '../src/services/dir-watch.js';
import { EventBus } from '../src/services/events.js';
import { readdirSync } from 'node:fs';
import { ignoreMatcher, WatcherService } from '../src/services/watcher.js';
import { createLogger } from '../src/services/logger.js';
import { bootDaemon, tempDir } from './helpers/daemon.js';

/** Opens GET /events over the socket and collects the parsed events. */
async function openStream(socket: string, query: string) {
  const agent = new Agent({ connect: { socketPath: socket } });
  const res = await request(`http://localhost/events${query}`, { dispatcher: agent });
  const events: Array<Record<string, any>> = [];
  let buffer = '';
  let ended = false;
  res.body.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (data) events.push(JSON.parse(data.slice(6)));
    }
  });
  const done = new Promise<void>((resolve) => res.body.on('end', () => ((ended = true), resolve())).on('error', () => resolve()));
  return { res, events, done, ended: () => ended, close: () => agent.destroy() };
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('changes to a watched directory reach GET /events and invalidate the cache', async (t) => {
  const root = tempDir('hearth-watch-');
  mkdirSync(join(root, 'node_modules'));
  const d = await bootDaemon({ config: { plugins: { files: { roots: [root] } } } });
  t.teardown(() => d.close());
  const file = join(root, 'a.txt');
  writeFileSync(file, 'one');
  t.match(await d.client.call<any>('GET', '/health'), { watcher: { mode: 'off', watched_paths: 0 } });
  await d.client.call('GET', `/files/read?path=${encodeURIComponent(file)}`);
  t.match(await d.client.call<any>('GET', '/health'), { watcher: { mode: 'events', watched_paths: 1 }, reasons: [] });

  const stream = await openStream(d.socket, `?type=file.changed,file.added,cache.invalidated&path=${encodeURIComponent(root)}`);
  t.teardown(() => stream.close());
  t.equal(stream.res.statusCode, 200);
  t.match(stream.res.headers['content-type'], /text\/event-stream/);
  const other = await openStream(d.socket, '?type=file.removed');
  t.teardown(() => other.close());

  // Give the watch a moment to be armed, then write as another program would.
  await new Promise((r) => setTimeout(r, 300));
  writeFileSync(file, 'two');
  writeFileSync(join(root, 'node_modules', 'ignored.js'), 'x');
  writeFileSync(join(root, 'b.txt'), 'new');
  await until('file.changed and file.added', () =>
    stream.events.some((e) => e.type === 'file.changed' && e.path === file) && stream.events.some((e) => e.type === 'file.added'),
  );
  await until('cache.invalidated', () => stream.events.some((e) => e.type === 'cache.invalidated' && e.path === file));
  const changed = stream.events.find((e) => e.type === 'file.changed')!;
  t.match(changed.id, /^c:[0-9a-f]+:[0-9]+$/, 'the id is a clock');
  t.equal(changed.clock, changed.id);
  t.equal(new Date(changed.time).toISOString(), changed.time);
  t.notOk(stream.events.some((e) => String(e.path).includes('node_modules')), 'ignored paths send nothing');
  t.same(other.events, [], 'a filter by type keeps other events out');
  t.equal((await d.client.call<any>('GET', `/files/read?path=${encodeURIComponent(file)}`)).content, 'two');

  const bad = await d.client.raw('GET', '/events?type=Bad%20Type');
  t.equal(bad.status, 400, 'the query is validated');

  // A graceful close ends open streams instead of waiting on them.
  const started = Date.now();
  await d.close();
  await stream.done;
  t.ok(stream.ended(), 'the stream ended');
  t.ok(Date.now() - started < 3000, `close did not wait for the stream (${Date.now() - started} ms)`);
});

t.test('watchDir keeps the most recently asked directories, at most maxDirs: the least recent one stops reporting', async (t) => {
  const root = tempDir('hearth-watchdir-');
  const [a, b, c] = ['a', 'b', 'c'].map((name) => join(root, name));
  for (const dir of [a, b, c]) mkdirSync(dir!);
  const watcher = new WatcherService({ ignore: [], bus: new EventBus(), log: createLogger('silent'), maxDirs: 2 });
  t.teardown(() => watcher.close());
  const seen: string[] = [];
  watcher.onChange((path) => seen.push(path));
  watcher.watchDir(a!);
  watcher.watchDir(b!);
  watcher.watchDir(a!); // asked again: now more recent than b
  watcher.watchDir(c!);
  const limit = existsSync('/proc/sys/fs/inotify/max_user_watches') ? Number(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8')) : null;
  t.same(watcher.status(), { mode: 'events', watched_paths: 2, watch_limit: limit }, "with the OS's watch limit");
  await new Promise((r) => setTimeout(r, 300)); // chokidar arms its watches
  for (const dir of [b, a, c]) writeFileSync(join(dir!, 'f.txt'), 'x');
  await until('the changes in a and c', () => seen.includes(join(a!, 'f.txt')) && seen.includes(join(c!, 'f.txt')));
  await new Promise((r) => setTimeout(r, 200));
  t.notOk(seen.includes(join(b!, 'f.txt')), 'b, the least recently asked, was dropped');
});

t.test('event bus filters and ignore patterns', async (t) => {
  const bus = new EventBus();
  const seen: string[] = [];
  const stop = bus.subscribe({ types: ['a'], pathPrefix: '/x/' }, (e) => seen.push(`${e.type}:${String(e.path)}`));
  bus.publish('a', { path: '/x/1' });
  bus.publish('b', { path: '/x/2' });
  bus.publish('a', { path: '/y/3' });
  bus.publish('a', {});
  stop();
  bus.publish('a', { path: '/x/4' });
  t.same(seen, ['a:/x/1']);
  let closed = false;
  bus.subscribe({}, () => {}, () => (closed = true));
  bus.close();
  t.ok(closed);
  t.equal(bus.subscribers, 0);

  const ignored = ignoreMatcher(['**/node_modules/**', '**/.git/objects/**']);
  t.ok(ignored('/r/node_modules/x.js'));
  t.ok(ignored('/r/node_modules'));
  t.ok(ignored('/r/.git/objects/ab/cd'));
  t.notOk(ignored('/r/src/node_modules_like.js'));
  t.notOk(ignored('/r/.git/HEAD'));
});


t.test('watchDirs(): settle() resolves after every change made before it has been reported', async (t) => {
  const root = tempDir('hearth-dirwatch-');
  mkdirSync(join(root, 'sub'));
  const bus = new EventBus();
  const watcher = new WatcherService({ ignore: [], bus, log: createLogger('silent') });
  t.teardown(() => watcher.close());
  const seen: string[] = [];
  const set = watcher.watchDirs((dir, name) => seen.push(join(dir, name ?? '')));
  t.equal(await set.settle(root), false, 'a directory not watched cannot be settled');
  t.ok(set.add(root) && set.add(join(root, 'sub')));
  t.equal(watcher.status().watched_paths, 2);
  for (let i = 0; i < 50; i++) {
    const file = join(root, i % 2 ? 'sub' : '', `f${i}.txt`);
    writeFileSync(file, String(i));
    t.equal(await set.settle(root), true);
    t.ok(seen.includes(file), `write ${i} was reported before settle resolved`);
  }
  t.notOk(seen.some((p) => p.includes(COOKIE_PREFIX)), 'cookies are never reported');
  set.close();
  t.equal(set.size, 0, 'a closed set holds no watches');
  t.equal(watcher.status().watched_paths, 0, 'and the watcher counts none of them');
  t.notOk(set.add(root), 'a closed set takes no new watch');
});
