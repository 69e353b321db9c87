// Plugins' commands, found through their manifests (hearth-plugin.json): the words and summaries for the help
// are read from JSON, and a plugin's CLI module is imported only when one of its commands runs. No plugin
// code is loaded and no schema compiled for the help or for another plugin's command.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { DaemonLocation } from '../config-source.js';
import { ConfigError } from '../errors.js';
import { manifestModule, manifestPath, resolveModule } from '../plugin-paths.js';
import type { CommandSpec } from './spec.js';

/** A manifest: `{"cli": "./cli.js", "commands": [{"name": "git", "summary": "..."}]}`. */
interface Manifest {
  cli?: string;
  commands?: Array<{ name: string; summary?: string }>;
}

export interface PluginCommandGroup {
  plugin: string;
  /** A top-level word (`git`) and its summary. */
  name: string;
  summary: string;
  load(): Promise<CommandSpec[]>;
}

function readManifest(path: string): Manifest | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // a plugin without commands
    throw err;
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (err) {
    throw new ConfigError(`the plugin manifest ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const commands = manifest.commands;
  const valid =
    typeof manifest === 'object' &&
    manifest !== null &&
    (commands === undefined ||
      (Array.isArray(commands) && typeof manifest.cli === 'string' && commands.every((c) => typeof c?.name === 'string' && /^[a-z][a-z0-9-]*$/.test(c.name))));
  if (!valid) throw new ConfigError(`the plugin manifest ${path} must be {"cli": "./module.js", "commands": [{"name": "word", "summary": "..."}]}`);
  return manifest;
}

async function importCommands(plugin: string, file: string): Promise<CommandSpec[]> {
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    throw new ConfigError(`plugin ${plugin}, cli: ${(err as Error).message}`, [], { cause: err });
  }
  const commands = mod.default;
  if (!Array.isArray(commands) || !commands.every((c) => typeof c?.name === 'string' && typeof c?.run === 'function')) {
    throw new ConfigError(`plugin ${plugin}, cli: ${file} must export default an array of commands ({name, summary, run})`);
  }
  return commands as CommandSpec[];
}

/**
 * The command groups of the plugins this config enables, in config order. A manifest that cannot be read is
 * reported as a group whose load fails, so only asking for that plugin's commands fails.
 */
export function pluginCommandGroups(location: DaemonLocation): PluginCommandGroup[] {
  const plugins = location.doc.plugins;
  if (typeof plugins !== 'object' || plugins === null) return [];
  const groups: PluginCommandGroup[] = [];
  for (const [plugin, entry] of Object.entries(plugins as Record<string, unknown>)) {
    if (entry === false || !/^[a-z][a-z0-9_-]*$/.test(plugin)) continue;
    const spec = typeof entry === 'object' && entry !== null ? (entry as { module?: unknown }).module : undefined;
    try {
      const external = typeof spec === 'string' ? resolveModule(spec, location.baseDir) : undefined;
      const manifest = readManifest(manifestPath(plugin, external));
      if (!manifest?.cli) continue;
      const module = manifestModule(plugin, external, manifest.cli);
      let loaded: Promise<CommandSpec[]> | undefined;
      for (const c of manifest.commands ?? []) {
        groups.push({ plugin, name: c.name, summary: c.summary ?? `plugin ${plugin}'s commands`, load: () => (loaded ??= importCommands(plugin, module)) });
      }
    } catch (err) {
      const failure = err instanceof ConfigError ? err : new ConfigError(`plugin ${plugin}, cli: ${(err as Error).message}`);
      groups.push({ plugin, name: plugin, summary: `(its commands cannot be read: ${failure.message})`, load: () => Promise.reject(failure) });
    }
  }
  return groups;
}
