// The original design's /optimization/stats, Prometheus /metrics, and `hearth stats`.
import { definePlugin } from '../../src/plugin.js';
import type { StatsAnswer } from './table.js';

export interface StatsOptions {
  retention_seconds: number;
  max_samples: number;
}

const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    retention_seconds: { type: 'number', exclusiveMinimum: 0, default: 3600, description: 'Timing samples older than this are dropped.' },
    max_samples: { type: 'integer', minimum: 1, default: 10000, description: 'At most this many samples are kept per operation.' },
  },
};

// The timestamp changes once a millisecond; under load many answers share one, so its string is kept.
let isoMs = -1;
let iso = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    iso = new Date(now).toISOString();
  }
  return iso;
}

const timingSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    ...Object.fromEntries(['count', 'total', 'min', 'max', 'avg', 'latest', 'p50', 'p95', 'p99'].map((k) => [k, { type: 'number' }])),
    unit: { const: 'seconds' },
  },
};

export default definePlugin<StatsOptions>({
  name: 'stats',
  configSchema,
  setup(ctx) {
    ctx.stats.setRetention(ctx.config);
    ctx.onReconfigure((options) => ctx.stats.setRetention(options));
    ctx.route({
      method: 'GET',
      path: '/optimization/stats',
      summary: 'Timings per operation (seconds) and the stats sections of the core services',
      schema: {
        query: {
          type: 'object',
          additionalProperties: false,
          properties: {
            window: { type: 'integer', minimum: 1, maximum: 3600, description: 'timings over the samples of the last this many seconds (a live view)' },
          },
        },
        response: {
          type: 'object',
          required: ['metrics', 'timestamp'],
          properties: { metrics: { type: 'object', additionalProperties: timingSchema }, timestamp: { type: 'string', format: 'date-time' } },
        },
      },
      handler: async ({ query }: { query: { window?: number } }): Promise<StatsAnswer> => ({
        ...(await ctx.stats.sections()),
        metrics: ctx.stats.snapshot(query.window) as StatsAnswer['metrics'],
        timestamp: isoNow(),
      }),
    });
    ctx.route({
      method: 'GET',
      path: '/metrics',
      produces: 'text/plain',
      summary: 'Prometheus text format: request durations by route and status, operation timings, process metrics',
      handler: async ({ koa }) => {
        const text = await ctx.stats.prometheus();
        koa.type = ctx.stats.prometheusContentType;
        koa.body = text;
      },
    });
  },
});
