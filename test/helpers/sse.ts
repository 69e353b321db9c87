// An event-stream reader on node:http for tests: GET a stream over a unix socket (or TCP), parse each
// record's `id`, `event` and JSON `data`, and end it from the client side when the test says so.
import { request, type IncomingMessage } from 'node:http';

export interface SseRecord {
  id: string | undefined;
  event: string | undefined;
  data: any;
}

export interface SseStream {
  status: number;
  res: IncomingMessage;
  records: SseRecord[];
  /** The data of every record, in order. */
  events(): any[];
  /** Resolves once `check` holds (polled), rejects after `ms`. */
  until(what: string, check: (records: SseRecord[]) => boolean, ms?: number): Promise<void>;
  /** Whether the server ended the stream. */
  ended(): boolean;
  /** Ends the stream from the client's side (what a dropped connection looks like to the daemon). */
  close(): void;
}

export interface SseTarget {
  socket?: string;
  host?: string;
  port?: number;
  headers?: Record<string, string>;
}

export function openSse(target: SseTarget, path: string): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...(target.socket ? { socketPath: target.socket } : { host: target.host ?? '127.0.0.1', port: target.port }),
        path,
        headers: { host: 'localhost', accept: 'text/event-stream', ...target.headers },
      },
      (res) => {
        const records: SseRecord[] = [];
        let buffer = '';
        let ended = false;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const field = (name: string) => block.split('\n').find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
            const data = field('data');
            if (data !== undefined) records.push({ id: field('id'), event: field('event'), data: JSON.parse(data) });
          }
        });
        res.on('end', () => (ended = true));
        res.on('error', () => (ended = true));
        resolve({
          status: res.statusCode ?? 0,
          res,
          records,
          events: () => records.map((r) => r.data),
          async until(what, check, ms = 5000) {
            const deadline = Date.now() + ms;
            while (!check(records)) {
              if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${records.length} records: ${JSON.stringify(records.slice(-5))}`);
              await new Promise((r) => setTimeout(r, 10));
            }
          },
          ended: () => ended,
          close: () => req.destroy(),
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}
