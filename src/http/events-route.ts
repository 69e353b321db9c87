// GET /events: the event bus as server-sent events, filtered by type and path prefix.
import { PassThrough } from 'node:stream';
import type { RouteDefinition } from '../plugin.js';
import type { EventBus } from '../services/events.js';

const HEARTBEAT_MS = 15_000;
/** A client that reads slower than events come may fall this far behind before it is cut off. */
const MAX_BUFFERED = 1024 * 1024;

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
      const stream = new PassThrough();
      const filter = {
        ...(query.type ? { types: String(query.type).split(',') } : {}),
        ...(query.path ? { pathPrefix: String(query.path) } : {}),
      };
      const end = () => {
        clearInterval(heartbeat);
        unsubscribe();
        stream.end();
      };
      const unsubscribe = bus.subscribe(
        filter,
        (event) => {
          if (stream.writableLength > MAX_BUFFERED) return end();
          stream.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
        },
        end,
      );
      const heartbeat = setInterval(() => stream.write(': heartbeat\n\n'), HEARTBEAT_MS);
      heartbeat.unref();
      koa.req.once('close', end);
      koa.set('Cache-Control', 'no-store');
      koa.set('X-Accel-Buffering', 'no');
      koa.type = 'text/event-stream';
      koa.status = 200;
      stream.write(': connected\n\n');
      koa.body = stream;
    },
  };
}
