/**
 * npm run bench:browser — the client SDK in a browser:
 *   1. bundle sizes: what an app ships when it imports EdgeClient alone, and EdgeClient + LocalModel (esbuild,
 *      minified, raw and gzip), beside onnxruntime-web's WASM binary, which is a separate asset;
 *   2. latency of one digit through the default model (mnist-mlp) in Chromium: LocalModel on WebGPU (SwiftShader
 *      on this GPU-less machine) and on WASM, against EdgeClient.infer to the local edge (the reference, measured
 *      in the same run; its round trip is loopback, so a real network only widens the gap in the device's favour).
 * Writes bench/results/browser.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { ORT_WASM_FILE } from '../client-sdk/local/local-model.ts';
import { loadMnist } from '../models/data/mnist.ts';
import { launchChromium } from '../test/browser/harness.ts';
import { serveLocalModelPage } from '../test/browser/local-model-env.ts';
import { startLocalServer } from '../test/e2e/local-server.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

async function bundleSize(imports: string): Promise<{ raw: number; gzip: number }> {
  const out = await build({
    stdin: { contents: `export { ${imports} } from './client-sdk/index.ts';`, resolveDir: join(import.meta.dirname, '..'), loader: 'ts' },
    bundle: true, minify: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent',
  });
  const bytes = out.outputFiles[0]!.contents;
  return { raw: bytes.byteLength, gzip: gzipSync(bytes).byteLength };
}

console.log('bundle sizes (esbuild --bundle --minify, ESM, browser):');
const edgeOnly = await bundleSize('EdgeClient');
const withLocal = await bundleSize('EdgeClient, LocalModel');
const wasm = readFileSync(createRequire(import.meta.url).resolve(`onnxruntime-web/${ORT_WASM_FILE}`));
const wasmGzip = gzipSync(wasm).byteLength;
console.log(`  EdgeClient               ${kib(edgeOnly.raw).padStart(10)}  gzip ${kib(edgeOnly.gzip)}`);
console.log(`  EdgeClient + LocalModel  ${kib(withLocal.raw).padStart(10)}  gzip ${kib(withLocal.gzip)}   (includes onnxruntime-web's JS)`);
console.log(`  ${ORT_WASM_FILE} (separate asset) ${kib(wasm.byteLength)}  gzip ${kib(wasmGzip)}`);

const state = mkdtempSync(join(tmpdir(), 'fedge-bench-browser-'));
const server = await startLocalServer({ persistTo: state });
const page = await serveLocalModelPage();
const browser = await launchChromium({ webgpu: true });
try {
  const tab = await browser.context.newPage();
  await tab.goto(`${page.url}?edge=${encodeURIComponent(server.url)}`);
  await tab.waitForFunction(() => document.title === 'ready');
  type Api = Record<string, (...a: unknown[]) => Promise<any>>;
  const call = (fn: string, ...args: unknown[]) => tab.evaluate(([f, a]) => ((globalThis as unknown as { fedge: Api }).fedge[f as string]!)(...(a as unknown[])), [fn, args] as const);
  const digit = Array.from(loadMnist().test.x.subarray(0, 784));
  const gpu = await call('load', 'gpu', { model: 'mnist-mlp', providers: ['webgpu'] });
  const cpu = await call('load', 'cpu', { model: 'mnist-mlp', providers: ['wasm'] });
  if (!gpu.ok || !cpu.ok) throw new Error(`LocalModel did not load: ${JSON.stringify({ gpu, cpu })}`);
  console.log(`\nlatency, one digit through mnist-mlp@${gpu.version} in Chromium (${RUNS} runs each after warm-up; median, p90):`);
  const edge = await call('latency', 'edge:mnist-mlp', digit, RUNS);
  const rows: Record<string, { p50: number; p90: number; ratio: number }> = {};
  for (const [label, key] of [['edge (EdgeClient, reference)', 'edge:mnist-mlp'], ['LocalModel WebGPU', 'gpu'], ['LocalModel WASM', 'cpu']] as const) {
    const r = key.startsWith('edge') ? edge : await call('latency', key, digit, RUNS);
    rows[label] = { ...r, ratio: r.p50 / edge.p50 };
    console.log(`  ${label.padEnd(30)} p50 ${r.p50.toFixed(2).padStart(7)} ms   p90 ${r.p90.toFixed(2).padStart(7)} ms   ${(r.p50 / edge.p50).toFixed(2)}× the edge's p50`);
  }
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  writeFileSync(join(import.meta.dirname, 'results/browser.json'), JSON.stringify({ bundles: { edgeOnly, withLocal, wasm: { raw: wasm.byteLength, gzip: wasmGzip } }, runs: RUNS, latency: rows }, null, 2));
} finally {
  await browser.close();
  await page.close();
  await server.stop();
  rmSync(state, { recursive: true, force: true });
}
