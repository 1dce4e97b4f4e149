/**
 * OIP v2 tensors <-> typed arrays (and strings for BYTES), checked against the model's declared inputs.
 * JSON `data` may be flat or nested exactly as the shape, row-major. With the binary tensor data extension an input's
 * bytes come from the payload after the JSON header, in input order (KServe "Binary Tensor Data Extension"; BYTES
 * elements length-prefixed as Triton frames them, federated/oip/bytes-elements.ts).
 * An input whose model declares a featurizer (TensorMeta.featurizer) also takes raw text: a BYTES tensor of the
 * input's shape without its feature axis, turned into the model's floats by the code devices train with.
 */
import { refuseTensor } from './errors.ts';
import { DATATYPE_INFO, type Datatype, isDatatype } from '../../federated/oip/datatypes.ts';
import { type Tensor as OipTensor, tensorBytes, tensorFromBytes } from '../../federated/oip/tensor.ts';
import { binaryParts } from '../../federated/oip/binary-framing.ts';
import { hashTexts } from '../../federated/model/text-features.ts';
import { fromHalfBits, toHalfBits } from '../../federated/oip/half-float.ts';
import type { InferInput } from './infer-request.ts';
import type { TensorMeta } from '../registry/model-record.ts';
import { preview, quote, quoteList, showShape } from './quote.ts';

/** A named tensor: a request's input or a model's output. */
export type Tensor = OipTensor & { name: string };

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
    if (n > budget)
      refuseTensor(
        `${label(name)}: shape ${showShape(shape)} has more elements than the ${budget} allowed per request`,
      );
  }
  return n;
}

/**
 * The input's shape against the model's, exactly as ONNX Runtime checks it (onnxruntime-node accepts what this
 * accepts): the same rank, and every fixed dimension equal; -1 (dim_param, or neither dim_value nor dim_param)
 * fits any size. A model shape of rank 0 is not checked at all — ORT skips the check when the graph declares no
 * dimensions, which covers both a declared scalar and an input with no shape, so [1] for an INT64 scalar runs.
 */
function checkShape(input: InferInput, want: number[]): void {
  if (want.length === 0) return;
  const ok = input.shape.length === want.length && want.every((d, i) => d < 0 || d === input.shape[i]);
  if (!ok)
    refuseTensor(
      `${label(input.name)}: shape ${showShape(input.shape)} does not fit the model's ${showShape(want)} (-1 is any size)`,
    );
}

/**
 * The elements of JSON `data` in row-major order. Accepted: one scalar (a one-element tensor), a flat array of
 * exactly `count` scalars, or arrays nested exactly as `shape` (a rectangular array: every level as long as its
 * dimension, scalars at the last). Ragged nesting is refused even when its total count would match.
 * Iterative, and never deeper than the shape's rank, whatever the caller nested.
 */
export function flattenData(name: string, data: unknown, shape: number[], count: number): unknown[] {
  if (!Array.isArray(data)) {
    if (count !== 1)
      refuseTensor(`${label(name)}: data is a single value but shape ${showShape(shape)} needs ${count} elements`);
    return [data];
  }
  if (!data.some(Array.isArray)) {
    if (data.length !== count)
      refuseTensor(`${label(name)}: shape ${showShape(shape)} needs ${count} elements, data has ${data.length}`);
    return data;
  }
  const rank = shape.length;
  const out: unknown[] = [];
  const where = (stack: { index: number }[]) => `data${stack.map((s) => `[${s.index - 1}]`).join('')}`;
  const nestingError: (path: string, got: string) => never = (path, got) =>
    refuseTensor(
      `${label(name)}: nested data must be a rectangular array of shape ${showShape(shape)} (or flat, ${count} elements); ${path} ${got}`,
    );
  if (rank === 0 || data.length !== shape[0])
    nestingError(
      'data',
      rank === 0 ? 'is nested but the shape is a scalar' : `has ${data.length} entries, dimension 0 is ${shape[0]}`,
    );
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
      if (v.length !== shape[depth])
        nestingError(where(stack), `has ${v.length} entries, dimension ${depth} is ${shape[depth]}`);
      stack.push({ array: v, index: 0 });
    } else {
      if (Array.isArray(v))
        nestingError(where(stack), `is an array, but the shape has only ${rank} dimension${rank === 1 ? '' : 's'}`);
      out.push(v);
    }
  }
  return out;
}

/** The largest finite magnitude of each float datatype: JSON numbers beyond it would become ±Infinity. */
const FLOAT_MAX: Partial<Record<Datatype, number>> = {
  FP16: 65504,
  FP32: 3.4028234663852886e38,
  FP64: Number.MAX_VALUE,
};

function fromJson(input: InferInput, datatype: Datatype, count: number): OipTensor['data'] {
  if (input.data === undefined)
    refuseTensor(`${label(input.name)}: no data (give "data", or "parameters.binary_data_size" with a binary body)`);
  const flat = flattenData(input.name, input.data, input.shape, count);
  if (datatype === 'BYTES') {
    // OIP's JSON form of BYTES is a string per element.
    for (let i = 0; i < count; i++)
      if (typeof flat[i] !== 'string') refuseElement(input, i, `expected a string, got ${preview(flat[i])}`);
    return flat as string[];
  }
  const info = DATATYPE_INFO[datatype];
  const out = new info.array(count);
  // One loop per kind, no closure or per-element allocation: this is the inference route's hot path (bench:profile
  // showed a per-element error-label closure costing more than the ORT run — wrangler's bundle names every closure).
  switch (info.kind) {
    case 'float': {
      const f = out as Float32Array | Float64Array;
      for (let i = 0; i < count; i++) {
        const v = flat[i];
        if (typeof v !== 'number') refuseElement(input, i, `expected a finite number, got ${preview(v)}`);
        f[i] = v;
        // The range check is on the stored value: FP32 1e39 rounds to Infinity.
        if (!Number.isFinite(f[i]!))
          refuseElement(
            input,
            i,
            Number.isFinite(v)
              ? `${v} is out of range for ${datatype} (largest finite magnitude ${FLOAT_MAX[datatype]})`
              : `expected a finite number, got ${preview(v)}`,
          );
      }
      break;
    }
    case 'half':
      for (let i = 0; i < count; i++) {
        const v = flat[i];
        if (typeof v !== 'number' || !Number.isFinite(v))
          refuseElement(input, i, `expected a finite number, got ${preview(v)}`);
        out[i] = toHalfBits(v);
        if (!Number.isFinite(fromHalfBits(out[i] as number)))
          refuseElement(
            input,
            i,
            `${v} is out of range for ${datatype} (largest finite magnitude ${FLOAT_MAX[datatype]})`,
          );
      }
      break;
    case 'int':
      for (let i = 0; i < count; i++) {
        const v = flat[i];
        if (typeof v !== 'number' || !Number.isInteger(v))
          refuseElement(input, i, `expected an integer, got ${preview(v)}`);
        if (v < info.min! || v > info.max!) refuseElement(input, i, `${v} is out of range for ${datatype}`);
        out[i] = v;
      }
      break;
    case 'bool':
      for (let i = 0; i < count; i++) {
        const v = flat[i];
        if (typeof v === 'boolean') out[i] = v ? 1 : 0;
        else if (v === 0 || v === 1) out[i] = v;
        else refuseElement(input, i, `expected true/false, got ${preview(v)}`);
      }
      break;
    case 'bigint': {
      const lo = datatype === 'UINT64' ? 0n : -(2n ** 63n),
        hi = datatype === 'UINT64' ? 2n ** 64n - 1n : 2n ** 63n - 1n;
      for (let i = 0; i < count; i++) {
        const v = flat[i];
        let b: bigint;
        if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
        else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) b = BigInt(v);
        else
          refuseElement(input, i, `expected an integer (a number, or a decimal string beyond 2^53), got ${preview(v)}`);
        if (b < lo || b > hi) refuseElement(input, i, `${b} is out of range for ${datatype}`);
        (out as BigInt64Array)[i] = b;
      }
      break;
    }
  }
  return out;
}

function refuseElement(input: InferInput, i: number, why: string): never {
  refuseTensor(`${label(input.name)} element ${i}: ${why}`);
}

/**
 * Strings ONNX Runtime cannot take as they are: onnxruntime-web hands string elements to its C API as
 * NUL-terminated C strings, so "a\0b" would run as "a" — refused rather than cut silently.
 */
function checkStrings(name: string, strings: string[]): void {
  for (let i = 0; i < strings.length; i++)
    if (strings[i]!.includes('\0'))
      refuseTensor(
        `${label(name)} element ${i}: contains a NUL character, which ONNX Runtime's string tensors cannot hold`,
      );
}

/** Values the binary extension can carry but a model must not get: non-finite floats, BOOL bytes other than 0/1. */
function checkBinaryValues(name: string, t: OipTensor): void {
  if (t.datatype === 'BYTES') return;
  const kind = DATATYPE_INFO[t.datatype].kind;
  if (kind === 'float' || kind === 'half') {
    for (let i = 0; i < t.data.length; i++) {
      const v = kind === 'half' ? fromHalfBits(t.data[i] as number) : (t.data[i] as number);
      if (!Number.isFinite(v)) refuseTensor(`${label(name)} element ${i}: ${v} is not a finite number`);
    }
  } else if (kind === 'bool') {
    for (let i = 0; i < t.data.length; i++)
      if (t.data[i]! > 1) refuseTensor(`${label(name)} element ${i}: BOOL bytes must be 0 or 1`);
  }
}

/** How an input arrives: as the model's own datatype, or as text for an input with a featurizer. */
function plan(input: InferInput, meta: TensorMeta): { datatype: Datatype; shape: number[] } {
  if (!isDatatype(input.datatype)) refuseTensor(`${label(input.name)}: unknown datatype ${preview(input.datatype)}`);
  if (input.datatype === 'BYTES' && meta.featurizer && meta.datatype !== 'BYTES')
    return { datatype: 'BYTES', shape: meta.shape.slice(0, -1) };
  if (input.datatype !== meta.datatype) {
    const text = meta.featurizer ? ` (or BYTES: raw text, ${meta.featurizer.kind})` : '';
    refuseTensor(`${label(input.name)}: datatype ${input.datatype} does not match the model's ${meta.datatype}${text}`);
  }
  return { datatype: meta.datatype, shape: meta.shape };
}

/**
 * Decodes and checks every input against the model: names (missing, unknown, duplicate), datatype,
 * shape, element count, values; binary inputs consume `payload` in order, which must be used up exactly.
 */
export function decodeInputs(
  inputs: InferInput[],
  model: TensorMeta[],
  payload: Uint8Array | undefined,
  limits: DecodeLimits,
): Tensor[] {
  const byName = new Map(model.map((m) => [m.name, m]));
  const seen = new Set<string>();
  for (const input of inputs) {
    if (!byName.has(input.name))
      refuseTensor(`unknown ${label(input.name)}; the model takes ${quoteList(model.map((m) => m.name))}`);
    if (seen.has(input.name)) refuseTensor(`${label(input.name)} is given twice`);
    seen.add(input.name);
    const size = input.parameters?.binary_data_size;
    if (size !== undefined && !payload)
      refuseTensor(
        `${label(input.name)} has binary_data_size but the request has no binary part (set Inference-Header-Content-Length)`,
      );
    if (size !== undefined && input.data !== undefined)
      refuseTensor(`${label(input.name)}: give either data or binary_data_size, not both`);
  }
  const missing = model.filter((m) => !seen.has(m.name));
  if (missing.length)
    refuseTensor(`missing input${missing.length > 1 ? 's' : ''} ${quoteList(missing.map((m) => m.name))}`);
  const parts = payload
    ? binaryParts(
        payload,
        inputs.map((i) => i.parameters?.binary_data_size),
        (i) => label(inputs[i]!.name),
      )
    : [];
  let budget = limits.maxElements;
  return inputs.map((input, i) => {
    const meta = byName.get(input.name)!;
    const { datatype, shape } = plan(input, meta);
    checkShape(input, shape);
    const count = elementCount(input.name, input.shape, budget);
    budget -= count;
    const bytes = parts[i];
    let tensor: OipTensor;
    if (bytes) {
      tensor = tensorFromBytes(datatype, input.shape, bytes, label(input.name));
      checkBinaryValues(input.name, tensor);
    } else {
      tensor = { datatype, shape: input.shape, data: fromJson(input, datatype, count) } as OipTensor;
    }
    if (tensor.datatype === 'BYTES' && meta.datatype === 'BYTES') checkStrings(input.name, tensor.data);
    if (tensor.datatype === 'BYTES' && meta.datatype !== 'BYTES') {
      // Text for a featurized input: the model's floats, [...shape, buckets], counted against the same budget.
      const f = meta.featurizer!;
      budget += count;
      budget -= elementCount(input.name, [...input.shape, f.buckets], budget);
      return {
        name: input.name,
        datatype: 'FP32' as const,
        shape: [...input.shape, f.buckets],
        data: hashTexts(tensor.data, f),
      };
    }
    return { name: input.name, ...tensor };
  });
}

/** Element values for a JSON response: numbers, booleans for BOOL, decimal strings for 64-bit integers beyond 2^53, strings for BYTES. */
export function toJsonData(t: Tensor): (number | boolean | string)[] {
  if (t.datatype === 'BYTES') return t.data;
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

/** A tensor's bytes for the binary extension. */
export const toBinaryData = (t: Tensor): Uint8Array => tensorBytes(t);
