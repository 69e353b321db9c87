// .ci/run, run for real on a copy of itself with stand-ins for npm and apt-get on a PATH that has nothing
// else of CI's tools: it installs what is missing, runs `npm ci` and `npm test`, keeps the test log in a temp
// dir of its own (removed at exit, never a fixed file outside the clone), prints the closing
// `N passed, N failed, N skipped` line and exits with the tests' status.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { haveChromium } from './helpers/chromium.js';
import { root, tempDir } from './helpers/daemon.js';

/** What the script runs besides the stand-ins: found where this machine has them. */
const TOOLS = ['bash', 'mktemp', 'rm', 'tee', 'grep', 'sed', 'tail', 'dirname'];
/** The fixed path the log used to go to. */
const OLD_LOG = '/tmp/hearth-ci-test.log';

function which(tool: string): string {
  const res = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${tool} is not on this machine's PATH`);
  return res.stdout.trim();
}

const stamp = (path: string) => (existsSync(path) ? statSync(path).mtimeMs : 'absent');

function runCi(testStatus: number) {
  const clone = tempDir('hci-clone-');
  mkdirSync(join(clone, '.ci'));
  copyFileSync(join(root, '.ci', 'run'), join(clone, '.ci', 'run'));
  chmodSync(join(clone, '.ci', 'run'), 0o755);
  const bin = tempDir('hci-bin-');
  for (const tool of TOOLS) symlinkSync(which(tool), join(bin, tool));
  const record = join(tempDir('hci-rec-'), 'calls');
  const tmp = tempDir('hci-tmp-');
  writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\necho "apt-get $*" >> '${record}'\n`);
  // `npm test` notes which temp dirs exist while it runs (the log's must be one of them) and prints a tap
  // summary line.
  writeFileSync(
    join(bin, 'npm'),
    `#!/bin/sh\necho "npm $* in $PWD CI=$CI" >> '${record}'\n` +
      `if [ "$1" = test ]; then /bin/ls -A '${tmp}' | /bin/sed 's/^/tmp: /' >> '${record}'; echo 'ok 1 - something'; echo '# { total: 7, pass: 4, fail: 2, skip: 1 }'; exit ${testStatus}; fi\n`,
  );
  chmodSync(join(bin, 'apt-get'), 0o755);
  chmodSync(join(bin, 'npm'), 0o755);
  const before = stamp(OLD_LOG);
  const res = spawnSync(join(clone, '.ci', 'run'), [], { encoding: 'utf8', env: { PATH: bin, TMPDIR: tmp, HOME: clone }, cwd: tmp });
  return { res, clone, tmp, calls: existsSync(record) ? readFileSync(record, 'utf8').split('\n').filter(Boolean) : [], oldLogTouched: stamp(OLD_LOG) !== before };
}

t.test('.ci/run: installs what is missing, npm ci, npm test; the closing line and the status; its log in a temp dir it removes', async (t) => {
  for (const status of [1, 0]) {
    const { res, clone, tmp, calls, oldLogTouched } = runCi(status);
    t.equal(res.status, status, `exits with the tests' status (${status})${res.stderr ? `: ${res.stderr}` : ''}`);
    t.equal(calls[0], 'apt-get update -qq');
    const browser = haveChromium() ? '' : ' chromium';
    // redis-server is looked for on PATH, which here holds none of CI's tools.
    t.equal(calls[1], `apt-get install -y -qq git zsh curl python3 systemd${browser} redis-server`, 'installs every missing tool in one call');
    t.equal(calls[2], `npm ci --no-audit --no-fund in ${clone} CI=true`, 'npm ci in the clone, with CI=true');
    t.equal(calls[3], `npm test in ${clone} CI=true`);
    const during = calls.slice(4);
    t.equal(during.length, 1, `one temp dir while the tests ran: ${during.join(', ')}`);
    t.match(during[0], /^tmp: hearth-ci\.\w+$/, 'made by mktemp under TMPDIR');
    t.match(res.stdout, /^ok 1 - something\n/, 'the test output is shown');
    t.ok(res.stdout.endsWith('\n4 passed, 2 failed, 1 skipped\n'), `the closing line, from tap's summary: ${JSON.stringify(res.stdout.slice(-40))}`);
    t.same(readdirSync(tmp), [], 'the log dir is removed at exit');
    t.same(readdirSync(clone), ['.ci'], 'nothing is left in the clone');
    t.notOk(oldLogTouched, `${OLD_LOG} is not written`);
  }
});
