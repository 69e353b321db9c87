// git's own output shapes: `git status --porcelain=v1` and `--porcelain=v2` lines (quoted as git quotes
// them, or NUL-ended with -z), their `--branch` headers, and `key=value` lines for shells.
import type { StatusEntry } from './status.js';

/** HEAD and its upstream, as the `--branch` headers print them. */
export interface BranchInfo {
  branch: string | null;
  head: string | null;
  upstream: { name: string; gone: boolean; ahead: number | null; behind: number | null } | null;
}

const ESCAPES: Record<number, string> = { 7: 'a', 8: 'b', 9: 't', 10: 'n', 11: 'v', 12: 'f', 13: 'r', 34: '"', 92: '\\' };

/** quote_c_style with core.quotePath on, as status uses it: a path with a space is quoted too (v1 only, not v2). */
export function quotePath(path: string, quoteSpace = true): string {
  const bytes = Buffer.from(path, 'utf8');
  let needs = false;
  for (const b of bytes) if (b < 0x20 || (b === 0x20 && quoteSpace) || b === 34 || b === 92 || b >= 0x7f) needs = true;
  if (!needs) return path;
  let out = '"';
  for (const b of bytes) {
    const esc = ESCAPES[b];
    if (esc) out += `\\${esc}`;
    else if (b < 0x20 || b >= 0x7f) out += `\\${b.toString(8).padStart(3, '0')}`;
    else out += String.fromCharCode(b);
  }
  return `${out}"`;
}

/** v1: `XY path`, a rename as `R  old -> new` (with -z: `R  new`, NUL, `old`). */
export function porcelain(entries: StatusEntry[], nul: boolean, branch?: BranchInfo): string {
  const end = nul ? '\0' : '\n';
  let out = branch ? branchLineV1(branch) + end : '';
  for (const e of entries) {
    if (e.orig_path !== undefined) out += nul ? `${e.x}${e.y} ${e.path}\0${e.orig_path}\0` : `${e.x}${e.y} ${quotePath(e.orig_path)} -> ${quotePath(e.path)}\n`;
    else out += `${e.x}${e.y} ${nul ? e.path : quotePath(e.path)}${end}`;
  }
  return out;
}

/** `## branch...upstream [ahead N, behind M]`, `## HEAD (no branch)`, `## No commits yet on branch`. */
export function branchLineV1(info: BranchInfo): string {
  if (!info.branch) return '## HEAD (no branch)';
  let line = `## ${info.head ? '' : 'No commits yet on '}${info.branch}`;
  const up = info.upstream;
  if (!up) return line;
  line += `...${up.name}`;
  if (up.gone) return `${line} [gone]`;
  const ahead = up.ahead ?? 0;
  const behind = up.behind ?? 0;
  if (!ahead && !behind) return line;
  if (!ahead) return `${line} [behind ${behind}]`;
  if (!behind) return `${line} [ahead ${ahead}]`;
  return `${line} [ahead ${ahead}, behind ${behind}]`;
}

const UNMERGED = new Set(['DD', 'AU', 'UD', 'UA', 'DU', 'AA', 'UU']);

/**
 * v2 (the entries must carry the `format: v2` detail): ordinary `1` and renamed `2` lines, then the
 * unmerged `u` lines, then untracked `?` and ignored `!`, as git orders them.
 */
export function porcelainV2(entries: StatusEntry[], nul: boolean, branch?: BranchInfo): string {
  const end = nul ? '\0' : '\n';
  const name = (path: string) => (nul ? path : quotePath(path, false));
  let out = '';
  if (branch) {
    out += `# branch.oid ${branch.head ?? '(initial)'}${end}`;
    out += `# branch.head ${branch.branch ?? '(detached)'}${end}`;
    if (branch.upstream) {
      out += `# branch.upstream ${branch.upstream.name}${end}`;
      if (!branch.upstream.gone) out += `# branch.ab +${branch.upstream.ahead ?? 0} -${branch.upstream.behind ?? 0}${end}`;
    }
  }
  const key = (e: StatusEntry) => `${e.x === ' ' ? '.' : e.x}${e.y === ' ' ? '.' : e.y}`;
  const unmerged: StatusEntry[] = [];
  const untracked: StatusEntry[] = [];
  const ignored: StatusEntry[] = [];
  for (const e of entries) {
    if (e.x === '?') untracked.push(e);
    else if (e.x === '!') ignored.push(e);
    else if (e.stages || UNMERGED.has(`${e.x}${e.y}`)) unmerged.push(e);
    else {
      const common = `${key(e)} ${e.submodule ?? 'N...'} ${e.mode_head} ${e.mode_index} ${e.mode_worktree} ${e.oid_head} ${e.oid_index}`;
      if (e.orig_path !== undefined) out += `2 ${common} R${e.score} ${name(e.path)}${nul ? '\0' : '\t'}${name(e.orig_path)}${end}`;
      else out += `1 ${common} ${name(e.path)}${end}`;
    }
  }
  for (const e of unmerged) {
    const stages = e.stages ?? [];
    out += `u ${key(e)} ${e.submodule ?? 'N...'} ${stages.map((s) => s.mode).join(' ')} ${e.mode_worktree} ${stages.map((s) => s.oid).join(' ')} ${name(e.path)}${end}`;
  }
  for (const e of untracked) out += `? ${name(e.path)}${end}`;
  for (const e of ignored) out += `! ${name(e.path)}${end}`;
  return out;
}

export function keyValueLines(data: Record<string, unknown>): string {
  return Object.entries(data)
    .map(([k, v]) => `${k}=${v === null || v === undefined ? '' : String(v)}\n`)
    .join('');
}
