/**
 * npm run bench:inference — the edge Worker, run two ways: the deployable bundle straight on workerd
 * (bench/bundle-server.ts, what a deployment runs) and wrangler dev (the server `npm start` runs, which puts a
 * proxy Worker in front) — against a reference measured in the same run (Hono on @hono/node-server + onnxruntime-node, one thread), same model,
 * same OIP JSON request: p50/p95 latency and requests/s at 1 and 32 connections, cold start, first inference
 * after ready, and the deployable bundle's size. Prints ratios edge/reference; writes bench/results/inference.json.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadMnist } from '../models/data/mnist.ts';
import { type LocalServer, freePort, startBundleServer, startLocalServer } from '../test/e2e/local-server.ts';
import { type LoadResult, runLoad } from './load.ts';

const root = join(import.meta.dirname, '..');
const MODEL = join(root, 'models/mnist-mlp/model.int8.onnx');
const REQUESTS_1 = Number(process.env.BENCH_REQUESTS ?? 2000);
const REQUESTS_32 = REQUESTS_1 * 2;

const { test } = loadMnist();
const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: Array.from(test.x.subarray(0, 784)) }] });

async function firstInference(url: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${url}/v2/models/mnist-mlp/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`first inference: ${res.status}`);
  return performance.now() - t;
}

async function measure(name: string, url: string): Promise<LoadResult[]> {
  const out: LoadResult[] = [];
  for (const [connections, requests] of [[1, REQUESTS_1], [32, REQUESTS_32]] as const) {
    process.stdout.write(`  ${name}: ${connections} connection(s), ${requests} requests… `);
    const r = await runLoad(`${url}/v2/models/mnist-mlp/infer`, body, { connections, requests, warmup: 200 });
    console.log(`p50 ${r.p50.toFixed(2)} ms, p95 ${r.p95.toFixed(2)} ms, ${r.rps.toFixed(0)} req/s`);
    out.push(r);
  }
  return out;
}

async function startReference(port: number): Promise<{ url: string; readyAfterMs: number; stop: () => void }> {
  const started = performance.now();
  const child = spawn(process.execPath, [join(root, 'bench/reference-server.ts'), MODEL, String(port)], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`reference server exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, readyAfterMs: performance.now() - started, stop: () => process.kill(-child.pid!, 'SIGTERM') };
}

function bundleSize(): { raw: number; gzip: number; files: number } {
  const out = mkdtempSync(join(tmpdir(), 'fedge-bundle-'));
  execFileSync(process.execPath, [join(root, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', out], { cwd: root, stdio: 'ignore' });
  let raw = 0, gzip = 0, files = 0;
  for (const f of readdirSync(out)) {
    if (f.endsWith('.map') || f === 'README.md') continue;
    const bytes = readFileSync(join(out, f));
    raw += statSync(join(out, f)).size;
    gzip += gzipSync(bytes, { level: 9 }).length;
    files++;
  }
  rmSync(out, { recursive: true, force: true });
  return { raw, gzip, files };
}

console.log('fedge inference benchmark (MNIST MLP int8, one digit per request, OIP JSON)\n');

interface Measured { readyAfterMs: number; first: number; load: LoadResult[]; floor: LoadResult }

/** The runtime's own ceiling: an empty health route at 32 connections, no model, no JSON body. */
async function floor(name: string, url: string, path: string): Promise<LoadResult> {
  const r = await runLoad(`${url}${path}`, undefined, { connections: 32, requests: REQUESTS_32, warmup: 200 });
  console.log(`  ${name}: empty route ${path} @32: ${r.rps.toFixed(0)} req/s`);
  return r;
}

async function measureServer(name: string, start: (o: { persistTo: string; vars: Record<string, string> }) => Promise<LocalServer>): Promise<Measured> {
  const state = mkdtempSync(join(tmpdir(), 'fedge-bench-'));
  console.log(`${name}: starting (fresh state)…`);
  const server = await start({ persistTo: state, vars: { FEDGE_RATE_LIMIT: 'off' } });
  try {
    const first = await firstInference(server.url);
    return { readyAfterMs: server.readyAfterMs, first, load: await measure(name, server.url), floor: await floor(name, server.url, '/v2/health/live') };
  } finally {
    await server.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

const bundle = await measureServer('workerd', startBundleServer);
const dev = await measureServer('wrangler dev', startLocalServer);

console.log('reference: starting Hono + onnxruntime-node…');
const ref = await startReference(await freePort());
const refFirst = await firstInference(ref.url);
const refLoad = await measure('reference', ref.url);
const reference: Measured = { readyAfterMs: ref.readyAfterMs, first: refFirst, load: refLoad, floor: await floor('reference', ref.url, '/v2/health/ready') };

ref.stop();

const size = bundleSize();
const mib = (n: number) => (n / 1024 / 1024).toFixed(2) + ' MiB';
const cell = (v: string, w = 13) => v.padStart(w);
const row = (label: string, pick: (m: Measured) => number, unit: string, digits = 2) => {
  const [b, d, r] = [pick(bundle), pick(dev), pick(reference)];
  console.log(`${label.padEnd(30)}${cell(b.toFixed(digits) + unit)}${cell(d.toFixed(digits) + unit)}${cell(r.toFixed(digits) + unit)}${cell((b / r).toFixed(2), 10)}${cell((d / r).toFixed(2), 10)}`);
};
console.log(`\n${'metric'.padEnd(30)}${cell('workerd')}${cell('wrangler dev')}${cell('reference')}${cell('wd/ref', 10)}${cell('dev/ref', 10)}`);
for (const i of [0, 1]) {
  const c = reference.load[i]!.connections;
  row(`p50 latency @${c}`, (m) => m.load[i]!.p50, ' ms');
  row(`p95 latency @${c}`, (m) => m.load[i]!.p95, ' ms');
  row(`throughput @${c}`, (m) => m.load[i]!.rps, ' /s', 0);
}
row('empty route throughput @32', (m) => m.floor.rps, ' /s', 0);
row('cold start (spawn → ready)', (m) => m.readyAfterMs, ' ms', 0);
row('first inference after ready', (m) => m.first, ' ms');
console.log(`\nworker bundle (wrangler deploy --dry-run): ${mib(size.raw)} raw, ${mib(size.gzip)} gzip, ${size.files} modules`);
const ratio = (m: Measured, i: number, k: 'p50' | 'rps') => (m.load[i]![k] / reference.load[i]![k]).toFixed(2);
console.log(`targets: p50 ratio @1 ≤ 1.2 → workerd ${ratio(bundle, 0, 'p50')}, wrangler dev ${ratio(dev, 0, 'p50')}; ` +
  `throughput ratio @32 ≥ 0.8 → workerd ${ratio(bundle, 1, 'rps')}, wrangler dev ${ratio(dev, 1, 'rps')}; ` +
  `first inference ≤ 50 ms → ${bundle.first.toFixed(1)} / ${dev.first.toFixed(1)} ms; bundle < 64 MiB → ${mib(size.raw)}`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/inference.json'), JSON.stringify({ date: new Date().toISOString(), workerd: bundle, wranglerDev: dev, reference, bundle: size }, null, 2));
