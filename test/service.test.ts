// `hearth service`: the systemd unit (checked by systemd-analyze), the launchd plist (read by Python's plistlib),
// install/uninstall under a temp HOME, and the daemon's readiness message to systemd.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cleanEnv, root, tempDir } from './helpers/daemon.js';
import { healthOverSocket, launchDaemon, runHearth, stateFiles, waitFor, within } from './helpers/processes.js';
import { DAEMON_NODE_FLAGS } from '../src/node-flags.js';
import { LAUNCHD_LABEL, renderLaunchd, renderSystemd, servicePath, stopTimeoutSeconds, systemdWord, xmlText, type ServiceSettings } from '../src/service.js';

const template = readFileSync(join(root, 'config', 'hearth.plist.in'), 'utf8');

t.jobs = 2;

const installedCli = join(root, 'dist', 'src', 'cli.js');
/** What the service runs: this node with the daemon's flags, this install's CLI. */
const nodeAndFlags = [process.execPath, ...DAEMON_NODE_FLAGS].join(' ');

// Odd but legal paths: a space, a percent sign (a systemd specifier), a dollar, a quote, an ampersand.
const awkward: ServiceSettings = {
  node: process.execPath,
  cli: installedCli,
  args: ['--config', "/tmp/my conf/100%/$HOME/it's&.json", '--state-dir', '/tmp/state dir'],
  stateDir: '/tmp/state dir',
  closeTimeoutMs: 10000,
};

const hasSystemdAnalyze = spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0;

// CI installs systemd (.ci/run) so this runs there; a machine without systemd-analyze skips it.
t.test('the systemd unit passes systemd-analyze verify with no output', { skip: hasSystemdAnalyze ? false : 'systemd-analyze is not installed (CI installs it)' }, async (t) => {
  for (const [name, settings] of [
    ['plain', { ...awkward, args: [], stateDir: '/tmp/s' }],
    ['awkward paths', awkward],
  ] as const) {
    const dir = tempDir('hsvc-');
    const unit = join(dir, 'hearth.service');
    writeFileSync(unit, renderSystemd(settings));
    // System mode: --user needs a running user manager, which CI does not have.
    const res = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    t.equal(res.status, 0, `${name}: exit 0`);
    t.equal(`${res.stdout}${res.stderr}`, '', `${name}: no output`);
  }
});

t.test('the systemd unit: notify readiness, restart on failure, SIGTERM with the close limit, the journal', async (t) => {
  const unit = renderSystemd(awkward);
  const lines = unit.split('\n');
  for (const line of [
    'Type=notify',
    'NotifyAccess=all',
    'Restart=on-failure',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${stopTimeoutSeconds(10000)}`,
    'StandardOutput=journal',
    'StandardError=journal',
    'WantedBy=default.target',
  ]) {
    t.ok(lines.includes(line), line);
  }
  t.ok(stopTimeoutSeconds(10000) > 12, 'systemd waits longer than the close limit and the watchdog');
  t.equal(stopTimeoutSeconds(30000), stopTimeoutSeconds(10000) + 20, 'and follows server.close_timeout_ms');
  const exec = lines.find((l) => l.startsWith('ExecStart='))!;
  t.equal(
    exec,
    `ExecStart=${nodeAndFlags} ${installedCli} daemon --config "/tmp/my conf/100%%/$$HOME/it's&.json" --state-dir "/tmp/state dir"`,
    'absolute node with the daemon\'s node flags, the CLI, `daemon`, the flags escaped for systemd',
  );
  t.equal(systemdWord('a"b\\c'), '"a\\"b\\\\c"', 'quotes and backslashes are escaped inside quotes');
  t.notOk(/\{\{/.test(unit), 'every placeholder is filled');
});

type PlistValue = string | number | boolean | PlistValue[] | { [key: string]: PlistValue };

/**
 * Python's plistlib reads the file: Apple's plist format on top of expat, a strict XML parser (it refuses
 * `--` inside a comment, a bare `&` or `<`, a character XML cannot hold, a dict key without a value). Its
 * dicts keep the last of two equal keys, so the same bytes also go through ElementTree (expat too), which
 * names any key given twice in one dict. The answer comes back as JSON; a refusal is thrown with
 * Python's message.
 */
const PLIST_READER = `
import json, plistlib, sys
import xml.etree.ElementTree as ET
data = sys.stdin.buffer.read()
try:
    value = plistlib.loads(data, fmt=plistlib.FMT_XML)
    for d in ET.fromstring(data).iter('dict'):
        keys = [k.text for k in d.findall('key')]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError('duplicate key %s' % ', '.join(dup))
except Exception as e:
    sys.stderr.write('%s: %s' % (type(e).__name__, e))
    sys.exit(1)
json.dump(value, sys.stdout)
`;

const hasPython = spawnSync('python3', ['-c', 'import plistlib, xml.etree.ElementTree'], { encoding: 'utf8' }).status === 0;

function parsePlist(text: string): PlistValue {
  const res = spawnSync('python3', ['-c', PLIST_READER], { input: text, encoding: 'utf8' });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`not a plist: ${res.stderr}`);
  return JSON.parse(res.stdout) as PlistValue;
}

// Python 3 is on every machine this runs on, and CI installs it (.ci/run): without it this fails, so the
// plist is never left unchecked.
t.test('the launchd plist: a strict XML plist reader accepts it, with the keys launchd needs', async (t) => {
  t.ok(hasPython, 'python3 with plistlib runs (CI installs python3)');
  if (!hasPython) return;
  // The reader must be able to fail: these are the mistakes a template or an unescaped path can make.
  const good = '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>a</key><string>x</string></dict></plist>\n';
  t.same(parsePlist(good), { a: 'x' }, 'the reader reads a plist');
  for (const [what, bad] of [
    ['-- inside a comment', good.replace('<dict>', '<!-- made by hearth service install --launchd --><dict>')],
    ['a bare &', good.replace('>x<', '>a&b<')],
    ['a bare <', good.replace('>x<', '>a<b<')],
    ['a control character', good.replace('>x<', '>a\u0001b<')],
    ['a key given twice', good.replace('</dict>', '<key>a</key><string>y</string></dict>')],
    ['a key without a value', good.replace('</dict>', '<key>b</key></dict>')],
  ] as const) {
    t.throws(() => parsePlist(bad), /not a plist/, `the reader refuses ${what}`);
  }

  const text = renderLaunchd(awkward);
  t.match(text, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<!DOCTYPE plist PUBLIC "-\/\/Apple\/\/DTD PLIST 1\.0\/\/EN"/);
  const expected = {
    Label: LAUNCHD_LABEL,
    ProgramArguments: [process.execPath, ...DAEMON_NODE_FLAGS, installedCli, 'daemon', ...awkward.args],
    RunAtLoad: true,
    KeepAlive: { SuccessfulExit: false },
    ProcessType: 'Background',
    ExitTimeOut: stopTimeoutSeconds(10000),
    StandardOutPath: '/tmp/state dir/hearth.log',
    StandardErrorPath: '/tmp/state dir/hearth.log',
  };
  t.same(parsePlist(text), expected);
  t.notOk(/\{\{/.test(text), 'every placeholder is filled');
  for (const comment of template.match(/<!--[\s\S]*?-->/g) ?? []) {
    t.notOk(comment.slice(4, -3).includes('--'), `no -- inside the comment ${comment.slice(0, 40)}...`);
  }

  // Paths are substituted into the template: markup characters in them must come back as they were.
  const odd = '/tmp/a&b <c> "d" \'e\' &amp; ]]> \r\n\tz';
  const marked: ServiceSettings = { ...awkward, args: ['--state-dir', odd], stateDir: odd };
  t.same(parsePlist(renderLaunchd(marked)), {
    ...expected,
    ProgramArguments: [process.execPath, ...DAEMON_NODE_FLAGS, installedCli, 'daemon', '--state-dir', odd],
    StandardOutPath: `${odd}/hearth.log`,
    StandardErrorPath: `${odd}/hearth.log`,
  }, 'a state dir with & < > quotes, a carriage return and a newline round-trips');
  // A character XML cannot hold at all is a clear error, not a file launchd would refuse.
  t.throws(() => renderLaunchd({ ...awkward, stateDir: '/tmp/a\u0001b' }), { name: 'ConfigError', message: /cannot be written into a launchd plist: XML cannot hold the character U\+0001/ });
  t.throws(() => xmlText('x\uD800'), /U\+D800/, 'nor a lone surrogate');

  // plutil is macOS only; where it exists it has the last word.
  if (spawnSync('sh', ['-c', 'command -v plutil']).status === 0) {
    const file = join(tempDir('hsvc-'), 'x.plist');
    writeFileSync(file, text);
    t.equal(spawnSync('plutil', ['-lint', file]).status, 0, 'plutil -lint accepts it');
  }
});

t.test('hearth service print --launchd with & and < in HOME and the state dir: a plist with the paths as they are', { skip: hasPython ? false : 'python3 is not installed' }, async (t) => {
  const home = join(tempDir('hsvc-home-'), 'Tom & Jerry <home>');
  mkdirSync(home);
  const state = join(home, 'state & more');
  const env = cleanEnv({ HOME: home, XDG_CONFIG_HOME: undefined, XDG_STATE_HOME: undefined });
  const [byDefault, given, bad] = await Promise.all([
    runHearth(['service', 'print', '--launchd'], env),
    runHearth(['service', 'print', '--launchd', '--state-dir', state], env),
    runHearth(['service', 'print', '--launchd', '--state-dir', '/tmp/a\u0007b'], env),
  ]);
  t.equal(byDefault.code, 0, byDefault.stderr);
  t.match(parsePlist(byDefault.stdout), { StandardOutPath: join(home, '.local', 'state', 'hearth', 'hearth.log') }, 'the default state dir under HOME');
  t.equal(given.code, 0, given.stderr);
  t.match(parsePlist(given.stdout), {
    ProgramArguments: [process.execPath, ...DAEMON_NODE_FLAGS, installedCli, 'daemon', '--state-dir', state],
    StandardErrorPath: join(state, 'hearth.log'),
  });
  t.equal(bad.code, 2, 'a path XML cannot hold is a usage error');
  t.match(bad.stderr, /^hearth: .*cannot be written into a launchd plist: XML cannot hold the character U\+0007\n$/);
  t.equal(bad.stdout, '', 'and nothing half-written');
});

t.test('hearth service print, install and uninstall under a temp HOME', async (t) => {
  const home = tempDir('hsvc-home-');
  const xdg = join(tempDir('hsvc-xdg-'), 'conf');
  const env = cleanEnv({ HOME: home, XDG_CONFIG_HOME: undefined, XDG_STATE_HOME: undefined });
  const systemdPath = join(home, '.config', 'systemd', 'user', 'hearth.service');
  const launchdPath = join(home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
  t.equal(servicePath('systemd', { HOME: home }), systemdPath);
  t.equal(servicePath('systemd', { HOME: home, XDG_CONFIG_HOME: xdg }), join(xdg, 'systemd', 'user', 'hearth.service'));
  t.equal(servicePath('launchd', { HOME: home }), launchdPath);

  const [print, printLaunchd, both] = await Promise.all([
    runHearth(['service', 'print', '--systemd'], env),
    runHearth(['service', 'print', '--launchd'], env),
    runHearth(['service', 'print', '--systemd', '--launchd'], env),
  ]);
  t.equal(print.code, 0, print.stderr);
  t.match(print.stdout, `\nExecStart=${nodeAndFlags} ${installedCli} daemon\n`, 'this node and this install, no flags given');
  t.equal(printLaunchd.code, 0, printLaunchd.stderr);
  t.match(printLaunchd.stdout, `<string>${join(home, '.local', 'state', 'hearth', 'hearth.log')}</string>`, 'logs in the default state dir');
  t.equal(both.code, 2, 'both kinds at once is a usage error');

  const [install, installLaunchd] = await Promise.all([
    runHearth(['service', 'install', '--systemd'], env),
    runHearth(['service', 'install', '--launchd'], env),
  ]);
  t.equal(install.code, 0, install.stderr);
  t.equal(readFileSync(systemdPath, 'utf8'), print.stdout, 'install writes what print prints');
  t.match(install.stdout, `wrote ${systemdPath}`);
  t.match(install.stdout, '\n  systemctl --user enable --now hearth\n', 'and says the command that enables it');
  t.equal(installLaunchd.code, 0, installLaunchd.stderr);
  t.equal(readFileSync(launchdPath, 'utf8'), printLaunchd.stdout);
  t.match(installLaunchd.stdout, `launchctl bootstrap gui/$(id -u) ${launchdPath}`);
  t.ok(existsSync(join(home, '.local', 'state', 'hearth')), 'the state dir for launchd\'s log files exists');

  // What `systemctl --user enable` leaves: uninstall removes it too.
  const wants = join(home, '.config', 'systemd', 'user', 'default.target.wants');
  mkdirSync(wants);
  symlinkSync(systemdPath, join(wants, 'hearth.service'));
  const [again, uninstall, uninstallLaunchd] = await Promise.all([
    runHearth(['service', 'install', '--systemd', '--state-dir', 'rel-state'], { ...env, XDG_CONFIG_HOME: xdg }),
    runHearth(['service', 'uninstall', '--systemd'], env),
    runHearth(['service', 'uninstall', '--launchd'], env),
  ]);
  t.equal(uninstall.code, 0, uninstall.stderr);
  t.notOk(existsSync(systemdPath), 'the unit is removed');
  t.notOk(existsSync(join(wants, 'hearth.service')), 'and its wants link');
  t.match(uninstall.stdout, 'systemctl --user stop hearth', 'and says how to stop it');
  t.equal(uninstallLaunchd.code, 0, uninstallLaunchd.stderr);
  t.notOk(existsSync(launchdPath), 'the plist is removed');
  t.match(uninstallLaunchd.stdout, `launchctl bootout gui/$(id -u)/${LAUNCHD_LABEL}`);

  t.equal(again.code, 0, again.stderr);
  const xdgUnit = readFileSync(join(xdg, 'systemd', 'user', 'hearth.service'), 'utf8');
  t.match(xdgUnit, / daemon --state-dir \/\S+\/rel-state\n/, 'XDG_CONFIG_HOME is respected, and a relative --state-dir made absolute');

  const nothing = await runHearth(['service', 'uninstall', '--systemd'], env);
  t.equal(nothing.code, 0);
  t.match(nothing.stdout, 'no service file');
});

t.test('under systemd the daemon runs systemd-notify --ready once it serves, and STOPPING=1 on close', async (t) => {
  // Node has no unix datagram sockets, so the daemon goes through systemd-notify: a fake one on PATH records
  // its arguments.
  const bin = tempDir('hsvc-bin-');
  const record = join(bin, 'calls');
  const fake = join(bin, 'systemd-notify');
  writeFileSync(fake, `#!/bin/sh\necho "$NOTIFY_SOCKET $*" >> '${record}'\n`);
  chmodSync(fake, 0o755);
  const dir = tempDir('hsvc-st-');
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ plugins: { files: false, git: false, batch: false } }));
  const env = cleanEnv({ NOTIFY_SOCKET: '/run/user/0/systemd/notify', PATH: `${bin}:${process.env.PATH}` });
  const d = await launchDaemon(t, ['--state-dir', dir, '--port', '0', '--config', config], env);
  t.equal((await healthOverSocket(stateFiles(dir).socket)).status, 'ok');
  const ready = await waitFor('the readiness call', () => existsSync(record) && readFileSync(record, 'utf8'), 10_000);
  const first = ready.split('\n')[0]!.split(' ');
  t.equal(first[0], '/run/user/0/systemd/notify', 'with NOTIFY_SOCKET passed on');
  t.ok(first.includes('--ready'), `--ready: ${ready}`);
  t.ok(first.includes(`--pid=${d.pid}`), 'naming the daemon as the main pid');
  d.child.kill('SIGTERM');
  t.equal(await within(d.exited, 15_000, 'exit after SIGTERM'), 0);
  await waitFor('STOPPING=1', () => readFileSync(record, 'utf8').includes('STOPPING=1'), 5000).catch(() => undefined);
  t.match(readFileSync(record, 'utf8'), 'STOPPING=1', 'and says it is stopping when it closes');

  // Without NOTIFY_SOCKET (not under systemd) it never runs it.
  const plainDir = tempDir('hsvc-st-');
  const plainRecord = join(bin, 'calls');
  const before = readFileSync(plainRecord, 'utf8');
  const plain = await launchDaemon(t, ['--state-dir', plainDir, '--port', '0', '--config', config], cleanEnv({ PATH: `${bin}:${process.env.PATH}` }));
  t.equal((await healthOverSocket(stateFiles(plainDir).socket)).status, 'ok');
  plain.child.kill('SIGTERM');
  t.equal(await within(plain.exited, 15_000, 'exit after SIGTERM'), 0);
  t.equal(readFileSync(plainRecord, 'utf8'), before, 'no systemd-notify call without NOTIFY_SOCKET');
});
