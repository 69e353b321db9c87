// How the CLI (and tests, and the bench) talk to a running daemon: over its unix socket, or TCP with the token.
// node:http rather than undici: it is part of node's start-up already paid for, where importing undici costs
// ~90 ms, and a CLI command is one or two requests.
import { Agent, request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';

/** An error envelope from the daemon, or (as DaemonNotRunningError) no daemon to answer: every error the client means to throw. */
export class ApiError extends Error {
  readonly code: string;
  /** The HTTP status; 0 when no answer came (DaemonNotRunningError). */
  readonly status: number;
  readonly details: unknown;
  constructor(status: number, code: string, message: string, details?: unknown) {
    super(`${code}: ${message}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Nothing answers where the client looked: code DAEMON_NOT_RUNNING, status 0. */
export class DaemonNotRunningError extends ApiError {
  /** The socket error: ENOENT or ECONNREFUSED when no connection was made, so nothing was sent. */
  readonly errno: string | undefined;
  constructor(where: string, errno?: string) {
    const message = `hearth is not running (nothing answers at ${where}); start it with "hearth start"`;
    super(0, 'DAEMON_NOT_RUNNING', message);
    // The message without the code prefix: it is what the CLI prints.
    this.message = message;
    this.name = 'DaemonNotRunningError';
    this.errno = errno;
  }

  /** Whether the request surely never reached a daemon (so sending it again cannot do it twice). */
  get neverSent(): boolean {
    return this.errno === 'ENOENT' || this.errno === 'ECONNREFUSED';
  }
}

export interface ClientOptions {
  socket?: string;
  /** e.g. http://127.0.0.1:7433 (TCP needs the token). */
  url?: string;
  token?: string;
  timeoutMs?: number;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as UTF-8 text. */
  body: string;
  bytes: Buffer;
}

type Envelope<T> = { success?: boolean; data?: T; error?: { code: string; message: string; details?: unknown } };

function parseEnvelope<T>(status: number, body: string): Envelope<T> {
  try {
    return JSON.parse(body) as Envelope<T>;
  } catch {
    throw new ApiError(status, 'BAD_RESPONSE', `the daemon answered ${status} with a body that is not JSON`);
  }
}

/** The ApiError of an error envelope (or of an answer that is none): from its body, or from the envelope parsed already. */
export function envelopeError(status: number, body: string | Envelope<unknown>): ApiError {
  const parsed = typeof body === 'string' ? parseEnvelope(status, body) : body;
  const error = parsed.error ?? { code: 'BAD_RESPONSE', message: `status ${status}` };
  return new ApiError(status, error.code, error.message, error.details);
}

/** Errors that mean nothing listens where the client looked. */
const NOT_RUNNING = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

/** A connection refused or dropped before any answer: nothing (or a daemon on its way out) is there. */
function connectionError(err: NodeJS.ErrnoException, answered: boolean, where: string): Error {
  return !answered && NOT_RUNNING.has(err.code ?? '') ? new DaemonNotRunningError(where, err.code) : err;
}

export class Client {
  readonly where: string;
  #target: { socketPath: string } | { host: string; port: number };
  #agent = new Agent({ keepAlive: true });
  #token: string | undefined;
  #timeoutMs: number;

  constructor(options: ClientOptions) {
    if (options.url) {
      const url = new URL(options.url);
      this.#target = { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 80) };
      this.where = options.url.replace(/\/$/, '');
    } else if (options.socket) {
      this.#target = { socketPath: options.socket };
      this.where = options.socket;
    } else {
      throw new Error('a client needs a socket path or a URL');
    }
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  async raw(method: string, path: string, body?: unknown): Promise<RawResponse> {
    try {
      return await this.#send(method, path, body);
    } catch (err) {
      // A kept-alive connection the daemon closed as we reused it: once more on a new one.
      if ((err as { reused?: boolean }).reused) return this.#send(method, path, body);
      throw err;
    }
  }

  #headers(): Record<string, string | number> {
    const headers: Record<string, string | number> = { host: 'localhost' };
    if ('port' in this.#target) headers.host = `${this.#target.host.includes(':') ? `[${this.#target.host}]` : this.#target.host}:${this.#target.port}`;
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    return headers;
  }

  /**
   * A GET whose answer is read as it comes (an event stream): resolves with the response once a 2xx status
   * arrives, on a connection of its own (destroy the response to end it). An error answer is thrown as an
   * ApiError, a refused connection as DaemonNotRunningError.
   */
  openStream(path: string, extraHeaders: Record<string, string> = {}): Promise<IncomingMessage> {
    const headers = { ...this.#headers(), accept: 'text/event-stream', ...extraHeaders };
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = request({ ...this.#target, method: 'GET', path, headers, agent: false }, (res) => {
        answered = true;
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(res);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => reject(envelopeError(status, Buffer.concat(chunks).toString('utf8'))));
      });
      req.on('error', (err: NodeJS.ErrnoException) => reject(connectionError(err, answered, this.where)));
      req.end();
    });
  }

  #send(method: string, path: string, body?: unknown): Promise<RawResponse> {
    const headers = this.#headers();
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = request({ ...this.#target, method, path, headers, agent: this.#agent }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: bytes.toString('utf8'), bytes });
        });
      });
      req.setTimeout(this.#timeoutMs, () => req.destroy(new Error(`no answer from ${this.where} within ${this.#timeoutMs} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!answered && req.reusedSocket && err.code === 'ECONNRESET') return reject(Object.assign(err, { reused: true }));
        reject(connectionError(err, answered, this.where));
      });
      req.end(payload);
    });
  }

  /** The `data` of a successful envelope; an error envelope is thrown as an ApiError. */
  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    const parsed = parseEnvelope<T>(res.status, res.body);
    if (parsed.success) return parsed.data as T;
    throw envelopeError(res.status, parsed);
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }

  /** Runs `fn` with this client and closes it afterwards, whatever `fn` did: what a one-shot command wants. */
  async use<T>(fn: (client: this) => Promise<T>): Promise<T> {
    try {
      return await fn(this);
    } finally {
      await this.close();
    }
  }
}
