/**
 * Where a head's weights live in the graph and how they map to Fedge's layout: a dense kernel is [in, out]
 * row-major in Fedge, stored [in, out] or [out, in] (`transposed`: Gemm transB, or a weight multiplying from the
 * left) in the graph, and scaled by Gemm's alpha (kernel) or beta (bias), which Fedge folds into its values.
 * Weights may be float32 initializers, or int8/uint8 initializers dequantized by a DequantizeLinear node
 * (as federated/model/quantize.ts writes them: `${w}_quantized` → DequantizeLinear → `${w}`).
 */
import { i8 } from '../../bytes.ts';
import { ElemType, type NodeProto, type TensorProto, floatValues } from '../onnx-graph.ts';
import { type GraphIndex, describe, hasAttr, intAttr, nodeRef } from './graph-index.ts';
import { HeadError } from './head-error.ts';

export type { Quantization, StoredWeight } from './head-place.ts';
import type { Quantization, StoredWeight } from './head-place.ts';

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(ElemType).map(([k, v]) => [v, k]));
const typeName = (t: number | null | undefined) => TYPE_NAMES[t ?? 0] ?? `data type ${t}`;
const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const EXTERNAL = 1; // TensorProto.DataLocation.EXTERNAL

function checkStorage(t: TensorProto, role: string): void {
  if (t.dataLocation === EXTERNAL || (t.externalData?.length ?? 0) > 0)
    throw new HeadError(`${role} '${t.name}' is stored as external data; Fedge reads heads from the model file itself`);
}

function floatInitializer(index: GraphIndex, name: string, role: string): TensorProto {
  const t = index.initializers.get(name)!;
  checkStorage(t, role);
  if (t.dataType !== ElemType.FLOAT)
    throw new HeadError(
      `${role} '${name}' is ${typeName(t.dataType)}; Fedge trains float32 heads (float16 and other types are not converted)`,
    );
  return t;
}

/**
 * What feeds a dense node's operand: a weight (an initializer or a dequantized one), or undefined for a run-time
 * tensor. Throws HeadError for constants Fedge cannot train (float16, a Constant node, external data).
 */
export function weightSource(
  index: GraphIndex,
  tensor: string,
  role: string,
): Omit<StoredWeight, 'transposed' | 'factor'> | undefined {
  if (index.initializers.has(tensor)) {
    const t = floatInitializer(index, tensor, role);
    return { name: tensor, dims: (t.dims ?? []).map(Number) };
  }
  const p = index.producer.get(tensor);
  if (!p) return undefined;
  if (p.opType === 'Constant')
    throw new HeadError(
      `${role} '${tensor}' comes from ${describe(p)}, not an initializer; Fedge writes heads into initializers`,
    );
  const from = p.input?.[0] ?? '';
  if (p.opType === 'Cast' && index.initializers.has(from)) {
    throw new HeadError(
      `${role} '${tensor}' is cast from ${typeName(index.initializers.get(from)!.dataType)} initializer '${from}' by ${describe(p)}; Fedge reads and writes float32 and int8 heads — detect the head on the model's fp32 copy`,
    );
  }
  if (p.opType !== 'DequantizeLinear' || !index.initializers.has(from)) return undefined;
  const { q, dims } = quantization(index, p, role);
  return { name: tensor, dims, quantized: q };
}

function quantization(index: GraphIndex, p: NodeProto, role: string): { q: Quantization; dims: number[] } {
  const [data, scale, zeroPoint] = [p.input?.[0] ?? '', p.input?.[1] ?? '', p.input?.[2] || undefined];
  const t = index.initializers.get(data)!;
  checkStorage(t, role);
  if (t.dataType !== ElemType.INT8 && t.dataType !== ElemType.UINT8)
    throw new HeadError(
      `${role} '${p.output?.[0]}' is dequantized by ${describe(p)} from ${typeName(t.dataType)} '${data}'; only int8 and uint8 are read`,
    );
  if (hasAttr(p, 'block_size'))
    throw new HeadError(`${role} '${p.output?.[0]}' uses blocked quantization (${describe(p)}); not supported`);
  if (!index.initializers.has(scale) || (zeroPoint !== undefined && !index.initializers.has(zeroPoint)))
    throw new HeadError(`${describe(p)}: its scale and zero point must be initializers`);
  floatInitializer(index, scale, `scale of ${role}`);
  const dims = (t.dims ?? []).map(Number);
  const scaleCount = size((index.initializers.get(scale)!.dims ?? []).map(Number));
  let axis: number | null = null;
  // One scale (a scalar or a 1-element vector) is per tensor, as ONNX Runtime reads it.
  if (scaleCount !== 1) {
    const a = intAttr(p, 'axis', 1);
    axis = a < 0 ? a + dims.length : a;
    if (dims[axis] !== scaleCount)
      throw new HeadError(`${describe(p)}: ${scaleCount} scales for axis ${axis} of [${dims}]`);
  }
  return { q: { node: nodeRef(p).name, data, scale, zeroPoint, dataType: t.dataType!, axis }, dims };
}

export function integerValues(t: TensorProto): Int32Array {
  const n = size((t.dims ?? []).map(Number));
  if (t.rawData?.length) {
    const raw = t.rawData;
    return t.dataType === ElemType.INT8 ? Int32Array.from(i8(raw)) : Int32Array.from(raw);
  }
  const v = Int32Array.from(t.int32Data ?? []);
  if (v.length !== n)
    throw new HeadError(`initializer '${t.name}' holds ${v.length} values for dims [${(t.dims ?? []).map(Number)}]`);
  return v;
}

/** The weight's values as the graph computes them (dequantized if it is quantized), in the stored layout. */
export function storedValues(index: GraphIndex, w: StoredWeight): Float32Array {
  let values: Float32Array;
  if (!w.quantized) values = floatValues(index.initializers.get(w.name)!);
  else {
    const q = w.quantized;
    const data = integerValues(index.initializers.get(q.data)!);
    const scales = floatValues(index.initializers.get(q.scale)!);
    const zero = q.zeroPoint ? integerValues(index.initializers.get(q.zeroPoint)!) : new Int32Array(scales.length);
    const inner = q.axis === null ? data.length : size(w.dims.slice(q.axis + 1));
    const channels = scales.length;
    values = new Float32Array(data.length);
    // As DequantizeLinear computes it: float(q - zero_point) * scale in float32.
    for (let i = 0; i < data.length; i++) {
      const c = q.axis === null ? 0 : Math.floor(i / inner) % channels;
      values[i] = Math.fround((data[i]! - zero[c]!) * scales[c]!);
    }
  }
  if (values.length !== size(w.dims))
    throw new HeadError(`weight '${w.name}' holds ${values.length} values for dims [${w.dims}]`);
  return values;
}

/** Stored layout → Fedge: [in, out] row-major, times the folded factor. */
export function toFedge(values: Float32Array, w: StoredWeight): Float32Array {
  const out = new Float32Array(values.length);
  if (w.transposed) {
    const [rows, cols] = w.dims as [number, number]; // [out, in]
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
  } else out.set(values);
  if (w.factor !== 1) for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i]! * w.factor);
  return out;
}

/** Fedge → stored layout, the factor undone (divided in double precision, rounded once to float32). */
export function fromFedge(values: Float32Array, w: StoredWeight): Float32Array {
  const out = new Float32Array(values.length);
  if (w.transposed) {
    const [rows, cols] = w.dims as [number, number];
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = values[c * rows + r]!;
  } else out.set(values);
  if (w.factor !== 1) for (let i = 0; i < out.length; i++) out[i] = out[i]! / w.factor;
  return out;
}
