// The one response envelope: {success, data | error, request_id, duration_ms}.
import type { Context } from 'koa';
import { HearthError, type ErrorDetail } from '../errors.js';

export interface ErrorBody {
  code: string;
  message: string;
  details?: ErrorDetail[];
}

// What Koa's `ctx.type = 'application/json'` sets, without its mime lookup on every answer.
const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Data a route serialized itself (reusing the JSON of parts that rarely change): the envelope embeds `json`
 * as it is. `value` is the same data as an object, for the route's text form.
 */
export class Serialized<T = unknown> {
  constructor(
    readonly value: T,
    readonly json: string,
  ) {}
}

const ms = (start: number): number => Math.round((performance.now() - start) * 1000) / 1000;

export function writeData(ctx: Context, data: unknown, requestId: string, start: number): void {
  // Straight to Node (nothing is sent yet): Koa's set() would normalize a header we know is well formed.
  ctx.res.setHeader('Content-Type', JSON_TYPE);
  // Built as a string around the data: the hot path of every answer. A request id is a UUID (no escaping).
  const json = data instanceof Serialized ? data.json : data === undefined ? 'null' : JSON.stringify(data);
  ctx.body = `{"success":true,"data":${json},"request_id":"${requestId}","duration_ms":${ms(start)}}`;
}

export function writeError(ctx: Context, err: HearthError, requestId: string, start: number): void {
  const error: ErrorBody = { code: err.code, message: err.message };
  if (err.details) error.details = err.details;
  ctx.status = err.status;
  for (const [name, value] of Object.entries(err.headers ?? {})) ctx.set(name, value);
  ctx.set('Content-Type', JSON_TYPE);
  ctx.body = JSON.stringify({ success: false, error, request_id: requestId, duration_ms: ms(start) });
}
