// A daemon with the git plugin on a temp root, in this process, for the test files that compare its
// answers with the real git CLI: git isolated first (the daemon reads its environment when it starts), an
// undici Agent on the daemon's socket, and both closed when the test ends.
import { realpathSync } from 'node:fs';
import { Agent, request } from 'undici';
import { bootDaemon, tempDir, type TestDaemon } from './daemon.js';
import { isolateGit } from './git.js';

export interface Answer {
  status: number;
  json: any;
}

export interface GitDaemon {
  /** The temp HOME git reads its global config from (see isolateGit). */
  home: string;
  /** The daemon's git root (real path: the answers give real paths). */
  root: string;
  d: TestDaemon;
  agent: Agent;
  /** A request with a JSON answer; `body`, when given, sent as JSON. */
  call(method: 'GET' | 'POST', path: string, body?: object): Promise<Answer>;
  /** A GET with the answer as text. */
  get(path: string): Promise<{ status: number; text: string }>;
  /** POST /git/status. */
  status(body: object): Promise<Answer>;
  /** The agent and the daemon closed (once; the teardown calls it too): what a restart does first. */
  close(): Promise<void>;
}

export interface GitDaemonOptions {
  /** A HOME made by isolateGit already (a restart keeps the same global config); default a new one. */
  home?: string;
  /** The git root of a previous daemon; default a new temp dir named by `prefix`. */
  root?: string;
  /** The state dir of a previous daemon, closed first (a restart); default a new one. */
  stateDir?: string;
}

export async function gitDaemon(t: Tap.Test, prefix: string, options: GitDaemonOptions = {}): Promise<GitDaemon> {
  const home = options.home ?? isolateGit();
  const root = options.root ?? realpathSync(tempDir(prefix));
  const d = await bootDaemon({ config: { plugins: { git: { roots: [root] } } }, ...(options.stateDir ? { stateDir: options.stateDir } : {}) });
  // The daemon runs in this process and git runs synchronously: a step of several git commands blocks the
  // event loop past the server's keep-alive timeout, and a request sent on the pooled connection right after
  // would meet its closing. Each request has a connection of its own (`reset: true`).
  const agent = new Agent({ connect: { socketPath: d.socket } });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await agent.close();
      await d.close();
    })());
  t.teardown(close);

  async function call(method: 'GET' | 'POST', path: string, body?: object): Promise<Answer> {
    const res = await request(`http://localhost${path}`, {
      method,
      ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
      dispatcher: agent,
      reset: true,
    });
    return { status: res.statusCode, json: await res.body.json() };
  }

  async function get(path: string): Promise<{ status: number; text: string }> {
    const res = await request(`http://localhost${path}`, { dispatcher: agent, reset: true });
    return { status: res.statusCode, text: await res.body.text() };
  }

  return { home, root, d, agent, call, get, status: (body) => call('POST', '/git/status', body), close };
}
