import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from './config-source.js';

export const version: string = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

/** The code this process runs: the compiled `dist/` of an install, or the TypeScript sources of a checkout. */
function codeDirs(): string[] {
  const base = import.meta.url.includes('/dist/') ? join(packageRoot, 'dist') : packageRoot;
  // The daemon's and the CLI's code; not the benches, which run neither.
  return [join(base, 'src'), join(base, 'plugins')];
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

/** Written by `npm run build` beside the compiled code, so no process reads the code to know its build. */
export const BUILD_STAMP = join(packageRoot, 'dist', 'build-id.json');

/** The hash of the code this process runs (what the build stamps; computed when there is no stamp). */
export function computeBuildId(): string {
  // Loaded here: a process that reads the stamp never needs node:crypto for it.
  const hash = process.getBuiltinModule('node:crypto').createHash('sha256');
  const files: string[] = [];
  for (const dir of codeDirs()) listCode(dir, files);
  for (const file of files.sort()) {
    if (file === BUILD_STAMP) continue;
    try {
      hash.update(`${relative(packageRoot, file)}\0`).update(readFileSync(file)).update('\n');
    } catch {
      // removed while we looked: the id is as good without it
    }
  }
  return `${version}+${hash.digest('hex').slice(0, 12)}`;
}

function stamped(): string | undefined {
  if (!import.meta.url.includes('/dist/')) return undefined;
  try {
    const { build: id } = JSON.parse(readFileSync(BUILD_STAMP, 'utf8')) as { build?: unknown };
    return typeof id === 'string' && id.startsWith(`${version}+`) ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * This install's build id: the package version and a short hash of the path and content of every code file
 * it runs, so a daemon started from an older build has another id than the CLI talking to it (a change of
 * version alone would miss a rebuild of the same version). Content, not mtimes: the first `npx hearth` in a
 * checkout runs `prepare` and rewrites dist/ with the same bytes, which must not make the running daemon
 * "another build". The build writes it into dist/build-id.json (src/build-stamp.ts); sources run by a test
 * loader, or a dist/ without the stamp, compute it once per process. `HEARTH_BUILD_ID` overrides it
 * (packagers who stamp their builds, and tests).
 */
export function buildId(env: Record<string, string | undefined> = process.env): string {
  if (build !== undefined) return build;
  const override = env.HEARTH_BUILD_ID;
  if (override) return (build = override);
  return (build = stamped() ?? computeBuildId());
}
