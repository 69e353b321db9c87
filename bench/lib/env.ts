// What every bench reads first: where the built package is, and its numeric knobs from the environment.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (this file runs as dist/bench/lib/env.js). */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** The built CLI: benches measure dist/, never the sources. */
export const cliPath = join(root, 'dist/src/cli.js');

/** A number from the environment, or the fallback; zero is refused unless `allowZero`. */
export function envNumber(name: string, fallback: number, allowZero = true): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new Error(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, not "${raw}"`);
  }
  return value;
}
