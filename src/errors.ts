// The one error catalogue: every error a client can see has a code, a status and a message.

export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'The request is not valid HTTP' },
  BAD_JSON: { status: 400, message: 'The request body is not valid JSON' },
  VALIDATION_FAILED: { status: 400, message: 'The request is not valid' },
  NOT_A_FILE: { status: 400, message: 'The path is not a regular file' },
  UNAUTHORIZED: { status: 401, message: 'A valid bearer token is required' },
  HOST_NOT_ALLOWED: { status: 403, message: 'The Host header is not allowed' },
  ORIGIN_NOT_ALLOWED: { status: 403, message: 'Cross-origin requests are not allowed' },
  SESSION_NOT_ALLOWED: { status: 403, message: 'A dashboard session may not call this route' },
  CSRF_FAILED: { status: 403, message: 'The CSRF header of the session is missing or wrong' },
  PATH_OUTSIDE_ROOTS: { status: 403, message: 'The path is outside the configured roots' },
  NOT_FOUND: { status: 404, message: 'Not found' },
  NOT_A_REPOSITORY: { status: 404, message: 'The path is not inside a git repository' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed' },
  CONFLICT: { status: 409, message: 'Conflict' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body must be application/json' },
  QUEUE_FULL: { status: 429, message: 'The work queue is full' },
  INTERNAL: { status: 500, message: 'Internal error' },
  GIT_FAILED: { status: 502, message: 'The repository could not be read or written' },
  CIRCUIT_OPEN: { status: 503, message: 'The circuit breaker is open' },
  UNAVAILABLE: { status: 503, message: 'Not available now' },
  TIMEOUT: { status: 504, message: 'The operation timed out' },
  NO_SPACE: { status: 507, message: 'No space left on the device' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** Per-item codes used inside a batch answer's `errors`, never as a response's own code. */
export const ITEM_ERRORS = ['ITEM_INVALID', 'ITEM_FAILED'] as const;

export interface ErrorDetail {
  path?: string;
  message: string;
  [key: string]: unknown;
}

export interface HearthErrorOptions {
  details?: ErrorDetail[];
  headers?: Record<string, string>;
  cause?: unknown;
}

/** An error meant for the client: its message is sent as is. */
export class HearthError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetail[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message?: string, options: HearthErrorOptions = {}) {
    super(message ?? ERRORS[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HearthError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = options.details;
    this.headers = options.headers;
  }

  /** 4xx: the caller's fault. Circuit breakers never count these. */
  get isClientError(): boolean {
    return this.status < 500;
  }
}

export function isHearthError(err: unknown): err is HearthError {
  return err instanceof HearthError;
}

/** A startup or configuration problem: the daemon refuses to start and the CLI exits 2. */
export class ConfigError extends Error {
  readonly details: ErrorDetail[];
  constructor(message: string, details: ErrorDetail[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
    this.details = details;
  }
}

/** Wraps what a plugin threw with its name and the hook it was in, keeping the original as cause. */
export class PluginError extends Error {
  readonly plugin: string;
  readonly phase: string;
  constructor(plugin: string, phase: string, cause: unknown) {
    super(`plugin ${plugin}, ${phase}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'PluginError';
    this.plugin = plugin;
    this.phase = phase;
  }
}
