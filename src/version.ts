import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from './config.js';

export const version: string = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

/** The code this process runs: the compiled `dist/` of an install, or the TypeScript sources of a checkout. */
function codeDirs(): string[] {
  return import.meta.url.includes('/dist/') ? [join(packageRoot, 'dist')] : [join(packageRoot, 'src'), join(packageRoot, 'plugins')];
}

function listCode(dir: string, out: string[]): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) listCode(path, out);
    else if (/\.(js|mjs|ts|json|sh)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path);
  }
}

let build: string | undefined;

/**
 * This install's build id: the package version and a short hash of the path, size and mtime of every code
 * file it runs. A reinstall or rebuild rewrites the files, so a daemon started from an older build has another
 * id than the CLI talking to it (a change of version alone would miss a rebuild of the same version). Stats
 * only, no reads: ~100 files, about a millisecond, computed once per process. `HEARTH_BUILD_ID` overrides it
 * (packagers who stamp their builds, and tests).
 */
export function buildId(env: Record<string, string | undefined> = process.env): string {
  if (build !== undefined) return build;
  const override = env.HEARTH_BUILD_ID;
  if (override) return (build = override);
  const hash = createHash('sha256');
  const files: string[] = [];
  for (const dir of codeDirs()) listCode(dir, files);
  for (const file of files.sort()) {
    try {
      const s = statSync(file);
      hash.update(`${relative(packageRoot, file)}\0${s.size}\0${s.mtimeMs}\n`);
    } catch {
      // removed while we looked: the id is as good without it
    }
  }
  return (build = `${version}+${hash.digest('hex').slice(0, 12)}`);
}
