/**
 * Tensors as the SDK hands them to apps: a typed array (or strings for BYTES), its shape and its OIP datatype.
 * Typed arrays in, typed arrays out — the datatype follows from the array (Float32Array → FP32, BigInt64Array →
 * INT64, an array of strings → BYTES, …) unless given (BOOL rides in a Uint8Array, FP16 as raw half-float bits in a
 * Uint16Array). The tensor type, its binary form and TensorError are the protocol's own (federated/oip), shared
 * with the Worker.
 */
import { DATATYPE_INFO, type Datatype, type TypedArray, isDatatype } from '../../federated/oip/datatypes.ts';
import { type Tensor, elementCount } from '../../federated/oip/tensor.ts';
import { TensorError } from '../../federated/oip/tensor-error.ts';

export type { Datatype, Tensor, TypedArray };
export { TensorError, elementCount };
export { tensorBytes, tensorFromBytes } from '../../federated/oip/tensor.ts';

/** What an app passes in: a typed array (or plain numbers, read as FP32; or strings, BYTES) and its shape. */
export interface TensorInput {
  data: TypedArray | readonly number[] | readonly string[];
  shape: readonly number[];
  datatype?: Datatype;
}

const BY_ARRAY: [new (n: number) => TypedArray, Datatype][] = [
  [Float32Array, 'FP32'],
  [Float64Array, 'FP64'],
  [Int8Array, 'INT8'],
  [Uint8Array, 'UINT8'],
  [Int16Array, 'INT16'],
  [Uint16Array, 'UINT16'],
  [Int32Array, 'INT32'],
  [Uint32Array, 'UINT32'],
  [BigInt64Array, 'INT64'],
  [BigUint64Array, 'UINT64'],
];

function fromArray(
  name: string,
  values: readonly unknown[],
  given: Datatype | undefined,
): Pick<Tensor, 'datatype' | 'data'> {
  const strings = values.length > 0 && values.every((v) => typeof v === 'string');
  const datatype = given ?? (strings ? 'BYTES' : 'FP32');
  if (datatype === 'BYTES') {
    if (!values.every((v) => typeof v === 'string'))
      throw new TensorError(`input '${name}': BYTES data must be strings`);
    return { datatype, data: [...(values as string[])] };
  }
  if (!values.every((v) => typeof v === 'number'))
    throw new TensorError(`input '${name}': ${datatype} data must be numbers`);
  const info = DATATYPE_INFO[datatype];
  if (info.kind === 'half') throw new TensorError(`input '${name}': pass FP16 as a Uint16Array of half-float bits`);
  const numbers = values as readonly number[];
  const data =
    info.kind === 'bigint'
      ? (info.array as unknown as { from(a: bigint[]): TypedArray }).from(numbers.map((v) => BigInt(v)))
      : (info.array as unknown as { from(a: readonly number[]): TypedArray }).from(numbers);
  return { datatype, data };
}

/** Checks an app's input and turns it into a Tensor (no copy when it already is a typed array of the right kind). */
export function toTensor(name: string, input: TensorInput): Tensor {
  if (!input || typeof input !== 'object' || !('data' in input) || !Array.isArray(input.shape))
    throw new TensorError(`input '${name}': expected { data, shape }`);
  if (!input.shape.every((d) => Number.isInteger(d) && d >= 0))
    throw new TensorError(`input '${name}': shape must be non-negative integers, got [${input.shape}]`);
  if (input.datatype !== undefined && !isDatatype(input.datatype))
    throw new TensorError(`input '${name}': unknown datatype ${JSON.stringify(input.datatype)}`);
  let t: Tensor;
  if (Array.isArray(input.data)) {
    t = { ...fromArray(name, input.data, input.datatype), shape: [...input.shape] } as Tensor;
  } else if (ArrayBuffer.isView(input.data)) {
    const data = input.data as TypedArray;
    const natural = BY_ARRAY.find(([ctor]) => data instanceof ctor)?.[1];
    if (!natural) throw new TensorError(`input '${name}': unsupported array type ${data.constructor.name}`);
    const datatype = input.datatype ?? natural;
    if (datatype === 'BYTES') throw new TensorError(`input '${name}': BYTES data is an array of strings`);
    if (DATATYPE_INFO[datatype].array !== (data.constructor as unknown))
      throw new TensorError(
        `input '${name}': datatype ${datatype} needs a ${DATATYPE_INFO[datatype].array.name}, got a ${data.constructor.name}`,
      );
    t = { datatype, shape: [...input.shape], data };
  } else {
    throw new TensorError(`input '${name}': data must be a typed array, an array of numbers or an array of strings`);
  }
  const n = elementCount(input.shape);
  if (t.data.length !== n)
    throw new TensorError(`input '${name}': shape [${input.shape}] needs ${n} elements, data has ${t.data.length}`);
  return t;
}

/** A tensor from OIP JSON data (flat or nested numbers/booleans, strings for BYTES). */
export function tensorFromJson(datatype: Datatype, shape: number[], data: unknown): Tensor {
  const flat = (Array.isArray(data) ? data.flat(Infinity) : [data]) as unknown[];
  if (flat.length !== elementCount(shape))
    throw new TensorError(`${datatype} [${shape}] needs ${elementCount(shape)} elements, got ${flat.length}`);
  if (datatype === 'BYTES') {
    if (!flat.every((v) => typeof v === 'string')) throw new TensorError(`BYTES [${shape}]: JSON data must be strings`);
    return { datatype, shape, data: flat as string[] };
  }
  const info = DATATYPE_INFO[datatype];
  if (info.kind === 'half') throw new TensorError('FP16 outputs come as binary data: leave binary outputs on');
  const values = info.kind === 'bigint' ? flat.map((v) => BigInt(v as number)) : flat.map(Number);
  return { datatype, shape, data: (info.array as unknown as { from(a: unknown[]): TypedArray }).from(values) };
}

/** OIP JSON `data` of a tensor (bigints as numbers, strings for BYTES; FP16 has no JSON form here). */
export function tensorToJson(t: Tensor): number[] | boolean[] | string[] {
  if (t.datatype === 'BYTES') return t.data;
  const info = DATATYPE_INFO[t.datatype];
  if (info.kind === 'half') throw new TensorError('FP16 inputs go as binary data: use binary: true or "auto"');
  if (info.kind === 'bool') return Array.from(t.data as Uint8Array, (v) => v !== 0);
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}
