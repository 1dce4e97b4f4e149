/**
 * quantizeModel on graphs shaped the way other exporters write them (PyTorch's Gemm with transB=1, MatMul + Add,
 * MatMul with the constant on the left, Conv with bias, LSTM/GRU, weights inside If branches and Loop bodies, a
 * weight shared by two nodes, weights in float_data and repeated as graph inputs, opsets 10–12), and on the
 * third-party corpus (test/fixtures/third-party), checked by running the fp32 and quantized graphs on
 * onnxruntime-node; int8 and fp16; and its refusals.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  ElemType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  decodeModel,
  encodeModel,
  floatTensor,
  node,
  rawTensor,
  valueInfo,
} from '../../../federated/model/onnx-graph.ts';
import {
  QuantizeError,
  OnnxFormatError,
  float16Bits,
  floatWeightBytes,
  quantizeModel,
} from '../../../federated/model/quantize.ts';
import { seededRandom } from '../../../federated/seeded-random.ts';

const rand = seededRandom(5);
const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
const F = ElemType.FLOAT;

type Feeds = Record<string, { data: Float32Array | Uint8Array; dims: number[] }>;
const tensor = (v: Feeds[string]) =>
  v.data instanceof Uint8Array ? new ort.Tensor('bool', v.data, v.dims) : new ort.Tensor('float32', v.data, v.dims);

/** Every output of the model on `feeds`, by name. */
async function runAll(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(bytes);
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(s.outputNames.map((n) => [n, out[n]!.data as Float32Array]));
  } finally {
    await s.release();
  }
}

/** Max |quantized − fp32| relative to the largest fp32 value, over every output (each relative to its own scale). */
async function deviationOn(
  fp32: Uint8Array,
  quantized: Uint8Array,
  feeds: Record<string, ort.Tensor>,
): Promise<number> {
  const [a, b] = [await runAll(fp32, feeds), await runAll(quantized, feeds)];
  let worst = 0;
  for (const [name, ref] of Object.entries(a)) {
    const got = b[name]!;
    expect(got.length, name).toBe(ref.length);
    let max = 0,
      scale = 0;
    for (let i = 0; i < ref.length; i++) {
      max = Math.max(max, Math.abs(ref[i]! - got[i]!));
      scale = Math.max(scale, Math.abs(ref[i]!));
    }
    worst = Math.max(worst, max / scale);
  }
  return worst;
}

const deviation = (fp32: Uint8Array, quantized: Uint8Array, feeds: Feeds) =>
  deviationOn(fp32, quantized, Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, tensor(v)])));

const ops = (bytes: Uint8Array) => decodeModel(bytes).graph!.node!.map((n) => n.opType);
const initNames = (bytes: Uint8Array) => decodeModel(bytes).graph!.initializer!.map((t) => t.name);
const attr = (n: NodeProto, name: string) => n.attribute!.find((a) => a.name === name);
/** Every graph of a model (main first, then subgraphs depth first). */
function graphs(g: GraphProto): GraphProto[] {
  return [g, ...(g.node ?? []).flatMap((n) => (n.attribute ?? []).flatMap((a) => (a.g ? graphs(a.g) : [])))];
}
const nodeNames = (m: ModelProto) => graphs(m.graph!).flatMap((g) => g.node!.map((n) => n.name));

/** A weight written as float_data (not raw_data), as some exporters do. */
const floatDataTensor = (name: string, dims: number[], values: Float32Array) => ({
  name,
  dims,
  dataType: F,
  floatData: Array.from(values),
});

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
    node: [
      node('MatMul', ['x', 'W1'], ['h0']),
      node('Add', ['h0', 'b1'], ['h1']),
      node('Relu', ['h1'], ['h2']),
      node('MatMul', ['h2', 'W2'], ['h3']),
      node('Add', ['h3', 'b2'], ['y']),
    ],
    initializer: [
      floatTensor('W1', [100, 50], randn(5000, 0.2)),
      floatTensor('b1', [50], randn(50)),
      floatTensor('W2', [50, 20], randn(1000, 0.2)),
      floatTensor('b2', [20], randn(20)),
    ],
    // Old exporters also list initializers as graph inputs.
    input: [
      valueInfo('x', F, ['batch', 100]),
      valueInfo('W1', F, [100, 50]),
      valueInfo('b1', F, [50]),
      valueInfo('W2', F, [50, 20]),
      valueInfo('b2', F, [20]),
    ],
    output: [valueInfo('y', F, ['batch', 20])],
  });
}

function convGraph(): Uint8Array {
  return encodeModel({
    name: 'conv',
    node: [
      node('Conv', ['x', 'K', 'kb'], ['c'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      node('Relu', ['c'], ['y']),
    ],
    initializer: [floatTensor('K', [8, 3, 3, 3], randn(8 * 27, 0.5)), floatTensor('kb', [8], randn(8))],
    input: [valueInfo('x', F, ['batch', 3, 12, 12])],
    output: [valueInfo('y', F, ['batch', 8, 12, 12])],
  });
}

function sharedGraph(): Uint8Array {
  // One weight feeds a MatMul (channel axis 1) and a Gemm with transB=1 (channel axis 0): axes disagree.
  return encodeModel({
    name: 'shared',
    node: [
      node('MatMul', ['x', 'S'], ['a']),
      node('Gemm', ['x', 'S'], ['b'], { transB: 1 }),
      node('Add', ['a', 'b'], ['y']),
    ],
    initializer: [floatTensor('S', [40, 40], randn(1600))],
    input: [valueInfo('x', F, ['batch', 40])],
    output: [valueInfo('y', F, ['batch', 40])],
  });
}

const batch = (features: number[], n = 8) => ({
  data: randn(n * features.reduce((a, b) => a * b, 1)),
  dims: [n, ...features],
});

describe('quantizeModel (weight-only, the default)', () => {
  it.each([0, 1] as const)(
    'Gemm with transB=%i: per-channel int8 along the output axis, output within 1 %%',
    async (transB) => {
      const fp32 = gemmGraph(transB);
      const { bytes, report } = quantizeModel(fp32);
      expect(report.quantized).toEqual([
        { weight: 'W', graph: 'main', nodes: ['Gemm_y'], axis: transB ? 0 : 1, elements: 2048 },
      ]);
      expect(ops(bytes)).toEqual(['DequantizeLinear', 'Gemm']);
      expect(initNames(bytes)).not.toContain('W');
      expect(await deviation(fp32, bytes, { x: batch([64]) })).toBeLessThan(0.01);
    },
  );

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
    expect(report.quantized).toEqual([{ weight: 'K', graph: 'main', nodes: ['Conv_c'], axis: 0, elements: 216 }]);
    expect(await deviation(fp32, bytes, { x: batch([3, 12, 12], 2) })).toBeLessThan(0.01);
  });

  it('a weight shared by nodes that disagree on the channel axis gets one per-tensor scale and one dequantize', async () => {
    const fp32 = sharedGraph();
    const { bytes, report } = quantizeModel(fp32);
    expect(report.quantized).toEqual([
      { weight: 'S', graph: 'main', nodes: ['MatMul_a', 'Gemm_b'], axis: null, elements: 1600 },
    ]);
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

/** op(x, W, R, B): one direction, hidden 16, input 8; W and R weights, B bias. */
function recurrentGraph(op: 'LSTM' | 'GRU' | 'RNN', opset: number): Uint8Array {
  const [input, hidden, gates] = [8, 16, { LSTM: 4, GRU: 3, RNN: 1 }[op]];
  return encodeModel(
    {
      name: op.toLowerCase(),
      node: [node(op, ['x', 'W', 'R', 'B'], ['y', 'h'], { hidden_size: hidden }, `${op}_layer`)],
      initializer: [
        floatTensor('W', [1, gates * hidden, input], randn(gates * hidden * input, 0.5)),
        floatTensor('R', [1, gates * hidden, hidden], randn(gates * hidden * hidden, 0.3)),
        floatTensor('B', [1, 2 * gates * hidden], randn(2 * gates * hidden, 0.1)),
      ],
      input: [valueInfo('x', F, ['seq', 'batch', input])],
      output: [valueInfo('y', F, ['seq', 1, 'batch', hidden]), valueInfo('h', F, [1, 'batch', hidden])],
    },
    { opset },
  );
}

/**
 * y = If(cond, then: x · Wout, else: x · Win): Wout is a main-graph initializer the branch reads from the outer
 * scope, Win an initializer of the else branch itself.
 */
function ifGraph(): Uint8Array {
  const [k, n] = [32, 16];
  const branch = (name: string, w: string, initializer: GraphProto['initializer']): { graph: GraphProto } => ({
    graph: {
      name,
      node: [node('MatMul', ['x', w], [`${name}_y`], {}, `${name}_matmul`)],
      initializer,
      input: [],
      output: [valueInfo(`${name}_y`, F, ['batch', n])],
    },
  });
  return encodeModel({
    name: 'if',
    node: [
      node(
        'If',
        ['cond'],
        ['y'],
        {
          then_branch: branch('then', 'Wout', []),
          else_branch: branch('else', 'Win', [floatTensor('Win', [k, n], randn(k * n))]),
        },
        'choose',
      ),
    ],
    initializer: [floatTensor('Wout', [k, n], randn(k * n))],
    input: [valueInfo('cond', ElemType.BOOL, []), valueInfo('x', F, ['batch', k])],
    output: [valueInfo('y', F, ['batch', n])],
  });
}

/** s = Loop 3 times: s ← tanh((s · W) · V), W from the main graph, V the body's own initializer. */
function loopGraph(): Uint8Array {
  const k = 24;
  const body: GraphProto = {
    name: 'body',
    node: [
      node('MatMul', ['s_in', 'W'], ['a'], {}, 'body_w'),
      node('MatMul', ['a', 'V'], ['b'], {}, 'body_v'),
      node('Tanh', ['b'], ['s_out'], {}, 'body_tanh'),
      node('Identity', ['c_in'], ['c_out'], {}, 'body_cond'),
    ],
    initializer: [floatTensor('V', [k, k], randn(k * k, 0.3))],
    input: [valueInfo('i', ElemType.INT64, []), valueInfo('c_in', ElemType.BOOL, []), valueInfo('s_in', F, [1, k])],
    output: [valueInfo('c_out', ElemType.BOOL, []), valueInfo('s_out', F, [1, k])],
  };
  return encodeModel({
    name: 'loop',
    node: [node('Loop', ['M', '', 's0'], ['s'], { body: { graph: body } }, 'repeat')],
    initializer: [
      floatTensor('W', [k, k], randn(k * k, 0.3)),
      { name: 'M', dims: [], dataType: ElemType.INT64, int64Data: [3] },
    ],
    input: [valueInfo('s0', F, [1, k])],
    output: [valueInfo('s', F, [1, k])],
  });
}

/** y = W · x: the constant is MatMul's first input (A), its rows the output's rows. */
function leftMatmulGraph(): Uint8Array {
  return encodeModel({
    name: 'left',
    node: [node('MatMul', ['W', 'x'], ['y'], {}, 'left_matmul')],
    initializer: [floatTensor('W', [24, 48], randn(24 * 48))],
    input: [valueInfo('x', F, [48, 'n'])],
    output: [valueInfo('y', F, [24, 'n'])],
  });
}

const bool = (v: boolean) => ({ data: Uint8Array.of(v ? 1 : 0), dims: [] });
const corpusDir = join(import.meta.dirname, '../../fixtures/third-party');
const corpusFile = (f: string) => new Uint8Array(readFileSync(join(corpusDir, f)));
/** Silero needs its sample rate (16000 picks the 16 kHz branch) and a 512-sample window. */
const sileroFeeds = () => ({
  input: new ort.Tensor('float32', randn(512), [1, 512]),
  sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
  h: new ort.Tensor('float32', randn(128), [2, 1, 64]),
  c: new ort.Tensor('float32', randn(128), [2, 1, 64]),
});

describe('quantizeModel on recurrent layers, subgraphs and MatMul with the constant on the left', () => {
  it.each([
    ['LSTM', 17],
    ['GRU', 17],
    ['RNN', 17],
    ['LSTM', 12],
    ['GRU', 11],
  ] as const)(
    '%s at opset %i: W and R int8 behind DequantizeLinear, B fp32, outputs within 2 %%',
    async (op, opset) => {
      const fp32 = recurrentGraph(op, opset);
      const { bytes, report } = quantizeModel(fp32, { minElements: 64 });
      const axis = opset >= 13 ? 1 : null;
      expect(report.quantized.map((q) => [q.weight, q.axis, q.nodes])).toEqual([
        ['W', axis, [`${op}_layer`]],
        ['R', axis, [`${op}_layer`]],
      ]);
      const g = decodeModel(bytes).graph!;
      expect(g.node!.map((n) => [n.opType, n.output![0]])).toEqual([
        ['DequantizeLinear', 'W'],
        ['DequantizeLinear', 'R'],
        [op, 'y'],
      ]);
      expect(g.node![2]!.input).toEqual(['x', 'W', 'R', 'B']);
      expect(initNames(bytes)).toContain('B');
      expect(await deviation(fp32, bytes, { x: { data: randn(5 * 2 * 8), dims: [5, 2, 8] } })).toBeLessThan(0.02);
    },
  );

  it("If: an outer-scope weight is dequantized in the graph that owns it, a branch's own weight inside the branch; both branches run", async () => {
    const fp32 = ifGraph();
    const { bytes, report } = quantizeModel(fp32);
    expect(report.quantized.map((q) => [q.weight, q.graph, q.nodes])).toEqual([
      ['Wout', 'main', ['then_matmul']],
      ['Win', 'choose.else_branch', ['else_matmul']],
    ]);
    const g = decodeModel(bytes).graph!;
    expect(g.node!.map((n) => [n.opType, n.output![0]])).toEqual([
      ['DequantizeLinear', 'Wout'],
      ['If', 'y'],
    ]);
    const [then, otherwise] = [attr(g.node![1]!, 'then_branch')!.g!, attr(g.node![1]!, 'else_branch')!.g!];
    expect(then.node!.map((n) => n.opType)).toEqual(['MatMul']);
    expect(otherwise.node!.map((n) => [n.opType, n.output![0]])).toEqual([
      ['DequantizeLinear', 'Win'],
      ['MatMul', 'else_y'],
    ]);
    expect(otherwise.initializer!.map((t) => t.name)).toEqual(['Win_quantized', 'Win_scale', 'Win_zero_point']);
    for (const cond of [true, false])
      expect(await deviation(fp32, bytes, { cond: bool(cond), x: batch([32]) }), `cond ${cond}`).toBeLessThan(0.01);
  });

  it("Loop: the body's own weight and the outer weight it reads are both int8; the loop runs as before", async () => {
    const fp32 = loopGraph();
    const { bytes, report } = quantizeModel(fp32);
    expect(report.quantized.map((q) => [q.weight, q.graph])).toEqual([
      ['W', 'main'],
      ['V', 'repeat.body'],
    ]);
    const body = attr(decodeModel(bytes).graph!.node!.find((n) => n.opType === 'Loop')!, 'body')!.g!;
    expect(body.node!.map((n) => n.opType)).toEqual(['DequantizeLinear', 'MatMul', 'MatMul', 'Tanh', 'Identity']);
    expect(await deviation(fp32, bytes, { s0: { data: randn(24), dims: [1, 24] } })).toBeLessThan(0.02);
  });

  it('MatMul with the constant on the left (A): per channel along its rows (axis 0)', async () => {
    const fp32 = leftMatmulGraph();
    const { bytes, report } = quantizeModel(fp32);
    expect(report.quantized).toEqual([{ weight: 'W', graph: 'main', nodes: ['left_matmul'], axis: 0, elements: 1152 }]);
    expect(Number(attr(decodeModel(bytes).graph!.node![0]!, 'axis')!.i)).toBe(0);
    expect(await deviation(fp32, bytes, { x: { data: randn(48 * 5), dims: [48, 5] } })).toBeLessThan(0.01);
  });

  it.each([10, 11, 12])(
    'opset %i: one scale per tensor (DequantizeLinear has no axis before 13), and it runs',
    async (opset) => {
      const g = decodeModel(matmulAddGraph()).graph!;
      const fp32 = encodeModel(g, { opset });
      const { bytes, report } = quantizeModel(fp32);
      expect(report.quantized.map((q) => q.axis)).toEqual([null, null]);
      expect(report.notes).toEqual([
        `opset ${opset}: one scale per weight tensor (per-channel DequantizeLinear needs opset 13)`,
      ]);
      const m = decodeModel(bytes);
      expect(Number(m.opsetImport![0]!.version)).toBe(opset);
      for (const dq of m.graph!.node!.filter((n) => n.opType === 'DequantizeLinear'))
        expect(attr(dq, 'axis')).toBeUndefined();
      expect(m.graph!.initializer!.find((t) => t.name === 'W1_scale')!.dims).toEqual([]);
      expect(await deviation(fp32, bytes, { x: batch([100]) })).toBeLessThan(0.02);
    },
  );

  it('dynamic mode inside a subgraph: MatMulInteger in the branch reads the int8 weight from the outer graph; node names kept', async () => {
    const fp32 = ifGraph();
    const { bytes } = quantizeModel(fp32, { mode: 'dynamic' });
    const g = decodeModel(bytes).graph!;
    // Every reader of Wout became a MatMulInteger: no DequantizeLinear is left for it.
    expect(g.node!.map((n) => n.opType)).toEqual(['If']);
    const then = attr(g.node![0]!, 'then_branch')!.g!;
    expect(then.node!.map((n) => n.opType)).toEqual(['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul']);
    expect(then.node!.at(-1)!.name).toBe('then_matmul');
    expect(g.initializer!.map((t) => t.name)).toEqual(['Wout_quantized', 'Wout_scale', 'Wout_zero_point']);
    for (const cond of [true, false])
      expect(await deviation(fp32, bytes, { cond: bool(cond), x: batch([32]) })).toBeLessThan(0.03);
  });
});

describe('quantizeModel (fp16)', () => {
  it('float16Bits rounds to nearest even, keeps subnormals, saturates to Infinity', () => {
    expect([1, -2, 0.1, 65504, 1e-8, 6e-8, 2 ** -24 * 1.5, 0, -0, Infinity, 65520].map(float16Bits)).toEqual([
      0x3c00, 0xc000, 0x2e66, 0x7bff, 0, 1, 2, 0, 0x8000, 0x7c00, 0x7c00,
    ]);
    expect(float16Bits(NaN) & 0x7c00).toBe(0x7c00);
  });

  it('weights stored as FLOAT16 and Cast to FLOAT under their own names: inputs, outputs and types unchanged, within 0.1 %', async () => {
    const fp32 = matmulAddGraph();
    const { bytes, report } = quantizeModel(fp32, { mode: 'fp16' });
    expect(report).toMatchObject({ mode: 'fp16', storage: 'float16' });
    expect(report.quantized.map((q) => q.weight)).toEqual(['W1', 'W2']);
    const g = decodeModel(bytes).graph!;
    expect(g.node!.slice(0, 2).map((n) => [n.opType, n.input, n.output, Number(attr(n, 'to')!.i)])).toEqual([
      ['Cast', ['W1_fp16'], ['W1'], ElemType.FLOAT],
      ['Cast', ['W2_fp16'], ['W2'], ElemType.FLOAT],
    ]);
    expect(g.initializer!.filter((t) => t.dataType === ElemType.FLOAT16).map((t) => t.name)).toEqual([
      'W1_fp16',
      'W2_fp16',
    ]);
    expect(g.output).toEqual(decodeModel(fp32).graph!.output);
    expect(bytes.byteLength / fp32.byteLength).toBeLessThan(0.55);
    expect(await deviation(fp32, bytes, { x: batch([100]) })).toBeLessThan(1e-3);
  });

  it('in subgraphs too, and a weight float16 cannot hold stays fp32 with the reason', async () => {
    const fp32 = ifGraph();
    const { bytes, report } = quantizeModel(fp32, { mode: 'fp16' });
    expect(report.quantized.map((q) => [q.weight, q.graph])).toEqual([
      ['Wout', 'main'],
      ['Win', 'choose.else_branch'],
    ]);
    for (const cond of [true, false])
      expect(await deviation(fp32, bytes, { cond: bool(cond), x: batch([32]) })).toBeLessThan(1e-3);
    const big = decodeModel(matmulAddGraph());
    big.graph!.initializer![0] = floatTensor(
      'W1',
      [100, 50],
      randn(5000).map((v, i) => (i === 7 ? 70000 : v)),
    );
    const r = quantizeModel(onnxBytes(big), { mode: 'fp16' }).report;
    expect(r.quantized.map((q) => q.weight)).toEqual(['W2']);
    expect(r.skipped).toEqual([
      { node: 'MatMul_h0', reason: "weight W1: weight has 70000 at 7, beyond float16's range (±65504)" },
    ]);
  });
});

const onnxBytes = (m: ModelProto) => encodeModel(m.graph!, { opset: Number(m.opsetImport![0]!.version) });

describe('quantizeModel on the third-party corpus', () => {
  it('silero-vad: weights in nested If branches (LSTM) and outer weights read by branches (Conv, the STFT basis) → ≤ 0.30× size, within 25 % of each output', async () => {
    const fp32 = corpusFile('silero-vad.onnx');
    const { bytes, report } = quantizeModel(fp32);
    expect(bytes.byteLength / fp32.byteLength).toBeLessThanOrEqual(0.3);
    const lstm = report.quantized.filter((q) => q.graph !== 'main');
    // 4 LSTM layers (two per sample-rate branch, each as two If branches) × W and R, per gate row.
    expect(lstm).toHaveLength(16);
    expect(lstm.every((q) => q.graph.split('/').length === 2 && q.axis === 1)).toBe(true);
    expect(report.quantized.find((q) => q.weight === 'model.feature_extractor.forward_basis_buffer')).toMatchObject({
      graph: 'main',
      axis: 0,
      nodes: ['Conv_73'],
    });
    expect(floatWeightBytes(bytes)).toBeLessThan(0.05 * floatWeightBytes(fp32));
    // Its LSTM state outputs amplify int8 rounding (≈ 14 % of their range here); fp16 stays within 1 %.
    expect(await deviationOn(fp32, bytes, sileroFeeds())).toBeLessThan(0.25);
    expect(await deviationOn(fp32, quantizeModel(fp32, { mode: 'fp16' }).bytes, sileroFeeds())).toBeLessThan(0.01);
  });

  it.each([
    'pt-lstm.onnx',
    'pt-gru-opset12.onnx',
    'pt-mlp-1mb.onnx',
    'openwakeword-hello-deepa.onnx',
    'silero-vad.onnx',
    'pt-embedding-opset11.onnx',
  ])('%s: graph inputs, outputs and node names unchanged', (file) => {
    const before = decodeModel(corpusFile(file));
    for (const mode of ['weight-only', 'fp16'] as const) {
      const after = decodeModel(quantizeModel(corpusFile(file), { mode }).bytes);
      const inits = (m: ModelProto) => new Set(m.graph!.initializer!.map((t) => t.name));
      const fed = (m: ModelProto) => m.graph!.input!.filter((i) => !inits(m).has(i.name));
      expect(fed(after), mode).toEqual(fed(before));
      expect(after.graph!.output, mode).toEqual(before.graph!.output);
      expect(nodeNames(after), mode).toEqual(expect.arrayContaining(nodeNames(before)));
      expect(new Set(nodeNames(after)).size, mode).toBe(nodeNames(after).length);
    }
  });

  it.each(['pt-lstm.onnx', 'pt-gru-opset12.onnx'])('%s: recurrent weights int8, outputs within 1 %%', async (file) => {
    const fp32 = corpusFile(file);
    const { bytes, report } = quantizeModel(fp32);
    expect(report.quantized.every((q) => q.nodes.every((n) => /LSTM|GRU/.test(n)))).toBe(true);
    const s = await ort.InferenceSession.create(fp32);
    const feeds = Object.fromEntries(
      s.inputMetadata.map((m) => {
        const dims = (m as { shape: readonly (number | string)[] }).shape.map((d) => (typeof d === 'number' ? d : 3));
        return [m.name, new ort.Tensor('float32', randn(dims.reduce((a, b) => a * b, 1)), dims)];
      }),
    );
    await s.release();
    expect(await deviationOn(fp32, bytes, feeds)).toBeLessThan(0.01);
  });
});

describe('quantizeModel refuses what it cannot quantize', () => {
  it('corrupt bytes and non-ONNX input: OnnxFormatError with the reason', () => {
    const good = matmulAddGraph();
    expect(() => quantizeModel(good.subarray(0, good.length >> 1))).toThrow(OnnxFormatError);
    expect(() => quantizeModel(new TextEncoder().encode('definitely not onnx'))).toThrow(/not an ONNX model/);
    expect(() => quantizeModel(new Uint8Array(0))).toThrow(/not an ONNX model/);
  });

  it('an opset before 10 (int8) or 6 (fp16), an already quantized model, a graph with nothing to quantize, an unknown mode', async () => {
    const g: GraphProto = {
      name: 'g',
      node: [node('MatMul', ['x', 'W'], ['y'])],
      initializer: [floatTensor('W', [32, 32], randn(1024))],
      input: [valueInfo('x', F, [1, 32])],
      output: [valueInfo('y', F, [1, 32])],
    };
    expect(() => quantizeModel(encodeModel(g, { opset: 9 }))).toThrow(
      /opset 9; int8 weights need DequantizeLinear, which opset 10 introduced/,
    );
    expect(() => quantizeModel(encodeModel(g, { opset: 5 }), { mode: 'fp16' })).toThrow(
      /opset 5; float16 weights need Cast from float16, which opset 6 introduced/,
    );
    // fp16 needs no DequantizeLinear: an opset 9 model converts and runs.
    const old = encodeModel(g, { opset: 9 });
    expect(await deviation(old, quantizeModel(old, { mode: 'fp16' }).bytes, { x: batch([32], 1) })).toBeLessThan(1e-3);
    const once = quantizeModel(encodeModel(g)).bytes;
    expect(() => quantizeModel(once)).toThrow(/already quantized \(it has DequantizeLinear in graph main\)/);
    const dequantizing: GraphProto = {
      name: 'b',
      node: [node('DequantizeLinear', ['q', 's'], ['b_y'])],
      initializer: [rawTensor('q', [2], ElemType.INT8, Int8Array.of(1, 2)), floatTensor('s', [], Float32Array.of(1))],
      output: [valueInfo('b_y', F, [2])],
    };
    const nested = encodeModel({
      name: 'n',
      node: [
        node(
          'If',
          ['c'],
          ['y'],
          { then_branch: { graph: dequantizing }, else_branch: { graph: dequantizing } },
          'pick',
        ),
      ],
      input: [valueInfo('c', ElemType.BOOL, [])],
      output: [valueInfo('y', F, [2])],
    });
    expect(() => quantizeModel(nested, { mode: 'fp16' })).toThrow(
      /already quantized \(it has DequantizeLinear in graph pick.then_branch\)/,
    );
    const relu = encodeModel({
      name: 'r',
      node: [node('Relu', ['x'], ['y'])],
      input: [valueInfo('x', F, [1, 4])],
      output: [valueInfo('y', F, [1, 4])],
    });
    expect(() => quantizeModel(relu)).toThrow(QuantizeError);
    expect(() => quantizeModel(relu)).toThrow(/nothing to quantize/);
    const computed = encodeModel({
      name: 'c',
      node: [node('MatMul', ['x', 'x2'], ['y'])],
      input: [valueInfo('x', F, [4, 4]), valueInfo('x2', F, [4, 4])],
      output: [valueInfo('y', F, [4, 4])],
    });
    expect(() => quantizeModel(computed)).toThrow(/MatMul_y: weight is not an initializer \(computed at run time\)/);
    expect(() => quantizeModel(ifGraph(), { minElements: 1000 })).toThrow(
      /nothing to quantize: .*then_matmul: weight Wout has 512 elements \(< 1000\); else_matmul: weight Win has 512 elements/,
    );
    expect(() => quantizeModel(encodeModel(g), { mode: 'int4' as never })).toThrow(
      /mode must be 'weight-only', 'dynamic', 'fp16'/,
    );
  });
});
