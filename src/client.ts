// How the CLI (and tests, and the bench) talk to a running daemon: over its unix socket, or TCP with the token.
import { Agent, request, type Dispatcher } from 'undici';

export class DaemonNotRunningError extends Error {
  constructor(where: string) {
    super(`hearth is not running (nothing answers at ${where}); start it with "hearth start"`);
    this.name = 'DaemonNotRunningError';
  }
}

/** An error envelope from the daemon. */
export class ApiError extends Error {
  readonly code: string;
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

export interface ClientOptions {
  socket?: string;
  /** e.g. http://127.0.0.1:7433 (TCP needs the token). */
  url?: string;
  token?: string;
  timeoutMs?: number;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export class Client {
  readonly where: string;
  #origin: string;
  #dispatcher: Dispatcher | undefined;
  #token: string | undefined;
  #timeoutMs: number;

  constructor(options: ClientOptions) {
    if (options.url) {
      this.#origin = options.url.replace(/\/$/, '');
      this.where = this.#origin;
    } else if (options.socket) {
      this.#origin = 'http://localhost';
      this.#dispatcher = new Agent({ connect: { socketPath: options.socket } });
      this.where = options.socket;
    } else {
      throw new Error('a client needs a socket path or a URL');
    }
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  async raw(method: string, path: string, body?: unknown): Promise<RawResponse> {
    const headers: Record<string, string> = {};
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      const res = await request(`${this.#origin}${path}`, {
        method: method as Dispatcher.HttpMethod,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
      });
      return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? ((err as { cause?: NodeJS.ErrnoException }).cause?.code);
      if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'UND_ERR_SOCKET') throw new DaemonNotRunningError(this.where);
      throw err;
    }
  }

  /** The `data` of a successful envelope; an error envelope is thrown as an ApiError. */
  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    let parsed: { success?: boolean; data?: T; error?: { code: string; message: string; details?: unknown } };
    try {
      parsed = JSON.parse(res.body);
    } catch {
      throw new ApiError(res.status, 'BAD_RESPONSE', `the daemon answered ${res.status} with a body that is not JSON`);
    }
    if (parsed.success) return parsed.data as T;
    const error = parsed.error ?? { code: 'BAD_RESPONSE', message: `status ${res.status}` };
    throw new ApiError(res.status, error.code, error.message, error.details);
  }

  async close(): Promise<void> {
    await this.#dispatcher?.close();
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
