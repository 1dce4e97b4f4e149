/**
 * `npm run bench:load` — a mixed valid/invalid load on the deployable bundle on workerd (what `npm start` serves too) and
 * on wrangler dev, one after the other (`--server bundle|dev|both`), loopback only, bounded in time and count:
 * 64 connections for 60 s (`--seconds`, `--connections`), after a 20 s warm-up of the same mix (`--warmup`). Half the requests are valid inferences (JSON and binary), the rest every kind of bad request the edge
 * must refuse cleanly — malformed JSON, wrong shapes, out-of-range values, deep nesting, ragged data, unknown
 * models, wrong content types, bodies over the limit, 8 MiB bodies that are refused only after parsing.
 * Prints req/s, p50/p99, the answers by status (a 5xx is a bug), and the runtime's resident memory after the warm-up
 * and after the run (target: within 1.5×).
 */
import './cli.ts'; // first: --help, --check and bad options are answered before anything loads
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { loadMnist } from '../models/data/mnist.ts';
import { rssOfGroup } from '../dev/harness/process-memory.ts';
import { lineChartSvg, type Series } from '../dev/harness/line-chart.ts';
import { startBundleServer, startWranglerDev } from '../dev/harness/local-server.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    connections: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '20' },
    only: { type: 'string' },
    server: { type: 'string', default: 'both' },
  },
});
const SECONDS = Math.min(600, Number(args.seconds));
const CONNECTIONS = Math.min(256, Number(args.connections));
const WARMUP = Math.min(120, Number(args.warmup));
const MAX_REQUESTS = 2_000_000;

interface Shot {
  label: string;
  path: string;
  method?: string;
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  weight: number;
}

const { test } = loadMnist();
const digit = Array.from(test.x.subarray(0, 784));
const json = (inputs: unknown) => JSON.stringify({ inputs });
const input = (over: Record<string, unknown> = {}) => ({
  name: 'input',
  shape: [1, 784],
  datatype: 'FP32',
  data: digit,
  ...over,
});
const binary = (() => {
  const header = new TextEncoder().encode(
    JSON.stringify({
      inputs: [{ name: 'input', shape: [8, 784], datatype: 'FP32', parameters: { binary_data_size: 8 * 784 * 4 } }],
      outputs: [{ name: 'probabilities', parameters: { binary_data: true } }],
    }),
  );
  const body = new Uint8Array(header.byteLength + 8 * 784 * 4);
  body.set(header);
  body.set(new Uint8Array(test.x.slice(0, 8 * 784).buffer), header.byteLength);
  return { body, headerLength: String(header.byteLength) };
})();
const deep = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
const big = (() => {
  // ~8 MiB of numbers that parse, then fail the element count: the costliest refusal a caller can buy.
  const n = 900_000;
  return json([input({ shape: [1, 784], data: new Array(n).fill(0.123456) })]);
})();
const INFER = '/v2/models/mnist-mlp/infer';
const JSON_TYPE = { 'Content-Type': 'application/json' };

const shots: Shot[] = [
  { label: 'valid json', path: INFER, body: json([input()]), headers: JSON_TYPE, weight: 40 },
  {
    label: 'valid binary ×8',
    path: INFER,
    body: binary.body,
    headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': binary.headerLength },
    weight: 10,
  },
  { label: 'metadata', path: '/v2/models/mnist-mlp', weight: 3 },
  { label: 'model ready', path: '/v2/models/mnist-mlp/ready', weight: 2 },
  { label: 'bad json', path: INFER, body: '{"inputs": [', headers: JSON_TYPE, weight: 4 },
  { label: 'wrong shape', path: INFER, body: json([input({ shape: [2, 784] })]), headers: JSON_TYPE, weight: 4 },
  {
    label: 'out of range',
    path: INFER,
    body: json([input({ data: digit.map((v, i) => (i === 3 ? 1e39 : v)) })]),
    headers: JSON_TYPE,
    weight: 4,
  },
  {
    label: 'string data',
    path: INFER,
    body: json([input({ data: digit.map((v, i) => (i === 5 ? 'NaN' : v)) })]),
    headers: JSON_TYPE,
    weight: 3,
  },
  {
    label: 'deep nesting',
    path: INFER,
    body: `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":${deep(10_000)}}]}`,
    headers: JSON_TYPE,
    weight: 3,
  },
  {
    label: 'ragged',
    path: INFER,
    body: json([input({ shape: [2, 392], data: [digit.slice(0, 391), digit.slice(391)] })]),
    headers: JSON_TYPE,
    weight: 3,
  },
  {
    label: 'unknown model',
    path: '/v2/models/no-such-model/infer',
    body: json([input()]),
    headers: JSON_TYPE,
    weight: 3,
  },
  {
    label: 'unknown input',
    path: INFER,
    body: json([input({ name: 'x'.repeat(100_000) })]),
    headers: JSON_TYPE,
    weight: 2,
  },
  { label: 'wrong content type', path: INFER, body: 'hello', headers: { 'Content-Type': 'text/plain' }, weight: 2 },
  {
    label: 'over the limit',
    path: INFER,
    body: new Uint8Array(9 * 1024 * 1024).fill(0x20),
    headers: JSON_TYPE,
    weight: 1,
  },
  { label: '8 MiB refused', path: INFER, body: big, headers: JSON_TYPE, weight: 1 },
  { label: 'no route', path: '/v3/nothing', weight: 2 },
  {
    label: 'bad admin token',
    path: '/v1/models/x/aliases/y',
    method: 'PUT',
    body: '{"version":"1"}',
    headers: { ...JSON_TYPE, Authorization: 'Bearer guess' },
    weight: 2,
  },
];
// --only <regex>: just the kinds whose label matches (to find which requests cost memory).
const chosen = args.only ? shots.filter((s) => new RegExp(args.only!).test(s.label)) : shots;
const wheel = chosen.flatMap((s) => Array<Shot>(s.weight).fill(s));

interface Tally {
  count: number;
  latencies: number[];
  byStatus: Map<string, number>;
}

/** The server under load and what its runtime holds: the workerd processes in its process group (never by name). */
interface Target {
  url: string;
  rss: () => number;
  perProcess: () => string;
}

async function run(
  target: Target,
  seconds: number,
  show: boolean,
): Promise<{ tally: Tally; elapsed: number; byShot: Map<string, Map<string, number>> }> {
  const agent = new Agent({ connections: CONNECTIONS, pipelining: 1, keepAliveTimeout: 30_000 });
  const tally: Tally = { count: 0, latencies: [], byStatus: new Map() };
  const byShot = new Map<string, Map<string, number>>();
  const started = performance.now();
  const until = started + seconds * 1000;
  let i = 0;
  let lastShown = started;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < until && tally.count < MAX_REQUESTS) {
        const shot = wheel[i++ % wheel.length]!;
        const t = performance.now();
        let status: string;
        try {
          const res = await request(`${target.url}${shot.path}`, {
            method: (shot.method ?? (shot.body === undefined ? 'GET' : 'POST')) as 'GET',
            body: shot.body,
            headers: shot.headers,
            dispatcher: agent,
            headersTimeout: 60_000,
            bodyTimeout: 60_000,
          });
          await res.body.arrayBuffer();
          status = String(res.statusCode);
        } catch (e) {
          status = `error ${(e as { code?: string }).code ?? (e as Error).message}`;
        }
        tally.latencies.push(performance.now() - t);
        tally.count++;
        tally.byStatus.set(status, (tally.byStatus.get(status) ?? 0) + 1);
        const mine = byShot.get(shot.label) ?? new Map<string, number>();
        mine.set(status, (mine.get(status) ?? 0) + 1);
        byShot.set(shot.label, mine);
        const now = performance.now();
        if (show && now - lastShown > 5_000) {
          lastShown = now;
          console.log(
            `  ${((now - started) / 1000).toFixed(0)} s: ${tally.count} requests, runtime RSS ${target.rss().toFixed(0)} MiB`,
          );
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await agent.close();
  return { tally, elapsed, byShot };
}

/** Resident memory of each server's runtime, one sample a second from the start of the warm-up. */
const memorySeries: Series[] = [];

async function measure(kind: 'bundle' | 'dev'): Promise<void> {
  const state = mkdtempSync(join(tmpdir(), 'fedge-load-'));
  // dev: wrangler dev (a proxy workerd in front of the Worker's); bundle: the deployable bundle alone.
  console.log(
    `\n${kind === 'bundle' ? 'the deployable bundle on workerd' : 'wrangler dev'}: starting (rate limit off: one address sends everything)…`,
  );
  const server = await (kind === 'bundle' ? startBundleServer : startWranglerDev)({
    persistTo: state,
    vars: { FEDGE_RATE_LIMIT: 'off' },
  });
  const group = () => rssOfGroup(server.child.pid!);
  const target: Target = {
    url: server.url,
    rss: () =>
      group()
        .filter((p) => p.command.startsWith('workerd'))
        .reduce((n, p) => n + p.peakRssMiB, 0),
    perProcess: () =>
      group()
        .map((p) => `${p.command} ${p.pid}: ${p.peakRssMiB.toFixed(0)}`)
        .join(', '),
  };
  const series: Series = {
    label: kind === 'bundle' ? 'bundle on workerd' : 'wrangler dev',
    color: kind === 'bundle' ? '#1f77b4' : '#d62728',
    points: [],
  };
  memorySeries.push(series);
  const sampledFrom = performance.now();
  const sampler = setInterval(
    () => series.points.push({ x: (performance.now() - sampledFrom) / 1000, y: target.rss() }),
    1000,
  );
  try {
    const rssStart = target.rss();
    console.log(`warm-up: ${WARMUP} s of the same mix at ${CONNECTIONS} connections…`);
    await run(target, WARMUP, false);
    const rssWarm = target.rss();
    console.log(
      `run: ${SECONDS} s at ${CONNECTIONS} connections (${wheel.length}-request wheel: ${chosen.length} kinds)…`,
    );
    const { tally, elapsed, byShot } = await run(target, SECONDS, true);
    await new Promise((r) => setTimeout(r, 2000));
    const rssAfter = target.rss();
    const sorted = tally.latencies.sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
    console.log(
      `requests ${tally.count} in ${elapsed.toFixed(1)} s: ${(tally.count / elapsed).toFixed(0)} req/s, p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms`,
    );
    console.log(
      `answers by status: ${[...tally.byStatus]
        .sort()
        .map(([s, n]) => `${s} × ${n}`)
        .join(', ')}`,
    );
    for (const [label, statuses] of byShot)
      console.log(
        `  ${label.padEnd(20)} ${[...statuses]
          .sort()
          .map(([s, n]) => `${s} × ${n}`)
          .join(', ')}`,
      );
    const bad = [...tally.byStatus].filter(([s]) => !/^[234]\d\d$/.test(s)).reduce((n, [, c]) => n + c, 0);
    console.log(
      `runtime RSS (workerd): start ${rssStart.toFixed(0)} MiB, after warm-up ${rssWarm.toFixed(0)} MiB, after the run ${rssAfter.toFixed(0)} MiB (${(rssAfter / rssWarm).toFixed(2)}× warm-up; target ≤ 1.5×)`,
    );
    console.log(`  per process (MiB): ${target.perProcess()}`);
    console.log(`5xx or no answer: ${bad}${bad ? '  ← bugs' : ''}`);
  } finally {
    clearInterval(sampler);
    await server.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

for (const kind of args.server === 'both' ? (['bundle', 'dev'] as const) : [args.server as 'bundle' | 'dev'])
  await measure(kind);

const results = join(import.meta.dirname, 'results');
mkdirSync(results, { recursive: true });
const chart = join(results, 'load-rss.svg');
writeFileSync(
  chart,
  lineChartSvg({
    title: `Runtime memory under mixed load (${CONNECTIONS} connections; warm-up ${WARMUP} s, then ${SECONDS} s)`,
    xLabel: 'seconds since the warm-up began',
    yLabel: 'workerd RSS (MiB)',
    series: memorySeries,
    yMin: 0,
  }),
);
console.log(`\nchart: ${chart}`);
