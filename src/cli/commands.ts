// Core commands: daemon, start, stop, restart, status, config print|check, cache clear, events, wait. What only the daemon
// or `hearth config` needs (the validating config, the registry, the daemon itself) is imported inside the
// command that runs it, so status, stop and cache clear load no more than a client.
import { dirname } from 'node:path';
import { locateDaemon, numberAt, readConfigDocument, stringAt, type ConfigFlags, type DaemonLocation, type PluginEntry } from '../config-source.js';
import { ConfigError } from '../errors.js';
import { readRuntimeInfo, stateFiles } from '../state.js';
import { buildMismatch, SPAWN_TIMEOUT_MS, startInBackground, stopDaemon, type Health } from './connect.js';
import { EXIT } from './exit.js';
import { defineCommands, type CommandContext, type OptionSpec } from './spec.js';

const LISTEN: Record<string, OptionSpec> = {
  host: { type: 'string', value: 'host', description: 'TCP address (default 127.0.0.1)' },
  port: { type: 'string', value: 'port', description: 'TCP port (default 7433)' },
};
const TIMEOUT: OptionSpec = { type: 'string', value: 'ms', description: 'how long to wait for it to answer', default: String(SPAWN_TIMEOUT_MS) };

/** The global flags with the listen flags of daemon/start/restart. */
function listenFlags(ctx: CommandContext): ConfigFlags {
  const flags: ConfigFlags = { ...ctx.flags };
  if (typeof ctx.options.host === 'string') flags.host = ctx.options.host;
  if (typeof ctx.options.port === 'string') flags.port = ctx.options.port;
  return flags;
}

function describe(health: Health, where: DaemonLocation): string {
  const info = readRuntimeInfo(where.stateDir);
  const host = info?.host ?? stringAt(where.doc, ['server', 'host']) ?? '127.0.0.1';
  const port = info?.port ?? numberAt(where.doc, ['server', 'port'], 7433);
  const lines = [
    `hearth ${health.version} is running${info ? ` (pid ${info.pid})` : ''}: ${health.status}`,
    `  build   ${health.build ?? '(none)'}`,
    `  socket  ${info?.socket ?? where.socket}`,
    `  tcp     http://${host}:${port} (bearer token in ${stateFiles(where.stateDir).token})`,
    `  uptime  ${health.uptime_seconds} s`,
    `  plugins ${health.plugins.map((p) => (p.state === 'ready' ? p.name : `${p.name} (${p.state})`)).join(', ') || '(none)'}`,
    ...health.reasons.map((r) => `  reason  ${r}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** A config that does not validate is refused here, with its JSON paths, before anything is started. */
async function validatedLocation(flags: ConfigFlags): Promise<DaemonLocation> {
  const { loadConfig } = await import('../config.js');
  loadConfig(flags);
  return locateDaemon(flags);
}

function timeoutOf(ctx: CommandContext): number {
  const ms = Number(ctx.options.timeout);
  return Number.isFinite(ms) && ms > 0 ? ms : SPAWN_TIMEOUT_MS;
}

async function runDaemon(ctx: CommandContext): Promise<number> {
  const { startDaemon } = await import('../daemon.js');
  // Signals are handled from the first moment: one that arrives while starting closes right after.
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  let stopRequested = false;
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => (finished = resolve));
  const stop = (signal: NodeJS.Signals) => {
    if (stopRequested) return;
    stopRequested = true;
    if (!daemon) return;
    daemon.log.info({ signal }, 'signal received');
    const limit = daemon.config.server.close_timeout_ms + 2000;
    // Every step of close is bounded; this is the last resort if something is not.
    setTimeout(() => {
      daemon?.log.error('close did not finish in time; exiting');
      process.exit(EXIT.failure);
    }, limit).unref();
    void daemon.close().then(finished);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => void daemon?.reload());
  daemon = await startDaemon({ flags: listenFlags(ctx), onIdleExit: () => finished() });
  if (stopRequested) {
    stopRequested = false;
    stop('SIGTERM');
  }
  await done;
  return EXIT.ok;
}

async function configCheck(ctx: CommandContext): Promise<number> {
  const file = ctx.args[0] as string;
  const { ENV_VARIABLES, checkSharedCache, configDocumentErrors } = await import('../config.js');
  const { pluginProblems } = await import('../registry.js');
  const { describeDetails } = await import('../validation.js');
  // The file alone: variables that would override it are not part of what is checked.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !ENV_VARIABLES.includes(k)));
  let fileDoc: unknown;
  const read = readConfigDocument({ config: file }, env, (d) => (fileDoc = structuredClone(d)));
  // Every problem at once: the core's keys, then each plugin's options (relative modules: from the file's dir).
  const problems: string[] = [];
  const core = configDocumentErrors(fileDoc);
  if (core.length > 0) problems.push(`invalid config (${file}): ${describeDetails(core)}`);
  else {
    // What the daemon checks beyond the schema: the shared tier's target and its secret file (read).
    try {
      checkSharedCache((read.doc as { cache?: object }).cache ?? {});
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(err.message);
    }
  }
  const plugins = read.doc.plugins;
  if (typeof plugins === 'object' && plugins !== null && !Array.isArray(plugins)) {
    const entries = Object.fromEntries(Object.entries(plugins).filter(([, v]) => typeof v === 'boolean' || (typeof v === 'object' && v !== null)));
    for (const problem of await pluginProblems(entries as Record<string, PluginEntry>, dirname(read.file!))) problems.push(problem.message);
  }
  if (problems.length === 0) {
    process.stdout.write(`${file}: valid\n`);
    return EXIT.ok;
  }
  process.stderr.write(`hearth: ${file} is not valid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  ${p}\n`).join('')}`);
  return EXIT.usage;
}

export default defineCommands([
  {
    name: 'daemon',
    local: true,
    summary: 'run the daemon in the foreground (what systemd and launchd want)',
    options: LISTEN,
    run: runDaemon,
  },
  {
    name: 'start',
    local: true,
    summary: 'start the daemon in the background; returns once it answers',
    options: { ...LISTEN, timeout: TIMEOUT },
    async run(ctx) {
      const flags = listenFlags(ctx);
      const where = await validatedLocation(flags);
      process.stdout.write(describe(await startInBackground(flags, where, timeoutOf(ctx)), where));
    },
  },
  {
    name: 'stop',
    local: true,
    summary: 'stop the daemon gracefully (SIGTERM) and wait for it to exit',
    async run(ctx) {
      const pid = await stopDaemon(locateDaemon(ctx.flags));
      process.stdout.write(pid === undefined ? 'hearth is not running\n' : `hearth stopped (pid ${pid})\n`);
    },
  },
  {
    name: 'restart',
    local: true,
    summary: 'stop the daemon of this state dir (if it runs) and start a new one',
    options: { ...LISTEN, timeout: { ...TIMEOUT, description: 'how long to wait for the new one to answer' } },
    async run(ctx) {
      const flags = listenFlags(ctx);
      const where = await validatedLocation(flags);
      const pid = await stopDaemon(where);
      if (pid !== undefined) process.stdout.write(`hearth stopped (pid ${pid})\n`);
      process.stdout.write(describe(await startInBackground(flags, where, timeoutOf(ctx)), where));
    },
  },
  {
    name: 'status',
    local: true,
    summary: 'is the daemon running, and how is it (exit 3 when not running)',
    options: { json: { type: 'boolean', description: 'print the health answer as JSON' } },
    async run(ctx) {
      const where = locateDaemon(ctx.flags);
      const { Client, DaemonNotRunningError } = await import('../client.js');
      const client = new Client({ socket: where.socket, timeoutMs: 5000 });
      try {
        const health = await client.call<Health>('GET', '/health');
        process.stdout.write(ctx.options.json ? `${JSON.stringify(health, null, 2)}\n` : describe(health, where));
        const mismatch = buildMismatch(health);
        if (mismatch) process.stderr.write(mismatch);
        return EXIT.ok;
      } catch (err) {
        if (!(err instanceof DaemonNotRunningError)) throw err;
        process.stdout.write(ctx.options.json ? `${JSON.stringify({ running: false })}\n` : 'hearth is not running\n');
        return EXIT.notRunning;
      } finally {
        await client.close();
      }
    },
  },
  {
    name: 'config print',
    local: true,
    summary: 'print the effective config (defaults < file < environment < flags)',
    options: LISTEN,
    async run(ctx) {
      const { loadConfig } = await import('../config.js');
      const { loadPlugins } = await import('../registry.js');
      const loaded = loadConfig(listenFlags(ctx));
      const plugins = await loadPlugins(loaded);
      const effective = {
        ...loaded.config,
        plugins: Object.fromEntries(plugins.map((p) => [p.name, p.source === 'builtin' ? p.options : { module: p.source, options: p.options }])),
      };
      process.stdout.write(`${JSON.stringify(effective, null, 2)}\n`);
    },
  },
  {
    name: 'config check',
    local: true,
    summary: 'validate a config file (plugin options included); exit 2 with every problem when it is not valid',
    args: [{ name: 'file', description: 'a config file', required: true }],
    run: configCheck,
  },
  {
    name: 'cache clear',
    summary: 'clear every namespace, or the one named',
    options: { namespace: { type: 'string', value: 'name', description: 'only this namespace (a plugin name)' } },
    async run(ctx) {
      const namespace = ctx.options.namespace as string | undefined;
      const answer = await ctx.client().use((c) => c.postCacheClear(namespace ? { namespace } : {}));
      process.stdout.write(`${answer.message} (${answer.cleared} entries)\n`);
    },
  },
  {
    name: 'events',
    summary: 'print the daemon\'s events as they come, until interrupted (reconnects by itself)',
    options: {
      type: { type: 'string', value: 'types', description: 'only these event types (comma-separated, e.g. file.changed,git.status.changed)' },
      repo: { type: 'string', value: 'dir', description: "only this repository's events" },
      path: { type: 'string', value: 'path', description: 'only events whose path starts with this' },
      since: { type: 'string', value: 'clock', description: 'first the events after this clock (c:<instance>:<n>)' },
      json: { type: 'boolean', description: 'one JSON object per line' },
    },
    run: async (ctx) => (await import('./watch.js')).eventsCommand(ctx),
  },
  {
    name: 'wait',
    summary: 'wait until something under PATH changes: exit 0, or 1 on timeout (like watchman-wait)',
    args: [{ name: 'path', description: 'a file or directory under the files roots', required: true }],
    options: { timeout: { type: 'string', value: 's', description: 'give up after this many seconds (exit 1)' } },
    run: async (ctx) => (await import('./watch.js')).waitCommand(ctx),
  },
  {
    name: 'demo',
    local: true,
    summary: "measure a running daemon's features (the original design's performance demo)",
    options: {
      url: { type: 'string', value: 'url', description: 'TCP address of the daemon (default: its unix socket)' },
      token: { type: 'string', value: 'token', description: 'bearer token for --url (default: <state_dir>/token)' },
      out: { type: 'string', value: 'file', description: 'where to write the measurements as JSON', default: 'results.json' },
      workdir: { type: 'string', value: 'dir', description: "where to make the temp repos and files, under the daemon's roots (default ~/.cache)" },
      concurrency: { type: 'string', value: 'n', description: 'requests in flight in the concurrency section', default: '50' },
    },
    run: async (ctx) => (await import('./demo.js')).demoCommand(ctx),
  },
  ...(
    [
      ['print', 'print the unit (systemd) or plist (launchd) for this user and this install', 'printService'],
      ['install', 'write the unit or plist, and print the command that enables it', 'installService'],
      ['uninstall', 'remove the unit or plist, and print the command that stops it', 'uninstallService'],
    ] as const
  ).map(([word, summary, fn]) => ({
    name: `service ${word}`,
    local: true,
    summary,
    options: {
      systemd: { type: 'boolean', description: 'a systemd user unit (the default on Linux)' },
      launchd: { type: 'boolean', description: 'a launchd agent (the default on macOS)' },
    } satisfies Record<string, OptionSpec>,
    run: async (ctx: CommandContext) => (await import('./service.js'))[fn](ctx),
  })),
]);

/** What the words that only group commands are for. */
export const GROUP_SUMMARIES: Record<string, string> = {
  config: 'show or check configuration',
  cache: 'the two-level cache',
  service: 'run the daemon as a systemd user service or a launchd agent',
};
