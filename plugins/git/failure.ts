// Which errors are the repository's own failure (502 GIT_FAILED, counted by its circuit breaker) rather
// than the caller's or a bug: told apart by class, never by message.
import { HearthError } from '../../src/errors.js';
import { IndexFormatError } from './index-file.js';
import { isoErrors } from './iso.js';
import { GitObjectError } from './odb.js';

/** A file of the repository that could not be read. */
const UNREADABLE = new Set(['ENOENT', 'EACCES', 'EIO']);

/** A damaged index, a missing or damaged object, an unreadable file → GIT_FAILED; anything else as it is. */
export function asGitFailure(err: unknown): unknown {
  if (err instanceof HearthError || !(err instanceof Error)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof GitObjectError || err instanceof IndexFormatError || isoErrors().some((E) => err instanceof E) || (code !== undefined && UNREADABLE.has(code))) {
    return new HearthError('GIT_FAILED', `git operation failed: ${err.message}`, { cause: err });
  }
  return err;
}
