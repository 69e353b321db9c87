// Server-sent events on a Koa response: the headers, `id`/`event`/`data` records, comment lines, a
// heartbeat, and a cutoff for a client that stops reading.
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';

const HEARTBEAT_MS = 15_000;
/** A client that reads slower than events come may fall this far behind before it is cut off. */
export const MAX_BUFFERED = 1024 * 1024;

export interface EventStream {
  /** Writes one event as `id`, `event` and JSON `data` lines. */
  send(id: string, type: string, data: unknown): void;
  /** The same with `data` already as JSON (one event to many streams is serialized once). */
  sendJson(id: string, type: string, json: string): void;
  /** Writes a comment line (`: text`), which clients ignore. */
  comment(text: string): void;
  /** Ends the stream; later writes are dropped. */
  end(): void;
  /** Runs `fn` once the stream ends (at once if it has): to unsubscribe its source. */
  onEnd(fn: () => void): void;
}

/**
 * Answers `koa` with an event stream. It ends by `end()`, by the client going away, or when the client
 * falls more than MAX_BUFFERED bytes behind (rather than buffer without bound). While it is open, a
 * `: heartbeat` comment goes out every 15 s.
 */
export function openEventStream(koa: Context, options: { onCutOff?: () => void } = {}): EventStream {
  const stream = new PassThrough();
  const cleanups: Array<() => void> = [];
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    koa.req.off('close', end);
    stream.end();
    for (const fn of cleanups) fn();
  };
  const write = (text: string) => {
    if (ended) return;
    if (stream.writableLength > MAX_BUFFERED) {
      options.onCutOff?.();
      return end();
    }
    stream.write(text);
  };
  const heartbeat = setInterval(() => write(': heartbeat\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  koa.req.once('close', end);
  koa.set('Cache-Control', 'no-store');
  koa.set('X-Accel-Buffering', 'no');
  koa.type = 'text/event-stream';
  koa.status = 200;
  koa.body = stream;
  return {
    send: (id, type, data) => write(`id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`),
    sendJson: (id, type, json) => write(`id: ${id}\nevent: ${type}\ndata: ${json}\n\n`),
    comment: (text) => write(`: ${text}\n\n`),
    end,
    onEnd(fn) {
      if (ended) fn();
      else cleanups.push(fn);
    },
  };
}
