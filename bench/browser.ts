/**
 * npm run bench:browser — the client SDK in a browser:
 *   1. bundle sizes: what an app ships when it imports EdgeClient alone, and EdgeClient + LocalModel (esbuild,
 *      minified, raw and gzip), and the WASM binary each onnxruntime-web build needs — a separate asset each, checked
 *      against the 25 MiB a Workers static asset may be (no gzip trick);
 *   2. latency of one digit through mnist-mlp and mnist-cnn in Chromium, per provider: LocalModel on ONNX Runtime's
 *      native WebGPU provider (the JSPI build; SwiftShader on this GPU-less machine) and on the plain WASM build,
 *      onnxruntime-web's default JSEP build (what LocalModel used before; deprecated since ORT 1.29) on both for
 *      comparison, and EdgeClient.infer to the local edge (the reference, measured in the same run; its round trip
 *      is loopback, so a real network only widens the gap in the device's favour).
 * Writes bench/results/browser.json.
 */
import './cli.ts'; // first: --help, --check and bad options are answered before anything loads
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { ORT_WASM_FILES } from '../client-sdk/local/ort-loader.ts';
import { loadMnist } from '../models/data/mnist.ts';
import { launchChromium } from '../dev/harness/chromium.ts';
import { serveLocalModelPage } from '../dev/harness/local-model-page-server.ts';
import { startLocalServer } from '../dev/harness/local-server.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

async function bundleSize(imports: string): Promise<{ raw: number; gzip: number }> {
  const out = await build({
    stdin: {
      contents: `export { ${imports} } from './client-sdk/index.ts';`,
      resolveDir: join(import.meta.dirname, '..'),
      loader: 'ts',
    },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const bytes = out.outputFiles[0]!.contents;
  return { raw: bytes.byteLength, gzip: gzipSync(bytes).byteLength };
}

console.log('bundle sizes (esbuild --bundle --minify, ESM, browser):');
const edgeOnly = await bundleSize('EdgeClient');
const withLocal = await bundleSize('EdgeClient, LocalModel');
console.log(`  EdgeClient               ${kib(edgeOnly.raw).padStart(10)}  gzip ${kib(edgeOnly.gzip)}`);
console.log(
  `  EdgeClient + LocalModel  ${kib(withLocal.raw).padStart(10)}  gzip ${kib(withLocal.gzip)}   (includes both onnxruntime-web builds' JS)`,
);
const ASSET_LIMIT = 25 * 1024 * 1024;
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
const wasmFiles: Record<string, string> = {
  'WebGPU build (LocalModel)': ORT_WASM_FILES.webgpu,
  'WASM build (LocalModel)': ORT_WASM_FILES.wasm,
  'JSEP build (default, before)': 'ort-wasm-simd-threaded.jsep.wasm',
  'WebGPU Asyncify build': 'ort-wasm-simd-threaded.asyncify.wasm',
};
const assets: Record<string, { file: string; raw: number; gzip: number; withinLimit: boolean }> = {};
console.log(
  '\nonnxruntime-web WASM binaries (one per build, a separate asset; Workers static assets: ≤ 25 MiB per file):',
);
for (const [label, file] of Object.entries(wasmFiles)) {
  const bytes = readFileSync(createRequire(import.meta.url).resolve(`onnxruntime-web/${file}`));
  assets[label] = {
    file,
    raw: bytes.byteLength,
    gzip: gzipSync(bytes).byteLength,
    withinLimit: bytes.byteLength <= ASSET_LIMIT,
  };
  console.log(
    `  ${label.padEnd(30)} ${file.padEnd(40)} ${mib(bytes.byteLength).padStart(9)}  gzip ${mib(assets[label].gzip).padStart(8)}  ${assets[label].withinLimit ? 'within the limit' : 'OVER the limit'}`,
  );
}

const state = mkdtempSync(join(tmpdir(), 'fedge-bench-browser-'));
const server = await startLocalServer({ persistTo: state });
const page = await serveLocalModelPage({ jsep: true });
const browser = await launchChromium({ webgpu: true });
try {
  const tab = await browser.context.newPage();
  await tab.goto(`${page.url}?edge=${encodeURIComponent(server.url)}`);
  await tab.waitForFunction(() => document.title === 'ready');
  type Api = Record<string, (...a: unknown[]) => Promise<any>>;
  const call = (fn: string, ...args: unknown[]) =>
    tab.evaluate(([f, a]) => (globalThis as unknown as { fedge: Api }).fedge[f as string]!(...(a as unknown[])), [
      fn,
      args,
    ] as const);
  const digit = Array.from(loadMnist().test.x.subarray(0, 784));
  const rows: Record<string, Record<string, { p50: number; p90: number; ratio: number }>> = {};
  for (const [model, shape] of [
    ['mnist-mlp', [1, 784]],
    ['mnist-cnn', [1, 28, 28, 1]],
  ] as const) {
    const gpu = await call('load', `${model}:gpu`, { model, providers: ['webgpu'] });
    const cpu = await call('load', `${model}:cpu`, { model, providers: ['wasm'] });
    if (!gpu.ok || !cpu.ok) throw new Error(`LocalModel did not load: ${JSON.stringify({ gpu, cpu })}`);
    console.log(
      `\nlatency, one digit through ${model}@${gpu.version} in Chromium (${RUNS} runs each after warm-up; median, p90):`,
    );
    const edge = await call('latency', `edge:${model}`, digit, RUNS, shape);
    rows[model] = {};
    const measures: [string, () => Promise<{ p50: number; p90: number }>][] = [
      ['edge (EdgeClient, reference)', async () => edge],
      ['LocalModel WebGPU (native)', () => call('latency', `${model}:gpu`, digit, RUNS, shape)],
      ['LocalModel WASM (plain)', () => call('latency', `${model}:cpu`, digit, RUNS, shape)],
      ['JSEP build WebGPU (before)', () => call('jsepLatency', model, digit, RUNS, 'webgpu', shape)],
      ['JSEP build WASM (before)', () => call('jsepLatency', model, digit, RUNS, 'wasm', shape)],
    ];
    for (const [label, measure] of measures) {
      const r = await measure();
      rows[model]![label] = { ...r, ratio: r.p50 / edge.p50 };
      console.log(
        `  ${label.padEnd(30)} p50 ${r.p50.toFixed(2).padStart(7)} ms   p90 ${r.p90.toFixed(2).padStart(7)} ms   ${(r.p50 / edge.p50).toFixed(2)}× the edge's p50`,
      );
    }
  }
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  writeFileSync(
    join(import.meta.dirname, 'results/browser.json'),
    JSON.stringify({ bundles: { edgeOnly, withLocal }, assets, runs: RUNS, latency: rows }, null, 2),
  );
} finally {
  await browser.close();
  await page.close();
  await server.stop();
  rmSync(state, { recursive: true, force: true });
}
