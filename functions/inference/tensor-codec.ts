/**
 * OIP v2 tensors <-> typed arrays, checked against the model's declared inputs.
 * JSON `data` may be flat or nested, row-major. With the binary tensor data extension an input's bytes
 * come from the payload after the JSON header, in input order (KServe "Binary Tensor Data Extension").
 */
import { fail } from '../middleware/errors.ts';
import { DATATYPE_INFO, type Datatype, type TypedArray, isDatatype } from '../../federated/oip/datatypes.ts';
import { fromHalfBits, toHalfBits } from './half-float.ts';
import type { InferInput } from './infer-request.ts';
import type { TensorMeta } from '../registry/model-record.ts';

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

function elementCount(name: string, shape: number[], budget: number): number {
  let n = 1;
  for (const d of shape) {
    if (d > MAX_DIM) fail(400, `input '${name}': dimension ${d} is too large`);
    n *= d;
    if (n > budget) fail(400, `input '${name}': shape [${shape}] has more elements than the ${budget} allowed per request`);
  }
  return n;
}

function checkShape(input: InferInput, meta: TensorMeta): void {
  const want = meta.shape;
  if (want.length === 0 && input.shape.length === 0) return;
  const ok = input.shape.length === want.length && want.every((d, i) => d < 0 || d === input.shape[i]);
  if (!ok) fail(400, `input '${input.name}': shape [${input.shape}] does not fit the model's [${want}] (-1 is any size)`);
}

/** Flattens nested JSON arrays into `out`; returns false when the nesting is not an array of scalars. */
function flatten(value: unknown, out: unknown[]): boolean {
  if (!Array.isArray(value)) {
    out.push(value);
    return true;
  }
  for (const v of value) {
    if (Array.isArray(v)) {
      if (!flatten(v, out)) return false;
    } else out.push(v);
  }
  return true;
}

function fromJson(input: InferInput, datatype: Datatype, count: number): TypedArray {
  const info = DATATYPE_INFO[datatype];
  const flat: unknown[] = [];
  if (input.data === undefined) fail(400, `input '${input.name}': no data (give "data", or "parameters.binary_data_size" with a binary body)`);
  flatten(input.data, flat);
  if (flat.length !== count) fail(400, `input '${input.name}': shape [${input.shape}] needs ${count} elements, data has ${flat.length}`);
  const out = new info.array(count);
  for (let i = 0; i < count; i++) {
    const v = flat[i];
    const where = `input '${input.name}' element ${i}`;
    switch (info.kind) {
      case 'bool':
        if (typeof v === 'boolean') out[i] = v ? 1 : 0;
        else if (v === 0 || v === 1) out[i] = v;
        else fail(400, `${where}: expected true/false, got ${JSON.stringify(v)}`);
        break;
      case 'int':
        if (typeof v !== 'number' || !Number.isInteger(v)) fail(400, `${where}: expected an integer, got ${JSON.stringify(v)}`);
        if (v < info.min! || v > info.max!) fail(400, `${where}: ${v} is out of range for ${datatype}`);
        out[i] = v;
        break;
      case 'bigint': {
        let b: bigint;
        if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
        else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) b = BigInt(v);
        else fail(400, `${where}: expected an integer (a number, or a decimal string beyond 2^53), got ${JSON.stringify(v)}`);
        const lo = datatype === 'UINT64' ? 0n : -(2n ** 63n), hi = datatype === 'UINT64' ? 2n ** 64n - 1n : 2n ** 63n - 1n;
        if (b < lo || b > hi) fail(400, `${where}: ${b} is out of range for ${datatype}`);
        (out as BigInt64Array)[i] = b;
        break;
      }
      case 'float':
      case 'half':
        if (typeof v !== 'number' || !Number.isFinite(v)) fail(400, `${where}: expected a finite number, got ${JSON.stringify(v)}`);
        out[i] = info.kind === 'half' ? toHalfBits(v) : v;
        break;
    }
  }
  return out;
}

function fromBinary(input: InferInput, datatype: Datatype, count: number, bytes: Uint8Array): TypedArray {
  const info = DATATYPE_INFO[datatype];
  const want = count * info.bytes;
  if (bytes.byteLength !== want) {
    fail(400, `input '${input.name}': binary_data_size is ${bytes.byteLength} but ${count} ${datatype} elements need ${want} bytes`);
  }
  const aligned = bytes.slice(); // own, aligned buffer (the payload offset may not be a multiple of the element size)
  const out = new info.array(aligned.buffer, 0, count);
  if (info.kind === 'float' || info.kind === 'half') {
    for (let i = 0; i < count; i++) {
      const v = info.kind === 'half' ? fromHalfBits(out[i] as number) : (out[i] as number);
      if (!Number.isFinite(v)) fail(400, `input '${input.name}' element ${i}: ${v} is not a finite number`);
    }
  } else if (info.kind === 'bool') {
    for (let i = 0; i < count; i++) if (out[i]! > 1) fail(400, `input '${input.name}' element ${i}: BOOL bytes must be 0 or 1`);
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
    if (!meta) fail(400, `unknown input '${input.name}'; the model takes ${model.map((m) => `'${m.name}'`).join(', ')}`);
    if (seen.has(input.name)) fail(400, `input '${input.name}' is given twice`);
    seen.add(input.name);
    if (!isDatatype(input.datatype)) fail(400, `input '${input.name}': unknown datatype ${JSON.stringify(input.datatype)}`);
    if (input.datatype !== meta.datatype) fail(400, `input '${input.name}': datatype ${input.datatype} does not match the model's ${meta.datatype}`);
    checkShape(input, meta);
    const count = elementCount(input.name, input.shape, budget);
    budget -= count;
    const size = input.parameters?.binary_data_size;
    let data: TypedArray;
    if (size !== undefined) {
      if (!payload) fail(400, `input '${input.name}' has binary_data_size but the request has no binary part (set Inference-Header-Content-Length)`);
      if (input.data !== undefined) fail(400, `input '${input.name}': give either data or binary_data_size, not both`);
      if (offset + size > payload.byteLength) fail(400, `input '${input.name}': binary part ends after ${payload.byteLength - offset} of ${size} bytes (truncated body?)`);
      data = fromBinary(input, meta.datatype, count, payload.subarray(offset, offset + size));
      offset += size;
    } else {
      data = fromJson(input, meta.datatype, count);
    }
    return { name: input.name, datatype: meta.datatype, shape: input.shape, data };
  });
  const missing = model.filter((m) => !seen.has(m.name));
  if (missing.length) fail(400, `missing input${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m.name}'`).join(', ')}`);
  if (payload && offset !== payload.byteLength) {
    fail(400, `binary part has ${payload.byteLength} bytes but the inputs' binary_data_size add up to ${offset}`);
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
