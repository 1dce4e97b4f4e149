/**
 * Thin builders over the ONNX protobuf schema (onnx-protobuf.ts, no protobuf library): tensors, value infos, nodes,
 * and model encode/decode. Element type numbers follow onnx.proto `TensorProto.DataType`.
 */
import { f32, u8 } from '../bytes.ts';
import {
  type IGraphProto,
  type INodeProto,
  type ITensorProto,
  type IValueInfoProto,
  type ModelProto as ModelMessage,
  onnx,
} from './onnx-protobuf.ts';
import { OnnxFormatError } from './onnx-format-error.ts';

export { onnx };
export type ModelProto = ModelMessage;
export type GraphProto = IGraphProto;
export type NodeProto = INodeProto;
export type TensorProto = ITensorProto;

export const ElemType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;

export const OPSET = 17;
export const IR_VERSION = 8;

/** A dimension: a fixed size, or a symbolic name for a dynamic one. */
export type Dim = number | string;

export function floatTensor(name: string, dims: number[], values: Float32Array): TensorProto {
  return rawTensor(name, dims, ElemType.FLOAT, values);
}

export function rawTensor(name: string, dims: number[], dataType: number, values: ArrayBufferView): TensorProto {
  // rawData is little-endian bytes (onnx.proto: raw_data); typed arrays are little-endian on every supported host.
  return { name, dims, dataType, rawData: u8(values).slice() };
}

export function int64Tensor(name: string, dims: number[], values: number[]): TensorProto {
  return rawTensor(
    name,
    dims,
    ElemType.INT64,
    BigInt64Array.from(values, (v) => BigInt(v)),
  );
}

export function valueInfo(name: string, elemType: number, shape: Dim[]): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

/** An attribute: int, ints, string, `{ float }`, or `{ graph }` (an If branch, a Loop or Scan body). */
type AttrValue = number | number[] | string | { float: number } | { graph: GraphProto };
export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  attrs: Record<string, AttrValue> = {},
  name?: string,
  domain?: string,
): NodeProto {
  const attribute = Object.entries(attrs).map(([key, v]) => {
    const A = onnx.AttributeProto.AttributeType;
    if (typeof v === 'string') return { name: key, type: A.STRING, s: new TextEncoder().encode(v) };
    if (Array.isArray(v)) return { name: key, type: A.INTS, ints: v };
    if (typeof v === 'object' && 'graph' in v) return { name: key, type: A.GRAPH, g: v.graph };
    if (typeof v === 'object') return { name: key, type: A.FLOAT, f: v.float };
    return { name: key, type: A.INT, i: v };
  });
  return {
    opType,
    input: inputs,
    output: outputs,
    attribute,
    name: name ?? `${opType}_${outputs[0]}`,
    ...(domain ? { domain } : {}),
  };
}

export interface ModelOptions {
  producerName?: string;
  docString?: string;
  metadata?: Record<string, string>;
  opset?: number;
}

export function encodeModel(graph: GraphProto, opts: ModelOptions = {}): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: opts.opset ?? OPSET }],
    producerName: opts.producerName ?? 'fedge',
    producerVersion: '1',
    docString: opts.docString ?? '',
    graph,
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}

export { OnnxFormatError };

/** Decodes ONNX bytes; throws OnnxFormatError with the reason when they are not an ONNX model. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new OnnxFormatError(`not an ONNX model: ${(e as Error).message}`);
  }
  if (!model.graph || !model.irVersion) throw new OnnxFormatError('not an ONNX model: no graph or ir_version');
  return model;
}

/** Float32 values of an initializer, whichever field holds them. */
export function floatValues(t: TensorProto): Float32Array {
  if (t.dataType !== ElemType.FLOAT)
    throw new OnnxFormatError(`initializer ${t.name}: expected FLOAT, got data type ${t.dataType}`);
  if (t.rawData?.length) {
    if (t.rawData.length % 4)
      throw new OnnxFormatError(`initializer ${t.name}: ${t.rawData.length} bytes of raw data are not float32 values`);
    // Copied: rawData is a view into the model's bytes at any offset, and float32 needs 4-byte alignment.
    return f32(t.rawData.slice(), `initializer ${t.name} raw data`);
  }
  if (t.externalData?.length) throw new OnnxFormatError(`initializer ${t.name}: external data is not supported`);
  return Float32Array.from(t.floatData ?? []);
}
