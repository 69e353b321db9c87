// A generated repository shaped like a real one for bench/git.ts: files of 1-8 KiB of text spread over
// nested directories (three levels, ~13 files a directory), a .gitignore with ignored files beside the
// tracked ones, a few untracked files, a history of commits that modify, add and delete files, packed by
// `git gc`. Deterministic: the same options give the same tree.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface GenerateOptions {
  files: number;
  dirs: number;
  commits: number;
}

export interface Generated {
  files: number;
  dirs: number;
  commits: number;
}

const WORDS = 'const let return import export from function class interface type async await if else for while new this value index path state error result options config cache status'.split(' ');
const EXTENSIONS = ['.ts', '.ts', '.ts', '.js', '.json', '.md', '.css', '.txt'];
const MODIFIED_PER_COMMIT = 50;
const ADDED_PER_COMMIT = 5;
const DELETED_PER_COMMIT = 2;

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function text(random: () => number, bytes: number): string {
  let out = '';
  while (out.length < bytes) {
    let line = '';
    const words = 3 + Math.floor(random() * 10);
    for (let i = 0; i < words; i++) line += `${WORDS[Math.floor(random() * WORDS.length)]}${random() < 0.3 ? `_${Math.floor(random() * 1000)}` : ''} `;
    out += `${'  '.repeat(Math.floor(random() * 4))}${line.trimEnd()};\n`;
  }
  return out.slice(0, bytes);
}

export async function generateRepo(dir: string, options: GenerateOptions): Promise<Generated> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const random = prng(20_000);
  const size = () => 1024 + Math.floor(random() * 7 * 1024);

  // Directories breadth first, `fan` children each, until there are `options.dirs`: three levels for 1,500.
  const fan = Math.max(2, Math.round(Math.cbrt(options.dirs)));
  const dirs: string[] = [];
  const parents = [''];
  while (dirs.length < options.dirs && parents.length > 0) {
    const parent = parents.shift()!;
    for (let i = 0; i < fan && dirs.length < options.dirs; i++) {
      const d = parent ? `${parent}/${['src', 'lib', 'pkg', 'mod', 'util', 'core', 'test', 'api', 'ui', 'docs', 'data', 'net'][i % 12]}${i >= 12 ? i : ''}` : `part${i}`;
      dirs.push(d);
      parents.push(d);
    }
  }
  for (const d of dirs) mkdirSync(join(dir, d), { recursive: true });

  const history = Math.max(1, options.commits);
  const initial = Math.max(1, options.files - 2 - (history - 1) * (ADDED_PER_COMMIT - DELETED_PER_COMMIT));
  let seq = 0;
  const newPath = () => {
    const d = dirs[Math.floor(random() * dirs.length)]!;
    const n = seq++;
    return `${d}/file_${n}${EXTENSIONS[n % EXTENSIONS.length]}`;
  };
  const tracked: string[] = [];
  for (let i = 0; i < initial; i++) {
    const p = newPath();
    writeFileSync(join(dir, p), text(random, size()));
    tracked.push(p);
  }
  writeFileSync(join(dir, '.gitignore'), '*.log\n/out/\nnode_modules/\n');
  writeFileSync(join(dir, 'README.md'), text(random, 2048));
  let files = tracked.length + 2; // and .gitignore and README.md, never changed

  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'Bench',
    GIT_AUTHOR_EMAIL: 'bench@example.invalid',
    GIT_COMMITTER_NAME: 'Bench',
    GIT_COMMITTER_EMAIL: 'bench@example.invalid',
  };
  const git = (...args: string[]) => execFileSync('git', ['-c', 'commit.gpgsign=false', '-c', 'gc.auto=0', ...args], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-q', '-m', 'initial import');
  for (let c = 1; c < history; c++) {
    for (let i = 0; i < MODIFIED_PER_COMMIT; i++) writeFileSync(join(dir, tracked[Math.floor(random() * tracked.length)]!), text(random, size()));
    for (let i = 0; i < ADDED_PER_COMMIT; i++) {
      const p = newPath();
      writeFileSync(join(dir, p), text(random, size()));
      tracked.push(p);
      files++;
    }
    for (let i = 0; i < DELETED_PER_COMMIT; i++) {
      const [p] = tracked.splice(Math.floor(random() * tracked.length), 1);
      files--;
      unlinkSync(join(dir, p!));
    }
    git('add', '-A');
    git('commit', '-q', '-m', `change ${c}: ${MODIFIED_PER_COMMIT} files modified, ${ADDED_PER_COMMIT} added, ${DELETED_PER_COMMIT} deleted`);
  }
  git('gc', '-q');

  // What a worked-in tree has beside its tracked files: ignored build output and logs, a few untracked files.
  mkdirSync(join(dir, 'out/assets'), { recursive: true });
  for (let i = 0; i < 100; i++) writeFileSync(join(dir, `out/${i % 2 ? 'assets/' : ''}bundle_${i}.js`), text(random, size()));
  for (let i = 0; i < 20; i++) writeFileSync(join(dir, `${dirs[(i * 7) % dirs.length]!}/debug_${i}.log`), text(random, 512));
  mkdirSync(join(dir, 'scratch/notes'), { recursive: true });
  for (let i = 0; i < 3; i++) writeFileSync(join(dir, `scratch/notes/todo_${i}.md`), text(random, 300));
  return { files, dirs: dirs.length, commits: history };
}
