// Server-sent events read on node:http: the records of a `text/event-stream` answer parsed into events.
import type { IncomingMessage } from 'node:http';

/** An event of GET /events: `id` and `clock` are the same clock `c:<instance>:<n>`. */
export interface HearthEvent {
  id: string;
  clock: string;
  type: string;
  time: string;
  /** Set on `reset`: the daemon could not replay from the clock given (another instance, or too old). */
  is_fresh_instance?: boolean;
  [key: string]: unknown;
}

/** One SSE record. */
export interface SseRecord {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * The records of a stream, as they come; ends when the stream does. Comments (`: heartbeat`) are skipped;
 * a field's single leading space is dropped, `data` lines are joined by newlines (the SSE rules).
 */
export async function* sseRecords(res: IncomingMessage): AsyncGenerator<SseRecord> {
  res.setEncoding('utf8');
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  for await (const chunk of res as AsyncIterable<string>) {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.search(/\r\n|\n|\r/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (data.length > 0) yield { id, event: event || 'message', data: data.join('\n') };
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
  }
}

/** The events of a hearth stream (JSON data). */
export async function* sseEvents(res: IncomingMessage): AsyncGenerator<HearthEvent> {
  for await (const record of sseRecords(res)) {
    const parsed = JSON.parse(record.data) as HearthEvent;
    yield { ...parsed, id: parsed.id ?? record.id, type: parsed.type ?? record.event };
  }
}
