/**
 * Trainer and DP-SGD (client-sdk/training): ghost-norm clipping equals the per-example definition, training
 * learns, DP runs are accounted and charged to the ledger, bad input is refused, no tensors leak.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { clippedGradientSums, createDenseVars } from '../../client-sdk/training/dense-network.ts';
import { useNodeWasm } from '../../client-sdk/training/node-backend.ts';
import { Trainer, TrainerError } from '../../client-sdk/training/trainer.ts';
import { MemoryLedgerStore, PrivacyBudgetError, PrivacyLedger } from '../../client-sdk/privacy/ledger.ts';
import { MODEL_SPEC_FORMAT, type ModelSpec } from '../../federated/model/model-spec.ts';
import { buildTfjsModel, readTfjsWeights } from '../../federated/model/tfjs-model.ts';
import { loadMnist } from '../../models/data/mnist.ts';
import { mnistCnn, mnistMlp } from '../../models/specs.ts';

const small: ModelSpec = {
  format: MODEL_SPEC_FORMAT, name: 'small', inputShape: [6], inputName: 'input', outputName: 'p', labels: ['a', 'b', 'c'],
  layers: [{ type: 'dense', units: 5, activation: 'tanh' }, { type: 'dense', units: 4, activation: 'relu' }, { type: 'dense', units: 3, activation: 'softmax' }],
};

beforeAll(() => useNodeWasm());

describe('ghost-norm clipping', () => {
  it('equals clipping each example’s own autodiff gradient and summing', async () => {
    await tf.setBackend('cpu');
    const model = buildTfjsModel(small, 4);
    const weights = readTfjsWeights(small, model);
    const vars = createDenseVars(small, weights, 3);
    const n = 7, clip = 0.3;
    const x = tf.randomNormal([n, 6], 0, 1, 'float32', 9) as tf.Tensor2D;
    const y = tf.tensor1d([0, 1, 2, 0, 1, 2, 1], 'int32');
    const { sums } = clippedGradientSums(vars, x, y, clip);
    // Reference: per-example gradients of the same loss by autodiff on the tfjs model, clipped one by one.
    const expected = weights.map((w) => tf.zeros(w.shape));
    for (let i = 0; i < n; i++) {
      const xi = tf.slice(x, [i, 0], [1, 6]);
      const yi = tf.oneHot(tf.slice(y, [i], [1]), 3);
      const { grads } = tf.variableGrads(() => tf.neg(tf.sum(tf.mul(yi, tf.log(model.predict(xi) as tf.Tensor)))) as tf.Scalar, model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
      const g = Object.values(grads);
      const norm = Math.sqrt(g.reduce((s, t) => s + tf.sum(tf.square(t)).dataSync()[0]!, 0));
      const c = Math.min(1, clip / norm);
      g.forEach((t, k) => (expected[k] = tf.add(expected[k]!, tf.mul(t, c))));
    }
    sums.forEach((s, k) => expect(tf.max(tf.abs(tf.sub(s, expected[k]!))).dataSync()[0]).toBeLessThan(1e-5));
    model.dispose();
  });
});

describe('Trainer', () => {
  const { train, test } = loadMnist();
  const part = { x: train.x.subarray(0, 2000 * 784), y: train.y.subarray(0, 2000) };

  it('learns MNIST on the WASM backend, reports it, and leaks no tensors across epochs', async () => {
    const trainer = await Trainer.create({ spec: mnistMlp, backend: 'auto' });
    expect(trainer.backend).toBe('wasm'); // Node: WebGPU/WebGL are not registered here
    const before = tf.memory().numTensors;
    const progress: number[] = [];
    const r = await trainer.fit(part, { epochs: 2, batchSize: 64, learningRate: 0.002, optimizer: 'adam', onProgress: (p) => progress.push(p.epoch) });
    expect(tf.memory().numTensors).toBe(before);
    expect(progress.at(-1)).toBe(2);
    expect(r.examples).toBe(2 * 2000);
    expect(trainer.evaluate({ x: test.x.subarray(0, 500 * 784), y: test.y.subarray(0, 500) }).accuracy).toBeGreaterThan(0.85);
    trainer.dispose();
  });

  it('fine-tunes only the last k layers when asked', async () => {
    const trainer = await Trainer.create({ spec: mnistMlp, trainableLayers: 1 });
    const w0 = trainer.weights();
    await trainer.fit(part, { epochs: 1, batchSize: 100, learningRate: 0.01 });
    const w1 = trainer.weights();
    expect(w1[0]!.values).toEqual(w0[0]!.values); // first dense kernel frozen
    expect(w1[2]!.values).not.toEqual(w0[2]!.values); // last dense kernel trained
    trainer.dispose();
  });

  it('DP-SGD: derives σ for the target ε, charges the ledger, refuses a run over budget and leaves the ledger as it was', async () => {
    const ledger = new PrivacyLedger(new MemoryLedgerStore(), { epsilon: 2.2, delta: 1e-5 });
    const trainer = await Trainer.create({ spec: mnistMlp });
    const privacy = { l2NormClip: 1, epsilon: 2, delta: 1e-5, ledger, source: 'photos' };
    const r = await trainer.fit(part, { epochs: 1, batchSize: 100, learningRate: 0.1, privacy });
    expect(r.epsilon).toBeLessThanOrEqual(2);
    expect(r.epsilon).toBeGreaterThan(1.95);
    expect(r.budget!.spent).toBeCloseTo(r.epsilon!, 6);
    const spent = await ledger.spent('photos');
    const again = await trainer.fit(part, { epochs: 1, batchSize: 100, learningRate: 0.1, privacy }).catch((e) => e);
    expect(again).toBeInstanceOf(PrivacyBudgetError);
    expect(again.message).toMatch(/'photos' would be exceeded: .* of 2.2 .*; 0\.2\d\d is left/);
    expect(await ledger.spent('photos')).toBe(spent);
    expect(await ledger.spent('other')).toBe(0); // budgets are per data source
    trainer.dispose();
  });

  it('refuses bad input with a TrainerError that says what is wrong', async () => {
    const trainer = await Trainer.create({ spec: mnistMlp });
    await expect(trainer.fit({ x: new Float32Array(10), y: [1] }, { epochs: 1, batchSize: 1, learningRate: 0.1 })).rejects.toThrow(/x has 10 values, expected 1 × 784/);
    await expect(trainer.fit({ x: new Float32Array(784), y: [10] }, { epochs: 1, batchSize: 1, learningRate: 0.1 })).rejects.toThrow(/label 10 is not a class index 0..9/);
    await expect(trainer.fit(part, { epochs: 0, batchSize: 1, learningRate: 0.1 })).rejects.toThrow(TrainerError);
    await expect(trainer.fit(part, { epochs: 1, batchSize: 1, learningRate: 0.1, privacy: { l2NormClip: 1, delta: 1e-5 } })).rejects.toThrow(/noiseMultiplier or epsilon/);
    await expect(trainer.fit([], { epochs: 1, batchSize: 1, learningRate: 0.1 })).rejects.toThrow(/no examples/);
    await expect(Trainer.create({ spec: mnistCnn })).rejects.toThrow(/conv2d: per-example clipping by ghost norms covers dense layers only/);
    trainer.dispose();
    expect(() => trainer.weights()).toThrow(/disposed/);
  });

  it('cancels cleanly on an AbortSignal', async () => {
    const trainer = await Trainer.create({ spec: mnistMlp });
    const ctl = new AbortController();
    const run = trainer.fit(part, { epochs: 5, batchSize: 50, learningRate: 0.01, onProgress: (p) => p.step === 3 && ctl.abort(), signal: ctl.signal });
    await expect(run).rejects.toThrow(/cancelled/);
    trainer.dispose();
  });
});
