/**
 * npm run bench:dp — DP-SGD (Trainer: Poisson sampling, ghost-norm clipping, Gaussian noise) against plain SGD
 * (tfjs autodiff, `model.fit`, the same MLP, batch and backend) in examples/s, on tfjs's WASM and CPU backends in
 * Node; then held-out accuracy of DP training on the 8,000 MNIST digits at ε = 2 and ε = 8 (δ = 1e-5).
 * Writes bench/results/dp.json.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useNodeWasm } from '../client-sdk/training/node-backend.ts';
import { Trainer } from '../client-sdk/training/trainer.ts';
import { buildTfjsModel } from '../federated/model/tfjs-model.ts';
import { loadMnist } from '../models/data/mnist.ts';
import { mnistGabor, mnistGaborWeights, mnistMlp } from '../models/specs.ts';

useNodeWasm();
const { train, test } = loadMnist();
const BATCH = 256;

async function plainExamplesPerSecond(epochs: number): Promise<number> {
  const model = buildTfjsModel(mnistMlp, 1);
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'sparseCategoricalCrossentropy' });
  const x = tf.tensor2d(train.x, [train.n, 784]), y = tf.tensor1d(Float32Array.from(train.y));
  await model.fit(x, y, { batchSize: BATCH, epochs: 1, verbose: 0 }); // warm-up
  const t = performance.now();
  await model.fit(x, y, { batchSize: BATCH, epochs, verbose: 0 });
  const eps = (epochs * train.n) / ((performance.now() - t) / 1000);
  x.dispose(); y.dispose(); model.dispose();
  return eps;
}

async function dpExamplesPerSecond(epochs: number): Promise<number> {
  const trainer = await Trainer.create({ spec: mnistMlp, backend: tf.getBackend() as 'wasm' | 'cpu' });
  const privacy = { l2NormClip: 1, noiseMultiplier: 1.1, delta: 1e-5 };
  await trainer.fit(train, { epochs: 1, batchSize: BATCH, learningRate: 0.1, privacy }); // warm-up
  const r = await trainer.fit(train, { epochs, batchSize: BATCH, learningRate: 0.1, privacy });
  trainer.dispose();
  return r.examplesPerSecond;
}

const results: Record<string, unknown> = { date: new Date().toISOString(), batch: BATCH };
console.log(`DP-SGD vs plain SGD — MNIST MLP 784-256-10, batch ${BATCH}, 8,000 digits\n`);
console.log(`${'backend'.padEnd(8)}${'plain ex/s'.padStart(12)}${'DP-SGD ex/s'.padStart(13)}${'ratio'.padStart(8)}`);
for (const backend of ['wasm', 'cpu'] as const) {
  await tf.setBackend(backend);
  const epochs = backend === 'wasm' ? 3 : 1;
  const plain = await plainExamplesPerSecond(epochs);
  const dp = await dpExamplesPerSecond(epochs);
  console.log(`${backend.padEnd(8)}${plain.toFixed(0).padStart(12)}${dp.toFixed(0).padStart(13)}${(dp / plain).toFixed(2).padStart(8)}`);
  results[backend] = { plainExamplesPerSecond: plain, dpExamplesPerSecond: dp, ratio: dp / plain };
}

// Accuracy at a fixed budget (WASM). Hyperparameters chosen once by hand (see README), not per run.
const RECIPES = [
  // The MLP trained end to end: the best of a small sweep (batch 128–1024, lr 0.002–1, clip 0.5–1, SGD momentum / Adam).
  { model: 'mnist-mlp', epsilon: 2, epochs: 10, batchSize: 128, learningRate: 0.05, l2NormClip: 1 },
  { model: 'mnist-mlp', epsilon: 8, epochs: 20, batchSize: 128, learningRate: 0.05, l2NormClip: 1 },
  // Fixed Gabor features + a trained softmax layer (models/specs.ts mnistGabor): the best of a sweep over
  // batch 256–1024, lr 0.01–4, clip 0.5–10, epochs 15–150.
  { model: 'mnist-gabor', epsilon: 2, epochs: 30, batchSize: 512, learningRate: 0.02, l2NormClip: 5 },
  { model: 'mnist-gabor', epsilon: 8, epochs: 100, batchSize: 512, learningRate: 0.02, l2NormClip: 5 },
];
await tf.setBackend('wasm');
console.log(`\nheld-out accuracy (2,000 digits) after DP-SGD from scratch on the 8,000 training digits, δ = 1e-5:`);
const accuracy: unknown[] = [];
for (const r of RECIPES) {
  const trainer = r.model === 'mnist-mlp'
    ? await Trainer.create({ spec: mnistMlp, backend: 'wasm' })
    : await Trainer.create({ spec: mnistGabor, weights: mnistGaborWeights(), trainableLayers: 1, backend: 'wasm' });
  const fit = await trainer.fit(train, { epochs: r.epochs, batchSize: r.batchSize, learningRate: r.learningRate, optimizer: 'momentum', privacy: { l2NormClip: r.l2NormClip, epsilon: r.epsilon, delta: 1e-5 } });
  const acc = trainer.evaluate(test).accuracy;
  trainer.dispose();
  console.log(`  ${r.model.padEnd(12)} ε = ${r.epsilon}: σ = ${fit.noiseMultiplier!.toFixed(2)}, ${r.epochs} epochs, batch ${r.batchSize}, lr ${r.learningRate} (momentum 0.9), clip ${r.l2NormClip} → ${(acc * 100).toFixed(2)}%  (ε spent ${fit.epsilon!.toFixed(3)}, ${fit.seconds.toFixed(0)} s)`);
  accuracy.push({ ...r, noiseMultiplier: fit.noiseMultiplier, epsilonSpent: fit.epsilon, accuracy: acc, seconds: fit.seconds });
}
results.accuracy = accuracy;
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(join(import.meta.dirname, 'results/dp.json'), JSON.stringify(results, null, 2));
