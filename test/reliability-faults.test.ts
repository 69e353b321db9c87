// Faults from outside: the state dir turned read-only, a full disk (state dir and files root on a tiny tmpfs),
// the files root deleted and recreated, a repository's .git corrupted. Each must give a clear error or a
// degraded /health, within bounded time: never a crash, never a hang. The mounts need root; without them
// those cases are skipped.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import { cleanEnv, tempDir } from './helpers/daemon.js';
import { git, isolateGit, makeRepo, write } from './helpers/git.js';
import { launchDaemon, within, type DaemonProcess } from './helpers/processes.js';

t.setTimeout(240_000);
isolateGit();

const q = encodeURIComponent;

/** `git status --porcelain` as hearth's entries. */
function porcelainEntries(repo: string): Array<{ path: string; x: string; y: string }> {
  return execFileSync('git', ['--no-optional-locks', 'status', '--porcelain=v1', '--no-renames', '-uall'], { cwd: repo, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => ({ path: l.slice(3), x: l[0]!, y: l[1]! }));
}

function mount(...args: string[]): boolean {
  try {
    execFileSync('mount', args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const umount = (dir: string) => {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
};

interface Answer {
  status: number;
  json: any;
}

/** A daemon as a process on `stateDir`, its socket elsewhere (a read-only state dir must not cut us off). */
async function start(t: Tap.Test, stateDir: string, root: string) {
  const socketDir = tempDir('hearth-faults-sock-');
  const socket = join(socketDir, 's.sock');
  const config = join(tempDir('hearth-faults-cfg-'), 'config.json');
  writeFileSync(config, JSON.stringify({ circuit_breaker: { failure_threshold: 3, reset_timeout_seconds: 1 }, plugins: { files: { roots: [root] }, git: { roots: [root] }, batch: { roots: [root] } } }));
  const d: DaemonProcess = await launchDaemon(t, ['--state-dir', stateDir, '--socket', socket, '--port', '0', '--config', config], cleanEnv({ HEARTH_LOG_LEVEL: 'info' }));
  const agent = new Agent({ connect: { socketPath: socket } });
  t.teardown(() => agent.close());
  /** One request, answered within 15 s (a hang fails the test), as status and parsed envelope. */
  const call = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> =>
    within(
      (async () => {
        const res = await request(`http://localhost${path}`, {
          method,
          dispatcher: agent,
          headers: body ? { 'content-type': 'application/json' } : {},
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        const text = await res.body.text();
        return { status: res.statusCode, json: JSON.parse(text) };
      })(),
      15_000,
      `${method} ${path}`,
    );
  /** A clear answer: success, or an error envelope with a code that is not INTERNAL. */
  const clear = (t: Tap.Test, a: Answer, what: string) => {
    t.ok(a.json.success === true || (typeof a.json.error?.code === 'string' && a.json.error.code !== 'INTERNAL'), `${what}: ${a.status} ${a.json.error?.code ?? 'ok'} ${a.json.error?.message ?? ''}`);
  };
  const alive = async (t: Tap.Test, what: string) => {
    const h = await call('GET', '/health');
    t.equal(h.status, 200, `${what}: /health answers (${h.json.data.status}${h.json.data.reasons.length ? `: ${h.json.data.reasons.join('; ')}` : ''})`);
    t.equal(d.child.exitCode, null, `${what}: the daemon is still running`);
    return h.json.data;
  };
  /**
   * /health once `test` holds of it, or after 15 s whatever it says (the caller asserts): the cache learns
   * that its writes fail, or work again, from its background flush (retried every second).
   */
  const healthWhen = async (test: (h: { status: string; reasons: string[] }) => boolean) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const h = (await call('GET', '/health')).json.data;
      if (test(h) || Date.now() > deadline) return h as { status: string; reasons: string[] };
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { d, call, clear, alive, healthWhen };
}

const CACHE_FAILING = /^cache store writes failing: SQLITE_[A-Z_]+: .+ \(.*cache\.sqlite\)$/;
const cacheFailing = (h: { reasons: string[] }) => h.reasons.some((r) => CACHE_FAILING.test(r));

t.test('the state dir becomes read-only', async (t) => {
  const root = tempDir('hearth-faults-ro-');
  const stateDir = tempDir('hearth-faults-ro-state-');
  for (let i = 0; i < 5; i++) writeFileSync(join(root, `f${i}.txt`), `file ${i}\n`);
  const { d, call, clear, alive } = await start(t, stateDir, root);
  if (!mount('--bind', stateDir, stateDir) || !mount('-o', 'remount,ro,bind', stateDir)) {
    umount(stateDir);
    t.skip('cannot make a read-only bind mount here (needs root)');
    return;
  }
  t.teardown(() => umount(stateDir));
  for (let i = 0; i < 5; i++) clear(t, await call('GET', `/files/read?path=${q(join(root, `f${i}.txt`))}`), `read f${i} with a read-only cache store`);
  clear(t, await call('POST', '/files/write', { path: join(root, 'new.txt'), content: 'x' }), 'write into the root (still writable)');
  clear(t, await call('POST', '/batch/jobs', { operation: 'double', items: [1, 2, 3] }), 'a batch job (its file cannot be written)');
  clear(t, await call('POST', '/batch/process', { operation: 'double', items: [1, 2, 3] }), 'a synchronous batch');
  clear(t, await call('POST', '/cache/clear', {}), 'cache clear');
  clear(t, await call('GET', '/optimization/stats'), 'stats');
  await new Promise((r) => setTimeout(r, 300)); // the cache's write-behind flush runs
  // The cache's SQLite files were opened before the mount, and a file open for writing keeps its writes
  // (Linux refuses to make a mount read-only while files are open for writing on it: the bind mount is
  // how a test gets a read-only path at all). So the cache keeps committing and /health stays ok; a file
  // system the kernel turns read-only under open files is the next test.
  await alive(t, 'read-only state dir');
  umount(stateDir);
  clear(t, await call('GET', `/files/read?path=${q(join(root, 'f0.txt'))}`), 'read once writable again');
  await alive(t, 'state dir writable again');
  d.child.kill('SIGTERM');
  t.equal(await within(d.exited, 20_000, 'exit'), 0, 'closes cleanly');
});

t.test('the state dir\'s file system turns read-only under the daemon (ext4 after an error)', async (t) => {
  // What a disk error does to an ext4 mounted errors=remount-ro: the kernel makes it read-only at once,
  // open files included, until it is repaired and mounted again. ext4's trigger_fs_error raises such an
  // error on purpose. Needs root, mkfs.ext4 and loop devices.
  const dir = tempDir('hearth-faults-ext4-');
  const image = join(tempDir('hearth-faults-img-'), 'disk.img');
  const disk = join(dir, 'disk');
  mkdirSync(disk);
  try {
    execFileSync('truncate', ['-s', '32M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'ignore' });
  } catch {
    t.skip('mkfs.ext4 is not available here');
    return;
  }
  if (!mount('-o', 'loop,errors=remount-ro', image, disk)) {
    t.skip('cannot mount an ext4 image here (needs root and loop devices)');
    return;
  }
  t.teardown(() => {
    umount(disk);
    rmSync(image, { force: true });
  });
  const device = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[1] === disk)?.[0];
  const trigger = `/sys/fs/ext4/${device?.replace('/dev/', '')}/trigger_fs_error`;
  if (!device || !existsSync(trigger)) {
    t.skip('this kernel has no ext4 trigger_fs_error');
    return;
  }
  const root = tempDir('hearth-faults-ext4-root-');
  for (let i = 0; i < 10; i++) writeFileSync(join(root, `f${i}.txt`), `file ${i}\n`);
  const stateDir = join(disk, 'state');
  const { d, call, clear, alive, healthWhen } = await start(t, stateDir, root);
  clear(t, await call('GET', `/files/read?path=${q(join(root, 'f0.txt'))}`), 'a read (its cache entry is stored)');
  const before = await healthWhen((h) => h.status === 'ok');
  t.equal(before.status, 'ok', 'ok while the cache writes');

  writeFileSync(trigger, 'hearth test');
  for (let i = 1; i < 10; i++) clear(t, await call('GET', `/files/read?path=${q(join(root, `f${i}.txt`))}`), `read f${i} on a read-only state dir`);
  const failing = await healthWhen(cacheFailing);
  await alive(t, 'read-only file system');
  t.equal(failing.status, 'degraded', '/health is degraded while the cache cannot write');
  t.ok(cacheFailing(failing), `a reason names the cache store and the error: ${failing.reasons.join('; ')}`);
  clear(t, await call('GET', `/files/read?path=${q(join(root, 'f3.txt'))}`), 'reads still answer');
  clear(t, await call('GET', '/optimization/stats'), 'stats');
  t.equal((await call('GET', '/health')).json.data.status, 'degraded', 'and it stays degraded: the file system stays read-only');
  d.child.kill('SIGTERM');
  const code = await within(d.exited, 20_000, 'exit');
  t.not(code, null, 'exits on SIGTERM, within bounds');
  t.equal(code, 0, 'closes cleanly (the state files it cannot remove are left for the next start)');
});

t.test('the disk is full: state dir and files root on a 1 MiB tmpfs', async (t) => {
  const disk = tempDir('hearth-faults-full-');
  if (!mount('-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk)) {
    t.skip('cannot mount a tmpfs here (needs root)');
    return;
  }
  t.teardown(() => umount(disk));
  const root = join(disk, 'root');
  const stateDir = join(disk, 'state');
  mkdirSync(root);
  writeFileSync(join(root, 'small.txt'), 'small\n');
  const { d, call, clear, alive, healthWhen } = await start(t, stateDir, root);
  t.equal((await alive(t, 'before')).status, 'ok');
  // Fill the disk.
  try {
    writeFileSync(join(disk, 'filler'), Buffer.alloc(2 * 1024 * 1024));
  } catch {
    // ENOSPC: full, as wanted
  }
  const write = await call('POST', '/files/write', { path: join(root, 'big.txt'), content: 'y'.repeat(200_000) });
  clear(t, write, 'a write on a full disk');
  t.not(write.json.success, true, 'the write is refused');
  t.equal(readFileSync(join(root, 'small.txt'), 'utf8'), 'small\n');
  clear(t, await call('POST', '/files/write', { path: join(root, 'small.txt'), content: 'z'.repeat(100_000) }), 'an overwrite on a full disk');
  t.equal(readFileSync(join(root, 'small.txt'), 'utf8'), 'small\n', 'the old content is intact');
  clear(t, await call('GET', `/files/read?path=${q(join(root, 'small.txt'))}`), 'a read (its cache entry cannot be stored)');
  clear(t, await call('POST', '/batch/jobs', { operation: 'double', items: [1, 2, 3] }), 'a batch job on a full disk');
  const failing = await healthWhen(cacheFailing);
  await alive(t, 'full disk');
  t.equal(failing.status, 'degraded', '/health is degraded while the cache cannot write');
  t.ok(failing.reasons.some((r) => CACHE_FAILING.test(r) && r.includes('SQLITE_FULL')), `a reason says the store is full: ${failing.reasons.join('; ')}`);
  rmSync(join(disk, 'filler'), { force: true });
  const after = await call('POST', '/files/write', { path: join(root, 'big.txt'), content: 'y'.repeat(200_000) });
  t.equal(after.status, 200, 'writes work again once there is space');
  const mended = await healthWhen((h) => !cacheFailing(h));
  await alive(t, 'space again');
  t.equal(mended.status, 'ok', '/health is ok again once the cache writes');
  t.same(mended.reasons, []);
  d.child.kill('SIGTERM');
  t.equal(await within(d.exited, 20_000, 'exit'), 0, 'closes cleanly');
});

t.test('the files root is deleted and recreated; a repository .git corrupted', async (t) => {
  const root = tempDir('hearth-faults-root-');
  const files = join(root, 'files');
  mkdirSync(files);
  writeFileSync(join(files, 'a.txt'), 'one\n');
  const repo = makeRepo(root, 'repo');
  write(repo, 'x.txt', 'x\n');
  git(repo, 'add', '.');
  git(repo, 'commit', '-qm', 'first');
  const stateDir = tempDir('hearth-faults-root-state-');
  const { d, call, clear, alive } = await start(t, stateDir, root);

  t.equal((await call('GET', `/files/read?path=${q(join(files, 'a.txt'))}`)).json.data.content, 'one\n');
  t.equal((await call('GET', `/git/status?repo=${q(repo)}`)).json.data.clean, true);

  // The watched directories go away, then come back with other content.
  rmSync(files, { recursive: true });
  rmSync(repo, { recursive: true });
  const gone = await call('GET', `/files/read?path=${q(join(files, 'a.txt'))}`);
  t.equal(gone.json.error?.code, 'NOT_FOUND', 'a deleted file: 404');
  const noRepo = await call('GET', `/git/status?repo=${q(repo)}`);
  clear(t, noRepo, 'status of a deleted repository');
  t.equal(noRepo.status, 404, 'a deleted repository: 404');
  await alive(t, 'root deleted');
  mkdirSync(files);
  writeFileSync(join(files, 'a.txt'), 'two\n');
  t.equal((await call('GET', `/files/read?path=${q(join(files, 'a.txt'))}`)).json.data.content, 'two\n', 'the recreated file is read');
  makeRepo(root, 'repo');
  write(repo, 'y.txt', 'y\n');
  const again = await call('GET', `/git/status?repo=${q(repo)}`);
  t.same(again.json.data?.entries, [{ path: 'y.txt', x: '?', y: '?' }], 'the recreated repository is seen as it is now');

  // Corruption: a garbage index, then a missing HEAD, then objects gone.
  git(repo, 'add', '.');
  git(repo, 'commit', '-qm', 'again');
  t.equal((await call('GET', `/git/status?repo=${q(repo)}`)).json.data.clean, true);
  const index = join(repo, '.git', 'index');
  writeFileSync(index, 'DIRC garbage');
  const codes: string[] = [];
  for (let i = 0; i < 5; i++) {
    const a = await call('GET', `/git/status?repo=${q(repo)}`);
    clear(t, a, `status of a corrupted index #${i + 1}`);
    codes.push(a.json.error?.code);
  }
  t.same(codes, ['GIT_FAILED', 'GIT_FAILED', 'GIT_FAILED', 'CIRCUIT_OPEN', 'CIRCUIT_OPEN'], '502 then the breaker opens');
  const health = await alive(t, 'corrupted index');
  t.comment(`health with a corrupted repository: ${health.status} ${JSON.stringify(health.reasons)}`);
  rmSync(index);
  rmSync(join(repo, '.git', 'HEAD'));
  await new Promise((r) => setTimeout(r, 1100));
  clear(t, await call('GET', `/git/status?repo=${q(repo)}`), 'status without HEAD');
  clear(t, await call('GET', `/git/summary?repo=${q(repo)}`), 'summary without HEAD');
  clear(t, await call('GET', `/git/log?repo=${q(repo)}`), 'log without HEAD');
  writeFileSync(join(repo, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  const mended = await call('GET', `/git/status?repo=${q(repo)}`);
  t.equal(mended.status, 200, 'HEAD back: a repository again (the "no repository" answer was not kept)');
  t.same(mended.json.data?.entries, porcelainEntries(repo), 'without its index: what git says');
  rmSync(join(repo, '.git', 'objects'), { recursive: true });
  mkdirSync(join(repo, '.git', 'objects'));
  await new Promise((r) => setTimeout(r, 1100));
  for (const path of [`/git/status?repo=${q(repo)}`, `/git/log?repo=${q(repo)}`, `/git/branches?repo=${q(repo)}`, `/git/summary?repo=${q(repo)}`]) {
    const a = await call('GET', path);
    clear(t, a, `${path.split('?')[0]} with the objects gone`);
  }
  // What it knew (decoded objects are kept in memory, and .git/objects is not watched) may still be
  // served; git itself would say "bad object HEAD". A clear answer either way.
  await alive(t, 'objects gone');
  d.child.kill('SIGTERM');
  t.equal(await within(d.exited, 20_000, 'exit'), 0, 'closes cleanly');
});
