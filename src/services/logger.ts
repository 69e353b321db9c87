// pino: JSON lines to stderr, pretty on a terminal; plugins get children labelled with their name.
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from '../config.js';

export type { Logger };

// Anything that could carry the token is censored before it is written.
const REDACT = ['req.headers.authorization', 'headers.authorization', 'authorization', 'token'];

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACT, censor: '[redacted]' }, base: { pid: process.pid } };
  if (destination) return pino(options, destination);
  if (process.stderr.isTTY) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } } });
  }
  return pino(options, pino.destination({ fd: 2, sync: false }));
}
