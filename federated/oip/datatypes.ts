/**
 * Open Inference Protocol v2 datatypes and their onnxruntime-web / typed-array counterparts
 * (KServe OIP "Tensor Data Types"; ONNX TensorProto.DataType). The numeric ones hold fixed-size elements in a
 * typed array; BYTES holds variable-length elements — strings here, as ONNX Runtime's string tensors take them.
 */
export const NUMERIC_DATATYPES = [
  'BOOL',
  'UINT8',
  'INT8',
  'UINT16',
  'INT16',
  'UINT32',
  'INT32',
  'UINT64',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
] as const;
export type NumericDatatype = (typeof NUMERIC_DATATYPES)[number];
export const DATATYPES = [...NUMERIC_DATATYPES, 'BYTES'] as const;
export type Datatype = (typeof DATATYPES)[number];

export type OrtType =
  | 'bool'
  | 'uint8'
  | 'int8'
  | 'uint16'
  | 'int16'
  | 'uint32'
  | 'int32'
  | 'uint64'
  | 'int64'
  | 'float16'
  | 'float32'
  | 'float64'
  | 'string';

export type TypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

interface DatatypeInfo {
  ort: Exclude<OrtType, 'string'>;
  bytes: number;
  /** Typed array that holds the element bits (FP16 as raw uint16 halves, BOOL as uint8). */
  array: {
    new (buffer: ArrayBuffer, byteOffset?: number, length?: number): TypedArray;
    new (length: number): TypedArray;
  };
  kind: 'bool' | 'int' | 'bigint' | 'float' | 'half';
  min?: number;
  max?: number;
}

export const DATATYPE_INFO: Record<NumericDatatype, DatatypeInfo> = {
  BOOL: { ort: 'bool', bytes: 1, array: Uint8Array, kind: 'bool' },
  UINT8: { ort: 'uint8', bytes: 1, array: Uint8Array, kind: 'int', min: 0, max: 255 },
  INT8: { ort: 'int8', bytes: 1, array: Int8Array, kind: 'int', min: -128, max: 127 },
  UINT16: { ort: 'uint16', bytes: 2, array: Uint16Array, kind: 'int', min: 0, max: 65535 },
  INT16: { ort: 'int16', bytes: 2, array: Int16Array, kind: 'int', min: -32768, max: 32767 },
  UINT32: { ort: 'uint32', bytes: 4, array: Uint32Array, kind: 'int', min: 0, max: 4294967295 },
  INT32: { ort: 'int32', bytes: 4, array: Int32Array, kind: 'int', min: -2147483648, max: 2147483647 },
  UINT64: { ort: 'uint64', bytes: 8, array: BigUint64Array, kind: 'bigint' },
  INT64: { ort: 'int64', bytes: 8, array: BigInt64Array, kind: 'bigint' },
  FP16: { ort: 'float16', bytes: 2, array: Uint16Array, kind: 'half' },
  FP32: { ort: 'float32', bytes: 4, array: Float32Array, kind: 'float' },
  FP64: { ort: 'float64', bytes: 8, array: Float64Array, kind: 'float' },
};

const BY_ORT = new Map<string, Datatype>([
  ...Object.entries(DATATYPE_INFO).map(([dt, info]) => [info.ort as string, dt as Datatype] as const),
  ['string', 'BYTES'],
]);

/** ONNX Runtime's element type name of a datatype. */
export function ortType(datatype: Datatype): OrtType {
  return datatype === 'BYTES' ? 'string' : DATATYPE_INFO[datatype].ort;
}

export function datatypeOfOrt(type: string): Datatype | undefined {
  return BY_ORT.get(type);
}

export function isDatatype(v: unknown): v is Datatype {
  return typeof v === 'string' && (DATATYPES as readonly string[]).includes(v);
}

export function isNumeric(datatype: Datatype): datatype is NumericDatatype {
  return datatype !== 'BYTES';
}
