// The client of the commands that talk to the daemon: the client library's, which sends at once and starts
// the daemon when none runs.
import type { RawResponse } from '../client.js';
import { HearthClient } from '../client/index.js';
import { locateDaemon, type ConfigFlags } from '../config-source.js';
import { readRuntimeInfo } from '../state.js';
import { buildMismatch, SPAWN_TIMEOUT_MS, startInBackground, type Health, type Where } from './connect.js';

/**
 * The client of commands that need the daemon, with the typed methods of the client library. It sends at
 * once: when nothing listens (the connection is refused, so nothing was sent) it starts the daemon in the
 * background, unless `spawn` is false (`--no-spawn`), and sends again. A daemon of another build is
 * reported on stderr (the command still runs): the build is read from the daemon's runtime file, not asked
 * in a round trip of its own.
 */
export class CliClient extends HearthClient {
  #where: Where;
  #checked = false;

  constructor(flags: ConfigFlags, spawnIfNeeded: boolean, where: Where = locateDaemon(flags)) {
    super({
      socket: where.socket,
      ...(spawnIfNeeded ? { onNotRunning: async () => this.#report(await startInBackground(flags, where, SPAWN_TIMEOUT_MS, true)) } : {}),
    });
    this.#where = where;
  }

  override async raw(method: string, path: string, body?: unknown): Promise<RawResponse> {
    const res = await super.raw(method, path, body);
    this.#checkBuild();
    return res;
  }

  override async openStream(path: string, headers?: Record<string, string>, start = true) {
    const res = await super.openStream(path, headers, start);
    this.#checkBuild();
    return res;
  }

  #checkBuild(): void {
    if (this.#checked) return;
    const info = readRuntimeInfo(this.#where.stateDir);
    if (info?.socket === this.#where.socket) this.#report(info);
  }

  #report(daemon: Pick<Health, 'build' | 'version'>): void {
    this.#checked = true;
    const mismatch = buildMismatch(daemon);
    if (mismatch) process.stderr.write(mismatch);
  }
}
