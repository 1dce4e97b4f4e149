/**
 * Trains a default model reproducibly and writes models/<name>/{model.fp32.onnx, model.int8.onnx, card.json}.
 *   node models/train.ts <mnist-mlp|mnist-cnn|spam-bow> [--epochs N]
 * Fixed seeds for the split, initialisation and shuffling; a progress bar per epoch with held-out accuracy.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { seededRandom, shuffledIndices } from '../federated/seeded-random.ts';
import { type Examples, RECIPES } from './recipes.ts';
import { selectBackend } from '../client-sdk/training/backend.ts';
import { useNodeWasm } from '../client-sdk/training/node-backend.ts';
import { progressBar } from './progress.ts';
import { buildTfjsModel, readTfjsWeights, writeTfjsWeights } from '../federated/model/tfjs-model.ts';
import type { NamedWeight } from '../federated/model/model-spec.ts';
import { exportOnnx } from '../federated/model/onnx-export.ts';
import { writeCard } from './model-card.ts';

export async function train(name: string, epochsOverride?: number): Promise<void> {
  const recipe = RECIPES[name];
  if (!recipe) throw new Error(`unknown model '${name}'; known: ${Object.keys(RECIPES).join(', ')}`);
  const { spec } = recipe;
  const epochs = epochsOverride ?? recipe.epochs;
  useNodeWasm();
  const backend = await selectBackend(recipe.backend);
  const { train: data, test } = recipe.load();
  const features = spec.inputShape.reduce((a, b) => a * b, 1);
  const model = buildTfjsModel(spec, 7);
  const optimizer = tf.train.adam(recipe.lr);
  model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy' });
  const rand = seededRandom(99);
  const started = performance.now();
  const command = `node models/train.ts ${name}${epochsOverride ? ` --epochs ${epochs}` : ''}`;

  const accuracy = (set: Examples) =>
    tf.tidy(() => {
      const pred = (model.predict(tf.tensor(set.x, [set.n, ...spec.inputShape])) as tf.Tensor).argMax(-1).dataSync();
      let ok = 0;
      for (let i = 0; i < set.n; i++) if (pred[i] === set.y[i]) ok++;
      return ok / set.n;
    });

  let averaged: NamedWeight[] | undefined;
  let averagedCount = 0;
  const averageFrom = epochs - Math.min(recipe.averageLastEpochs, epochs);
  for (let epoch = 0; epoch < epochs; epoch++) {
    // Linear decay: settles the weights at the end of a short run (Adam's step size otherwise keeps them jittering).
    const lr = recipe.lr * (1 - (1 - recipe.finalLrFactor) * (epochs > 1 ? epoch / (epochs - 1) : 0));
    (optimizer as unknown as { learningRate: number }).learningRate = lr;
    const order = shuffledIndices(data.n, 1000 + epoch);
    const xs = new Float32Array(data.n * features),
      ys = new Float32Array(data.n);
    order.forEach((k, row) => {
      xs.set(data.x.subarray(k * features, (k + 1) * features), row * features);
      ys[row] = data.y[k]!;
    });
    const x = recipe.augment ? recipe.augment(xs, data.n, rand) : xs;
    const xt = tf.tensor(x, [data.n, ...spec.inputShape]),
      yt = tf.tensor(ys, [data.n]);
    const bar = progressBar(
      `[${name}] epoch ${String(epoch + 1).padStart(2)}/${epochs}`,
      Math.ceil(data.n / recipe.batch),
    );
    const h = await model.fit(xt, yt, {
      batchSize: recipe.batch,
      epochs: 1,
      shuffle: false,
      verbose: 0,
      callbacks: { onBatchEnd: async (batch) => bar.update(batch + 1) },
    });
    xt.dispose();
    yt.dispose();
    const secs = ((performance.now() - started) / 1000).toFixed(0);
    bar.done(
      `loss ${(h.history.loss![0] as number).toFixed(4)}  held-out ${(accuracy(test) * 100).toFixed(2)}%  lr ${lr.toExponential(1)}  ${secs}s ${backend}`,
    );
    if (epoch >= averageFrom) {
      // Running mean of the end-of-epoch weights (SWA): a flatter point than any single epoch's.
      const now = readTfjsWeights(spec, model);
      averagedCount++;
      averaged = averaged
        ? averaged.map((a, i) => ({
            ...a,
            values: a.values.map((v, j) => v + (now[i]!.values[j]! - v) / averagedCount),
          }))
        : now;
    }
  }
  if (averagedCount > 1) {
    writeTfjsWeights(model, averaged!);
    console.log(
      `[${name}] averaged the weights of the last ${averagedCount} epochs: held-out ${(accuracy(test) * 100).toFixed(2)}%`,
    );
  }

  const weights = readTfjsWeights(spec, model);
  const fp32 = exportOnnx(spec, weights, { metadata: { 'fedge.training': command } });
  const dir = new URL(`./${name}/`, import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL('model.fp32.onnx', dir), fp32);
  const card = {
    name,
    spec,
    data: recipe.data,
    training: {
      command,
      epochs,
      batchSize: recipe.batch,
      optimizer: `adam(${recipe.lr})${recipe.finalLrFactor !== 1 ? `, linear decay to ×${recipe.finalLrFactor}` : ''}`,
      ...(recipe.augmentation ? { augmentation: recipe.augmentation } : {}),
      ...(recipe.averageLastEpochs > 1
        ? { weightAveraging: `mean of the last ${recipe.averageLastEpochs} epochs' weights (SWA)` }
        : {}),
      backend,
      seconds: Math.round((performance.now() - started) / 1000),
    },
  };
  writeFileSync(new URL('card.json', dir), `${JSON.stringify(card, null, 2)}\n`);
  model.dispose();
  await writeCard(name, test);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const names = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--epochs');
  const epochsArg = process.argv.indexOf('--epochs');
  const epochs = epochsArg > 0 ? Number(process.argv[epochsArg + 1]) : undefined;
  if (!names.length || names.some((n) => !RECIPES[n]) || (epochs !== undefined && !(epochs > 0))) {
    console.error(`usage: node models/train.ts <${Object.keys(RECIPES).join('|')}>… [--epochs N]`);
    process.exit(2);
  }
  for (const n of names) await train(n, epochs);
}
