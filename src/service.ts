// Service files for the service managers: a systemd user unit and a launchd agent, from the templates in
// config/, with absolute paths to this node and this install so they run the same code the user installed.
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from './config.js';
import { ConfigError } from './errors.js';
import { DAEMON_NODE_FLAGS } from './node-flags.js';

export type ServiceKind = 'systemd' | 'launchd';

/** The launchd label, and the plist's file name. */
export const LAUNCHD_LABEL = 'dev.hearth.daemon';
export const SYSTEMD_UNIT = 'hearth.service';

export interface ServiceSettings {
  /** Absolute path of the node binary (process.execPath). */
  node: string;
  /** Absolute path of this install's compiled CLI. */
  cli: string;
  /** After `daemon`: flags given explicitly (--config, --state-dir, ...). */
  args: string[];
  stateDir: string;
  closeTimeoutMs: number;
}

/** This install's compiled CLI: what a service runs (a checkout's sources need the TypeScript loader). */
export const installedCli = join(packageRoot, 'dist', 'src', 'cli.js');

/**
 * How long the manager waits after SIGTERM before SIGKILL: the daemon's close limit, its watchdog's 2 s on
 * top (see `hearth daemon`), and 5 s of margin for a loaded machine.
 */
export function stopTimeoutSeconds(closeTimeoutMs: number): number {
  return Math.ceil((closeTimeoutMs + 2000) / 1000) + 5;
}

export function defaultKind(platform: NodeJS.Platform = process.platform): ServiceKind {
  return platform === 'darwin' ? 'launchd' : 'systemd';
}

/** Where `hearth service install` writes the file: respects HOME and XDG_CONFIG_HOME. */
export function servicePath(kind: ServiceKind, env: Record<string, string | undefined> = process.env): string {
  const home = env.HOME || homedir();
  if (kind === 'launchd') return join(home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
  return join(env.XDG_CONFIG_HOME || join(home, '.config'), 'systemd', 'user', SYSTEMD_UNIT);
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`service template: no value for ${whole}`);
    return value;
  });
}

const template = (name: string) => readFileSync(join(packageRoot, 'config', name), 'utf8');

/** One ExecStart word: specifiers (%) and variables ($) escaped, quoted unless plainly safe. */
export function systemdWord(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'this user';
  }
}

export function renderSystemd(s: ServiceSettings): string {
  return fill(template('hearth.service.in'), {
    USER: userName().replace(/[\r\n]/g, ' '),
    README: pathToFileURL(join(packageRoot, 'README.md')).pathname,
    EXEC_START: [s.node, ...DAEMON_NODE_FLAGS, s.cli, 'daemon', ...s.args].map(systemdWord).join(' '),
    TIMEOUT_STOP_SEC: String(stopTimeoutSeconds(s.closeTimeoutMs)),
  });
}

/**
 * XML 1.0 cannot hold these at all, not even as character references (controls other than tab, newline and
 * carriage return, lone surrogates, U+FFFE and U+FFFF): launchd's parser would refuse the whole file.
 */
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Text for a plist <string>: markup characters escaped; a carriage return as a reference (a parser would turn a bare one into a newline). */
export function xmlText(text: string): string {
  const bad = NOT_XML.exec(text);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new ConfigError(`${JSON.stringify(text)} cannot be written into a launchd plist: XML cannot hold the character U+${code}`);
  }
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\r/g, '&#13;');
}

export function renderLaunchd(s: ServiceSettings): string {
  return fill(template('hearth.plist.in'), {
    LABEL: LAUNCHD_LABEL,
    PROGRAM_ARGUMENTS: [s.node, ...DAEMON_NODE_FLAGS, s.cli, 'daemon', ...s.args].map((a) => `    <string>${xmlText(a)}</string>`).join('\n'),
    TIMEOUT_STOP_SEC: String(stopTimeoutSeconds(s.closeTimeoutMs)),
    LOG: xmlText(join(s.stateDir, 'hearth.log')),
  });
}

export function render(kind: ServiceKind, s: ServiceSettings): string {
  return kind === 'launchd' ? renderLaunchd(s) : renderSystemd(s);
}

/** The one command that enables and starts what `install` wrote. */
export function enableCommand(kind: ServiceKind, path: string): string {
  return kind === 'launchd' ? `launchctl bootstrap gui/$(id -u) ${path}` : 'systemctl --user enable --now hearth';
}

/** The command that stops what `uninstall` removed (the manager still has it loaded). */
export function stopCommand(kind: ServiceKind): string {
  return kind === 'launchd' ? `launchctl bootout gui/$(id -u)/${LAUNCHD_LABEL}` : 'systemctl --user stop hearth && systemctl --user daemon-reload';
}
