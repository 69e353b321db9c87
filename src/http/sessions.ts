// Browser sessions: how a page served by the daemon (the dashboard) is authorised without the API token
// ever reaching the browser. A one-time login secret (valid once, for LOGIN_TTL_MS) is exchanged for an
// HttpOnly, SameSite=Strict cookie; the cookie authorises a request only
// - when the request says it came from the daemon's own origin (`Origin`, or `Sec-Fetch-Site: same-origin`
//   for the GETs that carry no Origin): a page of another origin gets nothing, even with the cookie sent;
// - for the routes granted to sessions (what the page needs), never for any other;
// - for a request that changes state (not GET or HEAD), only with the session's CSRF value in a header.
// Sessions live in memory: they end with the daemon, or by logout (and the event streams they opened with them). Secrets and session ids are kept as
// their SHA-256, so a lookup's timing says nothing about a stored value.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { HearthError } from '../errors.js';

export const LOGIN_TTL_MS = 60_000;
export const CSRF_HEADER = 'X-Hearth-CSRF';
/** At most this many sessions are kept: a new one beyond it ends the oldest. */
const MAX_SESSIONS = 32;
/** Login secrets issued and not yet used (each expires by itself after LOGIN_TTL_MS). */
const MAX_PENDING_LOGINS = 64;

export class Session {
  readonly csrf = secret();
  readonly #onEnd = new Set<() => void>();

  /** Runs `fn` when the session ends (an event stream it opened closes); returns the unsubscribe. */
  onEnd(fn: () => void): () => void {
    this.#onEnd.add(fn);
    return () => this.#onEnd.delete(fn);
  }

  end(): void {
    for (const fn of [...this.#onEnd]) fn();
    this.#onEnd.clear();
  }
}

export interface Login {
  url: string;
  expires_at: string;
}

const secret = (): string => randomBytes(32).toString('base64url');
const hash = (value: string): Buffer => createHash('sha256').update(value).digest();
const digest = (value: string): string => hash(value).toString('base64url');

/** The cookie's value in a Cookie header, or undefined. */
function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export interface SessionCounts {
  sessions: number;
  logins_issued: number;
  logins_used: number;
  logins_refused: number;
  requests_refused: number;
}

export class BrowserSessions {
  /** By SHA-256 of the session id, oldest first. */
  readonly #sessions = new Map<string, Session>();
  /** By SHA-256 of the secret: when it expires. */
  readonly #logins = new Map<string, number>();
  /** `METHOD pattern` of the routes a session may call. */
  readonly #granted = new Set<string>();
  readonly #counts = { logins_issued: 0, logins_used: 0, logins_refused: 0, requests_refused: 0 };
  #origin = '';
  #cookie = 'hearth_session';
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Where the daemon answers on TCP, once it listens. The cookie's name carries the port: browsers send
   * a cookie of 127.0.0.1 to every port of it, so two daemons must not overwrite each other's session.
   */
  listening(origin: string, port: number): void {
    this.#origin = origin;
    this.#cookie = `hearth_session_${port}`;
  }

  /** Lets sessions call these routes (method and route pattern, as registered). */
  grant(routes: ReadonlyArray<{ method: string; path: string }>): void {
    for (const r of routes) this.#granted.add(`${r.method} ${r.path}`);
  }

  /** A one-time URL for `path` (which redeems `?once=`), valid once, for LOGIN_TTL_MS. */
  issueLogin(path: string): Login {
    if (!this.#origin) throw new HearthError('UNAVAILABLE', 'The daemon does not listen on TCP yet');
    const now = this.#now();
    for (const [key, expires] of this.#logins) if (expires <= now) this.#logins.delete(key);
    if (this.#logins.size >= MAX_PENDING_LOGINS) this.#logins.delete(this.#logins.keys().next().value!);
    const once = secret();
    this.#logins.set(digest(once), now + LOGIN_TTL_MS);
    this.#counts.logins_issued++;
    return { url: `${this.#origin}${path}?once=${once}`, expires_at: new Date(now + LOGIN_TTL_MS).toISOString() };
  }

  /** Uses a login secret: the Set-Cookie value of a new session, or undefined when the secret is not valid now. */
  redeem(once: string): string | undefined {
    const key = digest(once);
    const expires = this.#logins.get(key);
    this.#logins.delete(key);
    if (expires === undefined || expires <= this.#now()) {
      this.#counts.logins_refused++;
      return undefined;
    }
    this.#counts.logins_used++;
    if (this.#sessions.size >= MAX_SESSIONS) this.#drop(this.#sessions.keys().next().value!);
    const id = secret();
    this.#sessions.set(digest(id), new Session());
    return `${this.#cookie}=${id}; HttpOnly; SameSite=Strict; Path=/`;
  }

  /** The Set-Cookie value that removes the cookie. */
  get clearCookie(): string {
    return `${this.#cookie}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }

  /** The session a request's cookie names, whatever it asks for (undefined when none). */
  find(headers: IncomingHttpHeaders): Session | undefined {
    if (this.#sessions.size === 0) return undefined;
    const id = cookieValue(headers.cookie, this.#cookie);
    return id === undefined ? undefined : this.#sessions.get(digest(id));
  }

  /** Ends the session a request's cookie names; true when there was one. */
  end(headers: IncomingHttpHeaders): boolean {
    const id = cookieValue(headers.cookie, this.#cookie);
    return id !== undefined && this.#drop(digest(id));
  }

  #drop(key: string): boolean {
    const session = this.#sessions.get(key);
    this.#sessions.delete(key);
    session?.end();
    return session !== undefined;
  }

  /**
   * The session that authorises this request (`route`: the matched route's pattern, undefined for none),
   * or undefined when the request has no session cookie. Throws when it has one that does not authorise it.
   */
  authorize(headers: IncomingHttpHeaders, method: string, route: string | undefined): Session | undefined {
    const session = this.find(headers);
    if (!session) return undefined;
    const refuse = (code: 'ORIGIN_NOT_ALLOWED' | 'SESSION_NOT_ALLOWED' | 'CSRF_FAILED', message: string): never => {
      this.#counts.requests_refused++;
      throw new HearthError(code, message);
    };
    // A foreign Origin or a cross-site Sec-Fetch-Site is refused before this (checkOrigin); here the
    // request must say it is the page's own.
    if (headers.origin !== this.#origin && headers['sec-fetch-site'] !== 'same-origin') {
      refuse('ORIGIN_NOT_ALLOWED', 'A dashboard session authorises only requests from the dashboard itself');
    }
    const m = method === 'HEAD' ? 'GET' : method;
    // A path no route takes goes on to its 404 or 405 (which tells nothing).
    if (route !== undefined && !this.#granted.has(`${m} ${route}`)) {
      refuse('SESSION_NOT_ALLOWED', `A dashboard session may not call ${method} ${route}; use the API token`);
    }
    const csrf = headers[CSRF_HEADER.toLowerCase()];
    if (m !== 'GET' && (typeof csrf !== 'string' || !timingSafeEqual(hash(csrf), hash(session.csrf)))) {
      refuse('CSRF_FAILED', `A change made by a dashboard session needs its ${CSRF_HEADER} header`);
    }
    return session;
  }

  counts(): SessionCounts {
    return { sessions: this.#sessions.size, ...this.#counts };
  }

  /** Ends every session (the daemon closes). */
  clear(): void {
    for (const key of [...this.#sessions.keys()]) this.#drop(key);
    this.#logins.clear();
  }
}
