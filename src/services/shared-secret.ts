// The team secret that signs the shared cache tier's entries (cache.shared_secret_file): read at start, and
// refused (the daemon does not start) when it cannot be read or is too short to be a secret.
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';

/** Fewest bytes a secret may have once surrounding whitespace (a trailing newline, say) is trimmed. */
export const MIN_SECRET_BYTES = 16;

export function readSharedSecret(path: string): Buffer {
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(`cannot read cache.shared_secret_file ${path}: ${e.code ?? e.message}`, [{ path: '/cache/shared_secret_file', message: `unreadable (${e.code ?? e.message})` }], { cause: err });
  }
  const secret = Buffer.from(text.toString('utf8').trim(), 'utf8');
  if (secret.length < MIN_SECRET_BYTES) {
    throw new ConfigError(
      `cache.shared_secret_file ${path} holds ${secret.length} bytes; a team secret needs at least ${MIN_SECRET_BYTES} (e.g. openssl rand -hex 32 > ${path})`,
      [{ path: '/cache/shared_secret_file', message: `shorter than ${MIN_SECRET_BYTES} bytes` }],
    );
  }
  return secret;
}
