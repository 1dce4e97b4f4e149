/**
 * A tensor as both sides of the protocol hold it: an OIP datatype, a shape and its elements — a typed array for
 * the numeric datatypes (FP16 as raw half-float bits in a Uint16Array, BOOL as 0/1 in a Uint8Array), strings for
 * BYTES. The conversions to and from the binary tensor data extension's bytes live here, once for the Worker and
 * the SDK.
 */
import { u8 } from '../bytes.ts';
import { DATATYPE_INFO, type Datatype, type NumericDatatype, type TypedArray } from './datatypes.ts';
import { decodeBytesElements, encodeBytesElements } from './bytes-elements.ts';
import { refuseTensor } from './tensor-error.ts';

export interface NumericTensor {
  datatype: NumericDatatype;
  shape: number[];
  data: TypedArray;
}

export interface BytesTensor {
  datatype: 'BYTES';
  shape: number[];
  data: string[];
}

export type Tensor = NumericTensor | BytesTensor;
export type TensorData = Tensor['data'];

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The tensor's bytes in the binary extension: raw little-endian elements, or length-prefixed BYTES elements. */
export function tensorBytes(t: Tensor): Uint8Array {
  if (t.datatype === 'BYTES') return encodeBytesElements(t.data);
  return u8(t.data);
}

/**
 * A tensor of `shape` from its binary-extension bytes, which it must use up exactly. Numeric data is copied into
 * its own buffer, so the typed array is aligned whatever offset the bytes had in the body.
 */
export function tensorFromBytes(datatype: Datatype, shape: number[], bytes: Uint8Array, what: string): Tensor {
  const count = elementCount(shape);
  if (datatype === 'BYTES') return { datatype, shape, data: decodeBytesElements(bytes, count, what) };
  const info = DATATYPE_INFO[datatype];
  const want = count * info.bytes;
  if (bytes.byteLength !== want)
    refuseTensor(
      `${what}: binary_data_size is ${bytes.byteLength} but ${count} ${datatype} elements need ${want} bytes`,
    );
  return { datatype, shape, data: new info.array(bytes.slice().buffer, 0, count) };
}

/** The number of bytes a tensor's elements take in memory (BYTES: their UTF-16 length, a bound on the work). */
export function dataSize(t: Tensor): number {
  return t.datatype === 'BYTES' ? t.data.reduce((n, s) => n + s.length, 0) : t.data.byteLength;
}
