// Core commands: daemon, start, stop, restart, status, config print|check, cache clear.
import type { Command } from 'commander';
import { Client, DaemonNotRunningError } from '../client.js';
import { ENV_VARIABLES, loadConfig, type ConfigFlags, type HearthConfig } from '../config.js';
import { startDaemon, type Daemon } from '../daemon.js';
import { loadPlugins } from '../registry.js';
import { readRuntimeInfo, stateFiles } from '../state.js';
import { buildMismatch, CliClient, startInBackground, stopDaemon, type Health } from './connect.js';
import { EXIT } from './exit.js';

type Opts = {
  config?: string;
  stateDir?: string;
  socket?: string;
  host?: string;
  port?: string;
  json?: boolean;
  timeout?: string;
  spawn?: boolean;
};

export function flagsOf(command: Command): ConfigFlags {
  const o = command.optsWithGlobals<Opts>();
  const flags: ConfigFlags = {};
  if (o.config !== undefined) flags.config = o.config;
  if (o.stateDir !== undefined) flags.stateDir = o.stateDir;
  if (o.socket !== undefined) flags.socket = o.socket;
  if (o.host !== undefined) flags.host = o.host;
  if (o.port !== undefined) flags.port = o.port;
  return flags;
}

/** False when `--no-spawn` was given. */
export function spawnOf(command: Command): boolean {
  return command.optsWithGlobals<Opts>().spawn !== false;
}

/**
 * A client for the daemon of this config: the CLI always speaks over the socket, and starts the daemon in the
 * background when it is not running, unless `spawn` is false (`--no-spawn`).
 */
export function pluginClient(flags: ConfigFlags, spawnIfNeeded = true): Client {
  return new CliClient(flags, spawnIfNeeded);
}

function describe(health: Health, config: Readonly<HearthConfig>): string {
  const info = readRuntimeInfo(config.state_dir);
  const lines = [
    `hearth ${health.version} is running${info ? ` (pid ${info.pid})` : ''}: ${health.status}`,
    `  build   ${health.build ?? '(none)'}`,
    `  socket  ${info?.socket ?? config.server.socket}`,
    `  tcp     http://${info?.host ?? config.server.host}:${info?.port ?? config.server.port} (bearer token in ${stateFiles(config.state_dir).token})`,
    `  uptime  ${health.uptime_seconds} s`,
    `  plugins ${health.plugins.map((p) => (p.state === 'ready' ? p.name : `${p.name} (${p.state})`)).join(', ') || '(none)'}`,
    ...health.reasons.map((r) => `  reason  ${r}`),
  ];
  return `${lines.join('\n')}\n`;
}

function withListenFlags(command: Command): Command {
  return command.option('--host <host>', 'TCP address (default 127.0.0.1)').option('--port <port>', 'TCP port (default 7433)');
}

export function lifecycleCommands(program: Command): void {
  withListenFlags(program.command('daemon').description('run the daemon in the foreground (what systemd and launchd want)')).action(
    async (_o, command: Command) => {
      // Signals are handled from the first moment: one that arrives while starting closes right after.
      let daemon: Daemon | undefined;
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
      daemon = await startDaemon({ flags: flagsOf(command), onIdleExit: () => finished() });
      if (stopRequested) {
        stopRequested = false;
        stop('SIGTERM');
      }
      await done;
    },
  );

  withListenFlags(program.command('start').description('start the daemon in the background; returns once it answers'))
    .option('--timeout <ms>', 'how long to wait for it to answer', '15000')
    .action(async (o: Opts, command: Command) => {
      const flags = flagsOf(command);
      const { config } = loadConfig(flags);
      process.stdout.write(describe(await startInBackground(flags, config, Number(o.timeout)), config));
    });

  program
    .command('stop')
    .description('stop the daemon gracefully (SIGTERM) and wait for it to exit')
    .action(async (_o, command: Command) => {
      const { config } = loadConfig(flagsOf(command));
      const pid = await stopDaemon(config);
      process.stdout.write(pid === undefined ? 'hearth is not running\n' : `hearth stopped (pid ${pid})\n`);
    });

  withListenFlags(program.command('restart').description('stop the daemon of this state dir (if it runs) and start a new one'))
    .option('--timeout <ms>', 'how long to wait for the new one to answer', '15000')
    .action(async (o: Opts, command: Command) => {
      const flags = flagsOf(command);
      const { config } = loadConfig(flags);
      const pid = await stopDaemon(config);
      if (pid !== undefined) process.stdout.write(`hearth stopped (pid ${pid})\n`);
      process.stdout.write(describe(await startInBackground(flags, config, Number(o.timeout)), config));
    });

  program
    .command('status')
    .description('is the daemon running, and how is it (exit 3 when not running)')
    .option('--json', 'print the health answer as JSON')
    .action(async (o: Opts, command: Command) => {
      const { config } = loadConfig(flagsOf(command));
      const client = new Client({ socket: config.server.socket, timeoutMs: 5000 });
      try {
        const health = await client.call<Health>('GET', '/health');
        process.stdout.write(o.json ? `${JSON.stringify(health, null, 2)}\n` : describe(health, config));
        const mismatch = buildMismatch(health);
        if (mismatch) process.stderr.write(mismatch);
      } catch (err) {
        if (!(err instanceof DaemonNotRunningError)) throw err;
        process.stdout.write(o.json ? `${JSON.stringify({ running: false })}\n` : 'hearth is not running\n');
        process.exitCode = EXIT.notRunning;
      } finally {
        await client.close();
      }
    });
}

export function configCommands(program: Command): void {
  const config = program.command('config').description('show or check configuration');
  withListenFlags(config.command('print').description('print the effective config (defaults < file < environment < flags)')).action(
    async (_o, command: Command) => {
      const loaded = loadConfig(flagsOf(command));
      const plugins = await loadPlugins(loaded);
      const effective = {
        ...loaded.config,
        plugins: Object.fromEntries(plugins.map((p) => [p.name, p.source === 'builtin' ? p.options : { module: p.source, options: p.options }])),
      };
      process.stdout.write(`${JSON.stringify(effective, null, 2)}\n`);
    },
  );
  config
    .command('check')
    .argument('<file>', 'a config file')
    .description('validate a config file (plugin options included); exit 2 when it is not valid')
    .action(async (file: string) => {
      // The file alone: variables that would override it are not part of what is checked.
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !ENV_VARIABLES.includes(k)));
      const loaded = loadConfig({ config: file }, env);
      await loadPlugins(loaded);
      process.stdout.write(`${file}: valid\n`);
    });
}

export function cacheCommands(program: Command): void {
  program
    .command('cache')
    .description('the two-level cache')
    .command('clear')
    .description('clear every namespace, or the one named')
    .option('--namespace <name>', 'only this namespace (a plugin name)')
    .action(async (o: { namespace?: string }, command: Command) => {
      const answer = await pluginClient(flagsOf(command), spawnOf(command)).use((c) =>
        c.call<{ message: string; cleared: number }>('POST', '/cache/clear', o.namespace ? { namespace: o.namespace } : {}),
      );
      process.stdout.write(`${answer.message} (${answer.cleared} entries)\n`);
    });
}
