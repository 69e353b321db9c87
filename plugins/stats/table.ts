// `hearth stats` as a readable table.
import type { TimingStats } from '../../src/services/metrics.js';

export interface StatsAnswer {
  metrics: Record<string, TimingStats>;
  timestamp: string;
  [section: string]: unknown;
}

const ms = (seconds: number): string => (seconds * 1000).toFixed(seconds < 0.01 ? 3 : 1);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

export function printStats(stats: StatsAnswer): string {
  const out: string[] = [`hearth stats at ${stats.timestamp}`, ''];
  const timings = Object.values(stats.metrics);
  if (timings.length === 0) out.push('no timings recorded yet');
  else {
    const header = ['operation', 'count', 'avg ms', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'latest ms'];
    out.push(table([header, ...timings.map((t) => [t.name, String(t.count), ms(t.avg), ms(t.p50), ms(t.p95), ms(t.p99), ms(t.max), ms(t.latest)])]));
  }
  for (const [key, value] of Object.entries(stats)) {
    if (key === 'metrics' || key === 'timestamp') continue;
    out.push('', `${key}:`);
    if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) out.push(`  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    } else out.push(`  ${String(value)}`);
  }
  return `${out.join('\n')}\n`;
}
