// GET /events: the event bus as server-sent events, filtered by type and path prefix.
import type { RouteDefinition } from '../plugin.js';
import type { EventBus } from '../services/events.js';
import { openEventStream } from './sse.js';

export function eventsRoute(bus: EventBus): RouteDefinition {
  return {
    method: 'GET',
    path: '/events',
    summary: 'Server-sent events: file changes and invalidations (and, later, job progress)',
    schema: {
      query: {
        type: 'object',
        additionalProperties: false,
        properties: {
          type: { type: 'string', pattern: '^[a-z_.]+(,[a-z_.]+)*$', description: 'comma-separated event types' },
          path: { type: 'string', minLength: 1, description: 'only events whose path starts with this' },
        },
      },
    },
    handler: ({ query, koa }) => {
      const filter = {
        ...(query.type ? { types: String(query.type).split(',') } : {}),
        ...(query.path ? { pathPrefix: String(query.path) } : {}),
      };
      const stream = openEventStream(koa);
      stream.onEnd(bus.subscribe(filter, (event) => stream.send(event.id, event.type, event), stream.end));
      stream.comment('connected');
    },
  };
}
