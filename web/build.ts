/**
 * Builds the web app into web/dist (served by the Worker as static assets; wrangler.toml [assets] and [build]):
 * bundles web/src/app.ts with esbuild, copies the page and styles, uPlot's stylesheet, 20 sample digits and 300
 * held-out digits from the MNIST test split, and the WASM binaries of the two onnxruntime-web builds LocalModel loads
 * (client-sdk/local/ort-loader.ts: WebGPU 16 MiB, plain 14 MiB — each under the 25 MiB a static asset may be) in assets/ort/.
 */
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { build } from 'esbuild';
import { ORT_WASM_FILES } from '../client-sdk/local/ort-loader.ts';
import { loadMnist } from '../models/data/mnist.ts';

const src = join(import.meta.dirname, 'src'), out = join(import.meta.dirname, 'dist'), assets = join(out, 'assets');
// From scratch: a file an earlier build wrote must not be served after its source is gone.
rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
const require = createRequire(import.meta.url);
await build({ entryPoints: [join(src, 'app.ts')], outfile: join(assets, 'app.js'), bundle: true, minify: true, format: 'esm', platform: 'browser', target: 'es2022', sourcemap: true, logLevel: 'warning' });
copyFileSync(join(src, 'index.html'), join(out, 'index.html'));
copyFileSync(join(src, 'style.css'), join(assets, 'style.css'));
copyFileSync(require.resolve('uplot/dist/uPlot.min.css'), join(assets, 'uPlot.min.css'));
const { test } = loadMnist();
const n = 20, round = (v: number) => Math.round(v * 1000) / 1000;
// 300 more test digits (after the samples) in float32 for the watch panel to measure each published version.
const held = { from: n, count: 300 };
writeFileSync(join(assets, 'heldout-digits.bin'), test.x.subarray(held.from * 784, (held.from + held.count) * 784));
writeFileSync(join(assets, 'heldout-labels.json'), JSON.stringify(Array.from(test.y.subarray(held.from, held.from + held.count))));
writeFileSync(join(assets, 'sample-digits.json'), JSON.stringify({ x: Array.from({ length: n }, (_, i) => Array.from(test.x.subarray(i * 784, (i + 1) * 784), round)), y: Array.from(test.y.subarray(0, n)) }));
mkdirSync(join(assets, 'ort'), { recursive: true });
for (const f of Object.values(ORT_WASM_FILES)) copyFileSync(require.resolve(`onnxruntime-web/${f}`), join(assets, 'ort', f));
