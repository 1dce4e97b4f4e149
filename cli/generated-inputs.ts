/**
 * Inputs for comparing two versions of a model without its data: for each graph input (not an initializer),
 * a batch of seeded random values of its element type, symbolic dimensions set to `batch` (first) or 1.
 */
import { ElemType, type ModelProto } from '../federated/model/onnx-graph.ts';
import { seededRandom } from '../models/data/seeded-random.ts';
import type * as ort from 'onnxruntime-web';

export interface GeneratedInput {
  name: string;
  type: ort.Tensor.Type;
  dims: number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;
}

export function generatedInputs(model: ModelProto, batch: number, seed = 1): GeneratedInput[] {
  const graph = model.graph!;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const rand = seededRandom(seed);
  return (graph.input ?? []).filter((i) => !initializers.has(i.name)).map((input) => {
    const tensor = input.type?.tensorType;
    if (!tensor) throw new Error(`input '${input.name}' is not a tensor; cannot generate values for it`);
    const dims = (tensor.shape?.dim ?? []).map((d, i) => (d.dimValue != null && Number(d.dimValue) > 0 ? Number(d.dimValue) : i === 0 ? batch : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    const name = input.name!;
    // Values in [0, 1) for floats: the range of normalised pixels and of hashed text features.
    switch (tensor.elemType) {
      case ElemType.FLOAT: return { name, type: 'float32', dims, data: Float32Array.from({ length: n }, rand) };
      case ElemType.DOUBLE: return { name, type: 'float64', dims, data: Float64Array.from({ length: n }, rand) };
      case ElemType.INT32: return { name, type: 'int32', dims, data: Int32Array.from({ length: n }, () => Math.floor(rand() * 10)) };
      case ElemType.INT64: return { name, type: 'int64', dims, data: BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * 10))) };
      case ElemType.UINT8: return { name, type: 'uint8', dims, data: Uint8Array.from({ length: n }, () => Math.floor(rand() * 256)) };
      case ElemType.BOOL: return { name, type: 'bool', dims, data: Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0)) };
      default: throw new Error(`input '${name}' has element type ${tensor.elemType}; cannot generate values for it`);
    }
  });
}
