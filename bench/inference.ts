/**
 * npm run bench:inference — the edge Worker (wrangler dev on workerd, the server `npm start` runs) against a
 * reference measured in the same run (Hono on @hono/node-server + onnxruntime-node, one thread), same model,
 * same OIP JSON request: p50/p95 latency and requests/s at 1 and 32 connections, cold start, first inference
 * after ready, and the deployable bundle's size. Prints ratios edge/reference; writes bench/results/inference.json.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadMnist } from '../models/data/mnist.ts';
import { startLocalServer } from '../test/e2e/local-server.ts';
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
const state = mkdtempSync(join(tmpdir(), 'fedge-bench-'));
console.log('edge: starting wrangler dev (fresh state)…');
const edge = await startLocalServer({ port: 18797, persistTo: state, vars: { FEDGE_RATE_LIMIT: 'off' } });
const edgeFirst = await firstInference(edge.url);
const edgeLoad = await measure('edge', edge.url);
await edge.stop();
rmSync(state, { recursive: true, force: true });

console.log('reference: starting Hono + onnxruntime-node…');
const ref = await startReference(18798);
const refFirst = await firstInference(ref.url);
const refLoad = await measure('reference', ref.url);
ref.stop();

const size = bundleSize();
const mib = (n: number) => (n / 1024 / 1024).toFixed(2) + ' MiB';
const row = (label: string, e: number, r: number, unit: string, digits = 2) =>
  console.log(`${label.padEnd(30)} ${(e.toFixed(digits) + unit).padStart(12)} ${(r.toFixed(digits) + unit).padStart(12)} ${(e / r).toFixed(2).padStart(8)}`);
console.log(`\n${'metric'.padEnd(30)} ${'edge'.padStart(12)} ${'reference'.padStart(12)} ${'ratio'.padStart(8)}`);
for (let i = 0; i < 2; i++) {
  const e = edgeLoad[i]!, r = refLoad[i]!;
  row(`p50 latency @${e.connections}`, e.p50, r.p50, ' ms');
  row(`p95 latency @${e.connections}`, e.p95, r.p95, ' ms');
  row(`throughput @${e.connections}`, e.rps, r.rps, ' /s', 0);
}
row('cold start (spawn → ready)', edge.readyAfterMs, ref.readyAfterMs, ' ms', 0);
row('first inference after ready', edgeFirst, refFirst, ' ms');
console.log(`\nworker bundle (wrangler deploy --dry-run): ${mib(size.raw)} raw, ${mib(size.gzip)} gzip, ${size.files} modules`);
console.log(`targets: p50 ratio @1 ≤ 1.2 → ${(edgeLoad[0]!.p50 / refLoad[0]!.p50).toFixed(2)}; throughput ratio @32 ≥ 0.8 → ${(edgeLoad[1]!.rps / refLoad[1]!.rps).toFixed(2)}; first inference ≤ 50 ms → ${edgeFirst.toFixed(1)} ms; bundle < 64 MiB → ${mib(size.raw)}`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/inference.json'), JSON.stringify({ date: new Date().toISOString(), edge: { load: edgeLoad, coldStartMs: edge.readyAfterMs, firstInferenceMs: edgeFirst }, reference: { load: refLoad, coldStartMs: ref.readyAfterMs, firstInferenceMs: refFirst }, bundle: size }, null, 2));
