import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
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
 * This install's build id: the package version and a short hash of the path and content of every code file
 * it runs, so a daemon started from an older build has another id than the CLI talking to it (a change of
 * version alone would miss a rebuild of the same version). Content, not mtimes: the first `npx hearth` in a
 * checkout runs `prepare` and rewrites dist/ with the same bytes, which must not make the running daemon
 * "another build". ~100 files, a few milliseconds, computed once per process. `HEARTH_BUILD_ID` overrides it
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
      hash.update(`${relative(packageRoot, file)}\0`).update(readFileSync(file)).update('\n');
    } catch {
      // removed while we looked: the id is as good without it
    }
  }
  return (build = `${version}+${hash.digest('hex').slice(0, 12)}`);
}
