// `hearth service print|install|uninstall`: the daemon as a systemd user service or a launchd agent.
import { existsSync, lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadConfig, type ConfigFlags } from '../config.js';
import {
  defaultKind,
  enableCommand,
  installedCli,
  render,
  servicePath,
  stopCommand,
  SYSTEMD_UNIT,
  type ServiceKind,
  type ServiceSettings,
} from '../service.js';
import { ensurePrivateDir } from '../state.js';
import { UsageError, type CommandContext } from './spec.js';

function kindOf(ctx: CommandContext): ServiceKind {
  const o = ctx.options;
  if (o.systemd && o.launchd) throw new UsageError('choose one of --systemd and --launchd');
  return o.systemd ? 'systemd' : o.launchd ? 'launchd' : defaultKind();
}

/**
 * What the service runs: this node, this install's CLI, and the flags (or HEARTH_CONFIG / HEARTH_STATE_DIR)
 * that chose this config, as absolute paths: a service manager starts it elsewhere, without the shell's
 * environment, and it must find the same state dir the CLI does.
 */
function settingsFor(flags: ConfigFlags): ServiceSettings {
  const { config } = loadConfig(flags);
  const args: string[] = [];
  const configFile = flags.config ?? process.env.HEARTH_CONFIG;
  if (configFile) args.push('--config', resolve(configFile));
  if (flags.stateDir ?? process.env.HEARTH_STATE_DIR) args.push('--state-dir', config.state_dir);
  if (flags.socket) args.push('--socket', config.server.socket);
  if (flags.host) args.push('--host', flags.host);
  if (flags.port !== undefined) args.push('--port', String(flags.port));
  return { node: process.execPath, cli: installedCli, args, stateDir: config.state_dir, closeTimeoutMs: config.server.close_timeout_ms };
}

export function printService(ctx: CommandContext): void {
  process.stdout.write(render(kindOf(ctx), settingsFor(ctx.flags)));
}

export function installService(ctx: CommandContext): void {
  const kind = kindOf(ctx);
  const settings = settingsFor(ctx.flags);
  const path = servicePath(kind);
  const existed = existsSync(path);
  mkdirSync(dirname(path), { recursive: true });
  // launchd opens its log files before the daemon runs, in a dir that must exist.
  if (kind === 'launchd') ensurePrivateDir(settings.stateDir);
  writeFileSync(path, render(kind, settings), { mode: 0o644 });
  if (!existsSync(installedCli)) process.stderr.write(`hearth: ${installedCli} is not built yet; run npm run build\n`);
  process.stdout.write(`${existed ? 'updated' : 'wrote'} ${path}\nenable and start it with:\n  ${enableCommand(kind, path)}\n`);
}

export function uninstallService(ctx: CommandContext): void {
  const kind = kindOf(ctx);
  const path = servicePath(kind);
  if (!existsSync(path)) {
    process.stdout.write(`no service file at ${path}\n`);
    return;
  }
  rmSync(path, { force: true });
  if (kind === 'systemd') {
    // What `systemctl --user disable` would remove; left behind it would point at nothing.
    const wanted = join(dirname(path), 'default.target.wants', SYSTEMD_UNIT);
    if (isLink(wanted)) rmSync(wanted, { force: true });
  }
  process.stdout.write(`removed ${path}\nif it runs, stop it with:\n  ${stopCommand(kind)}\n`);
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
