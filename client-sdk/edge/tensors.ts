/**
 * Tensors as the SDK hands them to apps: a typed array, its shape and its OIP datatype. Typed arrays in, typed
 * arrays out — the datatype follows from the array (Float32Array → FP32, BigInt64Array → INT64, …) unless given
 * (BOOL rides in a Uint8Array, FP16 as raw half-float bits in a Uint16Array).
 */
import { DATATYPE_INFO, type Datatype, type TypedArray, isDatatype } from '../../federated/oip/datatypes.ts';

export type { Datatype, TypedArray };

export interface Tensor {
  datatype: Datatype;
  shape: number[];
  data: TypedArray;
}

/** What an app passes in: a typed array (or plain numbers, read as FP32) and its shape. */
export interface TensorInput {
  data: TypedArray | readonly number[];
  shape: readonly number[];
  datatype?: Datatype;
}

export class TensorError extends TypeError {
  override name = 'TensorError';
}

const BY_ARRAY: [new (n: number) => TypedArray, Datatype][] = [
  [Float32Array, 'FP32'], [Float64Array, 'FP64'], [Int8Array, 'INT8'], [Uint8Array, 'UINT8'], [Int16Array, 'INT16'],
  [Uint16Array, 'UINT16'], [Int32Array, 'INT32'], [Uint32Array, 'UINT32'], [BigInt64Array, 'INT64'], [BigUint64Array, 'UINT64'],
];

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Checks an app's input and turns it into a Tensor (no copy when it already is a typed array of the right kind). */
export function toTensor(name: string, input: TensorInput): Tensor {
  if (!input || typeof input !== 'object' || !('data' in input) || !Array.isArray(input.shape)) throw new TensorError(`input '${name}': expected { data, shape }`);
  if (!input.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new TensorError(`input '${name}': shape must be non-negative integers, got [${input.shape}]`);
  if (input.datatype !== undefined && !isDatatype(input.datatype)) throw new TensorError(`input '${name}': unknown datatype ${JSON.stringify(input.datatype)}`);
  let data: TypedArray;
  let datatype: Datatype;
  if (Array.isArray(input.data)) {
    datatype = input.datatype ?? 'FP32';
    const info = DATATYPE_INFO[datatype];
    if (info.kind === 'half') throw new TensorError(`input '${name}': pass FP16 as a Uint16Array of half-float bits`);
    data = info.kind === 'bigint' ? (info.array as unknown as { from(a: bigint[]): TypedArray }).from(input.data.map((v) => BigInt(v))) : (info.array as unknown as { from(a: readonly number[]): TypedArray }).from(input.data);
  } else if (ArrayBuffer.isView(input.data)) {
    data = input.data as TypedArray;
    const natural = BY_ARRAY.find(([ctor]) => data instanceof ctor)?.[1];
    if (!natural) throw new TensorError(`input '${name}': unsupported array type ${data.constructor.name}`);
    datatype = input.datatype ?? natural;
    if (DATATYPE_INFO[datatype].array !== (data.constructor as unknown)) throw new TensorError(`input '${name}': datatype ${datatype} needs a ${DATATYPE_INFO[datatype].array.name}, got a ${data.constructor.name}`);
  } else {
    throw new TensorError(`input '${name}': data must be a typed array or an array of numbers`);
  }
  const n = elementCount(input.shape);
  if (data.length !== n) throw new TensorError(`input '${name}': shape [${input.shape}] needs ${n} elements, data has ${data.length}`);
  return { datatype, shape: [...input.shape], data };
}

/** Little-endian bytes of a tensor's data (OIP binary extension; every platform the SDK targets is little-endian). */
export function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** A tensor from raw little-endian bytes (copied, so the typed array is aligned). */
export function tensorFromBytes(datatype: Datatype, shape: number[], bytes: Uint8Array): Tensor {
  const info = DATATYPE_INFO[datatype];
  const n = elementCount(shape);
  if (bytes.byteLength !== n * info.bytes) throw new TensorError(`${datatype} [${shape}] needs ${n * info.bytes} bytes, got ${bytes.byteLength}`);
  const copy = new Uint8Array(bytes);
  return { datatype, shape, data: new info.array(copy.buffer, 0, n) };
}

/** A tensor from OIP JSON data (flat or nested numbers/booleans). */
export function tensorFromJson(datatype: Datatype, shape: number[], data: unknown): Tensor {
  const info = DATATYPE_INFO[datatype];
  const flat = (Array.isArray(data) ? data.flat(Infinity) : [data]) as (number | boolean)[];
  if (info.kind === 'half') throw new TensorError('FP16 outputs come as binary data: leave binary outputs on');
  const values = info.kind === 'bigint' ? flat.map((v) => BigInt(v as number)) : flat.map(Number);
  const t = (info.array as unknown as { from(a: unknown[]): TypedArray }).from(values);
  if (t.length !== elementCount(shape)) throw new TensorError(`${datatype} [${shape}] needs ${elementCount(shape)} elements, got ${t.length}`);
  return { datatype, shape, data: t };
}

/** OIP JSON `data` of a tensor (bigints as numbers; FP16 has no JSON form here). */
export function tensorToJson(t: Tensor): number[] | boolean[] {
  const info = DATATYPE_INFO[t.datatype];
  if (info.kind === 'half') throw new TensorError('FP16 inputs go as binary data: use binary: true or "auto"');
  if (info.kind === 'bool') return Array.from(t.data as Uint8Array, (v) => v !== 0);
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}
