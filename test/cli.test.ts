// The `hearth` command as a user meets it: what each command loads (help and client commands load no plugin
// code, no schema compiler, no server library), its usage errors, and what it prints and exits with.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { bootDaemon, cleanEnv, root, runCli, tempDir, type TestDaemon } from './helpers/daemon.js';
import { faults } from './helpers/batch.js';

// Each command is a process of its own under the TypeScript loader: seconds apiece on a loaded machine.
t.setTimeout(300_000);

const register = pathToFileURL(join(root, 'test/fixtures/module-log/register.mjs')).href;
const good = join(root, 'test/fixtures/plugins/good/index.js');

/** Runs the CLI and returns what it printed and every module it resolved. */
async function traced(args: string[], env: Record<string, string | undefined> = cleanEnv()) {
  const log = join(tempDir('hearth-modlog-'), 'modules.txt');
  writeFileSync(log, '');
  const res = await runCli(args, { ...env, HEARTH_TEST_MODULE_LOG: log }, 60_000, { nodeArgs: [`--import=${register}`] });
  const modules = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  return { ...res, modules };
}

// What only the daemon (or `hearth config`) needs. A command that talks to a daemon loads none of it.
const HEAVY = /\/node_modules\/(ajv|ajv-formats|koa|@koa|pino|pino-pretty|piscina|sqlite3|keyv|@keyv|undici|commander|isomorphic-git|prom-client|chokidar|lru-cache|opossum|ignore|raw-body)\/|\/src\/(config|registry|validation|daemon|plugin)\.ts$|\/src\/(http|services)\/|\/plugins\/[^/]+\/index\.ts$|\/fixtures\/plugins\/good\/index\.js$/;

function loadedHeavy(modules: string[]): string[] {
  return modules.filter((m) => HEAVY.test(m));
}

let shared: { d: TestDaemon; base: string[]; work: string } | undefined;
/** One daemon for the tests of this file: files, batch (with the fault operations) and the good plugin. */
async function daemon() {
  if (shared) return shared;
  const work = tempDir('hearth-cli-');
  const d = await bootDaemon({
    config: {
      pool: { max_threads: 2 },
      plugins: {
        files: { roots: [work] },
        git: { roots: [work] },
        batch: { roots: [work] },
        'batch-faults': { module: faults, options: { ms: 200 } },
        good: { module: good, options: { greeting: 'hi from good' } },
      },
    },
  });
  t.teardown(() => d.close());
  // --no-spawn: a command must never start a daemon of its own on this state dir (it would outlive the test).
  shared = { d, base: ['--config', join(d.stateDir, 'config.json'), '--state-dir', d.stateDir, '--no-spawn'], work };
  return shared;
}

t.test('help lists core and plugin commands (from the manifests) and loads no plugin code', async (t) => {
  const { base } = await daemon();
  const help = await traced([...base, '--help']);
  t.equal(help.code, 0, help.stderr);
  for (const word of ['daemon', 'start', 'stop', 'status', 'config', 'cache', 'service', 'demo']) t.match(help.stdout, new RegExp(`\\n  ${word} `), `core ${word}`);
  for (const word of ['stats', 'files', 'batch', 'good']) t.match(help.stdout, new RegExp(`\\n  ${word} .*\\(plugin ${word}\\)`), `plugin ${word}`);
  t.same(loadedHeavy(help.modules), [], 'no server library, schema compiler or plugin module');
  t.notOk(help.modules.some((m) => /\/cli\.(ts|js)$/.test(m) && m.includes('/plugins/')), 'no plugin CLI module either');

  const group = await traced([...base, 'git', '--help']);
  t.equal(group.code, 0);
  t.match(group.stdout, /git status \[options\] \[repo\]/);
  t.match(group.stdout, /git branch create \[options\] <name>/);
  const [one, viaHelp] = await Promise.all([runCli([...base, 'git', 'status', '--help']), runCli([...base, 'help', 'git', 'status'])]);
  t.match(one.stdout, /Usage: hearth git status \[options\] \[repo\]/);
  t.equal(viaHelp.stdout, one.stdout, 'hearth help git status is the same help');
  t.match(one.stdout, /-u, --untracked-files\[=<mode>\] .*one of: no, normal, all/);
});

t.test('client commands load only their own plugin CLI module, and no server code', async (t) => {
  const { d, base, work } = await daemon();
  writeFileSync(join(work, 'a.txt'), 'a\n');
  const cases: Array<[string[], RegExp]> = [
    [['files', 'stat', join(work, 'a.txt')], /\/plugins\/files\/cli\.ts$/],
    [['stats'], /\/plugins\/stats\/cli\.ts$/],
    [['batch', 'jobs'], /\/plugins\/batch\/cli\.ts$/],
    [['good', 'hello'], /\/fixtures\/plugins\/good\/cli\.js$/],
    [['cache', 'clear'], /\/src\/cli\/commands\.ts$/],
    [['status'], /\/src\/cli\/commands\.ts$/],
  ];
  const runs = await Promise.all(cases.map(([args]) => traced([...base, ...args])));
  for (const [i, [args, own]] of cases.entries()) {
    const res = runs[i]!;
    t.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}`);
    t.ok(res.modules.some((m) => own.test(m)), `${args.join(' ')} loads its module`);
    t.same(loadedHeavy(res.modules), [], `${args.join(' ')} loads nothing of the daemon's`);
    const others = res.modules.filter((m) => /\/plugins\/[^/]+\/cli\.(ts|js)$/.test(m) && !own.test(m));
    t.same(others, [], `${args.join(' ')} loads no other plugin's CLI`);
  }
  const hello = await runCli([...base, 'good', 'hello']);
  t.equal(hello.stdout, 'hi from good\n', 'an external plugin\'s command, from its manifest');
  t.ok(d, 'daemon shared');
});

t.test('usage errors exit 2 with a message naming the command', async (t) => {
  const { base } = await daemon();
  const cases: Array<[string[], RegExp]> = [
    [['nosuchcommand'], /unknown command 'nosuchcommand'/],
    [['git', 'nosuch'], /unknown command 'git nosuch'; see hearth git --help/],
    [['git', 'status', '--nosuch'], /unknown option '--nosuch' \(see hearth git status --help\)/],
    [['git', 'status', '--untracked-files=sometimes'], /--untracked-files must be one of no, normal, all/],
    [['git', 'checkout'], /missing argument <branch>/],
    [['files', 'hash'], /missing argument <paths\.\.\.>/],
    [['files', 'stat', 'a', 'b'], /too many arguments: b/],
    [['batch', 'run', 'double', '1', '--batch-size', '0'], /--batch-size must be a positive integer/],
  ];
  const runs = await Promise.all(cases.map(([args]) => runCli([...base, ...args], cleanEnv(), 120_000)));
  for (const [i, [args, message]] of cases.entries()) {
    const res = runs[i]!;
    t.equal(res.code, 2, `${args.join(' ')} exits 2`);
    t.match(res.stderr, message, args.join(' '));
    t.notMatch(res.stderr, /\n\s+at /, 'no stack trace');
  }
  const bare = await runCli([...base, 'git']);
  t.equal(bare.code, 2, 'a group word alone shows its commands and exits 2');
  t.match(bare.stderr, /git status/);
});

t.test('API errors print each detail, and a missing file makes files hash exit 1', async (t) => {
  const { base, work } = await daemon();
  const file = join(work, 'w.txt');
  writeFileSync(file, 'w\n');
  const bad = await runCli([...base, 'files', 'write', file, '--if-match', '0000', '--content', 'x']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, 'VALIDATION_FAILED: The request body is not valid');
  t.match(bad.stderr, /body \/if_match: must match pattern/, 'the detail: where and why');
  t.equal(readFileSync(file, 'utf8'), 'w\n', 'unchanged');

  const missing = join(work, 'missing.txt');
  const hash = await runCli([...base, 'files', 'hash', file, missing]);
  t.equal(hash.code, 1, 'exit 1 when a path could not be hashed');
  t.match(hash.stdout, /^[0-9a-f]{64}  [0-9a-f]{40}  .*w\.txt\n$/, 'the good one is printed');
  t.match(hash.stderr, `${missing}: NOT_FOUND`);
});

t.test('files changes: the first call gives a clock, the next what changed after it', async (t) => {
  const { base, work } = await daemon();
  const dir = join(work, 'watched');
  mkdirSync(dir);
  const first = await runCli([...base, 'files', 'changes', dir]);
  t.equal(first.code, 0, first.stderr);
  t.equal(first.stdout, '', 'no changes on a fresh start');
  t.match(first.stderr, /a fresh start/);
  const clock = /^clock (c:[0-9a-z]+:[0-9]+)$/m.exec(first.stderr)?.[1];
  t.ok(clock, 'the clock is on stderr');
  writeFileSync(join(dir, 'new.txt'), 'n\n');
  const written = await runCli([...base, 'files', 'write', join(dir, 'via-hearth.txt'), '--content', 'x']);
  t.equal(written.code, 0, written.stderr);
  const next = await runCli([...base, 'files', 'changes', dir, '--since', clock!]);
  t.equal(next.code, 0, next.stderr);
  t.equal(next.stdout, `added ${join(dir, 'new.txt')}\nadded ${join(dir, 'via-hearth.txt')}\n`, 'each change once; the write\'s temp file is none');
  const json = await runCli([...base, 'files', 'changes', dir, '--since', clock!, '--json']);
  t.match(JSON.parse(json.stdout), { is_fresh_instance: false, changes: [{ type: 'added' }, { type: 'added' }] });
});

t.test('batch run: --file lines are JSON values, failed items exit 1 with a count, too many items is the max_items error', async (t) => {
  const { base, work } = await daemon();
  const lines = await runCli([...base, 'batch', 'run', 'double', '--file', '-'], cleanEnv(), 60_000, { input: '1\n2\n3\n' });
  t.equal(lines.code, 0, lines.stderr);
  t.match(JSON.parse(lines.stdout), { status: 'completed', results: [2, 4, 6], errors: [] }, 'seq 1 3 | hearth batch run double --file -');

  const mixed = join(work, 'mixed.txt');
  writeFileSync(mixed, '{"a": 1}\n"quoted"\nplain text\n\n');
  const { parseItems } = await import('../plugins/batch/cli.js');
  t.same(parseItems([], mixed), [{ a: 1 }, 'quoted', 'plain text'], 'each line read like an argument');

  const some = await runCli([...base, 'batch', 'run', 'double', '1', '"two"', '3'], cleanEnv(), 60_000);
  t.equal(some.code, 1, 'exit 1 when an item failed');
  const out = JSON.parse(some.stdout);
  t.match(out, { status: 'completed', results: [2, null, 6] });
  t.equal(out.errors.length, 1);
  t.match(some.stderr, '1 of 3 items failed');

  const big = join(work, 'big.json');
  writeFileSync(big, JSON.stringify(Array.from({ length: 180_000 }, (_, i) => i)));
  const tooMany = await runCli([...base, 'batch', 'run', 'double', '--file', big], cleanEnv(), 60_000);
  t.equal(tooMany.code, 1);
  t.match(tooMany.stderr, 'PAYLOAD_TOO_LARGE: 180000 items is more than plugins.batch.max_items (100000)');
  t.notMatch(tooMany.stderr, /RangeError|\n\s+at /, 'no crash, no stack trace');
  const notArray = join(work, 'broken.json');
  writeFileSync(notArray, '[1, 2,');
  const broken = await runCli([...base, 'batch', 'run', 'double', '--file', notArray]);
  t.equal(broken.code, 2);
  t.match(broken.stderr, /starts with "\[" but is not a JSON array/);
});

t.test('batch cancel prints the state the job ends in', async (t) => {
  const { d, base } = await daemon();
  const long = await d.client.call<{ job_id: string }>('POST', '/batch/jobs', { items: Array(50).fill(1), operation: 'fault.sleeps', batch_size: 1, max_concurrent: 1 });
  const c = await runCli([...base, 'batch', 'cancel', long.job_id], cleanEnv(), 60_000);
  t.equal(c.code, 0, c.stderr);
  t.equal(c.stdout, `${long.job_id} cancelled\n`);
  const again = await runCli([...base, 'batch', 'cancel', long.job_id], cleanEnv(), 60_000);
  t.equal(again.stdout, `${long.job_id} cancelled\n`, 'a finished job is left as it is');
});

t.test('config check reports every problem at once', async (t) => {
  const dir = tempDir('hearth-check-');
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ server: { prot: 1 }, log: { level: 'loud' }, plugins: { good: { module: good, options: { greeting: 42 } }, batch: { max_items: 0 } } }));
  const res = await runCli(['config', 'check', file]);
  t.equal(res.code, 2);
  t.match(res.stderr, `${file} is not valid (3 problems)`);
  t.match(res.stderr, '/server/prot: unknown key "prot"');
  t.match(res.stderr, '/log/level: must be one of');
  t.match(res.stderr, 'invalid config for plugin good: /plugins/good/options/greeting: must be string');
  t.match(res.stderr, 'invalid config for plugin batch: /plugins/batch/max_items: must be >= 1');
});

t.test("config check reads the shared tier's secret as the daemon does: missing, short, then good", async (t) => {
  const dir = tempDir('hearth-check-');
  const file = join(dir, 'config.json');
  const check = async (secret: string) => {
    writeFileSync(file, JSON.stringify({ cache: { shared: 'redis://127.0.0.1:1', shared_secret_file: secret } }));
    return runCli(['config', 'check', file]);
  };
  const missing = await check('missing.secret');
  t.equal(missing.code, 2);
  t.match(missing.stderr, `cannot read cache.shared_secret_file ${join(dir, 'missing.secret')}: ENOENT`, 'relative to the file, as the daemon reads it');
  writeFileSync(join(dir, 'short.secret'), 'abcde');
  const short = await check('short.secret');
  t.equal(short.code, 2);
  t.match(short.stderr, 'holds 5 bytes; a team secret needs at least 16');
  writeFileSync(join(dir, 'team.secret'), 'team-secret-0123456789abcdef');
  const good = await check('team.secret');
  t.equal(good.code, 0, good.stderr);
  t.equal(good.stdout, `${file}: valid\n`);
});
