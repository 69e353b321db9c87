// GET /files/changes through a real daemon on real files: the answer since a clock is compared with a model
// of what the test changed; clocks it cannot answer for, overflow, eviction and bad input.
import { execFileSync } from 'node:child_process';
import { mkdirSync, realpathSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import { bootDaemon, tempDir, type TestDaemon } from './helpers/daemon.js';

type Change = { path: string; type: 'changed' | 'added' | 'removed' };
interface Answer {
  clock: string;
  is_fresh_instance: boolean;
  reason?: string;
  changes: Change[];
}

const changes = (d: TestDaemon, root: string, since?: string) =>
  d.client.call<Answer>('GET', `/files/changes?root=${encodeURIComponent(root)}${since ? `&since=${encodeURIComponent(since)}` : ''}`);

/** The answer's changes as path -> type, for comparison with the model. */
const asMap = (a: Answer) => Object.fromEntries(a.changes.map((c) => [c.path, c.type]));

async function raw(d: TestDaemon, query: string, path = '/files/changes') {
  const agent = new Agent({ connect: { socketPath: d.socket } });
  try {
    const res = await request(`http://localhost${path}?${query}`, { dispatcher: agent });
    return { status: res.statusCode, json: (await res.body.json()) as any };
  } finally {
    await agent.close();
  }
}

t.test('changes since a clock match what was changed', async (t) => {
  const root = realpathSync(tempDir('hearth-chg-'));
  mkdirSync(join(root, 'a/b'), { recursive: true });
  mkdirSync(join(root, 'node_modules/pkg'), { recursive: true });
  writeFileSync(join(root, 'a/b/old.txt'), 'old');
  writeFileSync(join(root, 'keep.txt'), 'keep');
  writeFileSync(join(root, 'gone.txt'), 'gone');
  mkdirSync(join(root, 'a/doomed/deep'), { recursive: true });
  writeFileSync(join(root, 'a/doomed/deep/x'), 'x');
  writeFileSync(join(root, 'a/doomed/y'), 'y');
  const outside = realpathSync(tempDir('hearth-chg-out-'));
  mkdirSync(join(outside, 'incoming/sub'), { recursive: true });
  writeFileSync(join(outside, 'incoming/sub/f'), 'f');
  const d = await bootDaemon({ config: { plugins: { files: { roots: [root, outside] } } } });
  t.teardown(() => d.close());

  const first = await changes(d, root);
  t.equal(first.is_fresh_instance, true);
  t.notOk(first.reason, 'no reason when no since was given');
  t.match(first.clock, /^c:[0-9a-z]+:\d+$/);
  t.same(first.changes, []);

  // A since from before the watch started (the clock of the first answer is the start).
  const again = await changes(d, root, first.clock);
  t.equal(again.is_fresh_instance, false);
  t.same(again.changes, []);

  const model: Record<string, Change['type']> = {};
  const p = (rel: string) => join(root, rel);
  writeFileSync(p('a/b/old.txt'), 'new');
  model[p('a/b/old.txt')] = 'changed';
  writeFileSync(p('a/b/new.txt'), 'n');
  model[p('a/b/new.txt')] = 'added';
  unlinkSync(p('gone.txt'));
  model[p('gone.txt')] = 'removed';
  // A new directory with files made right after mkdir, nested.
  mkdirSync(p('fresh'));
  writeFileSync(p('fresh/one'), '1');
  mkdirSync(p('fresh/inner/more'), { recursive: true });
  writeFileSync(p('fresh/inner/more/two'), '2');
  Object.assign(model, {
    [p('fresh')]: 'added',
    [p('fresh/one')]: 'added',
    [p('fresh/inner')]: 'added',
    [p('fresh/inner/more')]: 'added',
    [p('fresh/inner/more/two')]: 'added',
  });
  // rm -r of a directory: it and everything known in it are removed.
  rmSync(p('a/doomed'), { recursive: true });
  Object.assign(model, { [p('a/doomed')]: 'removed', [p('a/doomed/deep')]: 'removed', [p('a/doomed/deep/x')]: 'removed', [p('a/doomed/y')]: 'removed' });
  // Rapid rewrites: once, changed.
  for (let i = 0; i < 50; i++) writeFileSync(p('keep.txt'), `v${i}`);
  model[p('keep.txt')] = 'changed';
  // Written, deleted and made again after the clock: it appeared after it.
  writeFileSync(p('flip.txt'), '1');
  unlinkSync(p('flip.txt'));
  writeFileSync(p('flip.txt'), '2');
  model[p('flip.txt')] = 'added';
  // Made and deleted after the clock: removed if its event came while it existed, else not seen at all.
  writeFileSync(p('brief.txt'), '1');
  unlinkSync(p('brief.txt'));
  // Ignored directories never appear.
  writeFileSync(p('node_modules/pkg/index.js'), '1');
  mkdirSync(p('a/node_modules'));
  writeFileSync(p('a/node_modules/x.js'), '1');
  // No sleep: the last write finished before the request, so it is in the answer.
  writeFileSync(p('last.txt'), 'last');
  model[p('last.txt')] = 'added';

  const second = await changes(d, root, first.clock);
  t.equal(second.is_fresh_instance, false, second.reason ?? '');
  if (second.changes.some((c) => c.path === p('brief.txt'))) model[p('brief.txt')] = 'removed';
  t.same(asMap(second), model);
  t.equal(second.changes.length, Object.keys(model).length, 'each path once');
  t.same(second.changes.map((c) => c.path), [...second.changes.map((c) => c.path)].sort(), 'sorted by path');

  // Chained: only what changed after the previous answer.
  const moved = join(outside, 'moved-out');
  renameSync(p('fresh/inner'), moved);
  renameSync(join(outside, 'incoming'), p('a/incoming'));
  writeFileSync(p('a/b/old.txt'), 'newer');
  const third = await changes(d, root, second.clock);
  t.equal(third.is_fresh_instance, false);
  t.same(asMap(third), {
    [p('fresh/inner')]: 'removed',
    [p('fresh/inner/more')]: 'removed',
    [p('fresh/inner/more/two')]: 'removed',
    [p('a/incoming')]: 'added',
    [p('a/incoming/sub')]: 'added',
    [p('a/incoming/sub/f')]: 'added',
    [p('a/b/old.txt')]: 'changed',
  });

  // The moved-in tree is watched; the moved-out one is not any more.
  writeFileSync(p('a/incoming/sub/g'), 'g');
  writeFileSync(join(moved, 'more/three'), '3');
  const fourth = await changes(d, root, third.clock);
  t.same(asMap(fourth), { [p('a/incoming/sub/g')]: 'added' });

  // A subdirectory of the watched root is answered from its watch, filtered.
  writeFileSync(p('a/b/sub-only'), 's');
  writeFileSync(p('top-only'), 't');
  const sub = await changes(d, p('a/b'), fourth.clock);
  t.equal(sub.is_fresh_instance, false);
  t.same(asMap(sub), { [p('a/b/sub-only')]: 'added' });
  const stats = await d.client.call<any>('GET', '/optimization/stats');
  t.match(stats.files_changes, { roots_watched: 1, evictions: 0, overflows: 0 });
  t.ok(stats.files_changes.dirs_watched >= 6, 'directories of the tree are watched');
  t.ok(stats.files_changes.log_entries > 0);

  // A directory replaced by another of the same name, and a file by a directory.
  rmSync(p('a/b'), { recursive: true });
  mkdirSync(p('a/b'));
  writeFileSync(p('a/b/after'), 'a');
  const fifth = await changes(d, root, sub.clock);
  // The same inode number may come back: then the directory is seen changed rather than added.
  t.match(asMap(fifth), { [p('a/b')]: /^(added|changed)$/, [p('a/b/after')]: 'added', [p('a/b/old.txt')]: 'removed', [p('a/b/sub-only')]: 'removed' });
  writeFileSync(p('a/b/later'), 'l');
  t.same(asMap(await changes(d, root, fifth.clock)), { [p('a/b/later')]: 'added' }, 'the new directory is watched');
});

t.test('file.* events carry the clocks of the log', async (t) => {
  const root = realpathSync(tempDir('hearth-chg-ev-'));
  const d = await bootDaemon({ config: { plugins: { files: { roots: [root] } } } });
  t.teardown(() => d.close());
  const first = await changes(d, root);
  const agent = new Agent({ connect: { socketPath: d.socket } });
  t.teardown(() => agent.destroy());
  const res = await request(`http://localhost/events?type=file.added,file.changed,file.removed&path=${encodeURIComponent(root)}`, { dispatcher: agent });
  const events: Array<Record<string, any>> = [];
  let buffer = '';
  res.body.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const data = buffer.slice(0, cut).split('\n').find((l) => l.startsWith('data: '));
      buffer = buffer.slice(cut + 2);
      if (data) events.push(JSON.parse(data.slice(6)));
    }
  });
  res.body.on('error', () => {});
  writeFileSync(join(root, 'one'), '1');
  const a = await changes(d, root, first.clock);
  t.same(asMap(a), { [join(root, 'one')]: 'added' });
  const deadline = Date.now() + 5000;
  while (!events.some((e) => e.path === join(root, 'one')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  // Made and written: added, then (maybe) changed; the log holds the clock of the last.
  const mine = events.filter((e) => e.path === join(root, 'one'));
  t.equal(mine[0]!.type, 'file.added');
  const last = mine[mine.length - 1]!;
  const minus1 = (clock: string) => clock.replace(/:(\d+)$/, (_: string, n: string) => `:${Number(n) - 1}`);
  t.same(asMap(await changes(d, root, minus1(mine[0]!.id))), { [join(root, 'one')]: 'added' });
  t.same(asMap(await changes(d, root, minus1(last.id))), { [join(root, 'one')]: mine.length > 1 ? 'changed' : 'added' });
  t.same((await changes(d, root, last.id)).changes, [], 'nothing after the clock of its last event');
});

t.test('clocks the daemon cannot answer for', async (t) => {
  const root = realpathSync(tempDir('hearth-chg-fr-'));
  const stateDir = tempDir();
  const config = { plugins: { files: { roots: [root], max_changes: 5 } } };
  let d = await bootDaemon({ config, stateDir });
  const first = await changes(d, root);
  writeFileSync(join(root, 'a'), '1');
  const ok = await changes(d, root, first.clock);
  t.equal(ok.is_fresh_instance, false);

  // More changes than max_changes since the clock: some were dropped.
  for (let i = 0; i < 10; i++) writeFileSync(join(root, `f${i}`), '1');
  const over = await changes(d, root, ok.clock);
  t.equal(over.is_fresh_instance, true);
  t.match(over.reason, /more than max_changes/);
  t.same(over.changes, []);
  // From the clock it gave, the answer is complete again.
  writeFileSync(join(root, 'b'), '1');
  t.same(asMap(await changes(d, root, over.clock)), { [join(root, 'b')]: 'added' });
  t.ok((await d.client.call<any>('GET', '/optimization/stats')).files_changes.overflows >= 1);

  // A clock of another instance.
  const foreign = await changes(d, root, 'c:zzzz:5');
  t.equal(foreign.is_fresh_instance, true);
  t.match(foreign.reason, /restarted/);

  // A clock from before a restart.
  await d.close();
  d = await bootDaemon({ config, stateDir });
  t.teardown(() => d.close());
  const restarted = await changes(d, root, over.clock);
  t.equal(restarted.is_fresh_instance, true);
  t.match(restarted.reason, /restarted/);
  const after = await changes(d, root, over.clock);
  t.match(after.reason, /restarted/, 'a clock of the previous instance, once the root is watched');
});

t.test('the options are validated', async (t) => {
  const root = realpathSync(tempDir('hearth-chg-opt-'));
  await t.rejects(bootDaemon({ config: { plugins: { files: { roots: [root], max_changes: 0 } } } }));
  await t.rejects(bootDaemon({ config: { plugins: { files: { roots: [root], max_change_roots: 'many' } } } }));
});

t.test('the least recently queried root is closed past max_change_roots', async (t) => {
  const base = realpathSync(tempDir('hearth-chg-lru-'));
  const dirs = ['r1', 'r2', 'r3'].map((n) => join(base, n));
  for (const dir of dirs) mkdirSync(dir);
  const d = await bootDaemon({ config: { plugins: { files: { roots: [base], max_change_roots: 2 } } } });
  t.teardown(() => d.close());
  const c1 = await changes(d, dirs[0]!);
  await changes(d, dirs[1]!);
  await changes(d, dirs[2]!); // r1 is the least recent: closed
  const stats = (await d.client.call<any>('GET', '/optimization/stats')).files_changes;
  t.match(stats, { roots_watched: 2, evictions: 1 });
  const back = await changes(d, dirs[0]!, c1.clock);
  t.equal(back.is_fresh_instance, true);
  t.match(back.reason, /evicted/);
  writeFileSync(join(dirs[0]!, 'x'), '1');
  t.same(asMap(await changes(d, dirs[0]!, back.clock)), { [join(dirs[0]!, 'x')]: 'added' });
  // The parent of watched roots replaces their watches.
  const whole = await changes(d, base);
  t.equal(whole.is_fresh_instance, true);
  t.match((await d.client.call<any>('GET', '/optimization/stats')).files_changes, { roots_watched: 1 });
  writeFileSync(join(dirs[1]!, 'y'), '1');
  t.same(asMap(await changes(d, dirs[1]!, whole.clock)), { [join(dirs[1]!, 'y')]: 'added' });
});

t.test('bad input is a 4xx with a code, never a 500', async (t) => {
  const root = realpathSync(tempDir('hearth-chg-bad-'));
  const elsewhere = realpathSync(tempDir('hearth-chg-else-'));
  writeFileSync(join(root, 'file.txt'), '1');
  symlinkSync(elsewhere, join(root, 'out'));
  mkdirSync(join(root, 'node_modules/pkg'), { recursive: true });
  const d = await bootDaemon({ config: { plugins: { files: { roots: [root] } } } });
  t.teardown(() => d.close());
  const cases: Array<[string, number, string]> = [
    [`root=${encodeURIComponent(elsewhere)}`, 403, 'PATH_OUTSIDE_ROOTS'],
    [`root=${encodeURIComponent(join(root, '..'))}`, 403, 'PATH_OUTSIDE_ROOTS'],
    [`root=${encodeURIComponent(join(root, 'out'))}`, 403, 'PATH_OUTSIDE_ROOTS'],
    [`root=${encodeURIComponent(join(root, 'file.txt'))}`, 400, 'VALIDATION_FAILED'],
    [`root=${encodeURIComponent(join(root, 'missing'))}`, 404, 'NOT_FOUND'],
    [`root=${encodeURIComponent(join(root, 'node_modules/pkg'))}`, 400, 'VALIDATION_FAILED'],
    [`root=${encodeURIComponent(root)}&since=yesterday`, 400, 'VALIDATION_FAILED'],
    [`root=${encodeURIComponent(root)}&since=c:ABC:1`, 400, 'VALIDATION_FAILED'],
    [`root=${'x'.repeat(5000)}`, 400, 'VALIDATION_FAILED'],
    ['', 400, 'VALIDATION_FAILED'],
    [`root=${encodeURIComponent(root)}&other=1`, 400, 'VALIDATION_FAILED'],
  ];
  for (const [query, status, code] of cases) {
    const res = await raw(d, query);
    t.equal(res.status, status, query.slice(0, 80));
    t.equal(res.json.error?.code, code, query.slice(0, 80));
  }
  const file = await raw(d, `root=${encodeURIComponent(join(root, 'file.txt'))}`);
  t.match(file.json.error.message, /not a directory/);
  // The route's answer is described for /openapi.json.
  const spec = (await raw(d, '', '/openapi.json')).json;
  const schema = JSON.stringify(spec.paths['/files/changes']);
  t.match(schema, /is_fresh_instance/);
  t.match(schema, /\^c:\[0-9a-z\]\+:\[0-9\]\+\$/);
});

t.test('a git checkout: .git/objects is not watched', async (t) => {
  const root = realpathSync(tempDir('hearth-chg-git-'));
  execFileSync('git', ['init', '-q', root]);
  const d = await bootDaemon({ config: { plugins: { files: { roots: [root] } } } });
  t.teardown(() => d.close());
  const first = await changes(d, root);
  writeFileSync(join(root, 'f'), '1');
  execFileSync('git', ['-C', root, 'add', 'f']);
  const next = await changes(d, root, first.clock);
  t.notOk(next.changes.some((c) => c.path.includes('/.git/objects')), 'no object paths');
  t.equal(asMap(next)[join(root, 'f')], 'added');
});

t.test('a bigger tree is walked completely, and changes made during the walk are not lost', async (t) => {
  const root = realpathSync(tempDir('hearth-chg-big-'));
  for (let i = 0; i < 60; i++) {
    mkdirSync(join(root, `d${i}/e`), { recursive: true });
    for (let j = 0; j < 20; j++) writeFileSync(join(root, `d${i}/e/f${j}`), 'x');
  }
  const d = await bootDaemon({ config: { plugins: { files: { roots: [root] } } } });
  t.teardown(() => d.close());
  const pending = changes(d, root);
  // Made while the first walk may still run: since the first answer's clock these are not changes, but
  // they must be known (a later removal is reported).
  writeFileSync(join(root, 'd59/e/during'), 'x');
  const first = await pending;
  t.equal(first.is_fresh_instance, true);
  const stats = (await d.client.call<any>('GET', '/optimization/stats')).files_changes;
  t.equal(stats.dirs_watched, 121, 'the root and every directory in it');
  const model: Record<string, string> = {};
  for (let i = 0; i < 60; i += 7) {
    writeFileSync(join(root, `d${i}/e/f3`), 'y');
    model[join(root, `d${i}/e/f3`)] = 'changed';
  }
  unlinkSync(join(root, 'd59/e/during'));
  model[join(root, 'd59/e/during')] = 'removed';
  t.same(asMap(await changes(d, root, first.clock)), model);
});
