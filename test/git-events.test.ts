// git.status.changed and git.head.changed: told to subscribers when a change made outside hearth (the real
// git CLI, plain file writes) reaches a warm repository, with the counts GET /git/summary gives; at most one
// per 50 ms per repository and never a missed final state; GET /events?repo= keeps its repository warm.
import { realpathSync } from 'node:fs';
import t from 'tap';
import { bootDaemon, tempDir } from './helpers/daemon.js';
import { gitDaemon } from './helpers/git-daemon.js';
import { commitAll, git, isolateGit, makeRepo, write } from './helpers/git.js';
import { waitFor } from './helpers/processes.js';
import { openSse, type SseStream } from './helpers/sse.js';

t.setTimeout(180_000);

const g = await gitDaemon(t, 'hearth-git-events-');
const LIVENESS_MS = 2000;
const SUMMARY_KEYS = ['branch', 'head', 'upstream', 'ahead', 'behind', 'staged', 'unstaged', 'untracked', 'conflicted', 'stashes', 'clean', 'action', 'action_step', 'action_total', 'tag'];
const pick = (o: Record<string, unknown>) => Object.fromEntries(SUMMARY_KEYS.map((k) => [k, o[k]]));

const subscribe = async (query: string, socket = g.d.socket): Promise<SseStream> => {
  const s = await openSse({ socket }, `/events?${query}`);
  t.teardown(() => s.close());
  return s;
};
const summary = async (repo: string) => (await g.call('GET', `/git/summary?repo=${encodeURIComponent(repo)}`)).json.data;
const stats = async () => (await g.call('GET', '/optimization/stats')).json.data;

/** Waits (within the liveness bound) for a status event whose data equals GET /git/summary, and returns it. */
async function settlesOn(t: Tap.Test, s: SseStream, repo: string, what: string): Promise<any> {
  let expected: any;
  const deadline = Date.now() + LIVENESS_MS;
  for (;;) {
    expected = pick(await summary(repo));
    const last = s.events().filter((e) => e.type === 'git.status.changed' && e.repo === repo).at(-1);
    if (last && JSON.stringify(pick(last)) === JSON.stringify(expected)) {
      t.pass(`${what}: git.status.changed arrived with the counts of GET /git/summary`);
      t.equal(last.repo, repo);
      t.equal(last.clock, last.id);
      return last;
    }
    if (Date.now() > deadline) {
      t.fail(`${what}: no git.status.changed matching the summary within ${LIVENESS_MS} ms`, { expected, got: s.events().slice(-3) });
      return null;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('edits, git add, git commit and git checkout made outside hearth are told with the summary', async (t) => {
  const repo = makeRepo(g.root, 'flow');
  write(repo, 'a.txt', 'one\n');
  write(repo, 'b.txt', 'two\n');
  commitAll(repo);
  const s = await subscribe(`repo=${encodeURIComponent(repo)}`);
  t.equal(s.status, 200);
  // The subscription warms the repository and computes what it is now, so the first change is told against it.
  await new Promise((r) => setTimeout(r, 300));
  t.same(s.events().filter((e) => e.type.startsWith('git.')), [], 'nothing is told before anything changes');

  write(repo, 'a.txt', 'one, edited\n');
  let e = await settlesOn(t, s, repo, 'an edit');
  t.equal(e?.unstaged, 1);
  const told = s.events().length;
  write(repo, 'a.txt', 'one, edited twice\n');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(s.events().length, told, 'an edit that leaves the summary as it was is not told');

  git(repo, 'add', 'a.txt');
  e = await settlesOn(t, s, repo, 'git add');
  t.equal(e?.staged, 1);
  t.equal(e?.unstaged, 0);

  const before = e?.head;
  git(repo, 'commit', '-q', '-m', 'edit');
  e = await settlesOn(t, s, repo, 'git commit');
  t.equal(e?.clean, true);
  t.not(e?.head, before, 'a new commit');
  await s.until('git.head.changed for the commit', (r) => r.some((x) => x.event === 'git.head.changed' && x.data.head === e?.head));
  const moved = s.events().find((x) => x.type === 'git.head.changed' && x.head === e?.head);
  t.same(moved.previous, { branch: 'main', head: before }, 'with where HEAD was');

  git(repo, 'checkout', '-q', '-b', 'topic');
  e = await settlesOn(t, s, repo, 'git checkout -b');
  t.equal(e?.branch, 'topic');
  await s.until('git.head.changed for the branch', (r) => r.some((x) => x.event === 'git.head.changed' && x.data.branch === 'topic'));

  write(repo, 'b.txt', 'two on topic\n');
  commitAll(repo, 'on topic');
  git(repo, 'checkout', '-q', 'main');
  e = await settlesOn(t, s, repo, 'git checkout main');
  t.equal(e?.branch, 'main');
  t.equal(git(repo, 'rev-parse', 'HEAD').trim(), e?.head, 'the head git says');

  const ids = s.records.map((r) => Number(r.id!.split(':')[2]));
  t.same(ids, [...ids].sort((a, b) => a - b), 'clocks in order');
});

t.test('a burst of writes: at most one event per 50 ms, and the last one is the final state', async (t) => {
  const repo = makeRepo(g.root, 'burst');
  write(repo, 'f.txt', 'base\n');
  commitAll(repo);
  const s = await subscribe(`repo=${encodeURIComponent(repo)}&type=git.status.changed`);
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  for (let i = 0; i < 40; i++) {
    write(repo, `new-${i}.txt`, `${i}\n`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const e = await settlesOn(t, s, repo, 'the burst');
  t.equal(e?.untracked, 40, 'every new file counted');
  const elapsed = Date.now() - started;
  const told = s.events().length;
  t.ok(told <= Math.ceil(elapsed / 50) + 1, `${told} events in ${elapsed} ms`);
  const times = s.events().map((x) => Date.parse(x.time));
  for (let i = 1; i < times.length; i++) t.ok(times[i]! - times[i - 1]! >= 45, 'at least 50 ms apart (ms rounding aside)');
});

t.test('a subscriber without a repository filter hears every warm repository; nobody subscribed costs nothing', async (t) => {
  const one = makeRepo(g.root, 'one');
  const two = makeRepo(g.root, 'two');
  for (const r of [one, two]) {
    write(r, 'x.txt', 'x\n');
    commitAll(r);
    await summary(r); // warm
  }
  const before = (await stats()).git.events;
  write(one, 'x.txt', 'changed with nobody listening\n');
  await summary(one);
  // The watcher's event for the write may come after the answer: wait for it to be counted.
  const after = await waitFor('the change counted as skipped', async () => {
    const now = (await stats()).git.events;
    return now.skipped_unwanted > before.skipped_unwanted ? now : undefined;
  }, 10_000);
  t.ok(after.skipped_unwanted > before.skipped_unwanted, 'a change with no subscriber is counted as skipped');
  t.equal(after.computed, before.computed, 'and no summary is computed for events');

  const s = await subscribe('type=git.status.changed');
  // Changes of the summary (a new untracked file; in two, x.txt modified): an edit that leaves the counts as
  // they were is no change to tell.
  write(one, 'new.txt', 'new\n');
  write(two, 'x.txt', 'changed too\n');
  await settlesOn(t, s, one, 'repository one');
  await settlesOn(t, s, two, 'repository two');
});

t.test('GET /events?repo= refuses what is not a repository under the roots', async (t) => {
  const notRepo = realpathSync(tempDir('hearth-git-events-plain-'));
  const inside = makeRepo(g.root, 'plain-parent');
  const cases: Array<[string, number, string]> = [
    [`${g.root}/does-not-exist`, 404, 'NOT_FOUND'],
    [notRepo, 403, 'PATH_OUTSIDE_ROOTS'],
    ['/etc/../etc', 403, 'PATH_OUTSIDE_ROOTS'],
  ];
  for (const [path, status, code] of cases) {
    const res = await g.call('GET', `/events?repo=${encodeURIComponent(path)}`);
    t.equal(res.status, status, path);
    t.equal(res.json.error?.code, code, path);
  }
  const plain = `${g.root}/plain-dir`;
  (await import('node:fs')).mkdirSync(plain, { recursive: true });
  const res = await g.call('GET', `/events?repo=${encodeURIComponent(plain)}`);
  t.equal(res.status, 404);
  t.equal(res.json.error?.code, 'NOT_A_REPOSITORY');
  t.ok(inside);
});

/** A daemon of its own with these git options, and committed repositories of these names under its root. */
async function daemonWithRepos(t: Tap.Test, git: object, names: [string, string]) {
  isolateGit();
  const root = realpathSync(tempDir('hearth-git-events-own-'));
  const d = await bootDaemon({ config: { plugins: { git: { roots: [root], ...git } } } });
  t.teardown(() => d.close());
  const repos = names.map((name) => {
    const r = makeRepo(root, name);
    write(r, 'x.txt', 'x\n');
    commitAll(r);
    return r;
  }) as [string, string];
  return { d, repos };
}

t.test('a repository with a subscriber is not released by the idle limit', async (t) => {
  const { d, repos: [held, idle] } = await daemonWithRepos(t, { idle_release_seconds: 1 }, ['held', 'idle']);
  for (const r of [held, idle]) {
    await d.client.call('GET', `/git/summary?repo=${encodeURIComponent(r)}`);
  }
  const s = await subscribe(`repo=${encodeURIComponent(held)}`, d.socket);
  const repos = async () => (await d.client.call<any>('GET', '/optimization/stats')).git.repos;
  await new Promise((r) => setTimeout(r, 2500));
  t.equal(await repos(), 1, 'the idle one was released, the subscribed one kept');
  write(held, 'x.txt', 'still told\n');
  await s.until('an event after the idle time', (r) => r.some((x) => x.event === 'git.status.changed'), LIVENESS_MS);
  s.close();
  await new Promise((r) => setTimeout(r, 2500));
  t.equal(await repos(), 0, 'released once the subscriber left and the idle time passed');
});

t.test('a subscribed repository pushed out by max_watched_repos is told as git.repo.released', async (t) => {
  const { d, repos: [held, other] } = await daemonWithRepos(t, { max_watched_repos: 1 }, ['held', 'other']);
  const s = await subscribe(`repo=${encodeURIComponent(held)}`, d.socket);
  await d.client.call('GET', `/git/summary?repo=${encodeURIComponent(held)}`);
  await d.client.call('GET', `/git/summary?repo=${encodeURIComponent(other)}`);
  await s.until('git.repo.released', (r) => r.some((x) => x.event === 'git.repo.released'), LIVENESS_MS);
  const released = s.events().find((e) => e.type === 'git.repo.released');
  t.equal(released.repo, held);
  t.match(released.reason, /max_watched_repos \(1\)/);
});
