/**
 * One spec + one set of weights → the tfjs model (training) and exportOnnx (serving) compute the same function:
 * outputs agree within 1e-5 on onnxruntime-node and onnxruntime-web (WASM), for the dense MLP, CNNs (same and
 * valid padding, strides, pooling) and the hashed-text classifier. Also the flat-weights order and spec checks.
 */
import * as tf from '@tensorflow/tfjs';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';
import { flattenWeights, unflattenWeights } from '../../../federated/model/flat-weights.ts';
import {
  MODEL_SPEC_FORMAT,
  type ModelSpec,
  ModelSpecError,
  parameterCount,
  parameterShapes,
  parseModelSpec,
} from '../../../federated/model/model-spec.ts';
import { exportOnnx } from '../../../federated/model/onnx-export.ts';
import { importOnnxWeights } from '../../../federated/model/onnx-import.ts';
import { accuracy } from '../../../federated/model/accuracy.ts';
import { OnnxFormatError } from '../../../federated/model/onnx-graph.ts';
import { quantizeModel } from '../../../federated/model/quantize.ts';
import { hashTexts } from '../../../federated/model/text-features.ts';
import { buildTfjsModel, readTfjsWeights, writeTfjsWeights } from '../../../federated/model/tfjs-model.ts';
import { seededRandom } from '../../../federated/seeded-random.ts';
import { mnistCnn, mnistMlp, spamBow } from '../../../models/specs.ts';

const cnnVariants: ModelSpec = {
  format: MODEL_SPEC_FORMAT,
  name: 'cnn-variants',
  inputShape: [13, 11, 2],
  inputName: 'pixels',
  outputName: 'scores',
  labels: ['a', 'b', 'c'],
  layers: [
    { type: 'conv2d', filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'tanh' },
    { type: 'conv2d', filters: 5, kernelSize: 2, padding: 'valid', activation: 'sigmoid' },
    { type: 'maxPool2d', poolSize: 2, strides: 1 },
    { type: 'flatten' },
    { type: 'dense', units: 7, activation: 'linear' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
};

const SPECS = [mnistMlp, mnistCnn, spamBow, cnnVariants];

function examples(spec: ModelSpec, n: number): Float32Array {
  if (spec.features) {
    const texts = [
      'Cheap meds!!! Buy now $$$',
      'Meeting moved to 3pm, see agenda',
      'FREE money click here',
      'patch attached for the build',
    ];
    return hashTexts(
      Array.from({ length: n }, (_, i) => texts[i % texts.length]!),
      spec.features,
    );
  }
  const rand = seededRandom(11);
  return Float32Array.from({ length: n * spec.inputShape.reduce((a, b) => a * b, 1) }, () => rand());
}

/** tfjs with random (non-zero-bias) weights, so every parameter matters to the output. */
function randomModel(spec: ModelSpec) {
  const model = buildTfjsModel(spec, 3);
  const rand = seededRandom(17);
  const weights = readTfjsWeights(spec, model).map((w) => ({
    ...w,
    values: w.values.map((v) => v + (rand() - 0.5) * 0.1),
  }));
  writeTfjsWeights(model, weights);
  return { model, weights };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  ortWeb.env.wasm.numThreads = 1;
});

describe('spec → tfjs → ONNX round trip', () => {
  it.each(SPECS.map((s) => [s.name, s] as const))(
    '%s: ONNX on onnxruntime-node and -web equals tfjs within 1e-5',
    async (_name, spec) => {
      const { model, weights } = randomModel(spec);
      const n = 5;
      const x = examples(spec, n);
      const expected = tf.tidy(() => (model.predict(tf.tensor(x, [n, ...spec.inputShape])) as tf.Tensor).dataSync());
      model.dispose();
      const bytes = exportOnnx(spec, weights);
      for (const ort of [ortNode, ortWeb] as const) {
        const session = await (ort as typeof ortNode).InferenceSession.create(bytes);
        expect(session.inputNames).toEqual([spec.inputName]);
        expect(session.outputNames).toEqual([spec.outputName]);
        const out = await session.run({
          [spec.inputName]: new (ort as typeof ortNode).Tensor('float32', x, [n, ...spec.inputShape]),
        });
        const got = out[spec.outputName]!;
        expect(got.dims).toEqual([n, spec.labels.length]);
        expect(maxDiff(got.data as Float32Array, expected)).toBeLessThan(1e-5);
        await session.release();
      }
    },
  );
});

describe('importOnnxWeights', () => {
  it.each(SPECS.map((s) => [s.name, s] as const))(
    '%s: reads back exactly the weights exportOnnx wrote (conv kernels back in the tfjs layout)',
    (_name, spec) => {
      const { model, weights } = randomModel(spec);
      model.dispose();
      const back = importOnnxWeights(spec, exportOnnx(spec, weights));
      expect(back.map((w) => [w.name, w.shape])).toEqual(weights.map((w) => [w.name, w.shape]));
      back.forEach((w, i) => expect(w.values).toEqual(weights[i]!.values));
    },
  );

  it('refuses a quantized model and a model exported for another spec', () => {
    const { model, weights } = randomModel(mnistMlp);
    model.dispose();
    const fp32 = exportOnnx(mnistMlp, weights);
    expect(() => importOnnxWeights(mnistMlp, quantizeModel(fp32).bytes)).toThrow(OnnxFormatError);
    expect(() => importOnnxWeights(mnistCnn, fp32)).toThrow(/no initializer '0_conv2d\/kernel'/);
  });
});

describe('accuracy', () => {
  it('counts rows whose most probable class is the label, and refuses a shape that does not split into rows', () => {
    const p = [0.1, 0.7, 0.2, /**/ 0.5, 0.3, 0.2, /**/ 0.2, 0.2, 0.6, /**/ 0.3, 0.3, 0.4];
    expect(accuracy(p, [1, 0, 2, 0])).toBe(0.75);
    expect(() => accuracy(p.slice(1), [1, 0, 2, 0])).toThrow(RangeError);
  });
});

describe('flat weights', () => {
  it('are layer by layer, kernel before bias, row-major in the tfjs layout, and round-trip exactly', () => {
    const shapes = parameterShapes(mnistCnn);
    expect(shapes.map((p) => `${p.name}[${p.shape}]`)).toEqual([
      '0_conv2d/kernel[3,3,1,16]',
      '0_conv2d/bias[16]',
      '2_conv2d/kernel[3,3,16,32]',
      '2_conv2d/bias[32]',
      '6_dense/kernel[800,128]',
      '6_dense/bias[128]',
      '8_dense/kernel[128,10]',
      '8_dense/bias[10]',
    ]);
    const { model, weights } = randomModel(mnistCnn);
    model.dispose();
    const flat = flattenWeights(mnistCnn, weights);
    expect(flat.length).toBe(parameterCount(mnistCnn));
    // The first dense kernel starts right after both conv layers' parameters.
    expect(flat[144 + 16 + 4608 + 32]).toBe(weights[4]!.values[0]);
    const back = unflattenWeights(mnistCnn, flat);
    back.forEach((w, i) => expect(w.values).toEqual(weights[i]!.values));
  });

  it('refuses a vector or tensor list of the wrong size, naming what was expected', () => {
    expect(() => unflattenWeights(mnistMlp, new Float32Array(10))).toThrow(/expected 203530 values, got 10/);
    const { model, weights } = randomModel(mnistMlp);
    model.dispose();
    expect(() => flattenWeights(mnistMlp, weights.slice(1))).toThrow(ModelSpecError);
    expect(() =>
      flattenWeights(mnistMlp, [weights[0]!, { ...weights[1]!, values: new Float32Array(3) }, ...weights.slice(2)]),
    ).toThrow(/1_dense|0_dense\/bias/);
  });
});

describe('parseModelSpec', () => {
  const base = JSON.parse(JSON.stringify(mnistMlp)) as Record<string, unknown>;
  it.each([
    ['a wrong format', { ...base, format: 'x' }, /format must be "fedge.model\/v1"/],
    ['dense on an image', { ...base, inputShape: [28, 28, 1] }, /dense needs a flat input.*add a flatten layer/],
    [
      'a kernel larger than the input',
      {
        ...base,
        inputShape: [2, 2, 1],
        layers: [
          { type: 'conv2d', filters: 2, kernelSize: 3, padding: 'valid', activation: 'relu' },
          { type: 'flatten' },
          { type: 'dense', units: 10, activation: 'softmax' },
        ],
      },
      /kernel 3 does not fit/,
    ],
    [
      'labels that do not match the last layer',
      { ...base, labels: ['a', 'b'] },
      /final layer gives \[10\] but there are 2 labels/,
    ],
    ['an unknown layer', { ...base, layers: [{ type: 'lstm' }] }, /unknown layer type/],
    [
      'text features that disagree with inputShape',
      { ...JSON.parse(JSON.stringify(spamBow)), inputShape: [100] },
      /hashed text features give \[4096\]/,
    ],
    [
      'bad n-grams',
      { ...JSON.parse(JSON.stringify(spamBow)), features: { ...spamBow.features, ngrams: 3 } },
      /ngrams must be 1 or 2/,
    ],
    [
      'a dropout rate of 1',
      { ...base, layers: [{ type: 'dropout', rate: 1 }, ...(base.layers as unknown[])] },
      /rate: expected a number in \[0, 1\)/,
    ],
    [
      'a fractional unit count',
      { ...base, layers: [{ type: 'dense', units: 2.5, activation: 'relu' }] },
      /units: expected a positive integer/,
    ],
  ])('refuses %s', (_what, spec, message) => {
    expect(() => parseModelSpec(spec)).toThrow(ModelSpecError);
    expect(() => parseModelSpec(spec)).toThrow(message);
  });

  it('accepts the default models’ specs unchanged', () => {
    for (const spec of [mnistMlp, mnistCnn, spamBow])
      expect(parseModelSpec(JSON.parse(JSON.stringify(spec)))).toEqual(spec);
  });
});
