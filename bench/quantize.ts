/**
 * npm run bench:quantize — latency of each default model in onnxruntime-web (WASM, one thread, in Node), fp32 vs
 * int8 weight-only vs int8 dynamic, one example per run, measured in the same process. Two session settings:
 * the edge's (functions/inference/ort-runtime.ts: QDQ transformers off, so int8 weights are dequantized once at
 * load) and ORT's defaults (DequantizeLinear runs on every inference). Prints ratios against fp32.
 * Then the third-party corpus (test/fixtures/third-party): for each weight-heavy file (≥ 100 kB of float weights),
 * size ratio and largest output deviation of int8 weight-only and fp16 against fp32, on `fedge quantize`'s
 * generated inputs, within the CLI's default tolerance; the target is ≥ 90 % of those files at ≤ 0.30× within it.
 * Writes bench/results/quantize.json. BENCH_QUANTIZE=corpus runs only the corpus part.
 */
import './cli.ts'; // first: --help, --check and bad options are answered before anything loads
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { generatedInputs } from '../cli/generated-inputs.ts';
import { DEFAULT_TOLERANCE, outputDeviations } from '../cli/quantize.ts';
import { decodeModel } from '../federated/model/onnx-graph.ts';
import { type QuantizeMode, floatWeightBytes, quantizeModel } from '../federated/model/quantize.ts';

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

async function latency(): Promise<Record<string, unknown>[]> {
  const results: Record<string, unknown>[] = [];
  console.log(`onnxruntime-web ${ort.env.versions.web} WASM, 1 thread, batch 1, p50 of ${RUNS} runs\n`);
  console.log(
    `${'model'.padEnd(11)}${'session'.padEnd(13)}${'fp32'.padStart(10)}${'int8 w-only'.padStart(13)}${'int8 dyn'.padStart(11)}${'w-only/fp32'.padStart(13)}${'dyn/fp32'.padStart(10)}`,
  );
  for (const name of MODELS) {
    const card = JSON.parse(readFileSync(join(root, `models/${name}/card.json`), 'utf8'));
    const fp32 = new Uint8Array(readFileSync(join(root, `models/${name}/model.fp32.onnx`)));
    const weightOnly = quantizeModel(fp32, { mode: 'weight-only' }).bytes;
    const dynamic = quantizeModel(fp32, { mode: 'dynamic' }).bytes;
    for (const [setting, options] of Object.entries(SETTINGS)) {
      const [a, b, c] = [
        await p50(fp32, options, card.spec.inputShape),
        await p50(weightOnly, options, card.spec.inputShape),
        await p50(dynamic, options, card.spec.inputShape),
      ];
      const ms = (v: number) => `${(v * 1000).toFixed(0)} µs`;
      console.log(
        `${name.padEnd(11)}${setting.padEnd(13)}${ms(a).padStart(10)}${ms(b).padStart(13)}${ms(c).padStart(11)}${(b / a).toFixed(2).padStart(13)}${(c / a).toFixed(2).padStart(10)}`,
      );
      results.push({
        model: name,
        session: setting,
        fp32Ms: a,
        weightOnlyMs: b,
        dynamicMs: c,
        weightOnlyRatio: b / a,
        dynamicRatio: c / a,
      });
    }
  }
  const edge = results.filter((r) => r.session === 'edge').map((r) => (r.weightOnlyRatio as number).toFixed(2));
  console.log(
    `\ntarget: weight-only int8 ≤ 1.1× fp32 with the edge's session options → ${edge.join(', ')} (${MODELS.join(', ')})`,
  );
  return results;
}

const CORPUS = join(root, 'test/fixtures/third-party');
const HEAVY_BYTES = 100_000;
const TARGET_RATIO = 0.3;
/** What `fedge quantize` would be given for these files: Silero needs its sample rate and a 512-sample window. */
const CORPUS_INPUTS: Record<string, { shapes: [string, number[]][]; values: [string, number[]][] }> = {
  'silero-vad.onnx': {
    shapes: [
      ['input', [1, 512]],
      ['h', [2, 1, 64]],
      ['c', [2, 1, 64]],
    ],
    values: [['sr', [16000]]],
  },
};

/** Size ratio and largest output deviation (as a share of that output's largest |fp32 value|) of one mode. */
async function measure(fp32: Uint8Array, mode: QuantizeMode, file: string) {
  const { bytes, report } = quantizeModel(fp32, { mode });
  const given = CORPUS_INPUTS[file];
  const inputs = generatedInputs(decodeModel(fp32), 1, new Map(given?.shapes), 1, new Map(given?.values));
  const feeds = Object.fromEntries(inputs.map((i) => [i.name, new ort.Tensor(i.type, i.data as never, i.dims)]));
  const { deviations } = await outputDeviations(fp32, bytes, feeds, mode);
  const worst = deviations
    .map((d) => ({ ...d, relative: d.max === 0 ? 0 : d.max / d.scale }))
    .reduce((a, b) => (b.relative > a.relative ? b : a));
  const tolerance = DEFAULT_TOLERANCE[report.storage];
  return {
    bytes: bytes.byteLength,
    ratio: bytes.byteLength / fp32.byteLength,
    deviation: worst.relative,
    worst,
    tolerance,
    within: worst.relative <= tolerance,
    weights: report.quantized.length,
    inSubgraphs: report.quantized.filter((q) => q.graph !== 'main').length,
  };
}

async function corpus(): Promise<Record<string, unknown>[]> {
  const results: Record<string, unknown>[] = [];
  console.log(
    `\nthird-party corpus, weight-heavy files (≥ ${HEAVY_BYTES / 1000} kB float weights); deviation = largest |quantized − fp32| / largest |fp32| over the outputs, on fedge quantize's generated inputs (batch 1)`,
  );
  console.log(
    `${'file'.padEnd(31)}${'float weights'.padStart(14)}${'fp32 size'.padStart(12)}${'int8 size'.padStart(11)}${'ratio'.padStart(7)}${'deviation'.padStart(11)}${'tol.'.padStart(6)}${'fp16 ratio'.padStart(12)}${'deviation'.padStart(11)}${'tol.'.padStart(6)}`,
  );
  for (const file of readdirSync(CORPUS)
    .filter((f) => f.endsWith('.onnx'))
    .sort()) {
    const fp32 = new Uint8Array(readFileSync(join(CORPUS, file)));
    const floatBytes = floatWeightBytes(fp32);
    if (floatBytes < HEAVY_BYTES) continue;
    const [int8, fp16] = [await measure(fp32, 'weight-only', file), await measure(fp32, 'fp16', file)];
    const pct = (v: number) => `${+(v * 100).toPrecision(2)} %`;
    console.log(
      `${file.padEnd(31)}${floatBytes.toLocaleString('en-US').padStart(14)}${fp32.byteLength.toLocaleString('en-US').padStart(12)}${int8.bytes.toLocaleString('en-US').padStart(11)}${int8.ratio.toFixed(3).padStart(7)}${pct(int8.deviation).padStart(11)}${pct(int8.tolerance).padStart(6)}${fp16.ratio.toFixed(3).padStart(12)}${pct(fp16.deviation).padStart(11)}${pct(fp16.tolerance).padStart(6)}`,
    );
    results.push({ file, floatWeightBytes: floatBytes, fp32Bytes: fp32.byteLength, int8, fp16 });
  }
  for (const r of results) {
    const { worst } = r.int8 as Awaited<ReturnType<typeof measure>>;
    console.log(
      `  ${r.file}: int8's largest deviation is output '${worst.name}', ${worst.max.toExponential(1)} where its largest |fp32 value| is ${worst.scale.toPrecision(2)}`,
    );
  }
  const reached = results.filter((r) => {
    const q = r.int8 as { ratio: number; within: boolean };
    return q.ratio <= TARGET_RATIO && q.within;
  });
  const share = results.length ? reached.length / results.length : 0;
  console.log(
    `\ntarget: ≥ 90 % of weight-heavy files at ≤ ${TARGET_RATIO}× (int8 weight-only) within the tolerance → ${reached.length} of ${results.length} (${Math.round(share * 100)} %)`,
  );
  return results;
}

const only = process.env.BENCH_QUANTIZE;
const latencyResults = only === 'corpus' ? [] : await latency();
const corpusResults = await corpus();
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(
  join(root, 'bench/results/quantize.json'),
  JSON.stringify(
    { date: new Date().toISOString(), runs: RUNS, results: latencyResults, corpus: corpusResults },
    null,
    2,
  ),
);
