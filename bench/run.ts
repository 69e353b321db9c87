// `npm run bench [-- NAME...]`: runs each benchmark (every bench/*.ts but this file; helpers live in
// bench/lib/) in turn, each in its own process, or only those whose names contain one of the NAMEs.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const sources = resolve(here, '../../bench'); // listed from the sources, so a stale file in dist/ is never run

const all = readdirSync(sources)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
  .sort();

const filters = process.argv.slice(2).filter((a) => a !== '--');
const chosen = filters.length === 0 ? all : all.filter((name) => filters.some((f) => name.includes(f)));
if (chosen.length === 0) {
  process.stderr.write(`bench: nothing matches ${filters.map((f) => `"${f}"`).join(', ')}; the benches are: ${all.join(', ')}\n`);
  process.exit(2);
}

function runOne(name: string): Promise<number> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [join(here, `${name}.js`)], { stdio: 'inherit' });
    child.on('error', (err) => {
      process.stderr.write(`bench ${name}: ${err.message}\n`);
      resolveRun(1);
    });
    child.on('exit', (code, signal) => resolveRun(code ?? (signal ? 1 : 0)));
  });
}

const failed: string[] = [];
for (const name of chosen) {
  process.stdout.write(`\n=== bench ${name} ===\n`);
  if ((await runOne(name)) !== 0) failed.push(name);
}
process.stdout.write(`\nbench: ${chosen.length} run, ${failed.length} failed${failed.length ? ` (${failed.join(', ')})` : ''}\n`);
process.exitCode = failed.length > 0 ? 1 : 0;
