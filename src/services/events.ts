// The in-process event bus: services publish, subscribers (the /events stream, plugins) filter by type
// and path prefix. Publishing never waits for a subscriber.
export interface HearthEvent {
  id: number;
  type: string;
  time: string;
  [key: string]: unknown;
}

export interface EventFilter {
  types?: string[];
  /** Only events whose `path` starts with this. */
  pathPrefix?: string;
}

type Listener = (event: HearthEvent) => void;

export class EventBus {
  #next = 1;
  #subscribers = new Set<{ filter: EventFilter; fn: Listener }>();
  #closers = new Set<() => void>();

  publish(type: string, data: Record<string, unknown> = {}): HearthEvent {
    const event: HearthEvent = { ...data, id: this.#next++, type, time: new Date().toISOString() };
    for (const sub of this.#subscribers) {
      const { types, pathPrefix } = sub.filter;
      if (types && !types.includes(type)) continue;
      if (pathPrefix !== undefined && !(typeof event.path === 'string' && event.path.startsWith(pathPrefix))) continue;
      sub.fn(event);
    }
    return event;
  }

  /** Returns the unsubscribe function. `onClose` runs when the bus closes (a stream ends itself). */
  subscribe(filter: EventFilter, fn: Listener, onClose?: () => void): () => void {
    const sub = { filter, fn };
    this.#subscribers.add(sub);
    if (onClose) this.#closers.add(onClose);
    return () => {
      this.#subscribers.delete(sub);
      if (onClose) this.#closers.delete(onClose);
    };
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** Ends every subscription (open streams end, so a graceful close is not held open by them). */
  close(): void {
    for (const close of [...this.#closers]) close();
    this.#subscribers.clear();
    this.#closers.clear();
  }
}
