// `hearth service`: the systemd unit (checked by systemd-analyze), the launchd plist (parsed as a plist),
// install/uninstall under a temp HOME, and the daemon's readiness message to systemd.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cleanEnv, root, tempDir } from './helpers/daemon.js';
import { healthOverSocket, launchDaemon, runHearth, stateFiles, waitFor, within } from './helpers/processes.js';
import { LAUNCHD_LABEL, renderLaunchd, renderSystemd, servicePath, stopTimeoutSeconds, systemdWord, type ServiceSettings } from '../src/service.js';

t.jobs = 2;

const installedCli = join(root, 'dist', 'src', 'cli.js');

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
    `ExecStart=${process.execPath} ${installedCli} daemon --config "/tmp/my conf/100%%/$$HOME/it's&.json" --state-dir "/tmp/state dir"`,
    'absolute node and CLI, `daemon`, the flags escaped for systemd',
  );
  t.equal(systemdWord('a"b\\c'), '"a\\"b\\\\c"', 'quotes and backslashes are escaped inside quotes');
  t.notOk(/\{\{/.test(unit), 'every placeholder is filled');
});

type PlistValue = string | number | boolean | PlistValue[] | { [key: string]: PlistValue };

/** A strict reader for the XML plist subset launchd uses: dict, array, string, integer, true, false. */
function parsePlist(text: string): PlistValue {
  const body = text
    .replace(/^<\?xml[^>]*\?>\s*/, '')
    .replace(/<!DOCTYPE plist[^>]*>\s*/, '')
    .replace(/<!--[\s\S]*?-->/g, '');
  const tokens = body.match(/<[^>]+>|[^<]+/g) ?? [];
  let i = 0;
  const unescape = (s: string) =>
    s.replace(/&(lt|gt|quot|apos|amp);/g, (_m, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]!);
  const next = (): string => {
    while (i < tokens.length && /^\s+$/.test(tokens[i]!)) i++;
    const token = tokens[i++];
    if (token === undefined) throw new Error('unexpected end of plist');
    return token;
  };
  const expect = (tag: string) => {
    const token = next();
    if (token !== tag) throw new Error(`expected ${tag}, got ${token}`);
  };
  const text_ = (close: string): string => {
    const token = tokens[i];
    if (token === close) {
      i++;
      return '';
    }
    if (token === undefined || token.startsWith('<')) throw new Error(`expected text before ${close}`);
    i++;
    if (/&(?!(lt|gt|quot|apos|amp);)/.test(token)) throw new Error(`a bare & in ${token}`);
    expect(close);
    return unescape(token);
  };
  const value = (): PlistValue => {
    const token = next();
    switch (token) {
      case '<string>':
        return text_('</string>');
      case '<integer>': {
        const n = text_('</integer>');
        if (!/^-?\d+$/.test(n)) throw new Error(`not an integer: ${n}`);
        return Number(n);
      }
      case '<true/>':
        return true;
      case '<false/>':
        return false;
      case '<array>': {
        const items: PlistValue[] = [];
        for (;;) {
          while (i < tokens.length && /^\s+$/.test(tokens[i]!)) i++;
          if (tokens[i] === '</array>') {
            i++;
            return items;
          }
          items.push(value());
        }
      }
      case '<dict>': {
        const dict: Record<string, PlistValue> = {};
        for (;;) {
          const key = next();
          if (key === '</dict>') return dict;
          if (key !== '<key>') throw new Error(`expected <key>, got ${key}`);
          const name = text_('</key>');
          if (name in dict) throw new Error(`duplicate key ${name}`);
          dict[name] = value();
        }
      }
      default:
        throw new Error(`unexpected ${token}`);
    }
  };
  expect('<plist version="1.0">');
  const top = value();
  expect('</plist>');
  while (i < tokens.length && /^\s+$/.test(tokens[i]!)) i++;
  if (i !== tokens.length) throw new Error('content after </plist>');
  return top;
}

t.test('the launchd plist parses as a plist with the keys launchd needs', async (t) => {
  const text = renderLaunchd(awkward);
  t.match(text, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<!DOCTYPE plist PUBLIC "-\/\/Apple\/\/DTD PLIST 1\.0\/\/EN"/);
  const plist = parsePlist(text) as Record<string, PlistValue>;
  t.same(plist, {
    Label: LAUNCHD_LABEL,
    ProgramArguments: [process.execPath, installedCli, 'daemon', ...awkward.args],
    RunAtLoad: true,
    KeepAlive: { SuccessfulExit: false },
    ProcessType: 'Background',
    ExitTimeOut: stopTimeoutSeconds(10000),
    StandardOutPath: '/tmp/state dir/hearth.log',
    StandardErrorPath: '/tmp/state dir/hearth.log',
  });
  t.throws(() => parsePlist(text.replace('&amp;', '&')), /bare &/, 'the reader is strict enough to catch an unescaped path');
  // plutil is macOS only; where it exists it has the last word.
  if (spawnSync('sh', ['-c', 'command -v plutil']).status === 0) {
    const file = join(tempDir('hsvc-'), 'x.plist');
    writeFileSync(file, text);
    t.equal(spawnSync('plutil', ['-lint', file]).status, 0, 'plutil -lint accepts it');
  }
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
  t.match(print.stdout, `\nExecStart=${process.execPath} ${installedCli} daemon\n`, 'this node and this install, no flags given');
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
