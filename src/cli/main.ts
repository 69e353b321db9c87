// Builds the `hearth` program: core commands, then the subcommands each configured plugin adds.
import { Command, Option } from 'commander';
import { ApiError, DaemonNotRunningError } from '../client.js';
import { loadConfig, type ConfigFlags } from '../config.js';
import { ConfigError } from '../errors.js';
import { loadPlugins } from '../registry.js';
import { AlreadyRunningError } from '../state.js';
import { version } from '../version.js';
import { cacheCommands, configCommands, lifecycleCommands, pluginClient } from './commands.js';
import { demoCommand } from './demo.js';
import { StartFailedError } from './connect.js';
import { serviceCommands } from './service.js';
import { EXIT } from './exit.js';

/** Prints what went wrong in words a user can act on, and picks the exit code. */
export function reportError(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`hearth: ${err.message}\n`);
    return EXIT.usage;
  }
  if (err instanceof DaemonNotRunningError) {
    process.stderr.write(`hearth: ${err.message}\n`);
    return EXIT.notRunning;
  }
  if (err instanceof StartFailedError) {
    process.stderr.write(`hearth: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof AlreadyRunningError || err instanceof ApiError) {
    process.stderr.write(`hearth: ${err.message}\n`);
    return EXIT.failure;
  }
  process.stderr.write(`hearth: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.failure;
}

const GLOBAL_FLAGS: Record<string, keyof ConfigFlags> = { '--config': 'config', '--state-dir': 'stateDir', '--socket': 'socket' };

/**
 * The global flags and the command word, read before commander parses, so plugins' commands are looked
 * up in the right config.
 */
export function preParse(args: string[]): { flags: ConfigFlags; command: string | undefined; spawn: boolean } {
  const flags: ConfigFlags = {};
  let command: string | undefined;
  let spawn = true;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') break;
    const [name, inline] = args[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const key = GLOBAL_FLAGS[name];
    if (name === '--no-spawn') spawn = false;
    else if (key) {
      const value = inline ?? args[++i];
      if (value !== undefined) flags[key] = value;
    } else if (command === undefined && !name.startsWith('-')) command = name;
  }
  return { flags, command, spawn };
}

export async function buildProgram(args: string[]): Promise<Command> {
  const program = new Command('hearth')
    .description('A local daemon that keeps your repositories warm and answers tools fast')
    .version(version)
    .addOption(new Option('--config <file>', 'config file (default: $HEARTH_CONFIG, else $XDG_CONFIG_HOME/hearth/config.json)'))
    .addOption(new Option('--state-dir <dir>', 'state dir (default: $HEARTH_STATE_DIR, else $XDG_STATE_HOME/hearth)'))
    .addOption(new Option('--socket <path>', 'unix socket (default: <state_dir>/hearth.sock)'))
    .addOption(new Option('--no-spawn', 'fail (exit 3) instead of starting the daemon when it is not running'))
    .showHelpAfterError()
    .exitOverride();
  lifecycleCommands(program);
  configCommands(program);
  cacheCommands(program);
  demoCommand(program);
  serviceCommands(program);

  // A config that cannot load its plugins is reported only when a plugin's command is asked for.
  const core = new Set([...program.commands.map((c) => c.name()), 'help']);
  const { flags, command: wanted, spawn } = preParse(args);
  try {
    for (const item of await loadPlugins(loadConfig(flags))) {
      item.plugin.cli?.(program, () => pluginClient(flags, spawn));
    }
  } catch (err) {
    if (wanted !== undefined && !core.has(wanted)) throw err;
  }
  return program;
}

/** Runs the command line and returns the exit code. `hearth daemon` returns when the daemon has closed. */
export async function main(argv: string[]): Promise<number> {
  const args = argv.slice(2);
  try {
    const program = await buildProgram(args);
    await program.parseAsync(args, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') return EXIT.ok;
    if (typeof code === 'string' && code.startsWith('commander.')) return EXIT.usage;
    return reportError(err);
  }
}
