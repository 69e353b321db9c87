// The files plugin through a real daemon: freshness against writes made by other processes, restarts,
// path containment, atomic and conditional writes, hashes checked against git and node:crypto.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { Client } from '../src/client.js';
import { startDaemon } from '../src/daemon.js';
import { bootDaemon, cleanEnv, runCli, tempDir } from './helpers/daemon.js';
import { isAlive, launchDaemon } from './helpers/processes.js';
import { ContentCache } from '../plugins/files/content.js';
import { journalDir, WriteJournal } from '../plugins/files/write.js';
import { CacheService, cached, type CacheNamespace } from '../src/services/cache.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const q = (p: string) => encodeURIComponent(p);

async function setup(t: Tap.Test) {
  const root = tempDir('hearth-files-');
  const d = await bootDaemon({ config: { plugins: { files: { roots: [root] } } } });
  t.teardown(() => d.close());
  return { root, d };
}

async function errorOf(client: Client, method: string, path: string, body?: unknown) {
  const res = await client.raw(method, path, body);
  const json = JSON.parse(res.body);
  return { status: res.status, code: json.error?.code as string, success: json.success as boolean };
}

t.test('reads stay fresh across 200 edits made by another process', async (t) => {
  const { root, d } = await setup(t);
  const file = join(root, 'a.txt');
  writeFileSync(file, 'v0');
  const first = await d.client.call<any>('GET', `/files/read?path=${q(file)}`);
  t.match(first, { path: file, size: 2, encoding: 'utf8', content: 'v0', sha256: sha256('v0'), cached: false });
  let stale = 0;
  for (let i = 1; i <= 200; i++) {
    // Same size every time, many within the same millisecond: only the content tells them apart.
    const text = `v${String(i).padStart(3, '0')}`;
    if (i % 20 === 0) spawnSync(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(file)}, ${JSON.stringify(text)})`]);
    else writeFileSync(file, text);
    const got = await d.client.call<any>('GET', `/files/read?path=${q(file)}`);
    if (got.content !== text || got.sha256 !== sha256(text)) stale++;
  }
  t.equal(stale, 0, 'no stale answer in 200 edits');
});

t.test('a file not changed for a while is served from the cache, and a change is still seen', async (t) => {
  const { root, d } = await setup(t);
  const file = join(root, 'old.txt');
  writeFileSync(file, 'old');
  const past = new Date(Date.now() - 60_000);
  const { utimesSync } = await import('node:fs');
  utimesSync(file, past, past);
  t.equal((await d.client.call<any>('GET', `/files/read?path=${q(file)}`)).cached, false);
  t.equal((await d.client.call<any>('GET', `/files/read?path=${q(file)}`)).cached, true, 'the second read is a hit');
  writeFileSync(file, 'new');
  t.match(await d.client.call<any>('GET', `/files/read?path=${q(file)}`), { content: 'new', cached: false });
});

t.test('concurrent reads of a file share one read of it', async (t) => {
  const { root, d } = await setup(t);
  const file = join(root, 'shared.txt');
  writeFileSync(file, 'shared');
  const past = new Date(Date.now() - 60_000);
  utimesSync(file, past, past);
  const answers = await Promise.all(Array.from({ length: 8 }, () => d.client.call<any>('GET', `/files/read?path=${q(file)}`)));
  t.ok(answers.every((a) => a.content === 'shared'));
  t.equal(answers.filter((a) => !a.cached).length, 1, 'one of them read the file');
  const stats = (await d.client.call<any>('GET', '/optimization/stats')).cache_stats.namespaces.files;
  t.match(stats, { hits: 7, misses: 1, size: 1 }, 'the others were answered from the cache');
});

t.test('a read in flight answers a read that began after a change only if the change left the file as it was', async (t) => {
  const root = tempDir('hearth-files-');
  const cache = await CacheService.open({ ttl_seconds: 300, max_size: 100, store: 'memory', max_store_entries: 100 });
  t.teardown(() => cache.close());
  const view = cache.namespace('files');
  // The first read's cache write waits here: the read stays in flight after it has read the file.
  let reached!: () => void;
  const atGate = new Promise<void>((resolve) => (reached = resolve));
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const gated: CacheNamespace = {
    ...view,
    set: async (key, value, options) => {
      reached();
      await gate;
      return view.set(key, value, options);
    },
    cached: (options, fn) => cached({ ...options, cache: gated }, fn),
  };
  const content = new ContentCache(gated);
  const file = join(root, 'f.txt');
  // The same size and mtime, long past, before and after: only the ctime tells the versions apart.
  const past = new Date(Date.now() - 60_000);
  writeFileSync(file, 'old');
  utimesSync(file, past, past);
  const first = content.read(file);
  await atGate;
  writeFileSync(file, 'new');
  utimesSync(file, past, past);
  const second = content.read(file);
  setTimeout(release, 200); // time for the second read to find the first in flight
  t.match(await first, { content: 'old', cached: false });
  t.match(await second, { content: 'new', cached: false }, 'the second read reads the file itself');
  t.match(await content.read(file), { content: 'new', cached: true });
});

t.test('after a restart, a value restored from SQLite is revalidated', async (t) => {
  const root = tempDir('hearth-files-');
  const file = join(root, 'kept.txt');
  writeFileSync(file, 'before');
  const { utimesSync } = await import('node:fs');
  const past = new Date(Date.now() - 60_000);
  utimesSync(file, past, past);
  const still = join(root, 'still.txt');
  writeFileSync(still, 'unchanged');
  utimesSync(still, past, past);
  const d = await bootDaemon({ config: { plugins: { files: { roots: [root] } } } });
  await d.client.call('GET', `/files/read?path=${q(file)}`);
  await d.client.call('GET', `/files/read?path=${q(still)}`);
  t.equal((await d.client.call<any>('GET', `/files/read?path=${q(file)}`)).cached, true);
  await d.close();
  writeFileSync(file, 'changed while down');
  utimesSync(file, past, past); // same mtime as before: size and ctime still differ
  const again = await startDaemon({ flags: { stateDir: d.stateDir, port: 0, config: join(d.stateDir, 'config.json') }, env: cleanEnv(), logDestination: process.stderr });
  const client = new Client({ socket: again.listening.socket });
  t.teardown(async () => {
    await client.close();
    await again.close();
  });
  t.match(await client.call<any>('GET', `/files/read?path=${q(file)}`), { content: 'changed while down', cached: false });
  t.match(await client.call<any>('GET', `/files/read?path=${q(still)}`), { content: 'unchanged', cached: true }, 'an unchanged file is served from SQLite');
});

t.test('paths outside the roots are refused, whatever the trick', async (t) => {
  const { root, d } = await setup(t);
  const outside = tempDir('hearth-outside-');
  writeFileSync(join(outside, 'secret'), 'no');
  mkdirSync(join(root, 'sub'));
  symlinkSync(join(outside, 'secret'), join(root, 'link-out'));
  symlinkSync(outside, join(root, 'dir-out'));
  const tricks = [
    '../' + outside.split('/').pop() + '/secret',
    join(root, '..', outside.split('/').pop()!, 'secret'),
    join(outside, 'secret'),
    '/etc/passwd',
    join(root, 'link-out'),
    join(root, 'dir-out', 'secret'),
    'sub/../../' + outside.split('/').pop() + '/secret',
    `${root}/%2e%2e/secret`.replace('%2e%2e', '..'),
  ];
  for (const trick of tricks) {
    const e = await errorOf(d.client, 'GET', `/files/read?path=${q(trick)}`);
    t.same([e.status, e.code, e.success], [403, 'PATH_OUTSIDE_ROOTS', false], `read ${trick}`);
    const w = await errorOf(d.client, 'POST', '/files/write', { path: trick, content: 'x' });
    t.same([w.status, w.code], [403, 'PATH_OUTSIDE_ROOTS'], `write ${trick}`);
  }
  // Percent-encoded twice: the daemon decodes the query once and sees a literal "%2e%2e" name, which is missing.
  const encoded = await errorOf(d.client, 'GET', `/files/read?path=${q('%2e%2e/%2e%2e/etc/passwd')}`);
  t.equal(encoded.status, 404, 'a literal %2e%2e is a name, not a parent');
  // Percent-encoded once in the URL: Koa decodes the query, so the handler sees "../../etc/passwd" and refuses it.
  for (const raw of ['%2e%2e/%2e%2e/etc/passwd', '%2E%2E%2F%2E%2E%2Fetc%2Fpasswd', `${q(root)}%2F..%2F..%2Fetc%2Fpasswd`]) {
    const e = await errorOf(d.client, 'GET', `/files/read?path=${raw}`);
    t.same([e.status, e.code], [403, 'PATH_OUTSIDE_ROOTS'], `encoded once: ${raw}`);
  }
  const nul = await errorOf(d.client, 'GET', `/files/read?path=${q('a\0b')}`);
  t.same([nul.status, nul.code], [403, 'PATH_OUTSIDE_ROOTS'], 'NUL byte');
  t.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'no', 'nothing outside was written');
});

t.test('missing, directories, binary content, stat and raw with ETag', async (t) => {
  const { root, d } = await setup(t);
  t.same(Object.values(await errorOf(d.client, 'GET', `/files/read?path=missing.txt`)).slice(0, 2), [404, 'NOT_FOUND']);
  mkdirSync(join(root, 'dir'));
  t.same(Object.values(await errorOf(d.client, 'GET', `/files/read?path=dir`)).slice(0, 2), [400, 'NOT_A_FILE']);
  const binary = Buffer.from([0xff, 0x00, 0xfe, 0x80]);
  writeFileSync(join(root, 'bin'), binary);
  t.match(await d.client.call<any>('GET', '/files/read?path=bin'), { encoding: 'base64', content: binary.toString('base64'), size: 4 });
  const st = await d.client.call<any>('GET', '/files/stat?path=dir');
  t.match(st, { type: 'directory', symlink: false });
  symlinkSync(join(root, 'dir'), join(root, 'dir-link'));
  t.match(await d.client.call<any>('GET', '/files/stat?path=dir-link'), { path: join(root, 'dir'), type: 'directory', symlink: true }, 'a link inside the roots');
  chmodSync(join(root, 'bin'), 0o640);
  t.match(await d.client.call<any>('GET', '/files/stat?path=bin'), { type: 'file', size: 4, mode: '0640' });
  const raw = await d.client.raw('GET', '/files/raw?path=bin');
  t.equal(raw.status, 200);
  t.equal(raw.headers.etag, `"${sha256(binary)}"`);
  const { request, Agent } = await import('undici');
  const agent = new Agent({ connect: { socketPath: d.socket } });
  t.teardown(() => agent.close());
  const again = await request('http://localhost/files/raw?path=bin', { dispatcher: agent, headers: { 'if-none-match': `"${sha256(binary)}"` } });
  await again.body.dump();
  t.equal(again.statusCode, 304, 'If-None-Match answers 304');
  const bytes = await request('http://localhost/files/raw?path=bin', { dispatcher: agent });
  t.same(Buffer.from(await bytes.body.arrayBuffer()), binary, 'the raw bytes');
});

t.test('writes: atomic, mode kept, conditional, 20 concurrent writers', async (t) => {
  const { root, d } = await setup(t);
  const file = join(root, 'w.txt');
  writeFileSync(file, 'start');
  chmodSync(file, 0o600);
  const w = await d.client.call<any>('POST', '/files/write', { path: file, content: 'hello' });
  t.same(w, { path: file, size: 5, sha256: sha256('hello') });
  t.equal(readFileSync(file, 'utf8'), 'hello');
  t.equal(statSync(file).mode & 0o777, 0o600, 'mode kept');
  t.equal((await d.client.call<any>('GET', `/files/read?path=${q(file)}`)).content, 'hello', 'the cache has the write at once');

  const conflict = await errorOf(d.client, 'POST', '/files/write', { path: file, content: 'x', if_match: sha256('other') });
  t.same([conflict.status, conflict.code], [409, 'CONFLICT']);
  t.equal(readFileSync(file, 'utf8'), 'hello', 'a failed if_match writes nothing');
  t.match(await d.client.call<any>('POST', '/files/write', { path: file, content: 'next', if_match: sha256('hello') }), { sha256: sha256('next') });
  const b64 = await d.client.call<any>('POST', '/files/write', { path: 'new/../n.bin', content: Buffer.from([1, 2, 3]).toString('base64'), encoding: 'base64' });
  t.equal(b64.size, 3);
  t.same(readFileSync(join(root, 'n.bin')), Buffer.from([1, 2, 3]));
  const noParent = await errorOf(d.client, 'POST', '/files/write', { path: 'no/such/dir/f', content: 'x' });
  t.equal(noParent.status, 404);

  const contents = Array.from({ length: 20 }, (_, i) => `writer ${i} `.repeat(2000 + i));
  await Promise.all(contents.map((content) => d.client.call('POST', '/files/write', { path: file, content })));
  t.ok(contents.includes(readFileSync(file, 'utf8')), 'the file is whole and equal to one of the writes');
  t.same(readdirSync(root).filter((f) => f.includes('.hearth-')), [], 'no temp files left');
});

t.test('a write whose temp name would be too long is a 400, not a 500', async (t) => {
  const { root, d } = await setup(t);
  // 250 bytes is a legal name (the limit is 255), but `.<name>.hearth-<pid>-<hex>.tmp` beside it is not.
  const long = join(root, 'n'.repeat(250));
  const res = await errorOf(d.client, 'POST', '/files/write', { path: long, content: 'x' });
  t.same([res.status, res.code], [400, 'VALIDATION_FAILED']);
  t.same(readdirSync(root), [], 'nothing written');
  t.same(readdirSync(journalDir(d.stateDir)).flatMap((n) => pendingIn(join(journalDir(d.stateDir), n))), [], 'and nothing pending in the write journal');
});

/** A log sink for a daemon started in this process: its lines, as text. */
function logSink() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, sink };
}

/** A journal segment's records: what it names with `+` and no later `-` (read here, not with the plugin's code). */
function pendingIn(segment: string): string[] {
  const pending = new Set<string>();
  for (const line of readFileSync(segment, 'utf8').split('\n').filter(Boolean)) {
    const path = JSON.parse(line.slice(1)) as string;
    if (line[0] === '+') pending.add(path);
    else pending.delete(path);
  }
  return [...pending];
}

t.test('the write journal: at start, temp files that segments of dead writers name are removed, and nothing else', async (t) => {
  const root = tempDir('hearth-files-journal-');
  const stateDir = tempDir('hearth-files-journal-state-');
  const journal = journalDir(stateDir);
  mkdirSync(journal, { mode: 0o700 });
  // A live hearth daemon (a real one, on a state dir of its own): its segments are writes in flight.
  const otherState = tempDir('hearth-files-journal-other-');
  const otherConfig = join(otherState, 'config.json');
  writeFileSync(otherConfig, JSON.stringify({ plugins: { files: false, git: false, batch: false } }));
  const live = await launchDaemon(t, ['--state-dir', otherState, '--port', '0', '--config', otherConfig]);
  // A writer that is gone: a process that has exited.
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  t.ok(dead > 0 && !isAlive(dead), `pid ${dead} has exited`);
  const hex = (n: number) => String(n).repeat(8);
  const file = (name: string, content = name) => {
    writeFileSync(join(root, name), content);
    return join(root, name);
  };
  const segment = (pid: number, run: number, lines: string[]) => {
    const path = join(journal, `${pid}-${hex(run)}-1.log`);
    writeFileSync(path, lines.join('\n') + '\n');
    return path;
  };
  const plus = (p: string) => `+${JSON.stringify(p)}`;
  const minus = (p: string) => `-${JSON.stringify(p)}`;

  const deadTemp = file(`.a.txt.hearth-${dead}-${hex(1)}.tmp`);
  const doneTemp = file(`.b.txt.hearth-${dead}-${hex(2)}.tmp`, 'the journal says this write was done');
  const user = file('user.txt', 'mine');
  const otherPid = file(`.c.txt.hearth-${live.pid}-${hex(3)}.tmp`);
  const target = file('target.txt', 'linked');
  const link = join(root, `.d.txt.hearth-${dead}-${hex(4)}.tmp`);
  symlinkSync(target, link);
  const newline = file(`.e\n.txt.hearth-${dead}-${hex(5)}.tmp`);
  const deadSegment = segment(dead, 1, [
    plus(deadTemp),
    plus(doneTemp),
    minus(doneTemp),
    plus(user), // entries that name what is not a temp file of their writer: nothing of it is removed
    plus(otherPid),
    plus(link),
    plus(`.f.txt.hearth-${dead}-${hex(6)}.tmp`), // relative
    plus(join(root, 'gone', `.g.txt.hearth-${dead}-${hex(7)}.tmp`)), // never created
    plus(newline),
    '+"/torn', // a last line cut short
  ]);
  // This process is the daemon below: a segment of its own pid is a predecessor's that had the same pid.
  const ownTemp = file(`.h.txt.hearth-${process.pid}-${hex(8)}.tmp`);
  segment(process.pid, 2, [plus(ownTemp)]);
  const liveTemp = file(`.i.txt.hearth-${live.pid}-${hex(9)}.tmp`);
  const liveSegment = segment(live.pid, 3, [plus(liveTemp)]);
  // Temp-looking files no segment names, and a file in the journal dir that is not a segment.
  const unnamed = file(`.j.txt.hearth-${dead}-0badf00d.tmp`);
  const unnamedOwn = file(`.k.txt.hearth-${process.pid}-0badf00d.tmp`);
  writeFileSync(join(journal, 'notes.txt'), 'not a segment');

  const config = join(stateDir, 'config.json');
  writeFileSync(config, JSON.stringify({ plugins: { files: { roots: [root] }, git: false, batch: false } }));
  const { lines, sink } = logSink();
  const d = await startDaemon({ flags: { stateDir, port: 0, config }, env: cleanEnv(), logDestination: sink });
  const client = new Client({ socket: d.listening.socket });
  let closed = false;
  t.teardown(async () => {
    if (closed) return;
    await client.close();
    await d.close();
  });

  t.notOk(existsSync(deadTemp), 'the temp file of a dead writer is removed');
  t.notOk(existsSync(newline), 'also one with a newline in its name');
  t.notOk(existsSync(deadSegment), 'and its segment, once every file it names is handled');
  t.notOk(existsSync(ownTemp), 'the temp file of a predecessor with this pid is removed');
  t.ok(existsSync(doneTemp), 'a file whose write the journal says was done is kept');
  t.ok(existsSync(liveTemp), 'the temp file of a live hearth daemon is kept');
  t.ok(existsSync(liveSegment), 'and its segment');
  t.equal(readFileSync(user, 'utf8'), 'mine', "a user's file a segment names is kept");
  t.ok(existsSync(otherPid), "a temp file of another pid than the segment's is kept");
  t.ok(lstatSync(link).isSymbolicLink(), 'a link is not removed');
  t.equal(readFileSync(target, 'utf8'), 'linked', 'nor what it points to');
  t.ok(existsSync(unnamed) && existsSync(unnamedOwn), 'temp-looking files no segment names are kept');
  t.same(readdirSync(journal).sort(), [basename(liveSegment), 'notes.txt'].sort(), 'the swept segments are gone; the live one and the non-segment stay');
  const removed = lines.map((l) => JSON.parse(l) as { removed?: string[] }).find((l) => l.removed)?.removed;
  t.same(removed?.sort(), [deadTemp, newline, ownTemp].sort(), 'the removed files are logged');
  t.equal(lines.filter((l) => l.includes('not a temp file of pid')).length, 3, 'each path that is not a temp file of its writer is warned about');
  t.equal(lines.filter((l) => l.includes('line(s) that are not a record')).length, 1, 'and the torn line');

  // A write is recorded, and dropped once renamed; a clean close removes the segment.
  t.match(await client.call<any>('POST', '/files/write', { path: join(root, 'w.txt'), content: 'w' }), { size: 1 });
  const mine = readdirSync(journal).filter((n) => n.startsWith(`${process.pid}-`));
  t.equal(mine.length, 1, 'one segment for this daemon');
  const records = readFileSync(join(journal, mine[0]!), 'utf8');
  t.match(records, /^\+"[^"]+\/\.w\.txt\.hearth-\d+-[0-9a-f]{8}\.tmp"\n-"[^"]+"\n$/, 'named before, dropped after');
  t.same(pendingIn(join(journal, mine[0]!)), [], 'nothing pending');
  await client.close();
  await d.close();
  closed = true;
  t.same(readdirSync(journal).sort(), [basename(liveSegment), 'notes.txt'].sort(), 'the close removed its segment');
  t.same(readdirSync(root).filter((n) => n.startsWith('.w.txt.')), [], 'no temp file of the write is left');
  live.child.kill('SIGTERM');
  await live.exited;
});

t.test('the write journal: a journal that cannot be written does not stop starts or writes', async (t) => {
  const root = tempDir('hearth-files-journal-');
  const stateDir = tempDir('hearth-files-journal-state-');
  const journal = journalDir(stateDir);
  writeFileSync(journal, 'a file where the journal dir should be');
  const config = join(stateDir, 'config.json');
  writeFileSync(config, JSON.stringify({ plugins: { files: { roots: [root] }, git: false, batch: false } }));
  const { lines, sink } = logSink();
  const d = await startDaemon({ flags: { stateDir, port: 0, config }, env: cleanEnv(), logDestination: sink });
  const client = new Client({ socket: d.listening.socket });
  t.teardown(async () => {
    await client.close();
    await d.close();
  });
  t.equal(lines.filter((l) => l.includes('reading the write journal')).length, 1, 'the sweep says it could not read the journal');
  for (const content of ['x', 'yy']) t.match(await client.call<any>('POST', '/files/write', { path: join(root, 'w.txt'), content }), { size: content.length });
  t.equal(readFileSync(join(root, 'w.txt'), 'utf8'), 'yy', 'writes go on');
  t.equal(lines.filter((l) => l.includes('(writes go on without it)') && l.includes('"level":40')).length, 1, 'with one warning, not one per write');
  rmSync(journal);
  t.match(await client.call<any>('POST', '/files/write', { path: join(root, 'w.txt'), content: 'z' }), { size: 1 });
  const segments = readdirSync(journal);
  t.equal(segments.length, 1, 'once it can be, the journal is made again');
  t.same(pendingIn(join(journal, segments[0]!)), [], 'and records the write');
});

t.test('the write journal: a segment is replaced after its quota of writes, and removed when its last write is done', async (t) => {
  const dir = join(tempDir('hearth-files-journal-'), 'journal');
  const errors: string[] = [];
  const journal = new WriteJournal(dir, (_err, context) => errors.push(context), { segmentRecords: 2 });
  const dropA = await journal.record('/r/.a.hearth-1-00000000.tmp');
  const dropB = await journal.record('/r/.b.hearth-1-00000000.tmp');
  const dropC = await journal.record('/r/.c.hearth-1-00000000.tmp');
  const segments = () => readdirSync(dir).sort((a, b) => Number(a.split('-')[2]!.split('.')[0]) - Number(b.split('-')[2]!.split('.')[0]));
  const [first, second] = segments();
  t.equal(segments().length, 2, 'a second segment after two writes');
  t.same(pendingIn(join(dir, first!)).sort(), ['/r/.a.hearth-1-00000000.tmp', '/r/.b.hearth-1-00000000.tmp']);
  t.same(pendingIn(join(dir, second!)), ['/r/.c.hearth-1-00000000.tmp']);
  await dropA();
  t.same(segments(), [first, second], 'a full segment stays while one of its writes runs');
  await dropB();
  t.same(segments(), [second], 'and goes when the last is done');
  await dropC();
  t.same(segments(), [second], 'the current one stays while the daemon runs');
  await journal.close();
  t.same(segments(), [], 'and goes at close');
  t.same(errors, []);
});

t.test('hash: sha256 as node:crypto, git_oid as git hash-object, errors per path', async (t) => {
  const { root, d } = await setup(t);
  const files = ['a.txt', 'b.bin', 'empty'].map((n) => join(root, n));
  writeFileSync(files[0]!, 'hello\n');
  writeFileSync(files[1]!, Buffer.from([0, 1, 2, 255]));
  writeFileSync(files[2]!, '');
  const answer = await d.client.call<any[]>('POST', '/files/hash', { paths: [...files, join(root, 'missing')] });
  for (const [i, f] of files.entries()) {
    const oid = execFileSync('git', ['hash-object', f], { encoding: 'utf8' }).trim();
    t.same(answer[i], { path: f, size: statSync(f).size, sha256: sha256(readFileSync(f)), git_oid: oid }, f);
  }
  t.match(answer[3], { path: join(root, 'missing'), error: { code: 'NOT_FOUND' } });
  const outside = await errorOf(d.client, 'POST', '/files/hash', { paths: [files[0], '/etc/passwd'] });
  t.same([outside.status, outside.code], [403, 'PATH_OUTSIDE_ROOTS'], 'one path outside refuses the request');
  writeFileSync(files[0]!, 'changed\n');
  const again = await d.client.call<any[]>('POST', '/files/hash', { paths: [files[0]] });
  t.equal(again[0].sha256, sha256('changed\n'), 'a changed file is hashed again');
});

t.test('hash: a large file is hashed on the worker pool, with the same answer', async (t) => {
  const { root, d } = await setup(t);
  const big = join(root, 'big.bin');
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 7, 'abc');
  writeFileSync(big, bytes);
  const before = (await d.client.call<any>('GET', '/optimization/stats')).pool.completed;
  const [answer] = await d.client.call<any[]>('POST', '/files/hash', { paths: [big] });
  const oid = execFileSync('git', ['hash-object', big], { encoding: 'utf8' }).trim();
  t.same(answer, { path: big, size: bytes.length, sha256: sha256(bytes), git_oid: oid });
  t.equal((await d.client.call<any>('GET', '/optimization/stats')).pool.completed, before + 1, 'one pool task');
  const { default: task } = await import('../plugins/files/hash-task.js');
  t.same(await task({ path: big, size: bytes.length }), answer, 'the task module, in this thread');
});

t.test('CLI: files write, read, hash and stat through the daemon', async (t) => {
  const { root, d } = await setup(t);
  const base = ['--config', join(d.stateDir, 'config.json'), '--state-dir', d.stateDir, 'files'];
  const file = join(root, 'cli.txt');
  const w = await runCli([...base, 'write', file, '--content', 'from the cli\n'], cleanEnv(), 60_000);
  t.equal(w.code, 0, w.stderr);
  t.match(JSON.parse(w.stdout), { path: file, size: 13, sha256: sha256('from the cli\n') });
  const r = await runCli([...base, 'read', file], cleanEnv(), 60_000);
  t.equal(r.stdout, 'from the cli\n');
  const h = await runCli([...base, 'hash', file], cleanEnv(), 60_000);
  const oid = execFileSync('git', ['hash-object', file], { encoding: 'utf8' }).trim();
  t.equal(h.stdout, `${sha256('from the cli\n')}  ${oid}  ${file}\n`);
  const s = await runCli([...base, 'stat', file], cleanEnv(), 60_000);
  t.match(JSON.parse(s.stdout), { type: 'file', size: 13 });
});
