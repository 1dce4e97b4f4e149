/**
 * Trainer and DP-SGD (client-sdk/training): ghost-norm clipping equals the per-example definition, training
 * learns, DP runs are accounted and charged to the ledger, bad input is refused, no tensors leak.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  clippedGradientSums,
  createNetwork,
  disposeNetwork,
  frozenFeatures,
} from '../../../client-sdk/training/network.ts';
import { useNodeWasm } from '../../../client-sdk/training/node-backend.ts';
import { Trainer, TrainerError } from '../../../client-sdk/training/trainer.ts';
import { MemoryLedgerStore, PrivacyBudgetError, PrivacyLedger } from '../../../client-sdk/privacy/ledger.ts';
import { MODEL_SPEC_FORMAT, type ModelSpec } from '../../../federated/model/model-spec.ts';
import { buildTfjsModel, readTfjsWeights } from '../../../federated/model/tfjs-model.ts';
import { loadMnist } from '../../../models/data/mnist.ts';
import { mnistCnn, mnistGabor, mnistGaborWeights, mnistMlp } from '../../../models/specs.ts';

const small: ModelSpec = {
  format: MODEL_SPEC_FORMAT,
  name: 'small',
  inputShape: [6],
  inputName: 'input',
  outputName: 'p',
  labels: ['a', 'b', 'c'],
  layers: [
    { type: 'dense', units: 5, activation: 'tanh' },
    { type: 'dense', units: 4, activation: 'relu' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
};

beforeAll(() => useNodeWasm());

const smallCnn: ModelSpec = {
  format: MODEL_SPEC_FORMAT,
  name: 'small-cnn',
  inputShape: [6, 6, 1],
  inputName: 'input',
  outputName: 'p',
  labels: ['a', 'b', 'c'],
  layers: [
    { type: 'conv2d', filters: 2, kernelSize: 3, padding: 'same', activation: 'relu' },
    { type: 'maxPool2d', poolSize: 2 },
    { type: 'conv2d', filters: 3, kernelSize: 2, padding: 'valid', activation: 'tanh' },
    { type: 'flatten' },
    { type: 'dense', units: 4, activation: 'relu' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
};

/**
 * The definition DP-SGD's analysis assumes (Abadi et al. 2016, Algorithm 1): each example's own gradient (tfjs
 * autodiff on the tfjs model built from the same spec), clipped to norm C, summed. Only the last `trained` layers.
 */
function referenceClippedSums(
  spec: ModelSpec,
  model: tf.LayersModel,
  x: tf.Tensor,
  y: tf.Tensor1D,
  clip: number,
  trained: number,
): tf.Tensor[] {
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val).slice(-2 * trained);
  const expected = vars.map((v) => tf.zerosLike(v) as tf.Tensor);
  for (let i = 0; i < x.shape[0]!; i++) {
    const xi = tf.reshape(tf.slice(x, [i], [1]), [1, ...spec.inputShape]);
    const yi = tf.oneHot(tf.slice(y, [i], [1]), spec.labels.length);
    const { grads } = tf.variableGrads(
      () => tf.neg(tf.sum(tf.mul(yi, tf.log(model.predict(xi) as tf.Tensor)))) as tf.Scalar,
      vars,
    );
    const g = vars.map((v) => grads[v.name]!);
    const norm = Math.sqrt(g.reduce((s, t) => s + tf.sum(tf.square(t)).dataSync()[0]!, 0));
    g.forEach((t, k) => (expected[k] = tf.add(expected[k]!, tf.mul(t, Math.min(1, clip / norm)))));
  }
  return expected;
}

describe('per-example clipping', () => {
  const cases = [
    { name: 'ghost norms, dense network', spec: small, trained: 3, rule: 'ghost' },
    { name: 'exact per-example autodiff, trained conv layers', spec: smallCnn, trained: 4, rule: 'per-example' },
    { name: 'ghost norms behind a frozen conv front', spec: smallCnn, trained: 2, rule: 'ghost' },
  ] as const;
  for (const c of cases) {
    it(`${c.name}: equals clipping each example’s own autodiff gradient and summing`, async () => {
      await tf.setBackend('cpu');
      const model = buildTfjsModel(c.spec, 4);
      const net = createNetwork(c.spec, readTfjsWeights(c.spec, model), c.trained);
      expect(net.clipping).toBe(c.rule);
      const n = 7,
        clip = 0.3,
        features = c.spec.inputShape.reduce((a, b) => a * b, 1);
      const x = tf.randomNormal([n, features], 0, 1, 'float32', 9) as tf.Tensor2D;
      const y = tf.tensor1d([0, 1, 2, 0, 1, 2, 1], 'int32');
      const { sums } = clippedGradientSums(net, frozenFeatures(net, x), y, clip);
      const expected = referenceClippedSums(c.spec, model, x, y, clip, c.trained);
      expect(sums.length).toBe(expected.length);
      sums.forEach((s, k) => expect(tf.max(tf.abs(tf.sub(s, expected[k]!))).dataSync()[0]).toBeLessThan(1e-5));
      model.dispose();
      disposeNetwork(net);
    });
  }
});

describe('Trainer', () => {
  const { train, test } = loadMnist();
  const part = { x: train.x.subarray(0, 2000 * 784), y: train.y.subarray(0, 2000) };

  it('learns MNIST on the WASM backend, reports it, and leaks no tensors across epochs', async () => {
    const trainer = await Trainer.create({ spec: mnistMlp, backend: 'auto' });
    expect(trainer.backend).toBe('wasm'); // Node: WebGPU/WebGL are not registered here
    const before = tf.memory().numTensors;
    const progress: number[] = [];
    const r = await trainer.fit(part, {
      epochs: 2,
      batchSize: 64,
      learningRate: 0.002,
      optimizer: 'adam',
      onProgress: (p) => progress.push(p.epoch),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(progress.at(-1)).toBe(2);
    expect(r.examples).toBe(2 * 2000);
    expect(trainer.evaluate({ x: test.x.subarray(0, 500 * 784), y: test.y.subarray(0, 500) }).accuracy).toBeGreaterThan(
      0.85,
    );
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

  it('DP-SGD behind a frozen Gabor front: ghost clipping, the filters stay fixed, the model learns', async () => {
    const trainer = await Trainer.create({ spec: mnistGabor, weights: mnistGaborWeights(), trainableLayers: 1 });
    expect(trainer.clipping).toBe('ghost');
    const before = tf.memory().numTensors;
    const r = await trainer.fit(part, {
      epochs: 5,
      batchSize: 200,
      learningRate: 0.02,
      optimizer: 'momentum',
      privacy: { l2NormClip: 5, epsilon: 8, delta: 1e-5 },
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.epsilon).toBeLessThanOrEqual(8);
    expect(trainer.weights()[0]!.values).toEqual(mnistGaborWeights()[0]!.values);
    expect(trainer.evaluate({ x: test.x.subarray(0, 500 * 784), y: test.y.subarray(0, 500) }).accuracy).toBeGreaterThan(
      0.8,
    );
    trainer.dispose();
  });

  it('DP-SGD with trained conv layers: exact per-example clipping, no leaks', async () => {
    const trainer = await Trainer.create({ spec: mnistCnn });
    expect(trainer.clipping).toBe('per-example');
    const before = tf.memory().numTensors;
    const few = { x: train.x.subarray(0, 64 * 784), y: train.y.subarray(0, 64) };
    const w0 = trainer.weights()[0]!.values;
    const r = await trainer.fit(few, {
      epochs: 1,
      batchSize: 16,
      learningRate: 0.05,
      privacy: { l2NormClip: 1, noiseMultiplier: 1, delta: 1e-5 },
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.steps).toBe(4);
    expect(trainer.weights()[0]!.values).not.toEqual(w0); // the first conv kernel trained
    trainer.dispose();
  });

  it('refuses bad input with a TrainerError that says what is wrong', async () => {
    const trainer = await Trainer.create({ spec: mnistMlp });
    await expect(
      trainer.fit({ x: new Float32Array(10), y: [1] }, { epochs: 1, batchSize: 1, learningRate: 0.1 }),
    ).rejects.toThrow(/x has 10 values, expected 1 × 784/);
    await expect(
      trainer.fit({ x: new Float32Array(784), y: [10] }, { epochs: 1, batchSize: 1, learningRate: 0.1 }),
    ).rejects.toThrow(/label 10 is not a class index 0..9/);
    await expect(trainer.fit(part, { epochs: 0, batchSize: 1, learningRate: 0.1 })).rejects.toThrow(TrainerError);
    await expect(
      trainer.fit(part, { epochs: 1, batchSize: 1, learningRate: 0.1, privacy: { l2NormClip: 1, delta: 1e-5 } }),
    ).rejects.toThrow(/noiseMultiplier or epsilon/);
    await expect(trainer.fit([], { epochs: 1, batchSize: 1, learningRate: 0.1 })).rejects.toThrow(/no examples/);
    const noSoftmax = {
      ...small,
      layers: [small.layers[0]!, { type: 'dense' as const, units: 3, activation: 'linear' as const }],
    };
    await expect(Trainer.create({ spec: noSoftmax })).rejects.toThrow(/last layer must be dense with softmax/);
    await expect(Trainer.create({ spec: mnistMlp, trainableLayers: 3 })).rejects.toThrow(
      /trainableLayers must be 'all' or 1..2, got 3/,
    );
    trainer.dispose();
    expect(() => trainer.weights()).toThrow(/disposed/);
  });

  it('cancels cleanly on an AbortSignal', async () => {
    const trainer = await Trainer.create({ spec: mnistMlp });
    const ctl = new AbortController();
    const run = trainer.fit(part, {
      epochs: 5,
      batchSize: 50,
      learningRate: 0.01,
      onProgress: (p) => p.step === 3 && ctl.abort(),
      signal: ctl.signal,
    });
    await expect(run).rejects.toThrow(/cancelled/);
    trainer.dispose();
  });
});
