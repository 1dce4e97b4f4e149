/**
 * Head detection and surgery (federated/model/head/) on graphs from PyTorch (test/fixtures/pytorch-heads/), on
 * Fedge's own served models (fp32 and int8), and on small graphs built here for the rarer Gemm forms. For each:
 * the body run on onnxruntime-node gives embeddings through which the returned head, computed in plain JS, equals
 * the whole graph's output within 1e-5; writeHead with changed weights gives a graph whose output equals the JS
 * head with those weights, and changes no byte outside the head's weight data. And the refusals, with their reasons.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ElemType,
  type GraphProto,
  type ModelProto,
  type TensorProto,
  decodeModel,
  encodeModel,
  floatTensor,
  int64Tensor,
  node,
  onnx,
  rawTensor,
  valueInfo,
} from '../../../federated/model/onnx-graph.ts';
import { importOnnxWeights } from '../../../federated/model/onnx-import.ts';
import { flattenWeights } from '../../../federated/model/flat-weights.ts';
import { quantizeModel } from '../../../federated/model/quantize.ts';
import {
  type Head,
  HeadError,
  detectHead,
  fp32HeadFor,
  headBody,
  headForward,
  headLayers,
  writeHead,
} from '../../../federated/model/head/index.ts';
import { loadMnist } from '../../../models/data/mnist.ts';
import { seededRandom } from '../../../federated/seeded-random.ts';
import { mnistCnn, mnistMlp } from '../../../models/specs.ts';

const ROOT = join(import.meta.dirname, '../../..');
const PT = join(ROOT, 'test/fixtures/pytorch-heads');
const read = (...p: string[]) => new Uint8Array(readFileSync(join(ROOT, ...p)));
const F = ElemType.FLOAT;
const rand = seededRandom(18);
const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);

type Feeds = Record<string, { data: Float32Array; dims: number[] }>;

/**
 * Runs a model at ORT's 'basic' optimisation level: from 'extended' on, ORT fuses DequantizeLinear into the int8
 * graph's matrix products and approximates them (probabilities off by up to 4e-3 on mnist-mlp int8), so only
 * 'basic' computes what the int8 graph says; fp32 graphs give the same either way.
 */
async function run(
  bytes: Uint8Array,
  feeds: Feeds,
): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'basic' });
  try {
    const out = await s.run(
      Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)])),
    );
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { data: t.data as Float32Array, dims: t.dims }]));
  } finally {
    await s.release();
  }
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Byte offsets where two equally long files differ. */
function differingBytes(a: Uint8Array, b: Uint8Array): number[] {
  expect(b.length).toBe(a.length);
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

/** [start, end) of each named initializer's data bytes in the file, found by their content. */
function dataRanges(bytes: Uint8Array, names: string[]): [number, number][] {
  const inits = new Map(decodeModel(bytes).graph!.initializer!.map((t) => [t.name!, t]));
  return names.map((n) => {
    const t = inits.get(n)!;
    const data = t.rawData?.length ? t.rawData : new Uint8Array(Float32Array.from(t.floatData!).buffer);
    const at = Buffer.from(bytes).indexOf(Buffer.from(data));
    expect(at, `data of ${n} found in the file`).toBeGreaterThanOrEqual(0);
    return [at, at + data.length];
  });
}

/** Names of the initializers a head's weights occupy (fp32 ones, or int8 data and scales). */
const headInitializers = (h: Head) =>
  h.layers
    .flatMap((l) => [l.kernel, l.bias])
    .flatMap((w) => (w.quantized ? [w.quantized.data, w.quantized.scale] : [w.name]));

const f32 = (t: TensorProto) => new Float32Array(new Uint8Array(t.rawData!).buffer);
const encodeTensor = (t: TensorProto) => Buffer.from(onnx.TensorProto.encode(t).finish()).toString('base64');

/** The decoded models are equal except the named initializers' data. */
function expectSameExcept(a: ModelProto, b: ModelProto, changed: string[]): void {
  const strip = (m: ModelProto) => {
    const copy = onnx.ModelProto.decode(onnx.ModelProto.encode(m).finish());
    copy.graph!.initializer = (copy.graph!.initializer ?? []).filter((t) => !changed.includes(t.name ?? ''));
    return Buffer.from(onnx.ModelProto.encode(copy).finish()).toString('base64');
  };
  expect(strip(b)).toBe(strip(a));
  const inits = (m: ModelProto) => new Map(m.graph!.initializer!.map((t) => [t.name!, t]));
  const [ia, ib] = [inits(a), inits(b)];
  for (const name of changed) {
    const [ta, tb] = [ia.get(name)!, ib.get(name)!];
    expect({ dims: tb.dims?.map(Number), dataType: tb.dataType }).toEqual({
      dims: ta.dims?.map(Number),
      dataType: ta.dataType,
    });
    expect(encodeTensor(tb)).not.toBe(encodeTensor(ta));
  }
}

/** New head weights: the old ones moved by up to ±0.2 (so the outputs change visibly). */
const perturbed = (flat: Float32Array) => flat.map((v) => v + (rand() * 2 - 1) * 0.2);

interface Checked {
  head: Head;
  embedding: Float32Array;
  written: Uint8Array;
  newFlat: Float32Array;
}

/**
 * The whole story for one model: detect, embed with the body, JS head = graph output; write new weights, JS head =
 * new graph output; only head data bytes differ; unchanged weights write back the identical file.
 */
async function checkModel(bytes: Uint8Array, feeds: Feeds, layers = 1, tolerance = 1e-5): Promise<Checked> {
  const head = detectHead(bytes, { layers });
  const body = headBody(bytes, head);
  const bodyOut = await run(body, feeds);
  expect(Object.keys(bodyOut)).toEqual([head.embedding.output]);
  const { data: embedding, dims } = bodyOut[head.embedding.output]!;
  const n = Object.values(feeds)[0]!.dims[head.embedding.transposed ? 1 : 0]!;
  expect(dims).toEqual([n, head.embedding.size]);
  const original = (await run(bytes, feeds))[head.output.name]!.data;
  expect(maxDiff(headForward(head, head.flat, embedding), original)).toBeLessThan(tolerance);

  const newFlat = perturbed(head.flat);
  const written = writeHead(bytes, head, newFlat);
  const after = (await run(written, feeds))[head.output.name]!.data;
  expect(maxDiff(after, original)).toBeGreaterThan(1e-3);
  expect(maxDiff(headForward(head, newFlat, embedding), after)).toBeLessThan(tolerance);
  // Only the head's weight data changed, in place: the body's embeddings are those of the original.
  expect(maxDiff((await run(headBody(written, head), feeds))[head.embedding.output]!.data, embedding)).toBe(0);
  if (!head.quantized) {
    const ranges = dataRanges(bytes, headInitializers(head));
    const outside = differingBytes(bytes, written).filter((i) => !ranges.some(([s, e]) => i >= s && i < e));
    expect(outside).toEqual([]);
    if (head.layers.every((l) => l.kernel.factor === 1 && l.bias.factor === 1))
      expect(Buffer.compare(writeHead(bytes, head, head.flat), bytes)).toBe(0);
  }
  expectSameExcept(decodeModel(bytes), decodeModel(written), headInitializers(head));
  return { head, embedding, written, newFlat };
}

let digits: Float32Array;
const N = 12;
beforeAll(() => {
  digits = loadMnist().test.x.slice(0, N * 784);
});
const image = (dims: number[]) => ({ data: digits, dims });

describe('PyTorch exports (test/fixtures/pytorch-heads)', () => {
  it('has the committed files, each at most 2 MB', () => {
    const files = readdirSync(PT)
      .filter((f) => f.endsWith('.onnx'))
      .sort();
    expect(files).toEqual([
      'pt-cnn-gemm.onnx',
      'pt-cnn-logsoftmax-opset11.onnx',
      'pt-cnn-matmul-add.onnx',
      'pt-mlp-weight-left-opset12.onnx',
    ]);
    for (const f of files) expect(readFileSync(join(PT, f)).length).toBeLessThanOrEqual(2 * 1024 * 1024);
  });

  it('CNN with Linear layers exported as Gemm (transB=1): head and head:2', async () => {
    const bytes = read('test/fixtures/pytorch-heads/pt-cnn-gemm.onnx');
    const { head } = await checkModel(bytes, { image: image([N, 1, 28, 28]) });
    expect(head.layers.map((l) => [l.op, l.nodes, l.kernel.name, l.kernel.transposed, l.bias.name])).toEqual([
      ['Gemm', ['/fc2/Gemm'], 'fc2.weight', true, 'fc2.bias'],
    ]);
    expect(head.embedding).toEqual({ tensor: '/Relu_output_0', transposed: false, size: 64, output: 'embedding' });
    expect(head.output).toEqual({ name: 'probabilities', activation: 'softmax', nodes: ['/Softmax'] });
    expect(head.spec.layers).toEqual([{ type: 'dense', units: 10, activation: 'softmax' }]);
    expect(head.spec.labels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(head.weights.map((w) => [w.name, w.shape])).toEqual([
      ['0_dense/kernel', [64, 10]],
      ['0_dense/bias', [10]],
    ]);
    // Fedge's [in, out] kernel is PyTorch's [out, in] weight transposed.
    const w = decodeModel(bytes).graph!.initializer!.find((t) => t.name === 'fc2.weight')!;
    const torch = f32(w);
    expect(head.weights[0]!.values[3 * 10 + 7]).toBe(torch[7 * 64 + 3]);

    const two = await checkModel(bytes, { image: image([N, 1, 28, 28]) }, 2);
    expect(two.head.layers.map((l) => [l.nodes[0], l.activation])).toEqual([
      ['/fc1/Gemm', 'relu'],
      ['/fc2/Gemm', 'linear'],
    ]);
    expect(two.head.spec.layers).toEqual([
      { type: 'dense', units: 64, activation: 'relu' },
      { type: 'dense', units: 10, activation: 'softmax' },
    ]);
    expect(two.head.embedding.tensor).toBe('/features/Flatten_output_0');
    expect(two.head.flat.length).toBe(400 * 64 + 64 + 64 * 10 + 10);
  });

  it('dense layers written as MatMul + Add: head and head:2 (Sigmoid between)', async () => {
    const bytes = read('test/fixtures/pytorch-heads/pt-cnn-matmul-add.onnx');
    const { head } = await checkModel(bytes, { image: image([N, 1, 28, 28]) });
    expect(head.layers.map((l) => [l.op, l.nodes, l.kernel.name, l.kernel.transposed, l.bias.name])).toEqual([
      ['MatMul+Add', ['/MatMul_1', '/Add_1'], 'w2', false, 'b2'],
    ]);
    expect(head.embedding.tensor).toBe('/Sigmoid_output_0');
    const two = await checkModel(bytes, { image: image([N, 1, 28, 28]) }, 2);
    expect(two.head.spec.layers.map((l) => l.type === 'dense' && l.activation)).toEqual(['sigmoid', 'softmax']);
  });

  it('LogSoftmax at opset 11: trained as softmax, the graph keeps its LogSoftmax', async () => {
    const bytes = read('test/fixtures/pytorch-heads/pt-cnn-logsoftmax-opset11.onnx');
    const { head, written } = await checkModel(bytes, { image: image([N, 1, 28, 28]) });
    expect(head.opset).toBe(11);
    expect(head.output).toEqual({ name: 'log_probabilities', activation: 'logSoftmax', nodes: ['/LogSoftmax'] });
    expect(head.spec.layers).toEqual([{ type: 'dense', units: 10, activation: 'softmax' }]);
    expect(decodeModel(written).graph!.node!.map((n) => n.opType)).toEqual(
      decodeModel(bytes).graph!.node!.map((n) => n.opType),
    );
    // head:2 needs a dense layer before; this CNN has Flatten there.
    expect(() => detectHead(bytes, { layers: 2 })).toThrow(
      /Gemm '\/fc\/Gemm' reads '\/Flatten_output_0' from Flatten '\/Flatten'/,
    );
  });

  it('MatMul with the weight on the left, bias [10, 1], Transpose after, raw logits: head and head:2 (Tanh)', async () => {
    const bytes = read('test/fixtures/pytorch-heads/pt-mlp-weight-left-opset12.onnx');
    const { head } = await checkModel(bytes, { image: image([N, 1, 28, 28]) });
    expect(head.layers[0]).toMatchObject({
      op: 'MatMul+Add',
      nodes: ['/MatMul', '/Add'],
      outputTransposed: true,
      kernel: { name: 'w2', dims: [10, 32], transposed: true },
      bias: { dims: [10, 1] },
    });
    // The Transpose the MatMul undoes is skipped: the embedding is the Tanh output itself.
    expect(head.embedding).toMatchObject({ tensor: '/Tanh_output_0', transposed: false, size: 32 });
    expect(head.output).toEqual({ name: 'logits', activation: 'none', nodes: ['/Transpose_1'] });
    const two = await checkModel(bytes, { image: image([N, 1, 28, 28]) }, 2);
    expect(two.head.layers.map((l) => [l.op, l.activation])).toEqual([
      ['Gemm', 'tanh'],
      ['MatMul+Add', 'linear'],
    ]);
    expect(two.head.embedding.size).toBe(784);
  });
});

describe('other third-party graphs (test/fixtures/third-party)', () => {
  it('openWakeWord (PyTorch 2.8 exporter, fixed shape, one Sigmoid unit) and an LSTM with two outputs', async () => {
    const wake = await checkModel(read('test/fixtures/third-party/openwakeword-hello-deepa.onnx'), {
      'onnx::Flatten_0': { data: randn(25 * 96), dims: [1, 25, 96] },
    });
    expect(wake.head.output.activation).toBe('sigmoid');
    expect(wake.head.spec.layers).toEqual([{ type: 'dense', units: 1, activation: 'sigmoid' }]);
    const lstm = await checkModel(read('test/fixtures/third-party/pt-lstm.onnx'), {
      x: { data: randn(3 * 7 * 8), dims: [3, 7, 8] },
    });
    expect(lstm.head.layers[0]!.nodes).toEqual(['/head/Gemm']);
    expect(lstm.head.output).toEqual({ name: 'logits', activation: 'none', nodes: [] });
    expect(() => detectHead(read('test/fixtures/third-party/pt-lstm.onnx'), { output: 'h' })).toThrow(
      /graph ends in LSTM '.*' (then .* )?\(output 'h'\)/,
    );
  });
});

describe("Fedge's served models (models/)", () => {
  const random = (n: number) => Float32Array.from({ length: n }, () => rand());

  it('mnist-mlp fp32: head is the softmax layer, head:2 both layers, weights as importOnnxWeights reads them', async () => {
    const bytes = read('models/mnist-mlp/model.fp32.onnx');
    const { head } = await checkModel(bytes, { input: { data: digits, dims: [N, 784] } });
    const fedge = importOnnxWeights(mnistMlp, bytes);
    expect(head.flat).toEqual(
      flattenWeights(
        { ...mnistMlp, inputShape: [256], layers: [mnistMlp.layers[1]!] },
        fedge.slice(2).map((w, i) => ({ ...w, name: `0_dense/${i ? 'bias' : 'kernel'}` })),
      ),
    );
    expect(head.output.activation).toBe('softmax');
    const two = await checkModel(bytes, { input: { data: digits, dims: [N, 784] } }, 2);
    expect(two.head.flat).toEqual(flattenWeights(mnistMlp, fedge));
    expect(two.head.embedding.tensor).toBe('input');
  });

  it('mnist-cnn fp32 (NHWC input, Transpose, Conv, Flatten): head and head:2', async () => {
    const bytes = read('models/mnist-cnn/model.fp32.onnx');
    await checkModel(bytes, { input: { data: digits, dims: [N, 28, 28, 1] } });
    const { head } = await checkModel(bytes, { input: { data: digits, dims: [N, 28, 28, 1] } }, 2);
    expect(head.spec.layers).toEqual(mnistCnn.layers.filter((l) => l.type === 'dense'));
  });

  it('spam-bow fp32: labels from the metadata', async () => {
    const bytes = read('models/spam-bow/model.fp32.onnx');
    const x = random(N * 4096).map((v) => (v < 0.01 ? 1 : 0));
    const { head } = await checkModel(bytes, { input: { data: x, dims: [N, 4096] } });
    expect(head.spec.labels).toEqual(['ham', 'spam']);
  });

  it('mnist-mlp int8: reads the dequantized head, finds the fp32 copy’s head, writes int8 as quantizeModel would', async () => {
    const int8 = read('models/mnist-mlp/model.int8.onnx'),
      fp32 = read('models/mnist-mlp/model.fp32.onnx');
    const feeds = { input: { data: digits, dims: [N, 784] } };
    const head = detectHead(int8);
    expect(head.quantized).toBe(true);
    expect(head.layers[0]!.kernel.quantized).toMatchObject({
      data: '1_dense/kernel_quantized',
      scale: '1_dense/kernel_scale',
      axis: 1,
    });
    expect(head.layers[0]!.bias.quantized).toBeUndefined(); // 10 values: left fp32 by the quantizer
    const body = headBody(int8, head);
    const embedding = (await run(body, feeds)).embedding!.data;
    expect(maxDiff(headForward(head, head.flat, embedding), (await run(int8, feeds)).probabilities!.data)).toBeLessThan(
      1e-5,
    );
    // The body drops the head's int8 weights and their DequantizeLinear.
    const bodyInits = decodeModel(body).graph!.initializer!.map((t) => t.name);
    expect(bodyInits).not.toContain('1_dense/kernel_quantized');
    expect(bodyInits).toContain('0_dense/kernel_quantized');

    const fp32Head = fp32HeadFor(head, fp32);
    expect(fp32Head.quantized).toBe(false);
    expect(maxDiff(fp32Head.flat, head.flat)).toBeLessThan(0.01);

    const newFlat = perturbed(fp32Head.flat);
    const written = writeHead(int8, fp32Head, newFlat);
    // Same bytes as writing the fp32 copy and quantizing it again.
    expect(Buffer.compare(written, quantizeModel(writeHead(fp32, fp32Head, newFlat)).bytes)).toBe(0);
    expectSameExcept(decodeModel(int8), decodeModel(written), [
      '1_dense/kernel_quantized',
      '1_dense/kernel_scale',
      '1_dense/bias',
    ]);
    const reread = detectHead(written);
    expect(maxDiff(reread.flat, newFlat)).toBeLessThan(0.01);
    expect(
      maxDiff(headForward(reread, reread.flat, embedding), (await run(written, feeds)).probabilities!.data),
    ).toBeLessThan(1e-5);
  });

  it('a PyTorch Gemm (transB=1) quantized to int8: per-row scales, written as quantizeModel would', async () => {
    const fp32 = read('test/fixtures/pytorch-heads/pt-cnn-gemm.onnx');
    const int8 = quantizeModel(fp32).bytes;
    const head = detectHead(int8, { layers: 2 });
    expect(head.layers.map((l) => l.kernel.quantized?.axis)).toEqual([0, 0]);
    const feeds = { image: image([N, 1, 28, 28]) };
    const embedding = (await run(headBody(int8, head), feeds)).embedding!.data;
    expect(maxDiff(headForward(head, head.flat, embedding), (await run(int8, feeds)).probabilities!.data)).toBeLessThan(
      1e-5,
    );
    const fp32Head = fp32HeadFor(head, fp32);
    const newFlat = perturbed(fp32Head.flat);
    expect(
      Buffer.compare(writeHead(int8, head, newFlat), quantizeModel(writeHead(fp32, fp32Head, newFlat)).bytes),
    ).toBe(0);
  });

  it('refuses a head that is not this model’s, and weights of the wrong length', () => {
    const mlp = read('models/mnist-mlp/model.fp32.onnx'),
      cnn = read('models/mnist-cnn/model.fp32.onnx');
    const head = detectHead(mlp);
    expect(() => writeHead(cnn, head, head.flat)).toThrow(HeadError);
    // The head's place alone, as a task would store it (JSON, no weights), is enough to write.
    const { spec, layers, embedding, output } = head;
    const place = JSON.parse(JSON.stringify({ spec, layers, embedding, output }));
    expect(Buffer.compare(writeHead(mlp, place, head.flat), mlp)).toBe(0);
    expect(() => writeHead(mlp, head, head.flat.subarray(1))).toThrow(/has 2570 weights, got 2569/);
    expect(() =>
      writeHead(
        mlp,
        head,
        head.flat.map((v, i) => (i === 5 ? NaN : v)),
      ),
    ).toThrow(/weight 5 is NaN/);
  });
});

/** A graph over input x [batch, k] (or as `input`), from nodes and initializers. */
function graph(
  nodes: GraphProto['node'],
  initializer: TensorProto[],
  output: { name: string; dims: (number | string)[] },
  input = valueInfo('x', F, ['batch', 6]),
  opset = 17,
): Uint8Array {
  return encodeModel(
    { name: 'tiny', node: nodes, initializer, input: [input], output: [valueInfo(output.name, F, output.dims)] },
    { opset },
  );
}
const xFeeds = (k = 6, n = 5) => ({ x: { data: randn(n * k), dims: [n, k] } });

describe('small graphs built here', () => {
  it('Gemm with transA=1, transB=1, alpha 0.5, beta 2: the body transposes the input, the writer undoes the scaling exactly', async () => {
    const bytes = graph(
      [
        node(
          'Gemm',
          ['xt', 'W', 'b'],
          ['z'],
          { transA: 1, transB: 1, alpha: { float: 0.5 }, beta: { float: 2 } },
          'fc',
        ),
        node('Softmax', ['z'], ['y'], { axis: 1 }, 'sm'),
      ],
      [floatTensor('W', [4, 6], randn(24)), floatTensor('b', [4], randn(4))],
      { name: 'y', dims: ['batch', 4] },
      valueInfo('xt', F, [6, 'batch']),
    );
    const { head } = await checkModel(bytes, { xt: { data: randn(6 * 5), dims: [6, 5] } });
    expect(head.embedding).toMatchObject({ tensor: 'xt', transposed: true, size: 6 });
    expect(head.layers[0]!.kernel).toMatchObject({ transposed: true, factor: 0.5 });
    expect(head.layers[0]!.bias.factor).toBe(2);
    // Powers of two: folding and unfolding are exact, so unchanged weights give back the same file.
    expect(Buffer.compare(writeHead(bytes, head, head.flat), bytes)).toBe(0);
  });

  it('Gemm with alpha 0.3, beta 1.7: folded into the values; unchanged weights round-trip within one float32 step', async () => {
    const W = randn(6 * 3),
      b = randn(3);
    const bytes = graph(
      [node('Gemm', ['x', 'W', 'b'], ['y'], { alpha: { float: 0.3 }, beta: { float: 1.7 } }, 'fc')],
      [floatTensor('W', [6, 3], W), floatTensor('b', [3], b)],
      { name: 'y', dims: ['batch', 3] },
    );
    const { head } = await checkModel(bytes, xFeeds());
    expect(head.output.activation).toBe('none');
    expect(head.weights[0]!.values[4]).toBe(Math.fround(W[4]! * Math.fround(0.3)));
    const back = decodeModel(writeHead(bytes, head, head.flat)).graph!.initializer!;
    const values = (name: string) => f32(back.find((t) => t.name === name)!);
    for (const [name, orig] of [
      ['W', W],
      ['b', b],
    ] as const) {
      values(name).forEach((v, i) => expect(Math.abs(v - orig[i]!)).toBeLessThanOrEqual(Math.abs(orig[i]!) * 2 ** -23));
    }
  });

  it('Gemm with the weight as A ([out, in]) and bias [out, 1], Transpose then Softmax; weights in float_data', async () => {
    const floatData = (name: string, dims: number[], values: Float32Array): TensorProto => ({
      name,
      dims,
      dataType: F,
      floatData: Array.from(values),
    });
    const bytes = graph(
      [
        node('Gemm', ['W', 'x', 'c'], ['zt'], { transB: 1 }, 'fc'),
        node('Transpose', ['zt'], ['z'], { perm: [1, 0] }, 't'),
        node('Softmax', ['z'], ['y'], {}, 'sm'),
      ],
      [floatData('W', [4, 6], randn(24)), floatData('c', [4, 1], randn(4))],
      { name: 'y', dims: ['batch', 4] },
    );
    const { head } = await checkModel(bytes, xFeeds());
    expect(head.layers[0]).toMatchObject({
      outputTransposed: true,
      inputTransposed: false,
      kernel: { transposed: true },
    });
    expect(head.output.nodes).toEqual(['t', 'sm']);
  });

  it('Add(bias, MatMul) with Reshape and Flatten after; Sigmoid output', async () => {
    const bytes = graph(
      [
        node('MatMul', ['x', 'W'], ['m'], {}, 'mm'),
        node('Add', ['b', 'm'], ['z'], {}, 'add'),
        node('Reshape', ['z', 'shape'], ['r'], {}, 'reshape'),
        node('Sigmoid', ['r'], ['s'], {}, 'sig'),
        node('Flatten', ['s'], ['y'], { axis: 1 }, 'flat'),
      ],
      [floatTensor('W', [6, 3], randn(18)), floatTensor('b', [1, 3], randn(3)), int64Tensor('shape', [3], [-1, 1, 3])],
      { name: 'y', dims: ['batch', 3] },
    );
    const { head } = await checkModel(bytes, xFeeds());
    expect(head.layers[0]!.nodes).toEqual(['mm', 'add']);
    expect(head.output).toEqual({ name: 'y', activation: 'sigmoid', nodes: ['reshape', 'sig', 'flat'] });
    expect(head.spec.layers).toEqual([{ type: 'dense', units: 3, activation: 'sigmoid' }]);
  });

  it('head:2 on an MLP: Tanh between, and two dense layers with nothing between', async () => {
    const tanh = graph(
      [
        node('Gemm', ['x', 'W1', 'b1'], ['h'], {}, 'fc1'),
        node('Tanh', ['h'], ['a'], {}, 'tanh'),
        node('MatMul', ['a', 'W2'], ['m'], {}, 'mm'),
        node('Add', ['m', 'b2'], ['z'], {}, 'add'),
        node('Softmax', ['z'], ['y'], {}, 'sm'),
      ],
      [
        floatTensor('W1', [6, 5], randn(30)),
        floatTensor('b1', [5], randn(5)),
        floatTensor('W2', [5, 3], randn(15)),
        floatTensor('b2', [3], randn(3)),
      ],
      { name: 'y', dims: ['batch', 3] },
    );
    const { head } = await checkModel(tanh, xFeeds(), 2);
    expect(head.spec.layers).toEqual([
      { type: 'dense', units: 5, activation: 'tanh' },
      { type: 'dense', units: 3, activation: 'softmax' },
    ]);
    expect(head.embedding.tensor).toBe('x');
    const linear = graph(
      [node('Gemm', ['x', 'W1', 'b1'], ['h'], { transB: 1 }, 'fc1'), node('Gemm', ['h', 'W2', 'b2'], ['y'], {}, 'fc2')],
      [
        floatTensor('W1', [5, 6], randn(30)),
        floatTensor('b1', [5], randn(5)),
        floatTensor('W2', [5, 3], randn(15)),
        floatTensor('b2', [3], randn(3)),
      ],
      { name: 'y', dims: ['batch', 3] },
    );
    expect((await checkModel(linear, xFeeds(), 2)).head.layers.map((l) => l.activation)).toEqual(['linear', 'linear']);
    expect(headLayers('head')).toBe(1);
    expect(headLayers('head:2')).toBe(2);
    expect(() => headLayers('body')).toThrow(HeadError);
  });

  it('an embedding output name that does not collide with the graph’s tensors', () => {
    const bytes = graph(
      [node('Relu', ['x'], ['embedding'], {}, 'r'), node('Gemm', ['embedding', 'W', 'b'], ['y'], {}, 'fc')],
      [floatTensor('W', [6, 2], randn(12)), floatTensor('b', [2], randn(2))],
      { name: 'y', dims: ['batch', 2] },
    );
    const head = detectHead(bytes);
    expect(head.embedding).toMatchObject({ tensor: 'embedding', output: 'embedding_1' });
    expect(head.spec.inputName).toBe('embedding_1');
  });
});

describe('refusals', () => {
  const W = () => floatTensor('W', [6, 3], randn(18));
  const b = () => floatTensor('b', [3], randn(3));
  const refusal = (bytes: Uint8Array, options = {}) => {
    try {
      detectHead(bytes, options);
    } catch (e) {
      expect(e).toBeInstanceOf(HeadError);
      expect((e as Error).name).toBe('HeadError');
      return e as HeadError;
    }
    throw new Error('expected a HeadError');
  };

  it('a graph ending in Conv names the Conv and the output', () => {
    const bytes = encodeModel({
      name: 'conv',
      node: [node('Conv', ['x', 'k'], ['y'], { kernel_shape: [3, 3] }, 'conv3')],
      initializer: [floatTensor('k', [2, 1, 3, 3], randn(18))],
      input: [valueInfo('x', F, ['batch', 1, 8, 8])],
      output: [valueInfo('y', F, ['batch', 2, 6, 6])],
    });
    const e = refusal(bytes);
    expect(e.message).toMatch(/^graph ends in Conv 'conv3' \(output 'y'\); a head is a final Gemm or MatMul\+Add/);
    expect(e.node).toEqual({ opType: 'Conv', name: 'conv3', output: 'y' });
  });

  it('names what ends the graph through the tail, and a non-head activation', () => {
    const relu = graph(
      [node('Gemm', ['x', 'W', 'b'], ['z'], {}, 'fc'), node('Relu', ['z'], ['y'], {}, 'relu')],
      [W(), b()],
      { name: 'y', dims: ['batch', 3] },
    );
    expect(refusal(relu).message).toMatch(/^graph ends in Relu 'relu' \(output 'y'\)/);
    const pool = graph(
      [node('ReduceMean', ['x'], ['m'], { axes: [1] }, 'mean'), node('Softmax', ['m'], ['y'], {}, 'sm')],
      [],
      { name: 'y', dims: ['batch', 1] },
    );
    expect(refusal(pool).message).toMatch(/^graph ends in ReduceMean 'mean' then Softmax 'sm' \(output 'y'\)/);
    const identity = graph([node('Identity', ['x'], ['y'], {}, 'id')], [], { name: 'y', dims: ['batch', 6] });
    expect(refusal(identity).message).toMatch(/^graph output comes from graph input 'x' through Identity 'id'/);
  });

  it('no bias, a shared weight, a weight computed at run time, float16 weights', () => {
    expect(
      refusal(graph([node('Gemm', ['x', 'W'], ['y'], {}, 'fc')], [W()], { name: 'y', dims: ['batch', 3] })).message,
    ).toMatch(/Gemm 'fc' has no bias/);
    expect(
      refusal(graph([node('MatMul', ['x', 'W'], ['y'], {}, 'mm')], [W()], { name: 'y', dims: ['batch', 3] })).message,
    ).toMatch(/MatMul 'mm' has no bias/);
    const shared = graph(
      [
        node('Gemm', ['x', 'W', 'b'], ['z'], {}, 'fc'),
        node('MatMul', ['x', 'W'], ['w2'], {}, 'other'),
        node('Add', ['z', 'w2'], ['y'], {}, 'sum'),
      ],
      [W(), b()],
      { name: 'y', dims: ['batch', 3] },
    );
    // The graph ends in Add of two run-time tensors: not a head. Ending in the Gemm, it shares W with 'other'.
    expect(refusal(shared).message).toMatch(/Add 'sum' adds run-time tensor/);
    const sharedEnd = encodeModel({
      name: 'shared',
      node: [node('MatMul', ['x', 'W'], ['side'], {}, 'other'), node('Gemm', ['x', 'W', 'b'], ['y'], {}, 'fc')],
      initializer: [W(), b()],
      input: [valueInfo('x', F, ['batch', 6])],
      output: [valueInfo('y', F, ['batch', 3]), valueInfo('side', F, ['batch', 3])],
    });
    expect(refusal(sharedEnd).message).toMatch(/weight 'W' is also read by MatMul 'other'/);
    expect(
      refusal(
        graph(
          [node('Gemm', ['x', 'x2', 'b'], ['y'], { transB: 1 }, 'fc'), node('Relu', ['x'], ['x2'], {}, 'r')],
          [b()],
          { name: 'y', dims: ['batch', 3] },
        ),
      ).message,
    ).toMatch(/Gemm 'fc' multiplies two run-time tensors/);
    const f16 = graph(
      [node('Cast', ['x'], ['h'], { to: ElemType.FLOAT16 }, 'cast'), node('Gemm', ['h', 'W', 'b'], ['y'], {}, 'fc')],
      [
        rawTensor('W', [6, 3], ElemType.FLOAT16, new Uint16Array(18)),
        rawTensor('b', [3], ElemType.FLOAT16, new Uint16Array(3)),
      ],
      { name: 'y', dims: ['batch', 3] },
    );
    expect(refusal(f16).message).toMatch(/weight 'W' is FLOAT16/);
    // As quantizeModel's fp16 mode stores weights: a FLOAT16 initializer read through Cast(to=FLOAT).
    const castF16 = graph(
      [node('Cast', ['W_fp16'], ['W'], { to: F }, 'W_cast'), node('Gemm', ['x', 'W', 'b'], ['y'], {}, 'fc')],
      [rawTensor('W_fp16', [6, 3], ElemType.FLOAT16, new Uint16Array(18)), b()],
      { name: 'y', dims: ['batch', 3] },
    );
    expect(refusal(castF16).message).toMatch(
      /weight 'W' is cast from FLOAT16 initializer 'W_fp16' by Cast 'W_cast'; .*fp32 copy/,
    );
    expect(
      refusal(
        graph([node('Gemm', ['x', 'W', 'b'], ['y'], { alpha: { float: 0 } }, 'fc')], [W(), b()], {
          name: 'y',
          dims: ['batch', 3],
        }),
      ).message,
    ).toMatch(/alpha 0/);
  });

  it('a softmax over the batch, a tail that mixes rows, a rank-3 MatMul, a bias per example', () => {
    const wrongAxis = graph(
      [
        node('Gemm', ['W', 'x', 'c'], ['zt'], { transA: 1, transB: 1 }, 'fc'),
        node('Softmax', ['zt'], ['s'], { axis: -1 }, 'sm'),
        node('Transpose', ['s'], ['y'], {}, 't'),
      ],
      [floatTensor('W', [6, 3], randn(18)), floatTensor('c', [3, 1], randn(3))],
      { name: 'y', dims: ['batch', 3] },
    );
    expect(refusal(wrongAxis).message).toMatch(/Softmax 'sm' after the head normalises over axis 1, not the classes/);
    const mixed = graph(
      [node('Gemm', ['x', 'W', 'b'], ['z'], {}, 'fc'), node('Reshape', ['z', 'shape'], ['y'], {}, 'flatten_all')],
      [W(), b(), int64Tensor('shape', [1], [-1])],
      { name: 'y', dims: ['n'] },
    );
    expect(refusal(mixed).message).toMatch(
      /Reshape 'flatten_all' after the head reshapes to \[-1\], which merges the batch and the classes/,
    );
    const rank3 = graph(
      [node('MatMul', ['x', 'W'], ['m'], {}, 'mm'), node('Add', ['m', 'b'], ['y'], {}, 'add')],
      [W(), b()],
      { name: 'y', dims: ['batch', 'seq', 3] },
      valueInfo('x', F, ['batch', 'seq', 6]),
    );
    expect(refusal(rank3).message).toMatch(/MatMul 'mm' multiplies a rank-3 tensor 'x'/);
    const perExample = graph(
      [node('Gemm', ['x', 'W', 'c'], ['y'], {}, 'fc')],
      [W(), floatTensor('c', [5, 3], randn(15))],
      { name: 'y', dims: [5, 3] },
    );
    expect(refusal(perExample).message).toMatch(/bias 'c' has shape \[5,3\]/);
  });

  it('head:2 without a dense layer before, and a dynamically quantized graph', () => {
    const oneLayer = graph(
      [node('Relu', ['x'], ['r'], {}, 'relu'), node('Gemm', ['r', 'W', 'b'], ['y'], {}, 'fc')],
      [W(), b()],
      { name: 'y', dims: ['batch', 3] },
    );
    const e = refusal(oneLayer, { layers: 2 });
    expect(e.message).toMatch(/Gemm 'fc' reads 'r' from Relu 'relu'/);
    const dynamic = quantizeModel(read('models/mnist-mlp/model.fp32.onnx'), { mode: 'dynamic' }).bytes;
    expect(refusal(dynamic).message).toMatch(/dynamically quantized; detect the head on the model's fp32 copy/);
  });
});
