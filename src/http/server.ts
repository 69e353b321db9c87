// Listens on the unix socket (mode 0600) and on TCP, and closes both gracefully within a time limit.
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type Koa from 'koa';
import { ConfigError } from '../errors.js';
import { VIA_SOCKET } from './app.js';

export interface Listening {
  socket: string;
  host: string;
  port: number;
  close(timeoutMs: number): Promise<void>;
}

function listen(server: Server, ...args: [string] | [number, string]): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(...(args as [number, string]), () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A TCP port that cannot be had, said so a user can act on it (another daemon there, or a port not allowed). */
function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${host}:${port}`;
  if (code === 'EADDRINUSE') {
    return new ConfigError(`${where} is in use (another hearth with its own state dir, or another program); choose another with --port or server.port (0 picks a free one)`, [], { cause: err });
  }
  if (code === 'EACCES') return new ConfigError(`${where} may not be listened on by this user (ports below 1024 need privileges); choose another with --port or server.port`, [], { cause: err });
  if (code === 'EADDRNOTAVAIL') return new ConfigError(`${host} is not an address of this machine; choose another with --host or server.host`, [], { cause: err });
  return err;
}

/** The connection of a response, kept on it: by 'finish' Node has already detached it. */
const CONNECTION = Symbol('hearth.connection');
type Tracked = ServerResponse & { [CONNECTION]?: Socket };

/**
 * Tracks connections so a close can drain them: a connection with no request in flight is closed at once
 * (including one that never sent a request, which Node does not count as idle), and one with a request in
 * flight is closed as soon as its answer is written, with `Connection: close` on that answer.
 * `track(req, res)` is called by the server's own request handler (one listener, no closure per request).
 */
function drainable(server: Server): { track(req: IncomingMessage, res: ServerResponse): void; close(timeoutMs: number): Promise<void> } {
  const inFlight = new Map<Socket, Set<ServerResponse>>();
  let closing = false;
  server.on('connection', (socket: Socket) => {
    inFlight.set(socket, new Set());
    socket.once('close', () => inFlight.delete(socket));
  });
  function finished(this: Tracked): void {
    const socket = this[CONNECTION]!;
    const pending = inFlight.get(socket);
    if (!pending) return;
    pending.delete(this);
    if (closing && pending.size === 0) socket.end();
  }
  return {
    track(req, res) {
      const pending = inFlight.get(req.socket);
      if (!pending) return;
      pending.add(res);
      (res as Tracked)[CONNECTION] = req.socket;
      if (closing) res.shouldKeepAlive = false;
      // 'finish' comes once per response: a plain listener needs no once() wrapper.
      res.on('finish', finished);
    },
    close(timeoutMs) {
      return new Promise((resolve) => {
        if (!server.listening) return resolve();
        closing = true;
        const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        for (const [socket, pending] of inFlight) {
          if (pending.size === 0) socket.destroy();
          else for (const res of pending) if (!res.headersSent) res.shouldKeepAlive = false;
        }
      });
    },
  };
}

/**
 * What Node's HTTP parser refuses (an unknown method, a malformed request line or header, headers past the
 * size limit) never reaches Koa; Node would answer with a bare 400 or 431. It gets the envelope instead, so
 * every error a client sees has a code. Anything else (a reset, a timeout) just ends the connection.
 */
export function answerParseErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || !err.code?.startsWith('HPE_')) {
      socket.destroy();
      return;
    }
    const requestId = randomUUID();
    const reason = err.code === 'HPE_HEADER_OVERFLOW' ? 'the request headers are too large' : String((err as { reason?: string }).reason ?? err.message);
    const body = JSON.stringify({ success: false, error: { code: 'BAD_REQUEST', message: `The request is not valid HTTP: ${reason}` }, request_id: requestId, duration_ms: 0 });
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}

export async function listenBoth(app: Koa, socketPath: string, host: string, port: number): Promise<Listening> {
  const callback = app.callback();
  // A request without Host is answered by our guard (403 HOST_NOT_ALLOWED on TCP), not by Node's bare 400.
  const options = { requireHostHeader: false };
  const unix = createServer(options);
  const tcp = createServer(options);
  const unixCloser = drainable(unix);
  const tcpCloser = drainable(tcp);
  const closers = [unixCloser, tcpCloser];
  unix.on('request', (req: IncomingMessage, res: ServerResponse) => {
    (req as IncomingMessage & { [VIA_SOCKET]?: boolean })[VIA_SOCKET] = true;
    unixCloser.track(req, res);
    void callback(req, res);
  });
  tcp.on('request', (req: IncomingMessage, res: ServerResponse) => {
    tcpCloser.track(req, res);
    void callback(req, res);
  });
  answerParseErrors(unix);
  answerParseErrors(tcp);
  // The socket's file mode is its guard: nobody but the owner may connect.
  const oldMask = process.umask(0o177);
  try {
    await listen(unix, socketPath);
  } finally {
    process.umask(oldMask);
  }
  chmodSync(socketPath, 0o600);
  try {
    await listen(tcp, port, host);
  } catch (err) {
    await unixCloser.close(0);
    throw listenError(err, host, port);
  }
  return {
    socket: socketPath,
    host,
    port: (tcp.address() as AddressInfo).port,
    async close(timeoutMs) {
      await Promise.all(closers.map((c) => c.close(timeoutMs)));
      rmSync(socketPath, { force: true });
    },
  };
}
