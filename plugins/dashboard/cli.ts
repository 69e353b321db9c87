// `hearth ui`: a one-time login URL for the dashboard, opened in the browser (or only printed).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { defineCommands } from '../../src/cli/spec.js';

/** The first of these commands on PATH (xdg-open on Linux and BSDs, open on macOS). */
function opener(): string | undefined {
  for (const name of process.platform === 'darwin' ? ['open'] : ['xdg-open']) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (!dir) continue;
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

export default defineCommands([
  {
    name: 'ui',
    summary: 'open the dashboard in a browser (a one-time login URL, valid once for 60 s)',
    options: { 'print-url': { type: 'boolean', description: 'only print the URL' } },
    async run({ options, client }) {
      const { url } = await client().use((c) => c.call<{ url: string; expires_at: string }>('POST', '/ui/login-url'));
      process.stdout.write(`${url}\n`);
      if (options['print-url']) return 0;
      const open = opener();
      if (!open) {
        process.stderr.write('No xdg-open or open here: open the URL above in a browser on this machine (it works once, within 60 s).\n');
        return 0;
      }
      const child = spawn(open, [url], { detached: true, stdio: 'ignore' });
      child.on('error', () => process.stderr.write(`${open} could not be started: open the URL above in a browser.\n`));
      child.unref();
      return 0;
    },
  },
]);
