// isomorphic-git, imported on first use: ~120 ms of start-up and ~3 MB that status (on hearth's own index,
// ref and object readers) never needs; only branch writes, checkout and the like load it.
type Iso = typeof import('isomorphic-git').default;

let loaded: Iso | null = null;

export async function iso(): Promise<Iso> {
  loaded ??= (await import('isomorphic-git')).default;
  return loaded;
}

/** Its error classes, once it is loaded (none of its errors can exist before). */
export function isoErrors(): Array<abstract new (...args: never[]) => Error> {
  return loaded ? (Object.values(loaded.Errors) as Array<abstract new (...args: never[]) => Error>) : [];
}
