// The client of the commands that talk to the daemon: sends at once, and starts the daemon when none runs.
import { Client, DaemonNotRunningError, type RawResponse } from '../client.js';
import { locateDaemon, type ConfigFlags } from '../config-source.js';
import { readRuntimeInfo } from '../state.js';
import { buildMismatch, SPAWN_TIMEOUT_MS, startInBackground, type Health, type Where } from './connect.js';

/**
 * The client of commands that need the daemon. It sends at once: when nothing listens (the connection is
 * refused, so nothing was sent) it starts the daemon in the background, unless `spawn` is false
 * (`--no-spawn`), and sends again. A daemon of another build is reported on stderr (the command still runs):
 * the build is read from the daemon's runtime file, not asked in a round trip of its own.
 */
export class CliClient extends Client {
  #flags: ConfigFlags;
  #where: Where;
  #spawn: boolean;
  #checked = false;

  constructor(flags: ConfigFlags, spawnIfNeeded: boolean, where: Where = locateDaemon(flags)) {
    super({ socket: where.socket });
    this.#flags = flags;
    this.#where = where;
    this.#spawn = spawnIfNeeded;
  }

  override async raw(method: string, path: string, body?: unknown): Promise<RawResponse> {
    let res: RawResponse;
    try {
      res = await super.raw(method, path, body);
    } catch (err) {
      if (!(err instanceof DaemonNotRunningError) || !err.neverSent || !this.#spawn) throw err;
      const health = await startInBackground(this.#flags, this.#where, SPAWN_TIMEOUT_MS, true);
      this.#report(health);
      res = await super.raw(method, path, body);
    }
    if (!this.#checked) {
      const info = readRuntimeInfo(this.#where.stateDir);
      if (info?.socket === this.#where.socket) this.#report(info);
    }
    return res;
  }

  #report(daemon: Pick<Health, 'build' | 'version'>): void {
    this.#checked = true;
    const mismatch = buildMismatch(daemon);
    if (mismatch) process.stderr.write(mismatch);
  }
}
