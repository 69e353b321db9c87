// Where a plugin's files are: built-ins in the package's plugins/ folder (found by convention: the core knows
// none of them by name), external ones by module path or package name, relative to the config file.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from './config-source.js';

/** `.ts` when this process runs the sources (under a test loader), `.js` once compiled. */
export const codeExt = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

export function builtinPluginPath(name: string): string {
  return fileURLToPath(new URL(`../plugins/${name}/index${codeExt}`, import.meta.url));
}

export function resolveModule(spec: string, baseDir: string): string {
  if (spec.startsWith('.') || isAbsolute(spec)) return resolve(baseDir, spec);
  return process.getBuiltinModule('node:module').createRequire(resolve(baseDir, 'package.json')).resolve(spec);
}

/** The plugin manifest's file name: light metadata read without loading the plugin's code. */
export const MANIFEST = 'hearth-plugin.json';

/**
 * A built-in's manifest is in the package's plugins/<name>/ (beside the sources; tsc does not copy JSON it
 * does not import), an external plugin's beside its module.
 */
export function manifestPath(name: string, external: string | undefined): string {
  return external ? join(dirname(external), MANIFEST) : join(packageRoot, 'plugins', name, MANIFEST);
}

/**
 * A module a manifest names, relative to the plugin's module. Built-ins name their compiled `.js` file; run
 * from the sources, that is the `.ts` beside it.
 */
export function manifestModule(name: string, external: string | undefined, spec: string): string {
  if (external) return resolve(dirname(external), spec);
  const path = resolve(dirname(builtinPluginPath(name)), spec);
  return codeExt === '.ts' && path.endsWith('.js') && !existsSync(path) ? `${path.slice(0, -3)}.ts` : path;
}
