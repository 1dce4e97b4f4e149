/**
 * npm run bench:quantize — latency of each default model in onnxruntime-web (WASM, one thread, in Node), fp32 vs
 * int8 weight-only vs int8 dynamic, one example per run, measured in the same process. Two session settings:
 * the edge's (functions/inference/ort-runtime.ts: QDQ transformers off, so int8 weights are dequantized once at
 * load) and ORT's defaults (DequantizeLinear runs on every inference). Prints ratios against fp32; writes
 * bench/results/quantize.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { quantizeModel } from '../federated/model/quantize.ts';

const root = join(import.meta.dirname, '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 400);
const MODELS = ['mnist-mlp', 'mnist-cnn', 'spam-bow'];
const SETTINGS = {
  edge: { graphOptimizationLevel: 'all', extra: { session: { disable_quant_qdq: '1' } } },
  'ort-default': { graphOptimizationLevel: 'all' },
} as const;

ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';

async function p50(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions, shape: number[]): Promise<number> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], ...options });
  const x = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => (i % 7) / 7);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', x, [1, ...shape]) };
  for (let i = 0; i < 50; i++) await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  await session.release();
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

const results: Record<string, unknown>[] = [];
console.log(`onnxruntime-web ${ort.env.versions.web} WASM, 1 thread, batch 1, p50 of ${RUNS} runs\n`);
console.log(`${'model'.padEnd(11)}${'session'.padEnd(13)}${'fp32'.padStart(10)}${'int8 w-only'.padStart(13)}${'int8 dyn'.padStart(11)}${'w-only/fp32'.padStart(13)}${'dyn/fp32'.padStart(10)}`);
for (const name of MODELS) {
  const card = JSON.parse(readFileSync(join(root, `models/${name}/card.json`), 'utf8'));
  const fp32 = new Uint8Array(readFileSync(join(root, `models/${name}/model.fp32.onnx`)));
  const weightOnly = quantizeModel(fp32, { mode: 'weight-only' }).bytes;
  const dynamic = quantizeModel(fp32, { mode: 'dynamic' }).bytes;
  for (const [setting, options] of Object.entries(SETTINGS)) {
    const [a, b, c] = [await p50(fp32, options, card.spec.inputShape), await p50(weightOnly, options, card.spec.inputShape), await p50(dynamic, options, card.spec.inputShape)];
    const ms = (v: number) => `${(v * 1000).toFixed(0)} µs`;
    console.log(`${name.padEnd(11)}${setting.padEnd(13)}${ms(a).padStart(10)}${ms(b).padStart(13)}${ms(c).padStart(11)}${(b / a).toFixed(2).padStart(13)}${(c / a).toFixed(2).padStart(10)}`);
    results.push({ model: name, session: setting, fp32Ms: a, weightOnlyMs: b, dynamicMs: c, weightOnlyRatio: b / a, dynamicRatio: c / a });
  }
}
const edge = results.filter((r) => r.session === 'edge').map((r) => (r.weightOnlyRatio as number).toFixed(2));
console.log(`\ntarget: weight-only int8 ≤ 1.1× fp32 with the edge's session options → ${edge.join(', ')} (${MODELS.join(', ')})`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/quantize.json'), JSON.stringify({ date: new Date().toISOString(), runs: RUNS, results }, null, 2));
