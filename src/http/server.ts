// Listens on the unix socket (mode 0600) and on TCP, and closes both gracefully within a time limit.
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
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

function closeServer(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    // Idle keep-alive connections would hold close() open; in-flight requests finish first.
    server.closeIdleConnections();
  });
}

export async function listenBoth(app: Koa, socketPath: string, host: string, port: number): Promise<Listening> {
  const callback = app.callback();
  // A request without Host is answered by our guard (403 HOST_NOT_ALLOWED on TCP), not by Node's bare 400.
  const options = { requireHostHeader: false };
  const unix = createServer(options, (req: IncomingMessage, res: ServerResponse) => {
    (req as IncomingMessage & { [VIA_SOCKET]?: boolean })[VIA_SOCKET] = true;
    void callback(req, res);
  });
  const tcp = createServer(options, callback);
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
    await closeServer(unix, 0);
    throw err;
  }
  return {
    socket: socketPath,
    host,
    port: (tcp.address() as AddressInfo).port,
    async close(timeoutMs) {
      await Promise.all([closeServer(unix, timeoutMs), closeServer(tcp, timeoutMs)]);
      rmSync(socketPath, { force: true });
    },
  };
}
