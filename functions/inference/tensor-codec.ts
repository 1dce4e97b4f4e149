/**
 * OIP v2 tensors <-> typed arrays, checked against the model's declared inputs.
 * JSON `data` may be flat or nested exactly as the shape, row-major. With the binary tensor data extension an input's bytes
 * come from the payload after the JSON header, in input order (KServe "Binary Tensor Data Extension").
 */
import { refuseTensor } from './errors.ts';
import { DATATYPE_INFO, type Datatype, type TypedArray, isDatatype } from '../../federated/oip/datatypes.ts';
import { fromHalfBits, toHalfBits } from './half-float.ts';
import type { InferInput } from './infer-request.ts';
import type { TensorMeta } from '../registry/model-record.ts';
import { preview, quote, quoteList, showShape } from './quote.ts';

export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TypedArray;
}

export interface DecodeLimits {
  maxElements: number;
}

const MAX_DIM = 2 ** 31 - 1;

/** `input 'name'`, with the caller's name clipped (errors never echo unbounded input). */
const label = (name: string) => `input ${quote(name)}`;

function elementCount(name: string, shape: number[], budget: number): number {
  let n = 1;
  for (const d of shape) {
    if (d > MAX_DIM) refuseTensor(`${label(name)}: dimension ${d} is too large`);
    n *= d;
    if (n > budget) refuseTensor(`${label(name)}: shape ${showShape(shape)} has more elements than the ${budget} allowed per request`);
  }
  return n;
}

/**
 * The input's shape against the model's, exactly as ONNX Runtime checks it (onnxruntime-node accepts what this
 * accepts): the same rank, and every fixed dimension equal; -1 (dim_param, or neither dim_value nor dim_param)
 * fits any size. A model shape of rank 0 is not checked at all — ORT skips the check when the graph declares no
 * dimensions, which covers both a declared scalar and an input with no shape, so [1] for an INT64 scalar runs.
 */
function checkShape(input: InferInput, meta: TensorMeta): void {
  const want = meta.shape;
  if (want.length === 0) return;
  const ok = input.shape.length === want.length && want.every((d, i) => d < 0 || d === input.shape[i]);
  if (!ok) refuseTensor(`${label(input.name)}: shape ${showShape(input.shape)} does not fit the model's ${showShape(want)} (-1 is any size)`);
}

/**
 * The elements of JSON `data` in row-major order. Accepted: one scalar (a one-element tensor), a flat array of
 * exactly `count` scalars, or arrays nested exactly as `shape` (a rectangular array: every level as long as its
 * dimension, scalars at the last). Ragged nesting is refused even when its total count would match.
 * Iterative, and never deeper than the shape's rank, whatever the caller nested.
 */
export function flattenData(name: string, data: unknown, shape: number[], count: number): unknown[] {
  if (!Array.isArray(data)) {
    if (count !== 1) refuseTensor(`${label(name)}: data is a single value but shape ${showShape(shape)} needs ${count} elements`);
    return [data];
  }
  if (!data.some(Array.isArray)) {
    if (data.length !== count) refuseTensor(`${label(name)}: shape ${showShape(shape)} needs ${count} elements, data has ${data.length}`);
    return data;
  }
  const rank = shape.length;
  const out: unknown[] = [];
  const where = (stack: { index: number }[]) => `data${stack.map((s) => `[${s.index - 1}]`).join('')}`;
  const nestingError: (path: string, got: string) => never = (path, got) =>
    refuseTensor(`${label(name)}: nested data must be a rectangular array of shape ${showShape(shape)} (or flat, ${count} elements); ${path} ${got}`);
  if (rank === 0 || data.length !== shape[0]) nestingError('data', rank === 0 ? 'is nested but the shape is a scalar' : `has ${data.length} entries, dimension 0 is ${shape[0]}`);
  const stack: { array: unknown[]; index: number }[] = [{ array: data, index: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    if (top.index === top.array.length) {
      stack.pop();
      continue;
    }
    const v = top.array[top.index++];
    const depth = stack.length; // the dimension v stands for
    if (depth < rank) {
      if (!Array.isArray(v)) nestingError(where(stack), `is ${preview(v)}, expected an array of ${shape[depth]}`);
      if (v.length !== shape[depth]) nestingError(where(stack), `has ${v.length} entries, dimension ${depth} is ${shape[depth]}`);
      stack.push({ array: v, index: 0 });
    } else {
      if (Array.isArray(v)) nestingError(where(stack), `is an array, but the shape has only ${rank} dimension${rank === 1 ? '' : 's'}`);
      out.push(v);
    }
  }
  return out;
}

/** The largest finite magnitude of each float datatype: JSON numbers beyond it would become ±Infinity. */
const FLOAT_MAX: Partial<Record<Datatype, number>> = { FP16: 65504, FP32: 3.4028234663852886e38, FP64: Number.MAX_VALUE };

function fromJson(input: InferInput, datatype: Datatype, count: number): TypedArray {
  const info = DATATYPE_INFO[datatype];
  if (input.data === undefined) refuseTensor(`${label(input.name)}: no data (give "data", or "parameters.binary_data_size" with a binary body)`);
  const flat = flattenData(input.name, input.data, input.shape, count);
  const out = new info.array(count);
  for (let i = 0; i < count; i++) {
    const v = flat[i];
    const where = () => `${label(input.name)} element ${i}`;
    switch (info.kind) {
      case 'bool':
        if (typeof v === 'boolean') out[i] = v ? 1 : 0;
        else if (v === 0 || v === 1) out[i] = v;
        else refuseTensor(`${where()}: expected true/false, got ${preview(v)}`);
        break;
      case 'int':
        if (typeof v !== 'number' || !Number.isInteger(v)) refuseTensor(`${where()}: expected an integer, got ${preview(v)}`);
        if (v < info.min! || v > info.max!) refuseTensor(`${where()}: ${v} is out of range for ${datatype}`);
        out[i] = v;
        break;
      case 'bigint': {
        let b: bigint;
        if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
        else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) b = BigInt(v);
        else refuseTensor(`${where()}: expected an integer (a number, or a decimal string beyond 2^53), got ${preview(v)}`);
        const lo = datatype === 'UINT64' ? 0n : -(2n ** 63n), hi = datatype === 'UINT64' ? 2n ** 64n - 1n : 2n ** 63n - 1n;
        if (b < lo || b > hi) refuseTensor(`${where()}: ${b} is out of range for ${datatype}`);
        (out as BigInt64Array)[i] = b;
        break;
      }
      case 'float':
      case 'half': {
        if (typeof v !== 'number' || !Number.isFinite(v)) refuseTensor(`${where()}: expected a finite number, got ${preview(v)}`);
        out[i] = info.kind === 'half' ? toHalfBits(v) : v;
        // The range check is on the converted value: FP32 1e39 or FP16 65520 round to ±Infinity.
        const stored = info.kind === 'half' ? fromHalfBits(out[i] as number) : (out[i] as number);
        if (!Number.isFinite(stored)) refuseTensor(`${where()}: ${v} is out of range for ${datatype} (largest finite magnitude ${FLOAT_MAX[datatype]})`);
        break;
      }
    }
  }
  return out;
}

function fromBinary(input: InferInput, datatype: Datatype, count: number, bytes: Uint8Array): TypedArray {
  const info = DATATYPE_INFO[datatype];
  const want = count * info.bytes;
  if (bytes.byteLength !== want) {
    refuseTensor(`${label(input.name)}: binary_data_size is ${bytes.byteLength} but ${count} ${datatype} elements need ${want} bytes`);
  }
  const aligned = bytes.slice(); // own, aligned buffer (the payload offset may not be a multiple of the element size)
  const out = new info.array(aligned.buffer, 0, count);
  if (info.kind === 'float' || info.kind === 'half') {
    for (let i = 0; i < count; i++) {
      const v = info.kind === 'half' ? fromHalfBits(out[i] as number) : (out[i] as number);
      if (!Number.isFinite(v)) refuseTensor(`${label(input.name)} element ${i}: ${v} is not a finite number`);
    }
  } else if (info.kind === 'bool') {
    for (let i = 0; i < count; i++) if (out[i]! > 1) refuseTensor(`${label(input.name)} element ${i}: BOOL bytes must be 0 or 1`);
  }
  return out;
}

/**
 * Decodes and checks every input against the model: names (missing, unknown, duplicate), datatype,
 * shape, element count, values; binary inputs consume `payload` in order, which must be used up exactly.
 */
export function decodeInputs(inputs: InferInput[], model: TensorMeta[], payload: Uint8Array | undefined, limits: DecodeLimits): Tensor[] {
  const byName = new Map(model.map((m) => [m.name, m]));
  const seen = new Set<string>();
  let offset = 0;
  let budget = limits.maxElements;
  const tensors = inputs.map((input) => {
    const meta = byName.get(input.name);
    if (!meta) refuseTensor(`unknown ${label(input.name)}; the model takes ${quoteList(model.map((m) => m.name))}`);
    if (seen.has(input.name)) refuseTensor(`${label(input.name)} is given twice`);
    seen.add(input.name);
    if (!isDatatype(input.datatype)) refuseTensor(`${label(input.name)}: unknown datatype ${preview(input.datatype)}`);
    if (input.datatype !== meta.datatype) refuseTensor(`${label(input.name)}: datatype ${input.datatype} does not match the model's ${meta.datatype}`);
    checkShape(input, meta);
    const count = elementCount(input.name, input.shape, budget);
    budget -= count;
    const size = input.parameters?.binary_data_size;
    let data: TypedArray;
    if (size !== undefined) {
      if (!payload) refuseTensor(`${label(input.name)} has binary_data_size but the request has no binary part (set Inference-Header-Content-Length)`);
      if (input.data !== undefined) refuseTensor(`${label(input.name)}: give either data or binary_data_size, not both`);
      if (offset + size > payload.byteLength) refuseTensor(`${label(input.name)}: binary part ends after ${payload.byteLength - offset} of ${size} bytes (truncated body?)`);
      data = fromBinary(input, meta.datatype, count, payload.subarray(offset, offset + size));
      offset += size;
    } else {
      data = fromJson(input, meta.datatype, count);
    }
    return { name: input.name, datatype: meta.datatype, shape: input.shape, data };
  });
  const missing = model.filter((m) => !seen.has(m.name));
  if (missing.length) refuseTensor(`missing input${missing.length > 1 ? 's' : ''} ${quoteList(missing.map((m) => m.name))}`);
  if (payload && offset !== payload.byteLength) {
    refuseTensor(`binary part has ${payload.byteLength} bytes but the inputs' binary_data_size add up to ${offset}`);
  }
  return tensors;
}

/** Element values for a JSON response: numbers, booleans for BOOL, decimal strings for 64-bit integers beyond 2^53. */
export function toJsonData(t: Tensor): (number | boolean | string)[] {
  const info = DATATYPE_INFO[t.datatype];
  const out = new Array<number | boolean | string>(t.data.length);
  for (let i = 0; i < t.data.length; i++) {
    const v = t.data[i]!;
    if (info.kind === 'bool') out[i] = v !== 0;
    else if (info.kind === 'half') out[i] = fromHalfBits(v as number);
    else if (typeof v === 'bigint') out[i] = v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v.toString();
    else out[i] = v;
  }
  return out;
}

/** Raw little-endian bytes of a tensor for the binary extension. */
export function toBinaryData(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}
