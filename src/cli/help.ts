// The help texts, from the command specs and the plugins' manifests.
import type { CommandSpec, OptionSpec } from './spec.js';

/** A top-level word: a core command or group, or a plugin's group. */
export interface Group {
  name: string;
  summary: string;
  plugin?: string;
  load(): Promise<CommandSpec[]>;
}

function rows(pairs: Array<[string, string]>): string {
  const width = Math.min(34, Math.max(...pairs.map(([left]) => left.length)));
  return pairs.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join('\n');
}

function optionLabel(name: string, o: OptionSpec): string {
  const long = o.type === 'boolean' && o.default === true ? `--no-${name}` : `--${name}`;
  const value = o.type !== 'string' ? '' : o.implicit !== undefined ? `[=<${o.value ?? 'value'}>]` : ` <${o.value ?? 'value'}>`;
  if (o.short && name === o.short) return `-${o.short}${value}`;
  return `${o.short ? `-${o.short}, ` : ''}${long}${value}`;
}

function optionRows(options: Record<string, OptionSpec>): string {
  return rows(
    Object.entries(options).map(([name, o]) => {
      const extra = [o.choices ? `one of: ${o.choices.join(', ')}` : '', o.type === 'string' && o.default !== undefined ? `default: ${String(o.default)}` : '']
        .filter(Boolean)
        .join('; ');
      return [optionLabel(name, o), extra ? `${o.description} (${extra})` : o.description];
    }),
  );
}

function usage(spec: CommandSpec): string {
  const args = (spec.args ?? []).map((a) => {
    const name = `${a.name}${a.variadic ? '...' : ''}`;
    return a.required ? `<${name}>` : `[${name}]`;
  });
  return ['hearth', spec.name, spec.options ? '[options]' : '', ...args].filter(Boolean).join(' ');
}

export function programHelp(core: Group[], plugins: Group[], globals: Record<string, OptionSpec>, problem?: string): string {
  const taken = new Set(core.map((g) => g.name));
  const out = [
    'Usage: hearth [options] <command> ...',
    '',
    'A local daemon that keeps your repositories warm and answers tools fast',
    '',
    'Commands:',
    rows(core.map((g) => [g.name, g.summary])),
  ];
  const fromPlugins = plugins.filter((g) => !taken.has(g.name));
  if (fromPlugins.length > 0) out.push('', 'Commands of plugins:', rows(fromPlugins.map((g) => [g.name, `${g.summary} (plugin ${g.plugin})`])));
  if (problem) out.push('', `(plugins' commands are not listed: ${problem})`);
  out.push('', 'Options (every command):', optionRows(globals), '', 'hearth <command> --help shows a command\'s arguments and options.', '');
  return out.join('\n');
}

export function groupHelp(group: Group, specs: CommandSpec[]): string {
  return [`Usage: hearth ${group.name} <command> ...`, '', group.summary, '', 'Commands:', rows(specs.map((s) => [usage(s).slice('hearth '.length), s.summary])), ''].join('\n');
}

export function commandHelp(spec: CommandSpec, globals: Record<string, OptionSpec>): string {
  const out = [`Usage: ${usage(spec)}`, '', spec.summary];
  const args = spec.args ?? [];
  if (args.length > 0) out.push('', 'Arguments:', rows(args.map((a) => [a.name, `${a.description ?? ''}${a.default !== undefined ? ` (default: ${a.default})` : ''}`])));
  if (spec.options) out.push('', 'Options:', optionRows(spec.options));
  out.push('', 'Global options:', optionRows(globals), '');
  return out.join('\n');
}
