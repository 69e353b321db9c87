// git's own output shapes: `git status --porcelain=v1` lines (quoted as git quotes them, or NUL-ended
// with -z) and `key=value` lines for shells.
import type { StatusEntry } from './status.js';

const ESCAPES: Record<number, string> = { 7: 'a', 8: 'b', 9: 't', 10: 'n', 11: 'v', 12: 'f', 13: 'r', 34: '"', 92: '\\' };

/** quote_c_style with core.quotePath on, as status uses it: a path with a space is quoted too. */
export function quotePath(path: string): string {
  const bytes = Buffer.from(path, 'utf8');
  let needs = false;
  for (const b of bytes) if (b < 0x21 || b === 34 || b === 92 || b >= 0x7f) needs = true;
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

export function porcelain(entries: StatusEntry[], nul: boolean): string {
  return entries.map((e) => `${e.x}${e.y} ${nul ? e.path : quotePath(e.path)}${nul ? '\0' : '\n'}`).join('');
}

export function keyValueLines(data: Record<string, unknown>): string {
  return Object.entries(data)
    .map(([k, v]) => `${k}=${v === null || v === undefined ? '' : String(v)}\n`)
    .join('');
}
