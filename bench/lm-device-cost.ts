/**
 * A device round's cost for the language model:
 *   npx node bench/lm-device-cost.ts [--steps 3] [--modes lora:4,last:1,all] [--micro 1]
 * On the default model (fedge-gpt: .lm-build/weights.bin + weights.json from models/fedge-gpt/pretrain.py when present,
 * else GPT-2's init of the same spec — the cost does not depend on the values), tfjs's WASM backend in Node, one
 * batch of 8 sequences of 64 positions (65 tokens) per step, for each trainable mode: ms per step, plain and under
 * DP-SGD (q = 1 so every step clips 8 sequences), peak tf.memory().numBytes during a step (tf.profile: weights,
 * optimizer state and the step's intermediates; tfjs counts a reshape's or a saved clone's shared buffer again, so
 * this over-counts), the WASM heap's size after the runs (it only grows: the real high-water mark of the backend's
 * memory, so each mode runs in a process of its own), and the update's size (float32 values and bytes).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { LanguageModelTrainer, type TrainableSpec } from '../client-sdk/training/lm-trainer.ts';
import { useNodeWasm } from '../client-sdk/training/node-backend.ts';
import {
  type DecoderSpec,
  decoderParameterCount,
  initDecoderWeights,
  parseDecoderSpec,
} from '../federated/model/decoder-spec.ts';
import { MODEL_SPEC_FORMAT } from '../federated/model/model-spec.ts';
import { seededRandom } from '../federated/seeded-random.ts';
import { readWeights } from '../models/fedge-gpt/export.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const BUILD = join(ROOT, '.lm-build');
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const STEPS = Number(arg('steps', '3'));
const MODES = arg('modes', 'lora:4,last:1,all').split(',') as TrainableSpec[];
const MICRO = Number(arg('micro', '1'));
const HEADER =
  '| trainable | update values (of the model) | update float32 | ms/step plain | ms/step DP-SGD | peak numBytes MiB plain / DP | WASM heap MiB |';
const BATCH = 8;
const POSITIONS = 64;

const fedgeGpt: DecoderSpec = {
  format: MODEL_SPEC_FORMAT,
  kind: 'decoder',
  name: 'fedge-gpt',
  vocabSize: 4096,
  contextLength: 256,
  layers: 4,
  heads: 4,
  embedDim: 256,
  mlpDim: 1024,
  layerNormEpsilon: 1e-5,
  activation: 'gelu_tanh',
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: 0,
};
const pretrained = existsSync(join(BUILD, 'weights.bin')) && existsSync(join(BUILD, 'spec.json'));
const spec = pretrained ? parseDecoderSpec(JSON.parse(readFileSync(join(BUILD, 'spec.json'), 'utf8'))) : fedgeGpt;
const weights = pretrained ? readWeights(BUILD, spec) : initDecoderWeights(spec, 1);
const random = seededRandom(33);
const sequences = Array.from({ length: BATCH }, () =>
  Int32Array.from({ length: POSITIONS + 1 }, () => 3 + Math.floor(random() * (spec.vocabSize - 3))),
);
const fullValues = decoderParameterCount(spec);

if (MODES.length > 1) {
  // One process per mode: the WASM heap never shrinks, so its size is a per-process high-water mark.
  const rows = MODES.map((mode) => {
    const args = [
      ...process.execArgv,
      process.argv[1]!,
      '--steps',
      String(STEPS),
      '--modes',
      mode,
      '--micro',
      String(MICRO),
    ];
    const out = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    process.stdout.write(out);
    return out.trim().split('\n').at(-1)!;
  });
  console.log(`\n${HEADER}\n|---|---|---|---|---|---|---|\n${rows.join('\n')}`);
  process.exit(0);
}
useNodeWasm();
console.log(
  `${spec.name} (${fullValues.toLocaleString('en')} parameters, ${pretrained ? 'pretrained weights' : 'init weights'}), ` +
    `batch ${BATCH} × ${POSITIONS} positions, micro-batch ${MICRO}, ${STEPS} timed steps after 1 warm-up, ` +
    `tfjs WASM in Node ${process.version}`,
);
for (const trainable of MODES) {
  const t = await LanguageModelTrainer.create({ spec, weights, trainable, backend: 'wasm' });
  const fit = (privacy?: { l2NormClip: number; noiseMultiplier: number; delta: number }, epochs = 1) =>
    t.fit(sequences, { epochs, batchSize: BATCH, learningRate: 1e-4, optimizer: 'adam', privacy, microBatch: MICRO });
  const dp = { l2NormClip: 1, noiseMultiplier: 1, delta: 1e-5 };
  const result: Record<string, number> = {};
  for (const [label, privacy] of [
    ['plain', undefined],
    ['dp', dp],
  ] as const) {
    await fit(privacy); // warm-up: kernels, the optimizer's first slots
    const profile = await tf.profile(async () => {
      await fit(privacy);
    });
    result[`${label}PeakMB`] = profile.peakBytes / 2 ** 20;
    const started = performance.now();
    await fit(privacy, STEPS);
    result[`${label}Ms`] = (performance.now() - started) / STEPS;
  }
  const values = t.update().length;
  const heap = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length / 2 ** 20;
  console.log(
    `| ${trainable} | ${values.toLocaleString('en')} (${((100 * values) / fullValues).toFixed(2)} %) | ` +
      `${((values * 4) / 1e6).toFixed(3)} MB | ${result.plainMs!.toFixed(0)} | ${result.dpMs!.toFixed(0)} | ` +
      `${result.plainPeakMB!.toFixed(0)} / ${result.dpPeakMB!.toFixed(0)} | ${heap.toFixed(0)} |`,
  );
  t.dispose();
}
