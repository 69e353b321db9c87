// What a `hearth` command is: its words, arguments, options and what it runs. Commands are plain objects,
// parsed with node's own util.parseArgs: a CLI library costs 15-35 ms to import here, more than the whole
// budget of a command that only asks the daemon.
import type { HearthClient } from '../client/index.js';
import type { ConfigFlags } from '../config-source.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  description: string;
  /** For a string option: what its value is called in the help (`<n>`). */
  value?: string;
  default?: string | boolean;
  /** Allowed values of a string option. */
  choices?: readonly string[];
  /**
   * For a string option whose value is optional, as git's `--ignored[=<mode>]` and `-u[<mode>]`: the value
   * when it is given alone. A value is then only taken attached (`--ignored=matching`, `-unormal`).
   */
  implicit?: string;
}

export interface ArgSpec {
  name: string;
  description?: string;
  required?: boolean;
  /** Takes the rest of the positionals. */
  variadic?: boolean;
  default?: string;
}

export interface CommandContext {
  /** The positionals, one per ArgSpec (a variadic one is an array), defaults applied. */
  args: Array<string | string[] | undefined>;
  options: Record<string, string | boolean | undefined>;
  /** The global flags: --config, --state-dir, --socket. */
  flags: ConfigFlags;
  /** False when `--no-spawn` was given. */
  spawn: boolean;
  /**
   * A client of this config's daemon over its socket. It starts the daemon in the background when none runs
   * (unless --no-spawn), and says on stderr when the daemon runs another build.
   */
  client(): HearthClient;
}

export interface CommandSpec {
  /** The words after `hearth`: `git status`. */
  name: string;
  summary: string;
  args?: ArgSpec[];
  options?: Record<string, OptionSpec>;
  /** Runs without `ctx.client()` (it finds or starts the daemon itself, or needs none): no HTTP client is loaded. */
  local?: boolean;
  /** Returns the exit code (0 when nothing is returned). */
  run(ctx: CommandContext): Promise<number | void> | number | void;
}

/** What a user typed wrong: printed with the command's usage, exit 2. */
export class UsageError extends Error {
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

export function defineCommands(commands: CommandSpec[]): CommandSpec[] {
  return commands;
}

/** A positive integer option, or a UsageError naming it. */
export function positiveInt(value: string | boolean | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(n) || n < 1) throw new UsageError(`option --${name} must be a positive integer, not "${String(value)}"`);
  return n;
}
