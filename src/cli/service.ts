// `hearth service print|install|uninstall`: the daemon as a systemd user service or a launchd agent.
import { existsSync, lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
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
import { flagsOf } from './commands.js';
import { EXIT } from './exit.js';

type KindOpts = { systemd?: boolean; launchd?: boolean };

function kindOf(o: KindOpts): ServiceKind | undefined {
  if (o.systemd && o.launchd) {
    process.stderr.write('hearth: choose one of --systemd and --launchd\n');
    process.exitCode = EXIT.usage;
    return undefined;
  }
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

function withKind(command: Command): Command {
  return command.option('--systemd', 'a systemd user unit (the default on Linux)').option('--launchd', 'a launchd agent (the default on macOS)');
}

export function serviceCommands(program: Command): void {
  const service = program.command('service').description('run the daemon as a systemd user service or a launchd agent');

  withKind(service.command('print').description('print the unit (systemd) or plist (launchd) for this user and this install')).action(
    (o: KindOpts, command: Command) => {
      const kind = kindOf(o);
      if (kind) process.stdout.write(render(kind, settingsFor(flagsOf(command))));
    },
  );

  withKind(service.command('install').description('write the unit or plist, and print the command that enables it')).action(
    (o: KindOpts, command: Command) => {
      const kind = kindOf(o);
      if (!kind) return;
      const settings = settingsFor(flagsOf(command));
      const path = servicePath(kind);
      const existed = existsSync(path);
      mkdirSync(dirname(path), { recursive: true });
      // launchd opens its log files before the daemon runs, in a dir that must exist.
      if (kind === 'launchd') ensurePrivateDir(settings.stateDir);
      writeFileSync(path, render(kind, settings), { mode: 0o644 });
      if (!existsSync(installedCli)) process.stderr.write(`hearth: ${installedCli} is not built yet; run npm run build\n`);
      process.stdout.write(`${existed ? 'updated' : 'wrote'} ${path}\nenable and start it with:\n  ${enableCommand(kind, path)}\n`);
    },
  );

  withKind(service.command('uninstall').description('remove the unit or plist, and print the command that stops it')).action(
    (o: KindOpts) => {
      const kind = kindOf(o);
      if (!kind) return;
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
    },
  );
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
