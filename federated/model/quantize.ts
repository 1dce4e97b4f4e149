/**
 * quantizeModel: fp32 ONNX -> int8 weights, per output channel, symmetric (zero point 0).
 *  - 'weight-only' (default): int8 initializers + DequantizeLinear (ONNX opset >= 13, per-axis) feeding the
 *    original MatMul/Gemm/Conv, so compute stays fp32 (ORT folds the dequantize at load) and only storage shrinks.
 *    Chosen as default because MatMulInteger-style int8 compute measured 1.9-2.6x slower than fp32 in ORT-web WASM.
 *  - 'dynamic': MatMul/Gemm become DynamicQuantizeLinear + MatMulInteger + rescale (activations quantized per
 *    tensor at run time, as onnxruntime.quantization.quantize_dynamic does); Conv stays weight-only.
 * Everything that is not a MatMul/Gemm/Conv weight stays fp32. Works on graphs this project did not write.
 */
import { ElemType, type GraphProto, type NodeProto, type TensorProto, decodeModel, floatValues, node, onnx, rawTensor } from './onnx-graph.ts';
import { OnnxFormatError } from './onnx-format-error.ts';

export type QuantizeMode = 'weight-only' | 'dynamic';

export interface QuantizeOptions {
  mode?: QuantizeMode | undefined;
  /** Weights with fewer elements stay fp32 (a bias-sized matrix gains nothing). Default 256. */
  minElements?: number | undefined;
}

export interface QuantizeReport {
  mode: QuantizeMode;
  quantized: { weight: string; nodes: string[]; axis: number | null; elements: number }[];
  skipped: { node: string; reason: string }[];
}

export class QuantizeError extends Error {
  override name = 'QuantizeError';
}

interface Use {
  node: NodeProto;
  /** channel axis of the weight for this use; null = per-tensor */
  axis: number | null;
}

const intAttr = (n: NodeProto, name: string, dflt: number) => {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? Number(a.i ?? dflt) : dflt;
};
const floatAttr = (n: NodeProto, name: string, dflt: number) => n.attribute?.find((x) => x.name === name)?.f ?? dflt;

/**
 * Symmetric int8 per channel along `axis` (or per tensor): scale = max|w| / qmax. qmax is 127, or 63 ("reduce
 * range") for weights MatMulInteger will use: x86's u8×s8 kernels (VPMADDUBSW) add pairs of products in int16,
 * which saturates with full-range weights (onnxruntime's quantization guide, "reduce_range").
 */
export function quantizeWeights(values: Float32Array, dims: number[], axis: number | null, qmax = 127): { q: Int8Array; scales: Float32Array } {
  const channels = axis === null ? 1 : dims[axis]!;
  const inner = axis === null ? values.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => (axis === null ? 0 : Math.floor(i / inner) % channels);
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < values.length; i++) {
    const c = channelOf(i), v = Math.abs(values[i]!);
    if (!Number.isFinite(v)) throw new QuantizeError(`weight has a non-finite value at ${i}`);
    if (v > maxAbs[c]!) maxAbs[c] = v;
  }
  const scales = maxAbs.map((m) => (m > 0 ? m / qmax : 1));
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) q[i] = Math.max(-qmax, Math.min(qmax, Math.round(values[i]! / scales[channelOf(i)]!)));
  return { q, scales };
}

function weightUses(graph: GraphProto, inits: Map<string, TensorProto>): { uses: Map<string, Use[]>; skipped: QuantizeReport['skipped'] } {
  const uses = new Map<string, Use[]>();
  const skipped: QuantizeReport['skipped'] = [];
  const add = (w: string, use: Use) => uses.set(w, [...(uses.get(w) ?? []), use]);
  for (const n of graph.node ?? []) {
    const label = n.name || `${n.opType}(${n.output?.[0]})`;
    if (n.opType === 'MatMul' || n.opType === 'Gemm' || n.opType === 'Conv') {
      const w = n.input?.[1];
      const init = w ? inits.get(w) : undefined;
      if (!init) { skipped.push({ node: label, reason: 'weight is not an initializer (computed at run time)' }); continue; }
      if (init.dataType !== ElemType.FLOAT) { skipped.push({ node: label, reason: `weight ${w} is not FLOAT (data type ${init.dataType})` }); continue; }
      const rank = init.dims?.length ?? 0;
      let axis: number | null;
      if (n.opType === 'Conv') axis = 0;
      else if (n.opType === 'Gemm') axis = intAttr(n, 'transB', 0) ? 0 : 1;
      else axis = rank === 2 ? 1 : null;
      add(w!, { node: n, axis });
    }
  }
  return { uses, skipped };
}

export function quantizeModel(onnxBytes: Uint8Array, options: QuantizeOptions = {}): { bytes: Uint8Array; report: QuantizeReport } {
  const mode = options.mode ?? 'weight-only';
  if (mode !== 'weight-only' && mode !== 'dynamic') throw new QuantizeError(`mode must be 'weight-only' or 'dynamic', got ${JSON.stringify(mode)}`);
  const minElements = options.minElements ?? 256;
  const model = decodeModel(onnxBytes);
  const graph = model.graph!;
  const opset = Number(model.opsetImport?.find((o) => !o.domain)?.version ?? 0);
  if (opset < 13) throw new QuantizeError(`model uses opset ${opset}; per-channel DequantizeLinear needs opset 13 or later (convert the model first)`);
  if ((graph.node ?? []).some((n) => ['DequantizeLinear', 'QuantizeLinear', 'MatMulInteger', 'QLinearMatMul', 'ConvInteger'].includes(n.opType ?? ''))) {
    throw new QuantizeError('model is already quantized (it has quantization operators)');
  }
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const { uses, skipped } = weightUses(graph, inits);
  const report: QuantizeReport = { mode, quantized: [], skipped };
  const newNodes: NodeProto[] = [];
  const replaced = new Set<string>();
  const dynamicNodes = new Map<NodeProto, NodeProto[]>();

  for (const [w, list] of uses) {
    const init = inits.get(w)!;
    const dims = (init.dims ?? []).map(Number);
    const values = floatValues(init);
    if (values.length < minElements) {
      list.forEach((u) => skipped.push({ node: u.node.name ?? w, reason: `weight ${w} has ${values.length} elements (< ${minElements})` }));
      continue;
    }
    // A weight shared by nodes that disagree on the channel axis gets one per-tensor scale.
    const axes = new Set(list.map((u) => u.axis));
    const axis = axes.size === 1 ? list[0]!.axis : null;
    const refusals = new Map(list.map((u) => [u, mode === 'dynamic' ? dynamicRefusal(u.node, dims) : 'weight-only mode']));
    const anyDynamic = [...refusals.values()].some((r) => r === undefined);
    const { q, scales } = quantizeWeights(values, dims, axis, anyDynamic ? 63 : 127);
    const qName = `${w}_quantized`, sName = `${w}_scale`, zName = `${w}_zero_point`;
    const perChannel = axis !== null;
    replaced.add(w);
    newNodes.push(node('DequantizeLinear', [qName, sName, zName], [w], perChannel ? { axis } : {}, `${w}_dequantize`));
    graph.initializer!.push(
      rawTensor(qName, dims, ElemType.INT8, q),
      rawTensor(sName, perChannel ? [scales.length] : [], ElemType.FLOAT, perChannel ? scales : new Float32Array([scales[0]!])),
      rawTensor(zName, perChannel ? [scales.length] : [], ElemType.INT8, new Int8Array(perChannel ? scales.length : 1)),
    );
    report.quantized.push({ weight: w, nodes: list.map((u) => u.node.name ?? u.node.opType!), axis, elements: values.length });
    if (mode === 'dynamic') {
      for (const u of list) {
        const refusal = refusals.get(u)!;
        if (refusal !== undefined) skipped.push({ node: u.node.name ?? w, reason: `dynamic: ${refusal}; kept weight-only` });
        else dynamicNodes.set(u.node, dynamicPlan(u.node, w, qName, zName, sName, dims, q, axis, graph));
      }
    }
  }
  if (!report.quantized.length) throw new QuantizeError(`nothing to quantize: no MatMul/Gemm/Conv weight initializer with ≥ ${minElements} float elements${skipped.length ? ` (${skipped.map((s) => `${s.node}: ${s.reason}`).join('; ')})` : ''}`);

  graph.initializer = graph.initializer!.filter((t) => !replaced.has(t.name!));
  const rebuilt: NodeProto[] = [...newNodes];
  for (const n of graph.node ?? []) rebuilt.push(...(dynamicNodes.get(n) ?? [n]));
  graph.node = rebuilt;
  // DequantizeLinear outputs replace initializers that may also be listed as graph inputs (old exporters do that).
  graph.input = (graph.input ?? []).filter((i) => !replaced.has(i.name!));
  model.producerName = `${model.producerName ?? ''}+fedge-quantize`;
  return { bytes: onnx.ModelProto.encode(model).finish(), report };
}

/** Why this node cannot run as MatMulInteger, or undefined when it can. */
function dynamicRefusal(n: NodeProto, dims: number[]): string | undefined {
  if (n.opType === 'Conv') return 'Conv has no per-channel dynamic int8 kernel here';
  if (dims.length !== 2) return `weight rank ${dims.length} (needs 2)`;
  if (n.opType === 'Gemm' && intAttr(n, 'transA', 0)) return 'Gemm with transA';
  if (n.opType === 'Gemm' && (floatAttr(n, 'alpha', 1) !== 1 || floatAttr(n, 'beta', 1) !== 1)) return 'Gemm with alpha/beta != 1';
  return undefined;
}

/** Nodes that compute MatMul/Gemm with int8 weights and dynamically quantized uint8 activations. */
function dynamicPlan(n: NodeProto, w: string, qName: string, zName: string, sName: string, dims: number[], q: Int8Array, axis: number | null, graph: GraphProto): NodeProto[] {
  const x = n.input![0]!, out = n.output![0]!, tag = `${out}_dq`;
  let wq = qName;
  if (n.opType === 'Gemm') {
    if (intAttr(n, 'transB', 0)) {
      // Store B transposed once ([N, K] -> [K, N]) so MatMulInteger sees the usual layout; scales stay per N.
      const [rows, cols] = dims as [number, number];
      const t = new Int8Array(q.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = q[r * cols + c]!;
      wq = `${w}_quantized_t`;
      graph.initializer!.push(rawTensor(wq, [cols, rows], ElemType.INT8, t));
    }
  }
  const nodes: NodeProto[] = [
    node('DynamicQuantizeLinear', [x], [`${tag}_x`, `${tag}_xs`, `${tag}_xz`], {}, `${tag}_quantize`),
    node('MatMulInteger', [`${tag}_x`, wq, `${tag}_xz`, axis === null ? '' : zName], [`${tag}_i32`], {}, `${tag}_matmul`),
    node('Cast', [`${tag}_i32`], [`${tag}_f32`], { to: ElemType.FLOAT }, `${tag}_cast`),
    node('Mul', [`${tag}_xs`, sName], [`${tag}_scale`], {}, `${tag}_scale`),
  ];
  const hasBias = n.opType === 'Gemm' && n.input![2];
  nodes.push(node('Mul', [`${tag}_f32`, `${tag}_scale`], [hasBias ? `${tag}_nobias` : out], {}, `${tag}_rescale`));
  if (hasBias) nodes.push(node('Add', [`${tag}_nobias`, n.input![2]!], [out], {}, `${tag}_bias`));
  return nodes;
}

export { OnnxFormatError };
