// lazy(loader): a value loaded on first use. Concurrent callers share one load; a failed load is not kept
// (the next call tries again); reset() drops the value so the next call loads anew.

export interface Lazy<T> {
  /** The value, loading it if needed. */
  (): Promise<T>;
  /** Same as calling it. */
  get(): Promise<T>;
  /** Forgets the value (and a load in progress: its callers still get its result, later callers load again). */
  reset(): void;
  /** True once a load has succeeded and no reset came after it. */
  readonly loaded: boolean;
  /** The loaded value without loading, or undefined. */
  peek(): T | undefined;
}

export function lazy<T>(loader: () => T | Promise<T>): Lazy<T> {
  let loaded: { value: T } | undefined;
  let loading: Promise<T> | undefined;
  let generation = 0;

  const get = (): Promise<T> => {
    if (loaded) return Promise.resolve(loaded.value);
    if (loading) return loading;
    const started = generation;
    const promise = (async () => loader())();
    loading = promise;
    // Registered before any caller can await `promise`, so the value is kept before they resume.
    promise.then(
      (value) => {
        if (generation === started) loaded = { value };
        if (loading === promise) loading = undefined;
      },
      () => {
        if (loading === promise) loading = undefined;
      },
    );
    return promise;
  };

  // Object.assign would copy the getter's value once: define it as an accessor.
  return Object.defineProperties(get, {
    get: { value: get },
    reset: {
      value: (): void => {
        generation++;
        loaded = undefined;
        loading = undefined;
      },
    },
    loaded: { get: (): boolean => loaded !== undefined },
    peek: { value: (): T | undefined => loaded?.value },
  }) as Lazy<T>;
}
