/**
 * 'dynamic' mode's rewrite of one MatMul/Gemm: DynamicQuantizeLinear on the activation, MatMulInteger on the int8
 * weight, then the rescale (as onnxruntime.quantization.quantize_dynamic writes it).
 */
import { ElemType, type NodeProto, type TensorProto, node, rawTensor } from '../onnx-graph.ts';
import { floatAttr, intAttr } from './weight-inputs.ts';

/** Why input `input` of `n` cannot run as MatMulInteger's B, or undefined when it can. */
export function dynamicRefusal(n: NodeProto, input: number, dims: number[], opset: number): string | undefined {
  if (n.opType !== 'MatMul' && n.opType !== 'Gemm') return `${n.opType} has no dynamic int8 kernel here`;
  if (opset < 11) return `opset ${opset} has no DynamicQuantizeLinear (opset 11)`;
  if (input !== 1) return 'the weight is the left operand';
  if (dims.length !== 2) return `weight rank ${dims.length} (needs 2)`;
  if (n.opType === 'Gemm' && intAttr(n, 'transA', 0)) return 'Gemm with transA';
  if (n.opType === 'Gemm' && (floatAttr(n, 'alpha', 1) !== 1 || floatAttr(n, 'beta', 1) !== 1))
    return 'Gemm with alpha/beta != 1';
  return undefined;
}

export interface Int8Weight {
  q: Int8Array;
  dims: number[];
  axis: number | null;
  /** names of its int8 values, scales and zero points (initializers of the graph that owns the weight) */
  qName: string;
  sName: string;
  zName: string;
  /** adds an initializer next to those (in an enclosing graph when `n` is in a subgraph) */
  addInitializer: (t: TensorProto) => void;
}

/** Nodes that compute `n` (MatMul/Gemm) with the int8 weight and dynamically quantized uint8 activations; the last has `n`'s name. */
export function dynamicPlan(n: NodeProto, w: Int8Weight, fresh: (base: string) => string): NodeProto[] {
  const x = n.input![0]!,
    out = n.output![0]!,
    tag = `${out}_dq`;
  let wq = w.qName;
  if (n.opType === 'Gemm' && intAttr(n, 'transB', 0)) {
    // Store B transposed once ([N, K] -> [K, N]) so MatMulInteger sees the usual layout; scales stay per N.
    const [rows, cols] = w.dims as [number, number];
    const t = new Int8Array(w.q.length);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w.q[r * cols + c]!;
    wq = fresh(`${w.qName}_t`);
    w.addInitializer(rawTensor(wq, [cols, rows], ElemType.INT8, t));
  }
  const [xq, xs, xz, i32, f32, scale] = ['x', 'xs', 'xz', 'i32', 'f32', 'scale'].map((s) => fresh(`${tag}_${s}`)) as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const nodes: NodeProto[] = [
    node('DynamicQuantizeLinear', [x], [xq, xs, xz], {}, fresh(`${tag}_quantize`)),
    node('MatMulInteger', [xq, wq, xz, w.axis === null ? '' : w.zName], [i32], {}, fresh(`${tag}_matmul`)),
    node('Cast', [i32], [f32], { to: ElemType.FLOAT }, fresh(`${tag}_cast`)),
    node('Mul', [xs, w.sName], [scale], {}, fresh(`${tag}_scale`)),
  ];
  const bias = n.opType === 'Gemm' ? n.input![2] : undefined;
  const product = bias ? fresh(`${tag}_nobias`) : out;
  nodes.push(node('Mul', [f32, scale], [product], {}, fresh(`${tag}_rescale`)));
  if (bias) nodes.push(node('Add', [product, bias], [out], {}, fresh(`${tag}_bias`)));
  // The node that now produces the output keeps the replaced node's name: node names stay as the exporter wrote them.
  if (n.name) nodes[nodes.length - 1]!.name = n.name;
  return nodes;
}
