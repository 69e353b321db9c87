// Readiness for systemd's Type=notify. Node has no unix datagram sockets, so the message goes through
// `systemd-notify` (the unit sets NotifyAccess=all: the sender is that child, not the main pid).
import { execFile } from 'node:child_process';

interface WarnLog {
  warn(obj: object, msg: string): void;
}

/**
 * Sends `args` (`--ready`, `STOPPING=1`, ...) to the service manager when NOTIFY_SOCKET says there is one;
 * nothing otherwise. Fire and forget: a missing or failing `systemd-notify` is logged, never fatal (systemd
 * then reports the start as timed out, which says more than a daemon that refuses to run).
 */
export function notifySystemd(env: Record<string, string | undefined>, args: string[], log: WarnLog): void {
  if (!env.NOTIFY_SOCKET) return;
  try {
    const child = execFile('systemd-notify', [`--pid=${process.pid}`, ...args], { env: env as NodeJS.ProcessEnv, timeout: 5000 }, (err) => {
      if (err) log.warn({ err: err.message, args }, 'systemd-notify failed');
    });
    child.unref();
  } catch (err) {
    log.warn({ err: String(err), args }, 'systemd-notify could not be run');
  }
}
