/**
 * GET /metrics in the Prometheus text exposition format (0.0.4), parsed here by a small parser that checks the
 * format's rules (HELP/TYPE before samples, label syntax, cumulative histogram buckets ending in +Inf = _count);
 * its counters move with the requests made. Also the pieces below it: rendering, route labels, the Analytics Engine
 * write that never fails a request.
 */
import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { Counter } from '../../../functions/metrics/counter.ts';
import { Histogram } from '../../../functions/metrics/histogram.ts';
import { render } from '../../../functions/metrics/exposition.ts';
import { routeLabel } from '../../../functions/metrics/route-label.ts';
import { writeInferenceEvent } from '../../../functions/metrics/analytics.ts';
import { inferJson } from '../helpers.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  type: string;
  help: string;
  samples: Sample[];
}

/** Parses Prometheus text exposition; throws on anything the format does not allow. */
function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const sampleRe = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)/y;
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      const f = families.get(name) ?? { type: '', help: '', samples: [] };
      if (kind === 'TYPE') {
        if (f.type || f.samples.length) throw new Error(`TYPE of ${name} repeated or after its samples`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest))
          throw new Error(`bad type ${rest}`);
        f.type = rest;
      } else f.help = rest;
      families.set(name, f);
      continue;
    }
    if (line.startsWith('#') || line === '') continue;
    const m = sampleRe.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const [, name, labelText, valueText] = m as unknown as [string, string, string | undefined, string];
    const labels: Record<string, string> = {};
    if (labelText) {
      labelRe.lastIndex = 0;
      while (labelRe.lastIndex < labelText.length) {
        const l = labelRe.exec(labelText);
        if (!l) throw new Error(`bad labels: ${labelText}`);
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      }
    }
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    if (Number.isNaN(value) && valueText !== 'NaN') throw new Error(`bad value: ${line}`);
    const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
    if (!family?.type) throw new Error(`sample ${name} has no TYPE before it`);
    family.samples.push({ name, labels, value });
  }
  for (const [name, f] of families) if (f.type === 'histogram') checkHistogram(name, f);
  return families;
}

const le = (s: Sample) => (s.labels.le === '+Inf' ? Infinity : Number(s.labels.le));

function checkHistogram(name: string, f: Family): void {
  const key = (l: Record<string, string>) =>
    JSON.stringify(
      Object.entries(l)
        .filter(([k]) => k !== 'le')
        .sort(),
    );
  for (const k of new Set(f.samples.map((s) => key(s.labels)))) {
    const of = f.samples.filter((s) => key(s.labels) === k);
    const buckets = of.filter((s) => s.name === `${name}_bucket`);
    const count = of.find((s) => s.name === `${name}_count`)!.value;
    expect(buckets.at(-1)!.labels.le).toBe('+Inf');
    expect(buckets.at(-1)!.value).toBe(count);
    for (let i = 1; i < buckets.length; i++) {
      expect(le(buckets[i]!)).toBeGreaterThan(le(buckets[i - 1]!));
      expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    }
    expect(of.some((s) => s.name === `${name}_sum`)).toBe(true);
  }
}

const scrape = async () => {
  const res = await SELF.fetch('http://edge/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('Content-Type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheus(await res.text());
};
const value = (m: Map<string, Family>, family: string, sample: string, labels: Record<string, string>) =>
  m.get(family)?.samples.find((s) => s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value ?? 0;
const digit = (n: number) => ({
  inputs: [{ name: 'input', shape: [n, 784], datatype: 'FP32', data: new Array(n * 784).fill(0) }],
});

describe('GET /metrics', () => {
  it('is Prometheus text whose counters move with requests, labelled by route pattern', async () => {
    expect((await SELF.fetch('http://edge/v2/health/ready')).status).toBe(200);
    const before = await scrape();
    expect(before.get('fedge_http_requests_total')?.type).toBe('counter');
    expect(before.get('fedge_inference_duration_seconds')?.type).toBe('histogram');
    expect(before.get('fedge_inference_batch_size')?.type).toBe('histogram');
    expect(before.get('fedge_sessions_loaded')?.type).toBe('gauge');
    for (const f of before.values()) expect(f.help.length).toBeGreaterThan(10);

    expect((await inferJson('mnist-mlp', digit(1))).status).toBe(200);
    expect((await inferJson('mnist-mlp/versions/1', digit(3))).status).toBe(200);
    expect((await SELF.fetch('http://edge/v2/models/no-such-model')).status).toBe(404);
    expect((await SELF.fetch('http://edge/v2/no/such/route')).status).toBe(404);
    const after = await scrape();

    const http = (route: string, status: string, method = 'GET') =>
      value(after, 'fedge_http_requests_total', 'fedge_http_requests_total', { method, route, status }) -
      value(before, 'fedge_http_requests_total', 'fedge_http_requests_total', { method, route, status });
    expect(http('/v2/models/:name/infer', '200', 'POST')).toBe(1);
    expect(http('/v2/models/:name/versions/:version/infer', '200', 'POST')).toBe(1);
    expect(http('/v2/models/:name', '404')).toBe(1);
    expect(http('unmatched', '404')).toBe(1);
    expect(http('/metrics', '200')).toBe(1); // the first scrape, counted once it was answered
    // Bounded cardinality: no route label is a raw path.
    for (const s of after.get('fedge_http_requests_total')!.samples)
      expect(s.labels.route).not.toMatch(/mnist|no-such|\/no\/such/);

    const delta = (family: string, sample: string, labels: Record<string, string>) =>
      value(after, family, sample, labels) - value(before, family, sample, labels);
    expect(
      delta('fedge_inference_duration_seconds', 'fedge_inference_duration_seconds_count', { model: 'mnist-mlp' }),
    ).toBe(2);
    expect(
      delta('fedge_inference_requests_total', 'fedge_inference_requests_total', {
        model: 'mnist-mlp',
        outcome: 'success',
      }),
    ).toBe(2);
    expect(delta('fedge_inference_batch_size', 'fedge_inference_batch_size_count', { model: 'mnist-mlp' })).toBe(2);
    expect(delta('fedge_inference_batch_size', 'fedge_inference_batch_size_sum', { model: 'mnist-mlp' })).toBe(4);
    expect(
      delta('fedge_inference_batch_size', 'fedge_inference_batch_size_bucket', { model: 'mnist-mlp', le: '1' }),
    ).toBe(1);
    expect(
      delta('fedge_inference_batch_size', 'fedge_inference_batch_size_bucket', { model: 'mnist-mlp', le: '4' }),
    ).toBe(2);
    expect(value(after, 'fedge_sessions_loaded', 'fedge_sessions_loaded', {})).toBeGreaterThanOrEqual(1);
  });
});

describe('metrics building blocks', () => {
  it('renders counters and histograms in the exposition format, escaping label values', () => {
    const c = new Counter('t_total', 'a test\ncounter', ['route']);
    c.inc({ route: 'a"b\\c\nd' }, 2);
    const h = new Histogram('t_seconds', 'a test histogram', [0.1, 1]);
    for (const v of [0.05, 0.5, 5]) h.observe(v);
    const text = render([
      { type: 'counter', metric: c },
      { type: 'histogram', metric: h },
    ]);
    expect(text).toBe(
      [
        '# HELP t_total a test\\ncounter',
        '# TYPE t_total counter',
        't_total{route="a\\"b\\\\c\\nd"} 2',
        '# HELP t_seconds a test histogram',
        '# TYPE t_seconds histogram',
        't_seconds_bucket{le="0.1"} 1',
        't_seconds_bucket{le="1"} 2',
        't_seconds_bucket{le="+Inf"} 3',
        't_seconds_sum 5.55',
        't_seconds_count 3',
        '',
      ].join('\n'),
    );
    expect(parsePrometheus(text).get('t_total')!.samples[0]!.labels.route).toBe('a"b\\c\nd');
  });

  it('labels a request with the route that answers, never middleware', () => {
    expect(
      routeLabel([
        { method: 'ALL', path: '/*' },
        { method: 'GET', path: '/v2/models/stats' },
        { method: 'GET', path: '/v2/models/:name' },
      ]),
    ).toBe('/v2/models/stats');
    expect(routeLabel([{ method: 'ALL', path: '/*' }])).toBe('unmatched');
  });

  it('writes one Analytics Engine point per inference, and a failing binding fails nothing', () => {
    const points: AnalyticsEngineDataPoint[] = [];
    const event = { model: 'm', version: '1', sha256: 'ab', ok: true, latencyMs: 3, batch: 2 };
    writeInferenceEvent({ writeDataPoint: (p) => points.push(p!) }, event);
    expect(points).toEqual([{ indexes: ['m'], blobs: ['m', '1', 'success', 'ab'], doubles: [3, 2] }]);
    expect(() =>
      writeInferenceEvent(
        {
          writeDataPoint: () => {
            throw new Error('down');
          },
        },
        event,
      ),
    ).not.toThrow();
    expect(() => writeInferenceEvent(undefined, event)).not.toThrow();
  });
});
