// Reads the git config values status needs (core.excludesFile, core.fileMode, branch upstreams, submodule
// ignore settings) from the files git reads, in git's order: system, global (XDG, then ~/.gitconfig), the
// repository's own, then its worktree's (with extensions.worktreeConfig). A small reader for git's config
// syntax: sections, subsections, quoted values, escapes, comments and continuation lines.
//
// Includes are followed where they stand, as git does: `include.path` and `includeIf.<condition>.path`,
// the path `~/`-expanded and, when relative, taken from the directory of the file that names it (as
// written, links not resolved); a missing file is skipped; more than 10 nested includes is git's fatal
// error. Conditions: `gitdir:` and `gitdir/i:` (the pattern `~/`-expanded, `./` meaning the directory of
// the including file with links resolved, `**/` put before a pattern that is not absolute, `**` after one
// ending in `/`; matched by wildmatch against the git dir's real path), `onbranch:` (against the branch HEAD
// names, unborn too; a pattern ending in `/` gets `**`). Other conditions (`hasconfig:`) are false.
//
// Every file read or looked for is recorded with its identity (inode, size, times), so whether any of them
// changed (included files outside the repository, which nothing watches) costs a stat each.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { HearthError } from '../../src/errors.js';
import { wildmatch } from './wildmatch.js';

/** How a submodule's changes count for status (git's `--ignore-submodules` values). */
export type SubmoduleIgnore = 'none' | 'untracked' | 'dirty' | 'all';

const IGNORE_VALUES = new Set<string>(['none', 'untracked', 'dirty', 'all']);
/** git's MAX_INCLUDE_DEPTH. */
const MAX_INCLUDE_DEPTH = 10;

/** Where the config is read for: the repository whose conditions (`gitdir:`, `onbranch:`) are decided. */
export interface ConfigRepo {
  gitdir: string;
  commondir: string;
  /** The worktree's root: relative `core.excludesFile` values and `.gitmodules` are taken from it. */
  worktree?: string;
}

/** A file's identity as a stat gives it ('' when it cannot be stat'ed). */
export function fileId(path: string): string {
  try {
    // Missing files are common here (no ~/.gitconfig, no excludes file): no exception for them.
    const s = statSync(path, { bigint: true, throwIfNoEntry: false });
    return s ? `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}` : '';
  } catch {
    return '';
  }
}

/** `section.Sub.key` (section and key lower-cased, subsection kept) -> the last value set. */
export class GitConfig extends Map<string, string> {
  /** Every file read or looked for (configs, includes, .gitmodules), with its identity when it was read. */
  readonly files: Array<[path: string, id: string]> = [];
  /** `.gitmodules`: submodule path -> its name and its `ignore` value there. */
  readonly modules = new Map<string, { name: string; ignore: SubmoduleIgnore | undefined }>();
  readonly worktree: string | undefined;
  readonly #env: NodeJS.ProcessEnv;

  constructor(worktree?: string, env: NodeJS.ProcessEnv = process.env) {
    super();
    this.worktree = worktree;
    this.#env = env;
  }

  /** Whether any file this config was read from (or looked for) changed since: one stat each. */
  changed(): boolean {
    for (const [path, id] of this.files) if (fileId(path) !== id) return true;
    return false;
  }

  /** The same values and the same submodule settings (the files' identities aside). */
  equals(other: GitConfig): boolean {
    if (this.size !== other.size || this.modules.size !== other.modules.size) return false;
    for (const [k, v] of this) if (other.get(k) !== v) return false;
    for (const [k, m] of this.modules) {
      const o = other.modules.get(k);
      if (!o || o.name !== m.name || o.ignore !== m.ignore) return false;
    }
    return true;
  }

  /**
   * The excludes file git reads: `core.excludesFile` (`~/` expanded; a relative path is taken from the
   * worktree's root, where git runs status from), else `$XDG_CONFIG_HOME/git/ignore`.
   */
  excludesFile(): string {
    const value = this.get('core.excludesfile');
    if (value === undefined) return join(xdgConfigHome(this.#env), 'git', 'ignore');
    const path = configPath(value, this.#env);
    // Joined as text: git opens it from the worktree's root, where `..` is the file system's (after links).
    return this.worktree && path !== '' && !isAbsolute(path) ? `${this.worktree}/${path}` : path;
  }

  /**
   * How the changes of the submodule at `path` count, as git status decides it: `override` (the
   * `--ignore-submodules` flag) first; else `submodule.<name>.ignore` from the config, then from
   * `.gitmodules` (the name found by path in `.gitmodules`); else `diff.ignoreSubmodules`. Without untracked
   * files listed (`-uno`) untracked content in a submodule does not count either, unless the flag or the
   * submodule's own setting says otherwise.
   */
  ignoreSubmodules(path: string, override?: SubmoduleIgnore, untrackedListed = true): SubmoduleIgnore {
    if (override) return override;
    const module = this.modules.get(path);
    if (module) {
      const own = ignoreValue(this.get(`submodule.${module.name}.ignore`)) ?? module.ignore;
      if (own) return own;
    }
    const mode = ignoreValue(this.get('diff.ignoresubmodules')) ?? 'none';
    return mode === 'none' && !untrackedListed ? 'untracked' : mode;
  }
}

function ignoreValue(value: string | undefined): SubmoduleIgnore | undefined {
  return value !== undefined && IGNORE_VALUES.has(value) ? (value as SubmoduleIgnore) : undefined;
}

/** Calls `onEntry` for each `key = value` of `text` in order (`value` null for a bare `key`). */
export function scanGitConfig(text: string, onEntry: (key: string, value: string | null) => void): void {
  let section = '';
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    const header = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\](.*)$/.exec(line);
    if (header) {
      const [name, ...dotted] = header[1]!.split('.');
      section = name!.toLowerCase() + (header[2] !== undefined ? `.${header[2].replace(/\\(.)/g, '$1')}` : dotted.length ? `.${dotted.join('.').toLowerCase()}` : '');
      line = header[3]!.trim();
      if (!line) continue;
    }
    if (!line || line.startsWith('#') || line.startsWith(';') || !section) continue;
    const eq = /^([A-Za-z][A-Za-z0-9-]*)\s*(?:=(.*))?$/.exec(line);
    if (!eq) continue;
    const key = `${section}.${eq[1]!.toLowerCase()}`;
    if (eq[2] === undefined) {
      onEntry(key, null);
      continue;
    }
    let raw = eq[2];
    while (/(^|[^\\])(\\\\)*\\$/.test(raw) && i + 1 < lines.length) raw = raw.slice(0, -1) + lines[++i];
    onEntry(key, unquote(raw));
  }
}

function unquote(raw: string): string {
  let out = '';
  let quoted = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && i + 1 < raw.length) {
      const n = raw[++i]!;
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'b' ? '\b' : n;
    } else if ((c === '#' || c === ';') && !quoted) break;
    else out += c;
  }
  return quoted ? out : out.trim();
}

/** Files changed this recently could change again within the file system's time granularity unseen. */
const RACY_NS = 2_000_000_000n;

/**
 * The text of `path`, or null when there is none (missing, or a directory); its identity is recorded first.
 * A file modified within the last 2 s is recorded as changed (git's racy rule): it is read again on the
 * next answer, so an edit in the same timestamp tick with the same size is not missed.
 */
function readRecorded(path: string, files: GitConfig['files']): string | null {
  const id = fileId(path);
  const mtimeNs = id ? BigInt(id.split(':')[2]!) : 0n;
  const racy = id !== '' && mtimeNs > BigInt(Date.now()) * 1_000_000n - RACY_NS;
  files.push([path, racy ? `${id}:racy` : id]);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
    throw err;
  }
}

export function xdgConfigHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
}

/** The reading of one repository's config: the values, and what conditions need (asked once). */
class ConfigReader {
  readonly config: GitConfig;
  readonly #repo: ConfigRepo;
  readonly #env: NodeJS.ProcessEnv;
  #gitdirReal: string | undefined;
  #branch: string | null | undefined;

  constructor(repo: ConfigRepo, env: NodeJS.ProcessEnv) {
    this.#repo = repo;
    this.#env = env;
    this.config = new GitConfig(repo.worktree, env);
  }

  /** Reads `path` (if it exists) into the config, following its includes; `depth` counts nested includes. */
  readFile(path: string, depth = 0, from?: string): void {
    const text = readRecorded(path, this.config.files);
    if (text === null) return;
    if (depth > MAX_INCLUDE_DEPTH) {
      throw new HearthError('GIT_FAILED', `exceeded maximum include depth (${MAX_INCLUDE_DEPTH}) while including ${path} from ${from} (circular includes?)`);
    }
    scanGitConfig(text, (key, value) => {
      this.config.set(key, value ?? 'true');
      if (value === null || value === '' || !key.endsWith('.path')) return;
      const section = key.slice(0, -'.path'.length);
      let include = section === 'include';
      if (!include && section.startsWith('includeif.')) include = this.#condition(section.slice('includeif.'.length), path);
      if (!include) return;
      const target = configPath(value, this.#env);
      // Joined as text, as git joins them: `..` is left to the file system (after links).
      this.readFile(isAbsolute(target) ? target : `${dirname(path)}/${target}`, depth + 1, path);
    });
  }

  #condition(condition: string, file: string): boolean {
    if (condition.startsWith('gitdir:')) return this.#gitdirMatches(condition.slice('gitdir:'.length), file, false);
    if (condition.startsWith('gitdir/i:')) return this.#gitdirMatches(condition.slice('gitdir/i:'.length), file, true);
    if (condition.startsWith('onbranch:')) {
      const branch = this.#headBranch();
      if (branch === null) return false;
      let pattern = condition.slice('onbranch:'.length);
      if (pattern.endsWith('/')) pattern += '**';
      return wildmatch(pattern, branch);
    }
    return false;
  }

  #gitdirMatches(raw: string, file: string, icase: boolean): boolean {
    let pattern = configPath(raw, this.#env);
    let prefix = 0;
    if (pattern.startsWith('./')) {
      const dir = dirname(realOr(file));
      pattern = dir + pattern.slice(1);
      prefix = dir.length + 1;
    } else if (!isAbsolute(pattern)) pattern = `**/${pattern}`;
    if (pattern.endsWith('/')) pattern += '**';
    this.#gitdirReal ??= realOr(this.#repo.gitdir);
    const text = this.#gitdirReal;
    const test = (pat: string, literal: number): boolean => {
      const a = pat.slice(0, literal);
      const b = text.slice(0, literal);
      if (text.length < literal || (icase ? a.toLowerCase() !== b.toLowerCase() : a !== b)) return false;
      return wildmatch(pat.slice(literal), text.slice(literal), icase);
    };
    if (test(pattern, prefix)) return true;
    // git also tries the git dir's path as the shell reached it (through links); the real path is all
    // there is here, so the links are resolved in the pattern's literal leading directories instead.
    const glob = pattern.search(/[*?[\\]/);
    const lead = pattern.lastIndexOf('/', glob < 0 ? pattern.length : glob);
    if (lead <= 0) return false;
    const real = realOr(pattern.slice(0, lead));
    if (real === pattern.slice(0, lead)) return false;
    return test(real + pattern.slice(lead), real.length);
  }

  /** The branch HEAD names (null when detached); HEAD is recorded as a source, as it decides conditions. */
  #headBranch(): string | null {
    if (this.#branch === undefined) {
      const text = readRecorded(join(this.#repo.gitdir, 'HEAD'), this.config.files) ?? '';
      const m = /^ref: refs\/heads\/(.+?)\s*$/.exec(text.split('\n')[0] ?? '');
      this.#branch = m ? m[1]! : null;
    }
    return this.#branch;
  }
}

function realOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The repository's effective config (system < global < local < worktree), as git reads it. */
export function loadGitConfig(repo: ConfigRepo | string, env: NodeJS.ProcessEnv = process.env): GitConfig {
  const paths = typeof repo === 'string' ? { gitdir: repo, commondir: repo } : repo;
  const reader = new ConfigReader(paths, env);
  const home = env.HOME || homedir();
  if (!env.GIT_CONFIG_NOSYSTEM) reader.readFile(env.GIT_CONFIG_SYSTEM || '/etc/gitconfig');
  if (env.GIT_CONFIG_GLOBAL) reader.readFile(env.GIT_CONFIG_GLOBAL);
  else {
    reader.readFile(join(xdgConfigHome(env), 'git', 'config'));
    reader.readFile(join(home, '.gitconfig'));
  }
  reader.readFile(join(paths.commondir, 'config'));
  const config = reader.config;
  if (configBool(config, 'extensions.worktreeconfig', false)) reader.readFile(join(paths.gitdir, 'config.worktree'));
  if (paths.worktree) readModules(join(paths.worktree, '.gitmodules'), config);
  return config;
}

/** `.gitmodules` (no includes): each submodule's path and `ignore`; for a repeated key the first one counts, as in git. */
function readModules(file: string, config: GitConfig): void {
  const text = readRecorded(file, config.files);
  if (text === null) return;
  const byName = new Map<string, { path?: string; ignore?: SubmoduleIgnore }>();
  scanGitConfig(text, (key, value) => {
    if (!key.startsWith('submodule.') || value === null) return;
    const dot = key.lastIndexOf('.');
    const name = key.slice('submodule.'.length, dot);
    if (!name) return;
    const item = key.slice(dot + 1);
    let m = byName.get(name);
    if (!m) byName.set(name, (m = {}));
    if (item === 'path' && m.path === undefined) m.path = value;
    else if (item === 'ignore' && m.ignore === undefined) m.ignore = ignoreValue(value);
  });
  for (const [name, m] of byName) if (m.path !== undefined && !config.modules.has(m.path)) config.modules.set(m.path, { name, ignore: m.ignore });
}

export function configBool(config: Map<string, string>, key: string, fallback: boolean): boolean {
  const v = config.get(key)?.toLowerCase();
  if (v === undefined) return fallback;
  return !(v === 'false' || v === 'no' || v === 'off' || v === '0' || v === '');
}

/** `~/x` and a lone `~` expanded as git does for path values: HOME and the rest put together as text. */
export function configPath(value: string, env: NodeJS.ProcessEnv = process.env): string {
  return value === '~' || value.startsWith('~/') ? (env.HOME || homedir()) + value.slice(1) : value;
}
