/**
 * npm run bench:inference — where an edge inference's time goes. Servers, all on this machine in one run:
 *   workerd       the deployable bundle straight on workerd (dev/harness/bundle-server.ts: what a deployment runs)
 *   npm start     the server `npm start` runs (dev/start.ts: the same bundle with the web app's assets in front), mnist-mlp only
 *   wrangler dev  what `npm start` ran before (a proxy Worker in front), mnist-mlp only
 *   ort-web       reference: Hono on @hono/node-server + onnxruntime-web in Node — the same WASM the edge runs
 *   ort-node      reference: the same route with onnxruntime-node (native CPU, one thread)
 * Models: mnist-mlp (int8, 784 inputs), mnist-cnn (int8 conv net), and pt-squeezenet11-5mb (a 5 MB PyTorch export
 * from the third-party corpus, uploaded first): one example per request, OIP JSON. Per model and server: p50/p95
 * latency and requests/s at 1 and 32 connections. workerd / ort-web is the platform's cost (workerd, routes, codec);
 * ort-web / ort-node is the runtime's (WASM vs native). Also: each server's empty-route ceiling, cold start, first
 * inference, the edge's mean batch size (inference_count / execution_count from its statistics), the Worker
 * isolate's heap after the run (workerd's inspector), and the deployable bundle's size.
 * Writes bench/results/inference.json. BENCH_REQUESTS scales the request counts (default 2000 at 1 connection).
 */
import './cli.ts'; // first: --help, --check and bad options are answered before anything loads
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadMnist } from '../models/data/mnist.ts';
import {
  type LocalServer,
  freePort,
  startBundleServer,
  startLocalServer,
  startWranglerDev,
} from '../dev/harness/local-server.ts';
import { openHeapProbe, workerInspectorUrls } from '../dev/harness/isolate-heap.ts';
import { rssOfGroup } from '../dev/harness/process-memory.ts';
import { type LoadResult, runLoad } from './load.ts';

const root = join(import.meta.dirname, '..');
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const ADMIN = { Authorization: 'Bearer dev-admin-token' }; // the local default in .dev.vars

interface BenchModel {
  name: string;
  file: string;
  /** Bundled with the Worker, or uploaded before the run. */
  upload: boolean;
  body: string;
  /** Requests at 1 connection (twice as many at 32): fewer for heavier models, so each takes seconds. */
  requests: number;
}

const { test } = loadMnist();
const digit = Array.from(test.x.subarray(0, 784));
const oip = (name: string, shape: number[], data: number[]) =>
  JSON.stringify({ inputs: [{ name, shape, datatype: 'FP32', data }] });
// A deterministic 96×96 RGB image in [0, 1): what the PyTorch export takes.
const image = Array.from({ length: 3 * 96 * 96 }, (_, i) => ((i * 2654435761) % 1000) / 1000);
const MODELS: BenchModel[] = [
  {
    name: 'mnist-mlp',
    file: 'models/mnist-mlp/model.int8.onnx',
    upload: false,
    body: oip('input', [1, 784], digit),
    requests: REQUESTS,
  },
  {
    name: 'mnist-cnn',
    file: 'models/mnist-cnn/model.int8.onnx',
    upload: false,
    body: oip('input', [1, 28, 28, 1], digit),
    requests: Math.ceil(REQUESTS / 2),
  },
  {
    name: 'pt-squeezenet11-5mb',
    file: 'test/fixtures/third-party/pt-squeezenet11-5mb.onnx',
    upload: true,
    body: oip('image', [1, 3, 96, 96], image),
    requests: Math.ceil(REQUESTS / 10),
  },
];

async function post(url: string, body: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
  return performance.now() - t;
}

interface ModelRun {
  first: number;
  load: LoadResult[];
}
interface Measured {
  readyAfterMs: number;
  floor: LoadResult;
  models: Record<string, ModelRun>;
  meanBatch?: Record<string, number>;
  heapMiB?: { used: number; arrayBuffers: number };
}

async function measureModel(server: string, url: string, m: BenchModel): Promise<ModelRun> {
  const first = await post(`${url}/v2/models/${m.name}/infer`, m.body);
  const load: LoadResult[] = [];
  for (const [connections, requests] of [
    [1, m.requests],
    [32, m.requests * 2],
  ] as const) {
    process.stdout.write(`  ${server} ${m.name}: ${connections} connection(s), ${requests} requests… `);
    const r = await runLoad(`${url}/v2/models/${m.name}/infer`, m.body, {
      connections,
      requests,
      warmup: Math.min(200, m.requests / 5),
    });
    console.log(`p50 ${r.p50.toFixed(2)} ms, p95 ${r.p95.toFixed(2)} ms, ${r.rps.toFixed(0)} req/s`);
    load.push(r);
  }
  return { first, load };
}

/** The runtime's own ceiling: an empty health route at 32 connections, no model, no JSON body. */
async function floor(server: string, url: string, path: string): Promise<LoadResult> {
  const r = await runLoad(`${url}${path}`, undefined, { connections: 32, requests: REQUESTS * 2, warmup: 200 });
  console.log(`  ${server}: empty route ${path} @32: ${r.rps.toFixed(0)} req/s`);
  return r;
}

/** The Worker isolate's heap after a full GC (workerd's inspector; the bundle server runs with it on). */
async function isolateHeap(server: LocalServer): Promise<{ used: number; arrayBuffers: number } | undefined> {
  const workerd = rssOfGroup(server.child.pid!).filter((p) => p.command.includes('workerd'));
  for (const p of workerd) {
    const url = (await workerInspectorUrls(p.pid)).get('fedge');
    if (!url) continue;
    const probe = await openHeapProbe(url);
    try {
      // workerd answers an inspector message when the isolate next runs something: wake it until both answered.
      let done = false;
      const wake = (async () => {
        while (!done) {
          await fetch(`${server.url}/v2/health/live`).then((r) => r.body?.cancel());
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const u = await probe.live().finally(() => (done = true));
      await wake;
      return { used: u.usedSize / 2 ** 20, arrayBuffers: u.backingStorageSize / 2 ** 20 };
    } finally {
      probe.close();
    }
  }
  return undefined;
}

async function meanBatch(url: string): Promise<Record<string, number>> {
  const { model_stats } = (await (await fetch(`${url}/v2/models/stats`)).json()) as {
    model_stats: { name: string; inference_count: number; execution_count: number }[];
  };
  const out: Record<string, number> = {};
  for (const s of model_stats) if (s.execution_count) out[s.name] = s.inference_count / s.execution_count;
  return out;
}

async function measureEdge(
  name: string,
  start: (o: { persistTo: string; vars: Record<string, string> }) => Promise<LocalServer>,
  models: BenchModel[],
  withHeap: boolean,
): Promise<Measured> {
  const state = mkdtempSync(join(tmpdir(), 'fedge-bench-'));
  console.log(`${name}: starting (fresh state)…`);
  const server = await start({ persistTo: state, vars: { FEDGE_RATE_LIMIT: 'off' } });
  try {
    for (const m of models.filter((x) => x.upload)) {
      const res = await fetch(`${server.url}/v1/models/${m.name}/versions/1`, {
        method: 'PUT',
        headers: { ...ADMIN, 'content-type': 'application/octet-stream' },
        body: readFileSync(join(root, m.file)),
      });
      if (!res.ok) throw new Error(`uploading ${m.name}: ${res.status} ${await res.text()}`);
    }
    const runs: Record<string, ModelRun> = {};
    for (const m of models) runs[m.name] = await measureModel(name, server.url, m);
    const result: Measured = {
      readyAfterMs: server.readyAfterMs,
      floor: await floor(name, server.url, '/v2/health/live'),
      models: runs,
      meanBatch: await meanBatch(server.url),
    };
    if (withHeap) {
      const heap = await isolateHeap(server);
      if (heap) result.heapMiB = heap;
    }
    return result;
  } finally {
    await server.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

async function measureReference(runtime: 'node' | 'web'): Promise<Measured> {
  const name = `ort-${runtime}`;
  console.log(`${name}: starting Hono + onnxruntime-${runtime}…`);
  const port = await freePort();
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      join(root, 'bench/reference-server.ts'),
      runtime,
      String(port),
      ...MODELS.map((m) => `${m.name}=${join(root, m.file)}`),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], detached: true },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
    });
    const readyAfterMs = performance.now() - started;
    const url = `http://127.0.0.1:${port}`;
    const runs: Record<string, ModelRun> = {};
    for (const m of MODELS) runs[m.name] = await measureModel(name, url, m);
    return { readyAfterMs, floor: await floor(name, url, '/v2/health/ready'), models: runs };
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
  }
}

function bundleSize(): { raw: number; gzip: number; files: number } {
  const out = mkdtempSync(join(tmpdir(), 'fedge-bundle-'));
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', out],
    { cwd: root, stdio: 'ignore' },
  );
  let raw = 0,
    gzip = 0,
    files = 0;
  for (const f of readdirSync(out)) {
    if (f.endsWith('.map') || f === 'README.md') continue;
    raw += statSync(join(out, f)).size;
    gzip += gzipSync(readFileSync(join(out, f)), { level: 9 }).length;
    files++;
  }
  rmSync(out, { recursive: true, force: true });
  return { raw, gzip, files };
}

console.log('fedge inference benchmark (one example per request, OIP JSON)\n');
// The bundle server runs with workerd's inspector on, so the isolate's heap can be read after the run.
process.env.FEDGE_BENCH_INSPECTOR = '1';
const workerd = await measureEdge('workerd', startBundleServer, MODELS, true);
delete process.env.FEDGE_BENCH_INSPECTOR;
const start = await measureEdge('npm start', startLocalServer, MODELS.slice(0, 1), false);
const dev = await measureEdge('wrangler dev', startWranglerDev, MODELS.slice(0, 1), false);
const web = await measureReference('web');
const native = await measureReference('node');
const size = bundleSize();

const cell = (v: string, w = 12) => v.padStart(w);
const ratio = (a: number, b: number) => (a / b).toFixed(2);
console.log(
  `\n${'model / metric'.padEnd(34)}${cell('workerd')}${cell('npm start')}${cell('wrangler dev')}${cell('ort-web')}${cell('ort-node')}${cell('wd/node', 9)}${cell('wd/web', 9)}${cell('web/node', 9)}`,
);
for (const m of MODELS) {
  for (const [i, c] of [
    [0, 1],
    [1, 32],
  ] as const) {
    for (const [label, key, unit, digits] of [
      ['p50', 'p50', ' ms', 2],
      ['p95', 'p95', ' ms', 2],
      ['throughput', 'rps', ' /s', 0],
    ] as const) {
      const v = (x: Measured) => x.models[m.name]?.load[i]?.[key];
      const [a, st, d, w, n] = [v(workerd), v(start), v(dev), v(web), v(native)];
      const show = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(digits) + unit);
      console.log(
        `${`${m.name} ${label} @${c}`.padEnd(34)}${cell(show(a))}${cell(show(st))}${cell(show(d))}${cell(show(w))}${cell(show(n))}${cell(ratio(a!, n!), 9)}${cell(ratio(a!, w!), 9)}${cell(ratio(w!, n!), 9)}`,
      );
    }
  }
}
console.log(
  `${'empty route @32'.padEnd(34)}${cell(`${workerd.floor.rps.toFixed(0)} /s`)}${cell(`${start.floor.rps.toFixed(0)} /s`)}${cell(`${dev.floor.rps.toFixed(0)} /s`)}${cell(`${web.floor.rps.toFixed(0)} /s`)}${cell(`${native.floor.rps.toFixed(0)} /s`)}`,
);
console.log(
  `${'cold start (spawn → ready)'.padEnd(34)}${cell(`${workerd.readyAfterMs.toFixed(0)} ms`)}${cell(`${start.readyAfterMs.toFixed(0)} ms`)}${cell(`${dev.readyAfterMs.toFixed(0)} ms`)}${cell(`${web.readyAfterMs.toFixed(0)} ms`)}${cell(`${native.readyAfterMs.toFixed(0)} ms`)}`,
);
console.log(
  `${'first mnist-mlp inference'.padEnd(34)}${cell(`${workerd.models['mnist-mlp']!.first.toFixed(1)} ms`)}${cell(`${start.models['mnist-mlp']!.first.toFixed(1)} ms`)}${cell(`${dev.models['mnist-mlp']!.first.toFixed(1)} ms`)}${cell(`${web.models['mnist-mlp']!.first.toFixed(1)} ms`)}${cell(`${native.models['mnist-mlp']!.first.toFixed(1)} ms`)}`,
);
console.log(
  `\nworkerd mean batch size (inference_count / execution_count): ${Object.entries(workerd.meanBatch ?? {})
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ')}`,
);
if (workerd.heapMiB)
  console.log(
    `workerd Worker isolate after the run (live, after GC): JS heap ${workerd.heapMiB.used.toFixed(1)} MiB + ArrayBuffers/WASM ${workerd.heapMiB.arrayBuffers.toFixed(1)} MiB = ${(workerd.heapMiB.used + workerd.heapMiB.arrayBuffers).toFixed(1)} MiB (128 MB limit)`,
  );
console.log(
  `worker bundle (wrangler deploy --dry-run): ${(size.raw / 2 ** 20).toFixed(2)} MiB raw, ${(size.gzip / 2 ** 20).toFixed(2)} MiB gzip, ${size.files} modules`,
);

const mlp = (x: Measured, i: number) => x.models['mnist-mlp']!.load[i]!;
const cnn = (x: Measured) => x.models['mnist-cnn']!.load[1]!;
console.log(
  `targets (mnist-mlp unless named): workerd @32 ≥ 0.9× its empty route → ${ratio(mlp(workerd, 1).rps, workerd.floor.rps)}; ` +
    `≥ 0.8× ort-node's throughput @32 → ${ratio(mlp(workerd, 1).rps, mlp(native, 1).rps)}; p50 @1 ≤ 1.3× ort-node → ${ratio(mlp(workerd, 0).p50, mlp(native, 0).p50)}; ` +
    `mnist-cnn @32 workerd/ort-node ≥ 0.8 → ${ratio(cnn(workerd).rps, cnn(native).rps)}`,
);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(
  join(root, 'bench/results/inference.json'),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      workerd,
      npmStart: start,
      wranglerDev: dev,
      ortWeb: web,
      ortNode: native,
      bundle: size,
    },
    null,
    2,
  ),
);
