// The dashboard's files, served from where they are in the package (the plugin's static/ folder, uPlot's
// dist/ in node_modules): tsc copies nothing, and there is no bundler. Each file is read when first asked
// for and kept while its size and mtime stay the same; answers carry an ETag, so a reload costs a 304.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Context } from 'koa';
import { packageRoot } from '../../src/config-source.js';

const STATIC = join(packageRoot, 'plugins', 'dashboard', 'static');
const uplot = (file: string) => createRequire(join(packageRoot, 'package.json')).resolve(`uplot/dist/${file}`);

/** URL path -> file and type. */
export const FILES: Record<string, { file: () => string; type: string }> = {
  '/ui': { file: () => join(STATIC, 'index.html'), type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: () => join(STATIC, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/ui/app.css': { file: () => join(STATIC, 'app.css'), type: 'text/css; charset=utf-8' },
  '/ui/uPlot.iife.min.js': { file: () => uplot('uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/ui/uPlot.min.css': { file: () => uplot('uPlot.min.css'), type: 'text/css; charset=utf-8' },
};
export const EXPIRED_PAGE = { file: () => join(STATIC, 'expired.html'), type: 'text/html; charset=utf-8' };

/**
 * What every /ui answer says to the browser: only this origin's scripts, styles and connections, no
 * inline script or style, no framing, no referrer (the login URL holds a secret), no type sniffing.
 */
export const PAGE_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

interface Loaded {
  key: string;
  body: Buffer;
  etag: string;
}

const loaded = new Map<string, Loaded>();

function load(path: string): Loaded {
  const stat = statSync(path);
  const key = `${stat.size}:${stat.mtimeMs}`;
  let file = loaded.get(path);
  if (file?.key !== key) {
    const body = readFileSync(path);
    file = { key, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    loaded.set(path, file);
  }
  return file;
}

export function setPageHeaders(koa: Context): void {
  for (const [name, value] of Object.entries(PAGE_HEADERS)) koa.set(name, value);
}

/** Answers with one of the files (304 when the browser has this version). */
export function sendFile(koa: Context, entry: { file: () => string; type: string }, status = 200): void {
  const file = load(entry.file());
  setPageHeaders(koa);
  koa.set('Cache-Control', 'no-cache');
  koa.set('ETag', file.etag);
  if (status === 200 && koa.get('if-none-match') === file.etag) {
    koa.status = 304;
    koa.body = null;
    return;
  }
  koa.status = status;
  koa.type = entry.type;
  koa.body = file.body;
}
