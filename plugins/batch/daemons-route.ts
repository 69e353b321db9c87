// GET /batch/daemons, when the batch plugin has a queue.
import { HearthError } from '../../src/errors.js';
import type { PluginContext } from '../../src/plugin.js';
import type { QueueJobs } from './queue-jobs.js';

/** GET /batch/daemons: the daemons alive on the queue, their shared roots and the chunks they ran. */
export function registerDaemonsRoute(ctx: PluginContext<unknown>, queue: QueueJobs): void {
  ctx.route({
    method: 'GET',
    path: '/batch/daemons',
    summary: 'The daemons alive on the batch queue: id, host, shared roots, chunks run (503 while its Redis is unreachable)',
    text: (data: { daemons: Array<{ id: string; host: string; roots: string[]; chunks: number; concurrency: number }> }) =>
      data.daemons.map((d) => `${d.id} ${d.host} chunks=${d.chunks} concurrency=${d.concurrency} roots=${d.roots.join(',') || '-'}`).join('\n'),
    handler: async () => {
      const { settings, registry } = queue.queue;
      let daemons;
      try {
        daemons = await registry.alive();
      } catch {
        throw new HearthError('UNAVAILABLE', `The batch queue's Redis (${settings.where}) is unreachable`);
      }
      return { queue: settings.where, name: settings.name, self: queue.daemonId, daemons };
    },
  });
}
