// Reads a JSON request body: only application/json, within the size limit, valid UTF-8 and valid JSON.
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { HearthError } from '../errors.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

function hasBody(ctx: Context): boolean {
  const length = ctx.get('content-length');
  return (length !== '' && length !== '0') || ctx.get('transfer-encoding') !== '';
}

function isJson(ctx: Context): boolean {
  const type = ctx.get('content-type').toLowerCase().split(';');
  if (type[0]!.trim() !== 'application/json') return false;
  const charset = type.slice(1).map((p) => p.trim()).find((p) => p.startsWith('charset='));
  return charset === undefined || charset.slice(8).replace(/"/g, '') === 'utf-8';
}

/** The parsed body, or `undefined` when the request has none. */
export async function readJsonBody(ctx: Context, limit: number): Promise<unknown> {
  if (!hasBody(ctx)) return undefined;
  if (!isJson(ctx)) {
    throw new HearthError('UNSUPPORTED_MEDIA_TYPE', `The request body must be application/json (UTF-8), not "${ctx.get('content-type') || 'none'}"`);
  }
  let raw: Buffer;
  try {
    const length = ctx.get('content-length');
    raw = await getRawBody(ctx.req, { limit, length: length === '' ? undefined : length });
  } catch (err) {
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') {
      throw new HearthError('PAYLOAD_TOO_LARGE', `The request body is larger than ${limit} bytes`);
    }
    throw new HearthError('BAD_JSON', `The request body could not be read: ${(err as Error).message}`);
  }
  let text: string;
  try {
    text = decoder.decode(raw);
  } catch {
    throw new HearthError('BAD_JSON', 'The request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HearthError('BAD_JSON', `The request body is not valid JSON: ${(err as Error).message}`);
  }
}
