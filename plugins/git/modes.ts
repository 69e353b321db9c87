// git's file modes (the type in the high bits, as in an index entry or a tree item), in one place.
export const TYPE_MASK = 0o170000;
export const REGULAR = 0o100000;
export const SYMLINK = 0o120000;
export const GITLINK = 0o160000;

export function sameType(a: number, b: number): boolean {
  return (a & TYPE_MASK) === (b & TYPE_MASK);
}

export const isRegular = (mode: number): boolean => (mode & TYPE_MASK) === REGULAR;

/** A mode as porcelain v2 prints it. */
export const octal = (mode: number): string => mode.toString(8).padStart(6, '0');
