/**
 * quantizeModel on graphs shaped the way other exporters write them (PyTorch's Gemm with transB=1, MatMul + Add,
 * Conv with bias, a weight shared by two nodes, weights in float_data and repeated as graph inputs), checked by
 * running the fp32 and int8 graphs on onnxruntime-node; and its refusals.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ElemType, type GraphProto, decodeModel, encodeModel, floatTensor, node, valueInfo } from '../../federated/model/onnx-graph.ts';
import { QuantizeError, OnnxFormatError, quantizeModel } from '../../federated/model/quantize.ts';
import { seededRandom } from '../../models/data/seeded-random.ts';

const rand = seededRandom(5);
const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
const F = ElemType.FLOAT;

async function run(bytes: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes);
  const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)])));
  await s.release();
  return out[s.outputNames[0]!]!.data as Float32Array;
}

/** Max |int8 − fp32| relative to the largest fp32 output. */
async function deviation(fp32: Uint8Array, int8: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<number> {
  const [a, b] = [await run(fp32, feeds), await run(int8, feeds)];
  expect(b.length).toBe(a.length);
  let max = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    max = Math.max(max, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
  }
  return max / scale;
}

const ops = (bytes: Uint8Array) => decodeModel(bytes).graph!.node!.map((n) => n.opType);
const initNames = (bytes: Uint8Array) => decodeModel(bytes).graph!.initializer!.map((t) => t.name);

/** A weight written as float_data (not raw_data), as some exporters do. */
const floatDataTensor = (name: string, dims: number[], values: Float32Array) => ({ name, dims, dataType: F, floatData: Array.from(values) });

function gemmGraph(transB: 0 | 1): Uint8Array {
  // PyTorch's nn.Linear exports Gemm(x, W[out, in], b, transB=1).
  const [k, n] = [64, 32];
  const w = transB ? floatDataTensor('W', [n, k], randn(n * k)) : floatTensor('W', [k, n], randn(k * n));
  return encodeModel({
    name: 'gemm',
    node: [node('Gemm', ['x', 'W', 'b'], ['y'], { transB })],
    initializer: [w, floatTensor('b', [n], randn(n))],
    input: [valueInfo('x', F, ['batch', k])],
    output: [valueInfo('y', F, ['batch', n])],
  });
}

function matmulAddGraph(): Uint8Array {
  return encodeModel({
    name: 'matmul_add',
    node: [node('MatMul', ['x', 'W1'], ['h0']), node('Add', ['h0', 'b1'], ['h1']), node('Relu', ['h1'], ['h2']), node('MatMul', ['h2', 'W2'], ['h3']), node('Add', ['h3', 'b2'], ['y'])],
    initializer: [floatTensor('W1', [100, 50], randn(5000, 0.2)), floatTensor('b1', [50], randn(50)), floatTensor('W2', [50, 20], randn(1000, 0.2)), floatTensor('b2', [20], randn(20))],
    // Old exporters also list initializers as graph inputs.
    input: [valueInfo('x', F, ['batch', 100]), valueInfo('W1', F, [100, 50]), valueInfo('b1', F, [50]), valueInfo('W2', F, [50, 20]), valueInfo('b2', F, [20])],
    output: [valueInfo('y', F, ['batch', 20])],
  });
}

function convGraph(): Uint8Array {
  return encodeModel({
    name: 'conv',
    node: [node('Conv', ['x', 'K', 'kb'], ['c'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), node('Relu', ['c'], ['y'])],
    initializer: [floatTensor('K', [8, 3, 3, 3], randn(8 * 27, 0.5)), floatTensor('kb', [8], randn(8))],
    input: [valueInfo('x', F, ['batch', 3, 12, 12])],
    output: [valueInfo('y', F, ['batch', 8, 12, 12])],
  });
}

function sharedGraph(): Uint8Array {
  // One weight feeds a MatMul (channel axis 1) and a Gemm with transB=1 (channel axis 0): axes disagree.
  return encodeModel({
    name: 'shared',
    node: [node('MatMul', ['x', 'S'], ['a']), node('Gemm', ['x', 'S'], ['b'], { transB: 1 }), node('Add', ['a', 'b'], ['y'])],
    initializer: [floatTensor('S', [40, 40], randn(1600))],
    input: [valueInfo('x', F, ['batch', 40])],
    output: [valueInfo('y', F, ['batch', 40])],
  });
}

const batch = (features: number[], n = 8) => ({ data: randn(n * features.reduce((a, b) => a * b, 1)), dims: [n, ...features] });

describe('quantizeModel (weight-only, the default)', () => {
  it.each([0, 1] as const)('Gemm with transB=%i: per-channel int8 along the output axis, output within 1 %%', async (transB) => {
    const fp32 = gemmGraph(transB);
    const { bytes, report } = quantizeModel(fp32);
    expect(report.quantized).toEqual([{ weight: 'W', nodes: ['Gemm_y'], axis: transB ? 0 : 1, elements: 2048 }]);
    expect(ops(bytes)).toEqual(['DequantizeLinear', 'Gemm']);
    expect(initNames(bytes)).not.toContain('W');
    expect(await deviation(fp32, bytes, { x: batch([64]) })).toBeLessThan(0.01);
  });

  it('MatMul + Add: both weights int8, biases and everything else fp32; weights listed as inputs are dropped from the inputs', async () => {
    const fp32 = matmulAddGraph();
    const { bytes, report } = quantizeModel(fp32);
    expect(report.quantized.map((q) => q.weight)).toEqual(['W1', 'W2']);
    expect(initNames(bytes)).toEqual(expect.arrayContaining(['b1', 'b2', 'W1_quantized', 'W1_scale', 'W2_quantized']));
    expect(decodeModel(bytes).graph!.input!.map((i) => i.name)).toEqual(['x', 'b1', 'b2']);
    expect(bytes.byteLength / fp32.byteLength).toBeLessThan(0.3);
    expect(await deviation(fp32, bytes, { x: batch([100]) })).toBeLessThan(0.01);
  });

  it('Conv with bias: per output channel (axis 0)', async () => {
    const fp32 = convGraph();
    const { bytes, report } = quantizeModel(fp32, { minElements: 16 });
    expect(report.quantized).toEqual([{ weight: 'K', nodes: ['Conv_c'], axis: 0, elements: 216 }]);
    expect(await deviation(fp32, bytes, { x: batch([3, 12, 12], 2) })).toBeLessThan(0.01);
  });

  it('a weight shared by nodes that disagree on the channel axis gets one per-tensor scale and one dequantize', async () => {
    const fp32 = sharedGraph();
    const { bytes, report } = quantizeModel(fp32);
    expect(report.quantized).toEqual([{ weight: 'S', nodes: ['MatMul_a', 'Gemm_b'], axis: null, elements: 1600 }]);
    expect(ops(bytes).filter((o) => o === 'DequantizeLinear')).toHaveLength(1);
    expect(await deviation(fp32, bytes, { x: batch([40]) })).toBeLessThan(0.02);
  });

  it('leaves weights below minElements fp32 and says why', () => {
    const { bytes, report } = quantizeModel(matmulAddGraph(), { minElements: 2000 });
    expect(report.quantized.map((q) => q.weight)).toEqual(['W1']);
    expect(report.skipped).toEqual([{ node: 'MatMul_h3', reason: 'weight W2 has 1000 elements (< 2000)' }]);
    expect(initNames(bytes)).toContain('W2');
  });
});

describe('quantizeModel (dynamic int8)', () => {
  it('MatMul and Gemm (transB 0 and 1) become DynamicQuantizeLinear + MatMulInteger; outputs within 3 %', async () => {
    for (const fp32 of [matmulAddGraph(), gemmGraph(0), gemmGraph(1)]) {
      const { bytes } = quantizeModel(fp32, { mode: 'dynamic' });
      expect(ops(bytes)).toContain('MatMulInteger');
      expect(ops(bytes)).toContain('DynamicQuantizeLinear');
      const x = decodeModel(fp32).graph!.input![0]!;
      const features = Number(x.type!.tensorType!.shape!.dim![1]!.dimValue);
      expect(await deviation(fp32, bytes, { x: batch([features]) }), decodeModel(fp32).graph!.name!).toBeLessThan(0.03);
    }
  });

  it('Conv stays weight-only in dynamic mode, and the report says so', async () => {
    const { bytes, report } = quantizeModel(convGraph(), { mode: 'dynamic', minElements: 16 });
    expect(ops(bytes)).toEqual(['DequantizeLinear', 'Conv', 'Relu']);
    expect(report.skipped.map((s) => s.reason)).toEqual([expect.stringMatching(/dynamic: Conv .*kept weight-only/)]);
  });
});

describe('quantizeModel refuses what it cannot quantize', () => {
  it('corrupt bytes and non-ONNX input: OnnxFormatError with the reason', () => {
    const good = matmulAddGraph();
    expect(() => quantizeModel(good.subarray(0, good.length >> 1))).toThrow(OnnxFormatError);
    expect(() => quantizeModel(new TextEncoder().encode('definitely not onnx'))).toThrow(/not an ONNX model/);
    expect(() => quantizeModel(new Uint8Array(0))).toThrow(/not an ONNX model/);
  });

  it('an opset before 13, an already quantized model, a graph with nothing to quantize, an unknown mode', () => {
    const g: GraphProto = { name: 'g', node: [node('MatMul', ['x', 'W'], ['y'])], initializer: [floatTensor('W', [32, 32], randn(1024))], input: [valueInfo('x', F, [1, 32])], output: [valueInfo('y', F, [1, 32])] };
    expect(() => quantizeModel(encodeModel(g, { opset: 11 }))).toThrow(/opset 11.*opset 13/);
    const once = quantizeModel(encodeModel(g)).bytes;
    expect(() => quantizeModel(once)).toThrow(/already quantized/);
    const relu = encodeModel({ name: 'r', node: [node('Relu', ['x'], ['y'])], input: [valueInfo('x', F, [1, 4])], output: [valueInfo('y', F, [1, 4])] });
    expect(() => quantizeModel(relu)).toThrow(QuantizeError);
    expect(() => quantizeModel(relu)).toThrow(/nothing to quantize/);
    const computed = encodeModel({ name: 'c', node: [node('MatMul', ['x', 'x2'], ['y'])], input: [valueInfo('x', F, [4, 4]), valueInfo('x2', F, [4, 4])], output: [valueInfo('y', F, [4, 4])] });
    expect(() => quantizeModel(computed)).toThrow(/not an initializer/);
    expect(() => quantizeModel(encodeModel(g), { mode: 'int4' as never })).toThrow(/mode must be/);
  });
});
