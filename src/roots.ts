// Containment in the configured roots: every path is resolved through symlinks before it is checked, so
// `..`, absolute paths elsewhere and links that point out are all refused the same way.
import { realpathSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { HearthError } from './errors.js';

export class Roots {
  readonly dirs: string[];

  constructor(roots: readonly string[]) {
    this.dirs = roots.map((r) => realpathSync(resolve(r)));
  }

  contains(real: string): boolean {
    return this.dirs.some((root) => real === root || real.startsWith(root.endsWith(sep) ? root : root + sep));
  }

  #outside(input: string): HearthError {
    return new HearthError('PATH_OUTSIDE_ROOTS', `${JSON.stringify(input)} is outside the configured roots`);
  }

  /** `input` made absolute (relative to the first root), not resolved through links: check it with resolve() first. */
  absolute(input: string): string {
    return isAbsolute(input) ? resolve(input) : resolve(this.dirs[0]!, input);
  }

  /**
   * The real path of `input` (absolute, or relative to the first root). A path that does not exist is
   * checked through its nearest existing ancestor: outside the roots → 403, inside → 404 (or, with
   * `forCreate`, the path to create when its parent directory exists).
   */
  async resolve(input: string, options: { forCreate?: boolean } = {}): Promise<string> {
    if (input.includes('\0')) throw this.#outside(input);
    const wanted = this.absolute(input);
    try {
      const real = await realpath(wanted);
      if (!this.contains(real)) throw this.#outside(input);
      return real;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A name no filesystem can hold, or a loop of links: the client's path, not the daemon, is at fault.
      if (code === 'ENAMETOOLONG' || code === 'ELOOP') {
        throw new HearthError('VALIDATION_FAILED', code === 'ELOOP' ? 'the path has too many levels of symbolic links' : 'the path (or one of its names) is too long');
      }
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
    // Walk up to the nearest ancestor that exists: that is where a link could lead out.
    let missing = [basename(wanted)];
    let dir = dirname(wanted);
    for (;;) {
      try {
        const realDir = await realpath(dir);
        const real = join(realDir, ...missing);
        if (!this.contains(real)) throw this.#outside(input);
        if (options.forCreate && missing.length === 1) return real;
        throw new HearthError('NOT_FOUND', `${JSON.stringify(input)} does not exist`);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
        if (dirname(dir) === dir) throw this.#outside(input);
        missing = [basename(dir), ...missing];
        dir = dirname(dir);
      }
    }
  }
}
