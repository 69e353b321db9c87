// Reads the few git config values status needs (core.excludesFile, core.fileMode, branch upstreams) from
// the files git reads, in git's order: system, global (XDG, then ~/.gitconfig), the repository's own.
// A small reader for git's config syntax: sections, subsections, quoted values, escapes, comments and
// continuation lines; `include` directives are not followed.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type GitConfig = Map<string, string>;

/** `[section "Sub"] Key = value` -> key `section.Sub.key` (section and key lower-cased, subsection kept). */
export function parseGitConfig(text: string, into: GitConfig = new Map()): GitConfig {
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
      into.set(key, 'true');
      continue;
    }
    let raw = eq[2];
    while (/(^|[^\\])(\\\\)*\\$/.test(raw) && i + 1 < lines.length) raw = raw.slice(0, -1) + lines[++i];
    into.set(key, unquote(raw));
  }
  return into;
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

function readIfExists(path: string, into: GitConfig): void {
  try {
    parseGitConfig(readFileSync(path, 'utf8'), into);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
  }
}

export function xdgConfigHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
}

/** The repository's effective config (system < global < local), as git reads it. */
export function loadGitConfig(commondir: string, env: NodeJS.ProcessEnv = process.env): GitConfig {
  const config: GitConfig = new Map();
  const home = env.HOME || homedir();
  if (!env.GIT_CONFIG_NOSYSTEM) readIfExists(env.GIT_CONFIG_SYSTEM || '/etc/gitconfig', config);
  if (env.GIT_CONFIG_GLOBAL) readIfExists(env.GIT_CONFIG_GLOBAL, config);
  else {
    readIfExists(join(xdgConfigHome(env), 'git', 'config'), config);
    readIfExists(join(home, '.gitconfig'), config);
  }
  readIfExists(join(commondir, 'config'), config);
  return config;
}

export function configBool(config: GitConfig, key: string, fallback: boolean): boolean {
  const v = config.get(key)?.toLowerCase();
  if (v === undefined) return fallback;
  return !(v === 'false' || v === 'no' || v === 'off' || v === '0' || v === '');
}

/** `~/x` and `~user/x` (the first only) expanded as git does for path values. */
export function configPath(value: string, env: NodeJS.ProcessEnv = process.env): string {
  return value.startsWith('~/') ? join(env.HOME || homedir(), value.slice(2)) : value;
}
