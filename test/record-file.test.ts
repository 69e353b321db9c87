// The record file on real files in temp dirs: round trips, deletes, compaction, torn and damaged files, edited
// headers, I/O failures and recovery, serialized flushes.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import t, { type Test } from 'tap';
import { RecordFile, type RecordFileOptions } from '../src/services/record-file.js';

function setup(t: Test, extra: Partial<RecordFileOptions> = {}): RecordFileOptions {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-record-file-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { file: join(dir, 'git', 'repo.state'), kind: 'hearth-git-state', version: 3, identity: '/repo@1234', ...extra };
}

/** The live records as plain strings, for t.same. */
const text = (records: Map<string, Buffer>): Record<string, string> =>
  Object.fromEntries([...records].map(([k, v]) => [k, v.toString()]));

/** Byte offsets where each batch starts (after the header), read from the file as written. */
function batchStarts(file: string): number[] {
  const buf = readFileSync(file);
  const starts: number[] = [];
  for (let pos = buf.indexOf(0x0a) + 1; pos < buf.length; pos += 8 + buf.readUInt32BE(pos)) starts.push(pos);
  return starts;
}

async function reopen(options: RecordFileOptions) {
  const opened = await RecordFile.open(options);
  await opened.file.close();
  return opened;
}

t.test('a missing file: created with the header, mode 0o600 in a 0o700 dir', async (t) => {
  const o = setup(t);
  const { file, records, discarded } = await RecordFile.open(o);
  t.equal(discarded, 'missing');
  t.equal(records.size, 0);
  await file.close();
  const head = JSON.parse(readFileSync(o.file, 'utf8').split('\n')[0]!);
  t.same(head, { magic: 'hearth-record-file', format: 1, kind: 'hearth-git-state', version: 3, identity: '/repo@1234' });
  t.equal(statSync(o.file).mode & 0o777, 0o600);
  t.equal(statSync(join(o.file, '..')).mode & 0o777, 0o700);
  t.equal(file.stats.compactions, 0, 'creating is not a compaction');
  const again = await reopen(o);
  t.equal(again.discarded, null, 'a fresh file opens clean');
});

t.test('round trip: puts, a unicode key, an empty value, deletes', async (t) => {
  const o = setup(t);
  const { file } = await RecordFile.open(o);
  const big = Buffer.alloc(100_000, 7);
  file.put('src', Buffer.from('one'));
  file.put('répertoire/日本/🙂', Buffer.from('unicode'));
  file.put('empty', Buffer.alloc(0));
  file.put('big', big);
  file.put('gone', Buffer.from('x'));
  file.delete('gone');
  file.delete('never-there');
  const reused = Buffer.from('first');
  file.put('copied', reused);
  reused.write('XXXXX');
  t.same(file.stats.live_records, 5);
  await file.close();
  const { records, discarded } = await reopen(o);
  t.equal(discarded, null);
  t.same(Object.keys(text(records)).sort(), ['big', 'copied', 'empty', 'répertoire/日本/🙂', 'src']);
  t.equal(records.get('src')!.toString(), 'one');
  t.equal(records.get('répertoire/日本/🙂')!.toString(), 'unicode');
  t.equal(records.get('empty')!.length, 0);
  t.ok(records.get('big')!.equals(big));
  t.equal(records.get('copied')!.toString(), 'first', 'put keeps a copy, not the caller\'s buffer');
  t.equal(records.get('src')!.buffer, records.get('big')!.buffer, 'values are views of one read buffer');
});

t.test('a lone surrogate key is refused', async (t) => {
  const { file } = await RecordFile.open(setup(t));
  t.throws(() => file.put('a\ud800b', Buffer.from('x')), TypeError);
  t.equal(file.stats.live_records, 0);
  await file.close();
});

t.test('many flushes then reopen: the last values; one batch per flush, none when nothing changed', async (t) => {
  const o = setup(t);
  const { file } = await RecordFile.open(o);
  for (let i = 0; i < 50; i++) {
    for (let k = 0; k < 10; k++) file.put(`k${k}`, Buffer.from(`v${i}-${k}`));
    if (i % 2) file.delete(`k${i % 10}`);
    await file.flush();
  }
  t.equal(file.stats.batches_written, 50);
  const size = statSync(o.file).size;
  t.equal(file.stats.file_bytes, size);
  await file.flush();
  t.equal(file.stats.batches_written, 50, 'an empty flush writes nothing');
  t.equal(statSync(o.file).size, size);
  await file.close();
  const expected: Record<string, string> = {};
  for (let k = 0; k < 10; k++) expected[`k${k}`] = `v49-${k}`;
  delete expected.k9;
  const { records } = await reopen(o);
  t.same(text(records), expected);
});

t.test('compaction: only past ~2x the live size and the minimum; the file shrinks, the content stays', async (t) => {
  const o = setup(t, { compactMinBytes: 4096 });
  const { file } = await RecordFile.open(o);
  const value = Buffer.alloc(100, 1);
  for (let k = 0; k < 10; k++) file.put(`key${k}`, value);
  await file.flush();
  const live = statSync(o.file).size;
  // Rewriting the same 10 records: the file grows by one batch a flush; compaction waits for 2x and 4 KiB.
  const batch = live - (readFileSync(o.file).indexOf(0x0a) + 1);
  const sizes: number[] = [];
  for (let i = 0; file.stats.compactions === 0; i++) {
    sizes.push(file.stats.file_bytes);
    for (let k = 0; k < 10; k++) file.put(`key${k}`, Buffer.alloc(100, 32 + (i % 90)));
    await file.flush();
  }
  t.equal(file.stats.compactions, 1);
  t.ok(sizes.length >= 3, `appended ${sizes.length - 1} times first`);
  t.same(sizes.slice(1).map((size, i) => size - sizes[i]!), sizes.slice(1).map(() => batch), 'each earlier flush appended one batch');
  t.ok(sizes.at(-2)! + batch <= 4096 && sizes.at(-1)! + batch > 4096, 'compacted at the first flush past 4 KiB');
  t.equal(statSync(o.file).size, live, 'back to the live size');
  t.equal(file.stats.file_bytes, live);
  t.equal(file.stats.live_bytes + 8 + readFileSync(o.file).indexOf(0x0a) + 1, live);
  const last = file.stats.live_records;
  file.put('after', Buffer.from('appended'));
  await file.flush();
  await file.close();
  const { records } = await reopen(o);
  t.equal(records.size, last + 1);
  t.ok(records.get('key0')!.equals(records.get('key9')!));
  t.equal(records.get('after')!.toString(), 'appended');

  // Past the minimum, 2x the live size decides.
  const o3 = setup(t, { compactMinBytes: 0 });
  const third = (await RecordFile.open(o3)).file;
  const flushes: number[] = [];
  for (let i = 0; i < 3; i++) {
    third.put('one', Buffer.alloc(1000, i));
    await third.flush();
    flushes.push(third.stats.compactions);
  }
  t.same(flushes, [0, 0, 1], 'the second append stays under 2x, the third goes past it');
  await third.close();

  // A file of deletes only compacts down to the header.
  const o2 = setup(t, { compactMinBytes: 0 });
  const second = (await RecordFile.open(o2)).file;
  second.put('a', Buffer.alloc(1000));
  await second.flush();
  second.delete('a');
  await second.flush();
  t.equal(second.stats.compactions, 1);
  t.equal(statSync(o2.file).size, readFileSync(o2.file).indexOf(0x0a) + 1);
  await second.close();
  t.equal((await reopen(o2)).records.size, 0);
});

t.test('big files stay appended below the default 64 KiB minimum', async (t) => {
  const o = setup(t);
  const { file } = await RecordFile.open(o);
  for (let i = 0; i < 50; i++) {
    file.put('k', Buffer.alloc(1000, i));
    await file.flush();
  }
  t.equal(file.stats.compactions, 0);
  t.ok(file.stats.file_bytes > 50_000);
  await file.close();
});

/** Writes three batches: {a:1}, {b:2}, {c:3, a deleted}. */
async function threeBatches(o: RecordFileOptions): Promise<void> {
  const { file } = await RecordFile.open(o);
  file.put('a', Buffer.from('1'));
  await file.flush();
  file.put('b', Buffer.from('2'));
  await file.flush();
  file.put('c', Buffer.from('3'));
  file.delete('a');
  await file.close();
}

t.test('a torn last batch is dropped, the earlier ones kept, and the file cut back', async (t) => {
  for (const cut of [1, 3, 9, 12, 20]) {
    const o = setup(t);
    await threeBatches(o);
    const starts = batchStarts(o.file);
    const size = statSync(o.file).size;
    truncateSync(o.file, size - cut);
    const { file, records, discarded } = await RecordFile.open(o);
    t.equal(discarded, null, `cut ${cut}`);
    t.same(text(records), { a: '1', b: '2' });
    t.equal(statSync(o.file).size, starts[2], 'truncated to the last good batch');
    file.put('d', Buffer.from('4'));
    await file.close();
    t.same(text((await reopen(o)).records), { a: '1', b: '2', d: '4' }, 'appends after the cut read back');
  }
});

t.test('a last batch that is whole but bad, or zeros, is a torn append too', async (t) => {
  const o = setup(t);
  await threeBatches(o);
  const buf = readFileSync(o.file);
  buf[buf.length - 1]! ^= 0xff;
  writeFileSync(o.file, buf);
  t.same(text((await reopen(o)).records), { a: '1', b: '2' }, 'bad CRC on the last batch');

  const o2 = setup(t);
  await threeBatches(o2);
  const size = statSync(o2.file).size;
  writeFileSync(o2.file, Buffer.concat([readFileSync(o2.file), Buffer.alloc(40)]));
  const zeros = await reopen(o2);
  t.equal(zeros.discarded, null);
  t.same(text(zeros.records), { b: '2', c: '3' }, 'a zero-filled tail');
  t.equal(statSync(o2.file).size, size, 'the zeros cut off');
});

t.test('damage before the end: the whole file is discarded and replaced', async (t) => {
  const o = setup(t);
  await threeBatches(o);
  const starts = batchStarts(o.file);
  const buf = readFileSync(o.file);
  buf[starts[1]! + 10]! ^= 0x01; // A byte in the middle batch's records.
  writeFileSync(o.file, buf);
  const { records, discarded } = await reopen(o);
  t.equal(discarded, 'damaged');
  t.equal(records.size, 0);
  t.equal(statSync(o.file).size, readFileSync(o.file).indexOf(0x0a) + 1, 'replaced by a fresh file');
  t.equal((await reopen(o)).discarded, null);

  // An empty batch (length 0) followed by data; a batch whose CRC matches but whose records overrun it.
  const bad = (body: Buffer): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.writeUInt32BE(crc32(body), 4);
    return Buffer.concat([head, body]);
  };
  const header = readFileSync(o.file);
  const good = bad(Buffer.from([1, 0, 0, 0, 1, 0, 0, 0, 1, 0x6b, 0x76])); // put 'k' = 'v'
  const cases: [string, Buffer][] = [
    ['empty batch mid-file', Buffer.concat([header, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 9]), good])],
    ['unknown op', Buffer.concat([header, bad(Buffer.from([7, 0, 0, 0, 0])), good])],
    ['record overruns its batch', Buffer.concat([header, bad(Buffer.from([1, 0, 0, 0, 9, 0, 0, 0, 1, 0x6b, 0x76])), good])],
    ['truncated record head', Buffer.concat([header, bad(Buffer.from([2, 0, 0])), good])],
  ];
  for (const [name, content] of cases) {
    writeFileSync(o.file, content);
    t.equal((await reopen(o)).discarded, 'damaged', name);
  }
  writeFileSync(o.file, Buffer.concat([header, good, good]));
  t.same(text((await reopen(o)).records), { k: 'v' }, 'the hand-made batches are valid as such');
});

t.test('headers: another kind, version or identity is discarded with that reason', async (t) => {
  const edits: [string, (h: Record<string, unknown>) => void][] = [
    ['kind', (h) => (h.kind = 'other')],
    ['version', (h) => (h.version = 4)],
    ['identity', (h) => (h.identity = '/other@1234')],
    ['damaged', (h) => (h.magic = 'nope')],
    ['damaged', (h) => (h.format = 2)],
    ['version', (h) => (h.version = '3')],
  ];
  for (const [reason, edit] of edits) {
    const o = setup(t);
    await threeBatches(o);
    const buf = readFileSync(o.file);
    const eol = buf.indexOf(0x0a);
    const head = JSON.parse(buf.toString('utf8', 0, eol)) as Record<string, unknown>;
    edit(head);
    writeFileSync(o.file, Buffer.concat([Buffer.from(JSON.stringify(head)), buf.subarray(eol)]));
    const { records, discarded } = await reopen(o);
    t.equal(discarded, reason, JSON.stringify(head));
    t.equal(records.size, 0);
    t.equal((await reopen(o)).discarded, null, 'replaced by a fresh file of ours');
  }
});

t.test('garbage, an empty file, a header that is not an object or has no newline', async (t) => {
  const contents = [
    Buffer.alloc(0),
    Buffer.from('garbage\n\x00\x01\x02'),
    Buffer.from('null\n'),
    Buffer.from('[1]\n'),
    Buffer.from('{"magic":"hearth-record-file","format":1,"kind":"hearth-git-state","version":3,"identity":"/repo@1234"}'),
    Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256)),
  ];
  for (const content of contents) {
    const o = setup(t);
    mkdirSync(join(o.file, '..'), { recursive: true });
    writeFileSync(o.file, content);
    const { records, discarded } = await reopen(o);
    t.equal(discarded, 'damaged', content.subarray(0, 20).toString('hex'));
    t.equal(records.size, 0);
  }
});

t.test('a path that cannot be read rejects open', async (t) => {
  const o = setup(t);
  mkdirSync(o.file, { recursive: true });
  await t.rejects(RecordFile.open(o), { code: 'EISDIR' });
});

t.test('after close: put, delete and flush are ignored; close twice is fine', async (t) => {
  const o = setup(t);
  const { file } = await RecordFile.open(o);
  file.put('a', Buffer.from('1'));
  await file.close();
  const size = statSync(o.file).size;
  file.put('b', Buffer.from('2'));
  file.delete('a');
  file.put('\ud800', Buffer.from('no check either'));
  await file.flush();
  await file.close();
  t.equal(statSync(o.file).size, size);
  t.same(text((await reopen(o)).records), { a: '1' });
});

t.test('remove deletes the file without writing, and later calls are ignored', async (t) => {
  const o = setup(t);
  const { file } = await RecordFile.open(o);
  file.put('a', Buffer.from('1'));
  await file.remove();
  t.notOk(existsSync(o.file));
  file.put('b', Buffer.from('2'));
  await file.flush();
  await file.close();
  await file.remove();
  t.notOk(existsSync(o.file));
  t.equal((await reopen(o)).discarded, 'missing');
});

t.test('an append that fails rejects; the next flush rewrites everything not yet written', async (t) => {
  const o = setup(t);
  const { file } = await RecordFile.open(o);
  file.put('a', Buffer.from('1'));
  await file.flush();
  // The fd closed underneath: a real EBADF from the write.
  await (file as unknown as { handle: FileHandle }).handle.close();
  file.put('b', Buffer.from('2'));
  await t.rejects(file.flush(), { code: 'EBADF' });
  file.put('c', Buffer.from('3'));
  await file.flush();
  t.equal(file.stats.compactions, 1, 'recovered by a rewrite');
  file.put('d', Buffer.from('4'));
  await file.flush();
  await file.close();
  t.same(text((await reopen(o)).records), { a: '1', b: '2', c: '3', d: '4' });
});

/** Runs `fn` with this process's file size limit (RLIMIT_FSIZE) set: writes past it are cut short, then fail
 * with EFBIG (SIGXFSZ caught, not fatal). The nearest thing to a full disk that needs no mount. */
async function withFileSizeLimit(bytes: number, fn: () => Promise<void>): Promise<void> {
  const ignore = () => undefined;
  process.on('SIGXFSZ', ignore);
  execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${bytes}:unlimited`]);
  try {
    await fn();
  } finally {
    execFileSync('prlimit', ['--pid', String(process.pid), '--fsize=unlimited:unlimited']);
    process.off('SIGXFSZ', ignore);
  }
}

let prlimit = true;
try {
  execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
} catch {
  prlimit = false;
}

t.test('a full disk: a short append, then a failed rewrite, then recovery', { skip: !prlimit && 'no prlimit' }, async (t) => {
  const o = setup(t);
  const { file } = await RecordFile.open(o);
  file.put('a', Buffer.from('1'));
  await file.flush();
  const size = statSync(o.file).size;
  await withFileSizeLimit(size + 100, async () => {
    file.put('big', Buffer.alloc(1000, 2));
    await t.rejects(file.flush(), /short write/, 'part of the batch reached the file');
    t.equal(statSync(o.file).size, size + 100);
    file.put('b', Buffer.from('3'));
    await t.rejects(file.flush(), /short write|EFBIG/, 'the rewrite does not fit either');
    t.notOk(existsSync(`${o.file}.tmp`), 'its temp file removed');
  });
  t.same(text((await reopen(o)).records), { a: '1' }, 'meanwhile the file reads as before the torn append');
  await file.flush();
  await file.close();
  const { records } = await reopen(o);
  t.same(Object.keys(text(records)), ['a', 'big', 'b']);
  t.equal(records.get('big')!.length, 1000);
});

t.test('a rewrite that fails rejects and leaves the file as it was; the next flush tries again', async (t) => {
  const o = setup(t, { compactMinBytes: 0 });
  const { file } = await RecordFile.open(o);
  file.put('a', Buffer.alloc(1000));
  await file.flush();
  const before = readFileSync(o.file);
  mkdirSync(`${o.file}.tmp`); // The temp file cannot be created: EISDIR, even for root.
  file.put('a', Buffer.from('2'));
  file.put('b', Buffer.from('3'));
  await t.rejects(file.flush(), { code: 'EISDIR' });
  t.ok(readFileSync(o.file).equals(before), 'untouched');
  await t.rejects(file.flush(), { code: 'EISDIR' }, 'a flush with nothing new still retries');
  rmdirSync(`${o.file}.tmp`);
  await file.flush();
  await file.close();
  t.same(text((await reopen(o)).records), { a: '2', b: '3' });
  t.notOk(existsSync(`${o.file}.tmp`));

  // Creating a fresh file fails the same way: open rejects.
  const o2 = setup(t);
  mkdirSync(`${o2.file}.tmp`, { recursive: true });
  await t.rejects(RecordFile.open(o2), { code: 'EISDIR' });
});

t.test('a close whose flush fails rejects, and still closes', async (t) => {
  const o = setup(t);
  const { file } = await RecordFile.open(o);
  await (file as unknown as { handle: FileHandle }).handle.close();
  file.put('a', Buffer.from('1'));
  mkdirSync(`${o.file}.tmp`);
  await t.rejects(file.flush(), { code: 'EBADF' });
  await t.rejects(file.close(), { code: 'EISDIR' });
  await file.flush();
  t.equal((await reopen(o)).records.size, 0);
});

t.test('concurrent flushes are serialized: every write lands, in order', async (t) => {
  const o = setup(t, { compactMinBytes: 0 });
  const { file } = await RecordFile.open(o);
  const flushes: Promise<void>[] = [];
  for (let i = 0; i < 200; i++) {
    file.put(`k${i % 7}`, Buffer.alloc(100, 32 + (i % 90)));
    if (i % 5 === 0) file.delete(`k${(i + 3) % 7}`);
    flushes.push(file.flush());
    // Let some flushes start, so later puts land while earlier writes are under way.
    if (i % 2 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(flushes);
  t.ok(file.stats.batches_written > 2, `${file.stats.batches_written} batches`);
  t.ok(file.stats.compactions > 0, 'some flushes compacted while others appended');
  const expected: Record<string, string> = {};
  for (let i = 0; i < 200; i++) {
    expected[`k${i % 7}`] = Buffer.alloc(100, 32 + (i % 90)).toString();
    if (i % 5 === 0) delete expected[`k${(i + 3) % 7}`];
  }
  await file.close();
  t.same(text((await reopen(o)).records), expected);
});
