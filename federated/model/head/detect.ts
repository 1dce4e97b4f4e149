/**
 * detectHead: finds a served graph's head — its final dense layer (or last n dense layers) — and returns it as a
 * Fedge model spec with the graph's weights in Fedge's flat order, plus where each weight lives in the graph so
 * writeHead can put trained weights back and headBody can cut the graph at the head's input (the embedding).
 *
 * A dense layer is a Gemm (any transA/transB/alpha/beta, the weight as either operand) or a MatMul + Add (the
 * weight on either side of the MatMul, the bias on either side of the Add). After the last one the graph may apply
 * one Softmax, LogSoftmax or Sigmoid and any Identity, Flatten, Reshape (constant shape) or Transpose that keeps
 * one row of classes per example; `layers: 2` also takes the dense layer before, when an elementwise Relu, Sigmoid
 * or Tanh (or nothing) sits between the two.
 */
import { MODEL_SPEC_FORMAT, type Activation, type ModelSpec, parameterShapes, parseModelSpec } from '../model-spec.ts';
import { flattenWeights } from '../flat-weights.ts';
import { ModelSpecError } from '../model-spec.ts';
import { decodeServedModel } from '../onnx-canonical.ts';
import { OnnxFormatError } from '../onnx-format-error.ts';
import type { ModelProto, NodeProto } from '../onnx-graph.ts';
import { type GraphIndex, describe, floatAttr, indexGraph, intAttr, intsAttr, nodeRef } from './graph-index.ts';
import { HeadError } from './head-error.ts';
import { type StoredWeight, storedValues, toFedge, weightSource } from './weights.ts';

export type { DenseLocation, Head, HeadPlace, HiddenActivation, OutputActivation } from './head-place.ts';
import type { DenseLocation, Head, HiddenActivation, OutputActivation } from './head-place.ts';

export interface DetectOptions {
  /** How many dense layers the head has: 1 = `trainable: "head"`, 2 = `"head:2"`. Default 1. */
  layers?: number | undefined;
  /** The graph output the head ends in. Default: the graph's first output. */
  output?: string | undefined;
}

/** `trainable` as the task API spells it: "head" → 1, "head:2" → 2. */
export function headLayers(trainable: string): number {
  const m = /^head(?::([1-9][0-9]*))?$/.exec(trainable);
  if (!m) throw new HeadError(`trainable must be "head" or "head:<layers>", got ${JSON.stringify(trainable)}`);
  return m[1] ? Number(m[1]) : 1;
}

const TAIL_OPS = new Set(['Softmax', 'LogSoftmax', 'Sigmoid', 'Identity', 'Flatten', 'Reshape', 'Transpose']);
const OUTPUT_ACTIVATION: Record<string, OutputActivation> = {
  Softmax: 'softmax',
  LogSoftmax: 'logSoftmax',
  Sigmoid: 'sigmoid',
};
const HIDDEN_ACTIVATION: Record<string, HiddenActivation> = { Relu: 'relu', Sigmoid: 'sigmoid', Tanh: 'tanh' };
const HEAD_SHAPE =
  'a head is a final Gemm or MatMul+Add, optionally followed by Softmax, LogSoftmax, Sigmoid, Identity, Flatten, Reshape or Transpose';

const INTEGER_OPS = new Set(['MatMulInteger', 'QLinearMatMul', 'DynamicQuantizeLinear', 'ConvInteger', 'QLinearConv']);

const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * The head of a served model's bytes, read strictly (onnx-canonical.ts: one reading of the bytes, the one onnxruntime
 * serves). Whatever the bytes hold, what is thrown is a HeadError: bytes that are not a model Fedge reads as
 * onnxruntime does, a graph without a head Fedge can train, or weights that do not fit their shapes.
 */
export function detectHead(bytes: Uint8Array, options: DetectOptions = {}): Head {
  return detectHeadIn(readServedModel(bytes), options);
}

/** `bytes` decoded as decodeServedModel does, its refusal a HeadError. */
export function readServedModel(bytes: Uint8Array): ModelProto {
  return asHeadError(() => decodeServedModel(bytes));
}

/** The head of a decoded model; throws HeadError (also for a model whose data does not fit: OnnxFormatError, ModelSpecError). */
export function detectHeadIn(model: ModelProto, options: DetectOptions = {}): Head {
  return asHeadError(() => detect(model, options));
}

/** The graph's own faults, found below the head walk (a tensor's data, the spec it makes), as HeadError. */
function asHeadError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof OnnxFormatError || e instanceof ModelSpecError) throw new HeadError(e.message);
    throw e;
  }
}

function detect(model: ModelProto, options: DetectOptions): Head {
  const layerCount = options.layers ?? 1;
  if (!Number.isInteger(layerCount) || layerCount < 1)
    throw new HeadError(`layers must be a positive integer, got ${layerCount}`);
  const graph = model.graph!;
  const opset = Number(model.opsetImport?.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0);
  const ix = indexGraph(graph, opset);
  const outputs = (graph.output ?? []).map((o) => o.name ?? '');
  const outputName = options.output ?? outputs[0];
  if (outputName === undefined) throw new HeadError('the graph has no outputs');
  if (!outputs.includes(outputName))
    throw new HeadError(`the graph has no output '${outputName}' (outputs: ${outputs.join(', ')})`);

  // Walk back over the tail to the last dense layer.
  const tail: NodeProto[] = [];
  let t = outputName;
  for (let p = ix.producer.get(t); p && TAIL_OPS.has(p.opType ?? '') && p.output?.[0] === t; p = ix.producer.get(t)) {
    tail.unshift(p);
    t = p.input?.[0] ?? '';
  }
  const last = denseAt(ix, t);
  if (!last) {
    const p = ix.producer.get(t);
    const what = p
      ? `ends in ${[p, ...tail].map(describe).join(' then ')}`
      : `output comes from ${ix.initializers.has(t) ? 'initializer' : 'graph input'} '${t}'${tail.length ? ` through ${tail.map(describe).join(', ')}` : ''}`;
    const several =
      outputs.length > 1 && options.output === undefined
        ? ` (the first of ${outputs.length} outputs; choose another with \`output\`)`
        : '';
    const integer = (graph.node ?? []).find((n) => INTEGER_OPS.has(n.opType ?? ''));
    const hint = integer
      ? ` (it computes with ${describe(integer)}: dynamically quantized; detect the head on the model's fp32 copy)`
      : '';
    throw new HeadError(
      `graph ${what} (output '${outputName}')${several}; ${HEAD_SHAPE}${hint}`,
      p ? nodeRef(p) : undefined,
    );
  }
  const activation = checkTail(ix, tail, last);

  const layers = [last];
  while (layers.length < layerCount) layers.unshift(denseBefore(ix, layers[0]!, layerCount));
  const seen = new Set<string>();
  for (const l of layers) {
    exclusive(ix, l.kernel, l.nodes[0]!, seen);
    exclusive(ix, l.bias, l.nodes[l.nodes.length - 1]!, seen);
  }

  // The weights' values first: each must fill its dims, so the sizes below (units, labels) are bounded by the file.
  const stored = layers.map((l) => [storedValues(ix, l.kernel), storedValues(ix, l.bias)] as const);
  const first = layers[0]!;
  const spec: ModelSpec = parseModelSpec({
    format: MODEL_SPEC_FORMAT,
    name: `${graph.name || 'model'}-head`,
    inputShape: [first.inputSize],
    layers: layers.map((l, i): { type: 'dense'; units: number; activation: Activation } => ({
      type: 'dense',
      units: l.units,
      activation: i < layers.length - 1 ? l.activation : activation === 'sigmoid' ? 'sigmoid' : 'softmax',
    })),
    inputName: uniqueName(ix, 'embedding'),
    outputName,
    labels: labelsOf(model, last.units),
  });
  const shapes = parameterShapes(spec);
  const weights = layers.flatMap((l, i) => [
    { ...shapes[2 * i]!, values: toFedge(stored[i]![0], l.kernel) },
    { ...shapes[2 * i + 1]!, values: toFedge(stored[i]![1], l.bias) },
  ]);
  return {
    spec,
    weights,
    flat: flattenWeights(spec, weights),
    layers,
    embedding: {
      tensor: first.input,
      transposed: first.inputTransposed,
      size: first.inputSize,
      output: spec.inputName,
    },
    output: { name: outputName, activation, nodes: tail.map((n) => nodeRef(n).name) },
    opset,
    quantized: layers.some((l) => l.kernel.quantized || l.bias.quantized),
  };
}

/** The dense layer that computes `tensor`, or undefined when its producer is not one. */
function denseAt(ix: GraphIndex, tensor: string): DenseLocation | undefined {
  const p = ix.producer.get(tensor);
  if (!p || p.output?.[0] !== tensor) return undefined;
  if (p.opType === 'Gemm') return resolveInput(ix, gemm(ix, p));
  if (p.opType === 'MatMul')
    throw new HeadError(`${describe(p)} has no bias (no Add after it); a dense head needs one`, nodeRef(p));
  if (p.opType !== 'Add') return undefined;
  for (const i of [0, 1]) {
    const m = ix.producer.get(p.input?.[i] ?? '');
    if (m?.opType === 'MatMul') return resolveInput(ix, matMulAdd(ix, m, p, p.input?.[1 - i] ?? ''));
  }
  return undefined;
}

type Operands = Omit<DenseLocation, 'activation' | 'bias'> & {
  bias: Omit<StoredWeight, 'transposed' | 'factor'>;
  biasFactor: number;
};

function operands(
  ix: GraphIndex,
  n: NodeProto,
  a: string,
  b: string,
): [ReturnType<typeof weightSource>, ReturnType<typeof weightSource>] {
  const wa = weightSource(ix, a, 'weight'),
    wb = weightSource(ix, b, 'weight');
  if (wa && wb)
    throw new HeadError(
      `${describe(n)} multiplies two constants; a dense layer multiplies a run-time tensor by a weight`,
      nodeRef(n),
    );
  if (!wa && !wb)
    throw new HeadError(
      `${describe(n)} multiplies two run-time tensors; a dense layer needs a weight initializer`,
      nodeRef(n),
    );
  const w = (wa ?? wb)!;
  if (w.dims.length !== 2)
    throw new HeadError(`${describe(n)}: weight '${w.name}' has shape [${w.dims}]; a dense weight is 2-D`, nodeRef(n));
  return [wa, wb];
}

function gemm(ix: GraphIndex, n: NodeProto): Operands {
  const [a = '', b = '', c = ''] = n.input ?? [];
  const transA = intAttr(n, 'transA', 0) !== 0,
    transB = intAttr(n, 'transB', 0) !== 0;
  const alpha = floatAttr(n, 'alpha', 1),
    beta = floatAttr(n, 'beta', 1);
  const [wa, wb] = operands(ix, n, a, b);
  if (!c) throw new HeadError(`${describe(n)} has no bias (input C); a dense head needs one`, nodeRef(n));
  if (alpha === 0 || beta === 0 || !Number.isFinite(alpha) || !Number.isFinite(beta))
    throw new HeadError(
      `${describe(n)} has alpha ${alpha}, beta ${beta}; a dense head needs both finite and non-zero`,
      nodeRef(n),
    );
  const bias = biasSource(ix, n, c);
  const common = { op: 'Gemm' as const, nodes: [nodeRef(n).name], output: n.output![0]!, bias, biasFactor: beta };
  if (wb) {
    // Y = op(A) · op(B): op(B) is [in, out].
    const [inputSize, units] = transB ? [wb.dims[1]!, wb.dims[0]!] : [wb.dims[0]!, wb.dims[1]!];
    return {
      ...common,
      input: a,
      inputTransposed: transA,
      outputTransposed: false,
      inputSize,
      units,
      kernel: { ...wb, transposed: transB, factor: alpha },
    };
  }
  // The weight on the left: Y = op(A) · op(B) is [out, batch], op(A) is [out, in], op(B) is [in, batch].
  const [units, inputSize] = transA ? [wa!.dims[1]!, wa!.dims[0]!] : [wa!.dims[0]!, wa!.dims[1]!];
  return {
    ...common,
    input: b,
    inputTransposed: !transB,
    outputTransposed: true,
    inputSize,
    units,
    kernel: { ...wa!, transposed: !transA, factor: alpha },
  };
}

function matMulAdd(ix: GraphIndex, m: NodeProto, add: NodeProto, biasName: string): Operands {
  const [x0 = '', x1 = ''] = m.input ?? [];
  const [w0, w1] = operands(ix, m, x0, x1);
  const input = w1 ? x0 : x1;
  const rank = ix.rank(input);
  if (rank !== undefined && rank !== 2)
    throw new HeadError(
      `${describe(m)} multiplies a rank-${rank} tensor '${input}'; the head's input (the embedding) must be [batch, features]`,
      nodeRef(m),
    );
  const bias = biasSource(ix, add, biasName);
  const common = {
    op: 'MatMul+Add' as const,
    nodes: [nodeRef(m).name, nodeRef(add).name],
    output: add.output![0]!,
    input,
    bias,
    biasFactor: 1,
  };
  if (w1)
    return {
      ...common,
      inputTransposed: false,
      outputTransposed: false,
      inputSize: w1.dims[0]!,
      units: w1.dims[1]!,
      kernel: { ...w1, transposed: false, factor: 1 },
    };
  return {
    ...common,
    inputTransposed: true,
    outputTransposed: true,
    inputSize: w0!.dims[1]!,
    units: w0!.dims[0]!,
    kernel: { ...w0!, transposed: true, factor: 1 },
  };
}

function biasSource(ix: GraphIndex, n: NodeProto, name: string) {
  const w = weightSource(ix, name, 'bias');
  if (!w)
    throw new HeadError(
      `${describe(n)} adds run-time tensor '${name}'; a dense layer's bias must be an initializer`,
      nodeRef(n),
    );
  return w;
}

/** Checks the bias has one value per unit, broadcast along the batch; a Transpose the layer undoes is skipped. */
function resolveInput(ix: GraphIndex, o: Operands): DenseLocation {
  const d = o.bias.dims;
  const ok =
    size(d) === o.units &&
    (o.units === 1 ||
      (o.outputTransposed ? d.length === 2 && d[1] === 1 : d.length === 1 || (d.length === 2 && d[0] === 1)));
  if (!ok)
    throw new HeadError(
      `${o.op} '${o.nodes.at(-1)}': bias '${o.bias.name}' has shape [${d}]; a dense layer of ${o.units} units needs ${o.outputTransposed ? `[${o.units}, 1]` : `[${o.units}] or [1, ${o.units}]`}`,
    );
  const { biasFactor, ...rest } = o;
  const layer: DenseLocation = {
    ...rest,
    bias: { ...o.bias, transposed: false, factor: biasFactor },
    activation: 'linear',
  };
  const t = ix.producer.get(layer.input);
  const perm = t?.opType === 'Transpose' ? intsAttr(t, 'perm')?.join() : 'none';
  if (layer.inputTransposed && (perm === '1,0' || (perm === undefined && ix.rank(t!.input?.[0] ?? '') === 2))) {
    layer.input = t!.input![0]!;
    layer.inputTransposed = false;
  }
  return layer;
}

/** The dense layer feeding `next` through an elementwise activation (or directly), for `layers` ≥ 2. */
function denseBefore(ix: GraphIndex, next: DenseLocation, layerCount: number): DenseLocation {
  const need = `a ${layerCount}-layer head needs dense layers in a row with an elementwise activation (Relu, Sigmoid or Tanh) or nothing between`;
  const at = `${next.op} '${next.nodes[0]}'`;
  if (next.inputTransposed) throw new HeadError(`${need}; ${at} reads its input transposed`);
  const p = ix.producer.get(next.input);
  const activation = p && p.output?.[0] === next.input ? HIDDEN_ACTIVATION[p.opType ?? ''] : undefined;
  const prev = denseAt(ix, activation ? p!.input![0]! : next.input);
  if (!prev)
    throw new HeadError(
      `${need}; ${at} reads '${next.input}' from ${p ? describe(p) : 'the graph input'}`,
      p ? nodeRef(p) : undefined,
    );
  if (prev.outputTransposed) throw new HeadError(`${need}; ${prev.op} '${prev.nodes[0]}' computes [units, batch]`);
  if (prev.units !== next.inputSize)
    throw new HeadError(
      `${prev.op} '${prev.nodes[0]}' has ${prev.units} units but ${at} takes ${next.inputSize} inputs`,
    );
  return { ...prev, activation: activation ?? 'linear' };
}

/** A head weight must be read by its own node only: writing it must not change the body. */
function exclusive(ix: GraphIndex, w: StoredWeight, owner: string, seen: Set<string>): void {
  const chain: [string, string][] = [[w.name, owner]];
  if (w.quantized)
    for (const t of [w.quantized.data, w.quantized.scale, w.quantized.zeroPoint])
      if (t) chain.push([t, w.quantized.node]);
  for (const [tensor, reader] of chain) {
    if (seen.has(tensor))
      throw new HeadError(`weight '${tensor}' is used twice in the head; each head layer needs its own weights`);
    seen.add(tensor);
    const other = (ix.consumers.get(tensor) ?? []).find((n) => nodeRef(n).name !== reader);
    if (other)
      throw new HeadError(
        `weight '${tensor}' is also read by ${describe(other)}; a head's weights must be its own (writing them would change the rest of the graph)`,
        nodeRef(other),
      );
    if (ix.outputs.has(tensor)) throw new HeadError(`weight '${tensor}' is also a graph output`);
  }
}

type Sym = 'B' | 'N' | '1';
const nonUnit = (p: Sym[]) => p.filter((s) => s !== '1').join('');

/**
 * Follows the layout of the last layer's output through the tail: which axis is the batch (B), which the classes
 * (N), which have size 1. The graph output must keep one row of classes per example, and an activation must act on
 * the classes of each example.
 */
function checkTail(ix: GraphIndex, tail: NodeProto[], last: DenseLocation): OutputActivation {
  let pattern: Sym[] = last.outputTransposed ? ['N', 'B'] : ['B', 'N'];
  let activation: OutputActivation = 'none';
  for (const n of tail) {
    const fail = (why: string): never => {
      throw new HeadError(`${describe(n)} after the head ${why}`, nodeRef(n));
    };
    const op = n.opType!;
    if (op === 'Identity') continue;
    if (op === 'Sigmoid' || op === 'Softmax' || op === 'LogSoftmax') {
      if (activation !== 'none') fail(`is a second activation (after ${activation})`);
      if (op !== 'Sigmoid') {
        let axis = intAttr(n, 'axis', ix.opset >= 13 ? -1 : 1);
        if (axis < 0) axis += pattern.length;
        // Before opset 13 the input is coerced to 2-D at `axis` and normalised over everything after it.
        const over = ix.opset >= 13 ? (pattern[axis] ?? '') : nonUnit(pattern.slice(axis));
        if (over !== 'N') fail(`normalises over axis ${axis}, not the classes`);
      }
      activation = OUTPUT_ACTIVATION[op]!;
    } else if (op === 'Transpose') {
      const perm = intsAttr(n, 'perm') ?? pattern.map((_, i) => pattern.length - 1 - i);
      if (perm.length !== pattern.length) fail(`has perm [${perm}] for a rank-${pattern.length} tensor`);
      pattern = perm.map((i) => pattern[i]!);
    } else if (op === 'Flatten') {
      let axis = intAttr(n, 'axis', 1);
      if (axis < 0) axis += pattern.length;
      const groups = [pattern.slice(0, axis), pattern.slice(axis)].map(nonUnit);
      if (groups.some((g) => g.length > 1)) fail('merges the batch and the classes');
      pattern = groups.map((g) => (g || '1') as Sym);
    } else {
      pattern = reshaped(ix, n, pattern, last.units, fail);
    }
  }
  if (nonUnit(pattern) !== 'BN') {
    const n = tail.at(-1);
    throw new HeadError(
      `the head's output '${n?.output?.[0] ?? last.output}' is laid out [${pattern.map((s) => ({ B: 'batch', N: 'classes', 1: '1' })[s])}]; a head outputs one row of classes per example`,
      n ? nodeRef(n) : undefined,
    );
  }
  return activation;
}

function reshaped(ix: GraphIndex, n: NodeProto, pattern: Sym[], units: number, fail: (why: string) => never): Sym[] {
  const shapeTensor = ix.initializers.get(n.input?.[1] ?? '');
  if (!shapeTensor) fail('has a shape computed at run time');
  const raw = shapeTensor!.rawData;
  if (raw?.length && raw.length % 8) fail(`has a shape of ${raw.length} bytes, not int64 values`);
  const shape = raw?.length
    ? Array.from(new BigInt64Array(new Uint8Array(raw).buffer), Number)
    : (shapeTensor!.int64Data ?? []).map(Number);
  const allowZero = intAttr(n, 'allowzero', 0) !== 0;
  let hole = -1;
  const out: (Sym | '?')[] = shape.map((s, i) => {
    if (s === 0 && !allowZero) return pattern[i] ?? fail(`copies dimension ${i} of a rank-${pattern.length} tensor`);
    if (s === -1) return ((hole = i), '?');
    if (s === 1) return '1';
    return s === units ? 'N' : 'B';
  });
  if (hole >= 0) {
    const missing = (['B', 'N'] as const).filter((s) => !out.includes(s));
    if (missing.length > 1) fail(`reshapes to [${shape}], which merges the batch and the classes`);
    out[hole] = missing[0] ?? '1';
  }
  const result = out as Sym[];
  if (nonUnit(result) !== nonUnit(pattern))
    fail(`reshapes to [${shape}], which does not keep the classes of each example together`);
  return result;
}

function uniqueName(ix: GraphIndex, base: string): string {
  const taken = new Set([
    ...ix.producer.keys(),
    ...ix.initializers.keys(),
    ...(ix.graph.input ?? []).map((i) => i.name ?? ''),
  ]);
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  return name;
}

/** The class labels the model's metadata gives (`fedge.labels`, a JSON array), else "0".."n-1". */
function labelsOf(model: ModelProto, units: number): string[] {
  const raw = model.metadataProps?.find((p) => p.key === 'fedge.labels')?.value;
  if (raw === undefined || raw === null) return Array.from({ length: units }, (_, i) => String(i));
  let labels: unknown;
  try {
    labels = JSON.parse(raw);
  } catch {
    throw new HeadError(`metadata fedge.labels is not JSON: ${raw.slice(0, 80)}`);
  }
  if (!Array.isArray(labels) || labels.length !== units || !labels.every((l) => typeof l === 'string')) {
    throw new HeadError(
      `metadata fedge.labels must be ${units} strings (the head has ${units} units), got ${raw.slice(0, 80)}`,
    );
  }
  return labels as string[];
}
