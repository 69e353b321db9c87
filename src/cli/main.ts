// The `hearth` program: finds the command among the core's and the enabled plugins' (through their
// manifests), parses its arguments with util.parseArgs, and runs it. Only the command that runs is loaded.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ApiError } from '../client.js';
import { locateDaemon, type ConfigFlags } from '../config-source.js';
import { ConfigError } from '../errors.js';
import { EXIT } from './exit.js';
import type { Group } from './help.js';
import { pluginCommandGroups } from './plugins.js';
import { UsageError, type CommandContext, type CommandSpec, type OptionSpec } from './spec.js';

/** Flags every command takes, before or after its words. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  config: { type: 'string', value: 'file', description: 'config file (default: $HEARTH_CONFIG, else $XDG_CONFIG_HOME/hearth/config.json)' },
  'state-dir': { type: 'string', value: 'dir', description: 'state dir (default: $HEARTH_STATE_DIR, else $XDG_STATE_HOME/hearth)' },
  socket: { type: 'string', value: 'path', description: 'unix socket (default: <state_dir>/hearth.sock)' },
  spawn: { type: 'boolean', description: 'fail (exit 3) instead of starting the daemon when it is not running', default: true },
  help: { type: 'boolean', short: 'h', description: 'show help' },
  version: { type: 'boolean', short: 'V', description: 'print the version' },
};

// What commandWords skips before the words: the global flags, from the table above.
const VALUE_FLAGS = new Set(Object.entries(GLOBAL_OPTIONS).filter(([, o]) => o.type === 'string').map(([name]) => `--${name}`));
const SWITCHES = new Set(
  Object.entries(GLOBAL_OPTIONS)
    .filter(([, o]) => o.type === 'boolean')
    .flatMap(([name, o]) => [o.default === true ? `--no-${name}` : `--${name}`, ...(o.short ? [`-${o.short}`] : [])]),
);

/** The command words: the positionals before the first option that is not a global flag. */
function commandWords(args: string[]): { words: string[]; at: number[] } {
  const words: string[] = [];
  const at: number[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg.startsWith('-')) {
      if (VALUE_FLAGS.has(arg)) i++;
      else if (!SWITCHES.has(arg) && !VALUE_FLAGS.has(arg.split('=')[0]!)) break;
      continue;
    }
    words.push(arg);
    at.push(i);
  }
  return { words, at };
}

async function coreGroups(): Promise<Group[]> {
  const { default: commands, GROUP_SUMMARIES } = await import('./commands.js');
  const groups = new Map<string, Group>();
  for (const spec of commands) {
    const word = spec.name.split(' ')[0]!;
    const group = groups.get(word) ?? { name: word, summary: GROUP_SUMMARIES[word] ?? spec.summary, load: async () => commands };
    groups.set(word, group);
  }
  return [...groups.values()];
}

function toParseOptions(options: Record<string, OptionSpec>): NonNullable<ParseArgsConfig['options']> {
  const out: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, o] of Object.entries(options)) out[name] = o.short ? { type: o.type, short: o.short } : { type: o.type };
  return out;
}

/** An option with an implicit value given alone (`--ignored`, `-u`) gets that value attached (`--ignored=traditional`). */
function attachImplicit(args: string[], specs: Record<string, OptionSpec>): string[] {
  const alone = new Map<string, string>();
  for (const [name, o] of Object.entries(specs)) {
    if (o.implicit === undefined) continue;
    alone.set(`--${name}`, `--${name}=${o.implicit}`);
    if (o.short) alone.set(`-${o.short}`, `--${name}=${o.implicit}`);
  }
  if (alone.size === 0) return args;
  const end = args.indexOf('--');
  return args.map((arg, i) => (end >= 0 && i > end ? arg : (alone.get(arg) ?? arg)));
}

function parseCommand(spec: CommandSpec, rest: string[]): { args: CommandContext['args']; options: CommandContext['options'] } {
  const specs = { ...GLOBAL_OPTIONS, ...spec.options };
  let parsed;
  try {
    parsed = parseArgs({ args: attachImplicit(rest, specs), options: toParseOptions(specs), allowPositionals: true, allowNegative: true, strict: true } as ParseArgsConfig);
  } catch (err) {
    // util.parseArgs says e.g. "Unknown option '--x'. To specify a positional argument starting with a '-' ...".
    throw new UsageError((err as Error).message.split('. ')[0]!.replace(/^Unknown/, 'unknown').replace(/^Option/, 'option'), spec.name);
  }
  const options: CommandContext['options'] = {};
  for (const [name, o] of Object.entries(specs)) {
    const value = (parsed.values as Record<string, string | boolean | undefined>)[name] ?? o.default;
    if (value !== undefined && o.choices && !o.choices.includes(String(value))) {
      throw new UsageError(`option --${name} must be one of ${o.choices.join(', ')}, not "${String(value)}"`, spec.name);
    }
    options[name] = value;
  }
  const positionals = [...parsed.positionals];
  const args: CommandContext['args'] = [];
  for (const a of spec.args ?? []) {
    if (a.variadic) {
      if (a.required && positionals.length === 0) throw new UsageError(`missing argument <${a.name}...>`, spec.name);
      args.push(positionals.splice(0));
    }
    else {
      const value = positionals.shift() ?? a.default;
      if (value === undefined && a.required) throw new UsageError(`missing argument <${a.name}>`, spec.name);
      args.push(value);
    }
  }
  if (positionals.length > 0) throw new UsageError(`too many arguments: ${positionals.join(' ')}`, spec.name);
  return { args, options };
}

function globalFlags(options: CommandContext['options']): ConfigFlags {
  const flags: ConfigFlags = {};
  if (typeof options.config === 'string') flags.config = options.config;
  if (typeof options['state-dir'] === 'string') flags.stateDir = options['state-dir'];
  if (typeof options.socket === 'string') flags.socket = options.socket;
  return flags;
}

/**
 * The global flags read before the command is known (to find the plugins' commands in the right config):
 * the command's own options are not known yet, so they are let through, not refused.
 */
function earlyFlags(args: string[]): ConfigFlags {
  const { values } = parseArgs({ args, options: toParseOptions(GLOBAL_OPTIONS), allowPositionals: true, strict: false });
  return globalFlags(values as CommandContext['options']);
}

async function pluginGroups(args: string[]): Promise<{ groups: Group[]; problem?: string }> {
  try {
    return { groups: pluginCommandGroups(locateDaemon(earlyFlags(args))) };
  } catch (err) {
    // The help still shows the core's commands; a plugin's command asked for reports this.
    return { groups: [], problem: (err as Error).message };
  }
}

async function dispatch(args: string[]): Promise<number> {
  const { words, at } = commandWords(args);
  // `hearth help git status` is `hearth git status --help`.
  if (words[0] === 'help' && words.length > 1) return dispatch([...args.filter((_, i) => i !== at[0]), '--help']);
  const wantsHelp = args.some((a) => a === '--help' || a === '-h');
  if (words.length === 0 || (words[0] === 'help' && words.length === 1)) {
    if (words.length === 0 && !wantsHelp && args.some((a) => a === '--version' || a === '-V')) {
      const { version } = await import('../version.js');
      process.stdout.write(`${version}\n`);
      return EXIT.ok;
    }
    const plugins = await pluginGroups(args);
    const { programHelp } = await import('./help.js');
    process.stdout.write(programHelp(await coreGroups(), plugins.groups, GLOBAL_OPTIONS, plugins.problem));
    return words.length === 0 && !wantsHelp && args.length > 0 ? EXIT.usage : EXIT.ok;
  }
  const core = await coreGroups();
  let group = core.find((g) => g.name === words[0]);
  let problem: string | undefined;
  if (!group) {
    const plugins = await pluginGroups(args);
    group = plugins.groups.find((g) => g.name === words[0]);
    problem = plugins.problem;
  }
  if (!group) throw new UsageError(`unknown command '${words[0]}'${problem ? ` (the config could not be read: ${problem})` : ''}`);
  const specs = await group.load();
  // The longest command name that the words begin with: `git status REPO` is `git status` with REPO.
  let spec: CommandSpec | undefined;
  let used = 0;
  for (const s of specs) {
    const parts = s.name.split(' ');
    if (parts.length > used && parts.every((p, i) => words[i] === p)) {
      spec = s;
      used = parts.length;
    }
  }
  const inGroup = specs.filter((s) => s.name.split(' ')[0] === group.name);
  // Only help needs the help texts.
  const help = () => import('./help.js');
  if (!spec) {
    if (words.length === 1 && wantsHelp) {
      process.stdout.write((await help()).groupHelp(group, inGroup));
      return EXIT.ok;
    }
    if (words.length > 1) throw new UsageError(`unknown command '${words.slice(0, 2).join(' ')}'; see hearth ${group.name} --help`);
    process.stderr.write((await help()).groupHelp(group, inGroup));
    return EXIT.usage;
  }
  if (wantsHelp) {
    process.stdout.write((await help()).commandHelp(spec, GLOBAL_OPTIONS));
    return EXIT.ok;
  }
  const rest = args.filter((_, i) => !at.slice(0, used).includes(i));
  const { args: positionals, options } = parseCommand(spec, rest);
  const flags = globalFlags(options);
  const spawn = options.spawn !== false;
  let made: import('../client/index.js').HearthClient | undefined;
  // The HTTP client is loaded for the commands that talk to the daemon through it, not for the local ones.
  const CliClient = spec.local ? undefined : (await import('./cli-client.js')).CliClient;
  const client = () => {
    if (!CliClient) throw new Error(`${spec.name} is declared local and has no daemon client`);
    return (made ??= new CliClient(flags, spawn));
  };
  const code = await spec.run({ args: positionals, options, flags, spawn, client });
  return typeof code === 'number' ? code : EXIT.ok;
}

/** Prints what went wrong in words a user can act on, and picks the exit code. */
export async function reportError(err: unknown): Promise<number> {
  const say = (text: string) => process.stderr.write(`hearth: ${text}\n`);
  if (err instanceof UsageError) {
    say(err.command ? `${err.message} (see hearth ${err.command} --help)` : err.message);
    return EXIT.usage;
  }
  if (err instanceof ConfigError) {
    say(err.message);
    return EXIT.usage;
  }
  // By name: the client module is not loaded by commands that never used it.
  const name = (err as Error | undefined)?.name;
  if (name === 'DaemonNotRunningError') {
    say((err as Error).message);
    return EXIT.notRunning;
  }
  if (name === 'ApiError') {
    // The envelope's details say which field was wrong and why: print each.
    const { details: raw, message } = err as ApiError;
    const details = Array.isArray(raw) ? (raw as Array<{ path?: string; message?: string; in?: string }>) : [];
    say([message, ...details.map((d) => `  ${d.in ? `${d.in} ` : ''}${d.path ?? ''}: ${d.message ?? JSON.stringify(d)}`)].join('\n'));
    return EXIT.failure;
  }
  const { StartFailedError } = await import('./connect.js');
  if (err instanceof StartFailedError) {
    say(err.message);
    return err.exitCode;
  }
  if (name === 'AlreadyRunningError') {
    say((err as Error).message);
    return EXIT.failure;
  }
  say(err instanceof Error ? (err.stack ?? err.message) : String(err));
  return EXIT.failure;
}

/** Runs the command line and returns the exit code. `hearth daemon` returns when the daemon has closed. */
export async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv.slice(2));
  } catch (err) {
    return reportError(err);
  }
}
