// A generated repository shaped like a real one for bench/git.ts: files of 1-8 KiB of text spread over
// nested directories (three levels, ~13 files a directory), a .gitignore with ignored files beside the
// tracked ones, a few untracked files, a history of commits that modify, add and delete files, packed by
// `git gc`. Deterministic: the same options give the same tree.
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
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

/** The branch that differs from `main` in SIDE_FILES tracked files, for bench/git.ts's checkout phase. */
export const SIDE_BRANCH = 'bench-side';
export const SIDE_FILES = 2000;

const benchEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Bench',
  GIT_AUTHOR_EMAIL: 'bench@example.invalid',
  GIT_COMMITTER_NAME: 'Bench',
  GIT_COMMITTER_EMAIL: 'bench@example.invalid',
};

function gitText(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'commit.gpgsign=false', '-c', 'gc.auto=0', ...args], {
    cwd: dir,
    env: { ...benchEnv, GIT_OPTIONAL_LOCKS: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 256 * 1024 * 1024,
  }).toString('utf8');
}

/** Commits a line appended to `count` tracked files (every n-th of `git ls-files`) on SIDE_BRANCH, then checks `main` out again. */
export function addSideBranch(dir: string, count = SIDE_FILES): void {
  const files = gitText(dir, 'ls-files', '-z').split('\0').filter(Boolean);
  const step = Math.max(1, Math.floor(files.length / count));
  gitText(dir, 'checkout', '-q', '-b', SIDE_BRANCH);
  for (let i = 0; i < files.length && i / step < count; i += step) appendFileSync(join(dir, files[i]!), `// ${SIDE_BRANCH} ${i}\n`);
  gitText(dir, 'commit', '-q', '-a', '-m', `${SIDE_BRANCH}: ${count} files changed`);
  gitText(dir, 'checkout', '-q', 'main');
}

/** What a cached repository must still look like to be reused: its branches and `git status`. */
export function repoState(dir: string): string {
  const branches = gitText(dir, 'for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads');
  return `${gitText(dir, 'symbolic-ref', 'HEAD')}${branches}${gitText(dir, 'status', '--porcelain=v1', '--no-renames', '-uall')}`;
}

export interface CachedRepo {
  /** The repository's work tree. */
  repo: string;
  /** The directory holding it alone (and its marker): what a daemon is given as its root. */
  root: string;
  generated: Generated;
  /** Whether the repository was reused from the cache rather than generated now. */
  reused: boolean;
}

const MARKER = 'complete.json';

/** The files' count and ~1,500 directories per 20k files, the shape bench/git.ts measures. */
export function shapeFor(files: number, commits = 20): GenerateOptions {
  return { files, dirs: Math.max(10, Math.round((files * 1500) / 20_000)), commits };
}

/**
 * A generated repository (with its side branch) under `cacheDir`/<files>-<dirs>-<commits>/repo, reused when
 * its marker says it was completed and its state is still the one the marker recorded; generated again otherwise.
 */
export async function cachedRepo(cacheDir: string, options: GenerateOptions): Promise<CachedRepo> {
  const root = join(cacheDir, `${options.files}-${options.dirs}-${options.commits}`);
  const repo = join(root, 'repo');
  const marker = join(root, MARKER);
  const saved = readMarker(marker);
  if (saved && existsSync(join(repo, '.git')) && stateOr(repo) === saved.state) return { repo, root, generated: saved.generated, reused: true };
  rmSync(marker, { force: true });
  const generated = await generateRepo(repo, options);
  addSideBranch(repo);
  writeFileSync(marker, JSON.stringify({ generated, state: repoState(repo) }));
  return { repo, root, generated, reused: false };
}

/** Drops a cached repository's marker, so the next run generates it again (its state was not restored). */
export function forgetRepo(root: string): void {
  rmSync(join(root, MARKER), { force: true });
}

function readMarker(path: string): { generated: Generated; state: string } | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { generated: Generated; state: string };
  } catch {
    return undefined;
  }
}

function stateOr(dir: string): string | undefined {
  try {
    return repoState(dir);
  } catch {
    return undefined;
  }
}
