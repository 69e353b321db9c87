// `hearth stats`.
import { defineCommands } from '../../src/cli/spec.js';
import { printStats, type StatsAnswer } from './table.js';

export default defineCommands([
  {
    name: 'stats',
    summary: "timings per operation and the services' stats",
    options: { json: { type: 'boolean', description: 'print the raw answer' } },
    async run({ options, client }) {
      const stats = await client().use((c) => c.call<StatsAnswer>('GET', '/optimization/stats'));
      process.stdout.write(options.json ? `${JSON.stringify(stats, null, 2)}\n` : printStats(stats));
    },
  },
]);
