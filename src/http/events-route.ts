// GET /events: the event bus as server-sent events, filtered by type, path prefix and the scopes plugins
// add (git's `repo`). A client that reconnects with `Last-Event-ID` (or `?since=<clock>`) is first given
// the events it missed from the bus's ring, then the live stream: the replay and the subscription happen
// in one tick, so nothing is missed and nothing comes twice. A clock the bus cannot answer for gets a
// first `reset` event (`is_fresh_instance: true`): the client re-queries what it shows.
import { CLOCK_PATTERN } from '../clock.js';
import type { RouteDefinition } from '../plugin.js';
import { matches, type EventBus, type EventFilter, type HearthEvent } from '../services/events.js';
import type { Session } from './sessions.js';
import { openEventStream } from './sse.js';

/** Each event as JSON, made once however many streams send it. */
const serialized = new WeakMap<HearthEvent, string>();
function json(event: HearthEvent): string {
  let text = serialized.get(event);
  if (text === undefined) serialized.set(event, (text = JSON.stringify(event)));
  return text;
}

/** Made after the plugins' setup, so that the scopes they added are in the schema. */
export function eventsRoute(bus: EventBus): RouteDefinition {
  const scopes = [...bus.scopes];
  return {
    method: 'GET',
    path: '/events',
    produces: 'text/event-stream',
    summary:
      'Server-sent events (file changes, invalidations, job progress, git status and HEAD changes); each id is a clock c:<instance>:<n>, ' +
      'and Last-Event-ID or since replays what came after it (or a first `reset` event when it cannot)',
    schema: {
      query: {
        type: 'object',
        additionalProperties: false,
        properties: {
          type: { type: 'string', pattern: '^[a-z_.]+(,[a-z_.]+)*$', description: 'comma-separated event types' },
          path: { type: 'string', minLength: 1, description: 'only events whose path starts with this' },
          since: { type: 'string', pattern: CLOCK_PATTERN, description: 'a clock: replay the events after it first (Last-Event-ID, when sent, wins)' },
          ...Object.fromEntries(scopes.map(([name, scope]) => [name, scope.schema])),
        },
      },
    },
    handler: async ({ query, koa }) => {
      const opened: Array<{ match(event: HearthEvent): boolean; close(): void }> = [];
      try {
        for (const [name, scope] of scopes) if (query[name] !== undefined) opened.push(await scope.open(String(query[name])));
      } catch (err) {
        for (const o of opened) o.close();
        throw err;
      }
      const filter: EventFilter = {
        ...(query.type ? { types: String(query.type).split(',') } : {}),
        ...(query.path ? { pathPrefix: String(query.path) } : {}),
        ...(opened.length ? { match: opened.map((o) => (event: HearthEvent) => o.match(event)) } : {}),
      };
      // From here to the subscription nothing awaits: no event can fall between the replay and the live stream.
      const since = koa.get('last-event-id') || (query.since as string | undefined);
      const missed = since ? bus.since(since) : [];
      const stream = openEventStream(koa, { onCutOff: () => bus.noteCutOff() });
      // A stream a browser session opened ends with the session (logout).
      const session = koa.state.session as Session | undefined;
      if (session) stream.onEnd(session.onEnd(stream.end));
      for (const o of opened) stream.onEnd(() => o.close());
      stream.onEnd(bus.subscribe(filter, (event) => stream.sendJson(event.id, event.type, json(event)), stream.end));
      stream.comment('connected');
      if (missed === null) {
        const clock = bus.clock;
        stream.send(clock, 'reset', { id: clock, clock, type: 'reset', time: new Date().toISOString(), is_fresh_instance: true });
      } else {
        for (const event of missed) if (matches(filter, event)) stream.sendJson(event.id, event.type, json(event));
      }
    },
  };
}
