// Browser attacks on a local daemon: DNS rebinding (a foreign Host), cross-origin requests (an Origin or
// Sec-Fetch-Site that is not our own), and requests without the token on TCP (or a browser session, see
// sessions.ts).
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { HearthError } from '../errors.js';

/** The host name of a Host header, without its port: `[::1]:7433` -> `[::1]`, `LocalHost:1` -> `localhost`. */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

export interface GuardSettings {
  allowedHosts: ReadonlySet<string>;
  /** The TCP port the daemon answers on: its own origins are http://<allowed host>:<port>. */
  port: number;
}

// The last Host header allowed, with the settings it was allowed under: a client sends the same one on
// every request, so most checks are one string comparison (a reload brings new settings, and a new check).
let lastAllowedHost = '';
let lastSettings: GuardSettings | undefined;

export function checkHost(headers: IncomingHttpHeaders, settings: GuardSettings): void {
  const host = headers.host;
  if (host !== undefined && host === lastAllowedHost && settings === lastSettings) return;
  if (!host || !settings.allowedHosts.has(hostName(host))) {
    throw new HearthError('HOST_NOT_ALLOWED', `The Host header ${host ? `"${host}"` : '(none)'} is not allowed`);
  }
  lastAllowedHost = host;
  lastSettings = settings;
}

function isOwnOrigin(origin: string, settings: GuardSettings): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const port = url.port === '' ? 80 : Number(url.port);
  return url.protocol === 'http:' && port === settings.port && settings.allowedHosts.has(hostName(url.host));
}

export function checkOrigin(headers: IncomingHttpHeaders, settings: GuardSettings): void {
  const origin = headers.origin;
  if (origin !== undefined && !isOwnOrigin(origin, settings)) {
    throw new HearthError('ORIGIN_NOT_ALLOWED', `The origin "${origin}" is not allowed`);
  }
  // Browsers that send no Origin (a no-cors GET) still say where the request came from.
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new HearthError('ORIGIN_NOT_ALLOWED', `A ${site} browser request is not allowed`);
  }
}

/**
 * Compares in constant time. Only the header's length can show through timing, and the expected length
 * (`Bearer ` + a 43-character token) is no secret. A header of the right length is written into one
 * reused buffer rather than a new one per request; a non-ASCII character in it takes two or more bytes, so
 * it cannot fill the buffer with bytes equal to the (ASCII) expected ones.
 */
export function tokenMatcher(token: string): (header: string | undefined) => boolean {
  const expected = Buffer.from(`Bearer ${token}`);
  const scratch = Buffer.alloc(expected.length);
  return (header) => {
    if (header === undefined || header.length !== expected.length) return false;
    scratch.fill(0);
    scratch.write(header, 0, 'utf8');
    return timingSafeEqual(scratch, expected);
  };
}

export function unauthorized(): HearthError {
  return new HearthError('UNAUTHORIZED', 'A valid "Authorization: Bearer <token>" header is required on TCP', {
    headers: { 'WWW-Authenticate': 'Bearer realm="hearth"' },
  });
}
