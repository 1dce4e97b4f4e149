/**
 * Renders counters, gauges and histograms in the Prometheus text exposition format (version 0.0.4): `# HELP` and
 * `# TYPE` once per metric, then one line per sample; histograms as cumulative `_bucket{le="…"}` lines ending with
 * `le="+Inf"`, then `_sum` and `_count`. Label values are escaped as the format requires (\\, \", \n).
 */
import type { Counter, Labels } from './counter.ts';
import type { Histogram } from './histogram.ts';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface Gauge {
  name: string;
  help: string;
  samples(): Iterable<{ labels: Labels; value: number }>;
}

export type Metric =
  | { type: 'counter'; metric: Counter }
  | { type: 'gauge'; metric: Gauge }
  | { type: 'histogram'; metric: Histogram };

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra) pairs.push(extra);
  return pairs.length ? `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
}

/** Prometheus writes floats as Go does: integers plainly, +Inf/-Inf/NaN by name. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export function render(metrics: Metric[]): string {
  const lines: string[] = [];
  for (const { type, metric } of metrics) {
    lines.push(`# HELP ${metric.name} ${escapeHelp(metric.help)}`, `# TYPE ${metric.name} ${type}`);
    if (type === 'histogram') {
      for (const { labels, value } of metric.samples()) {
        let cumulative = 0;
        metric.bounds.forEach((bound, i) => {
          cumulative += value.buckets[i]!;
          lines.push(`${metric.name}_bucket${labelText(labels, ['le', formatValue(bound)])} ${cumulative}`);
        });
        lines.push(`${metric.name}_bucket${labelText(labels, ['le', '+Inf'])} ${value.count}`);
        lines.push(
          `${metric.name}_sum${labelText(labels)} ${formatValue(value.sum)}`,
          `${metric.name}_count${labelText(labels)} ${value.count}`,
        );
      }
    } else {
      for (const { labels, value } of metric.samples())
        lines.push(`${metric.name}${labelText(labels)} ${formatValue(value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
