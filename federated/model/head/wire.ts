/**
 * Byte-level rewrite of an ONNX file (protobuf wire format, protobuf.dev "Encoding"): replaces the data of named
 * graph initializers and copies every other byte as it is — field order, unknown fields, non-minimal varints and
 * all. A tensor whose new data has the size of its old data (raw_data, or float_data of a float tensor) is
 * patched in place, so the file keeps its length; otherwise that TensorProto is rewritten with raw_data and only
 * the length prefixes around it change.
 */
import { ElemType } from '../onnx-graph.ts';
import { concat } from '../../bytes.ts';
import { HeadError } from './head-error.ts';

export interface TensorData {
  dataType: number;
  /** little-endian element bytes, as TensorProto.raw_data holds them */
  bytes: Uint8Array;
}

interface Field {
  number: number;
  wire: number;
  /** first byte of the key */
  start: number;
  /** first byte of the value (after the length, for length-delimited fields) */
  value: number;
  end: number;
}

// ModelProto.graph, GraphProto.initializer, TensorProto fields (onnx.proto).
const MODEL_GRAPH = 7,
  GRAPH_INITIALIZER = 5;
const T_DATA_TYPE = 2,
  T_FLOAT_DATA = 4,
  T_INT32_DATA = 5,
  T_NAME = 8,
  T_RAW_DATA = 9,
  T_EXTERNAL_DATA = 13,
  T_DATA_LOCATION = 14;
const DATA_FIELDS = new Set([T_FLOAT_DATA, T_INT32_DATA, 6, 7, T_RAW_DATA, 10, 11]);

function varint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0,
    scale = 1,
    b: number;
  do {
    if (pos >= buf.length) throw new HeadError('the model is truncated (protobuf varint runs past the end)');
    b = buf[pos++]!;
    value += (b & 0x7f) * scale;
    scale *= 128;
  } while (b & 0x80);
  return [value, pos];
}

/** A protobuf varint's bytes. */
export function encodeVarint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function* fields(buf: Uint8Array, start: number, end: number): Generator<Field> {
  let pos = start;
  while (pos < end) {
    const at = pos;
    const [key, p] = varint(buf, pos);
    const number = Math.floor(key / 8),
      wire = key % 8;
    let value = p;
    if (wire === 0) pos = varint(buf, p)[1];
    else if (wire === 1) pos = p + 8;
    else if (wire === 2) {
      const [len, q] = varint(buf, p);
      value = q;
      pos = q + len;
    } else if (wire === 5) pos = p + 4;
    else throw new HeadError(`unsupported protobuf wire type ${wire} at byte ${at}`);
    if (pos > end) throw new HeadError(`the model is truncated (field ${number} at byte ${at} runs past its message)`);
    yield { number, wire, start: at, value, end: pos };
  }
}

/** Key and length of a length-delimited field holding `length` bytes: the original ones when the length is unchanged. */
function header(buf: Uint8Array, f: Field, length: number): Uint8Array {
  if (length === f.end - f.value) return buf.subarray(f.start, f.value);
  return Uint8Array.from([...encodeVarint(f.number * 8 + 2), ...encodeVarint(length)]);
}

function patchTensor(buf: Uint8Array, start: number, end: number, name: string, data: TensorData): Uint8Array {
  let dataType = 0;
  const dataFields: Field[] = [];
  for (const f of fields(buf, start, end)) {
    if (f.number === T_DATA_TYPE && f.wire === 0) dataType = varint(buf, f.value)[0];
    else if (f.number === T_DATA_LOCATION && f.wire === 0 && varint(buf, f.value)[0] !== 0)
      throw new HeadError(`initializer '${name}' is stored as external data`);
    else if (f.number === T_EXTERNAL_DATA) throw new HeadError(`initializer '${name}' is stored as external data`);
    else if (DATA_FIELDS.has(f.number)) dataFields.push(f);
  }
  if (dataType !== data.dataType)
    throw new HeadError(`initializer '${name}' has data type ${dataType}, the new data is ${data.dataType}`);
  const n = data.bytes.length;
  const only = dataFields.length === 1 ? dataFields[0]! : undefined;
  const packedSameSize =
    only &&
    only.wire === 2 &&
    (only.number === T_RAW_DATA || (only.number === T_FLOAT_DATA && dataType === ElemType.FLOAT)) &&
    only.end - only.value === n;
  // A copy (Buffer#slice would share memory with the input, which must stay untouched).
  const copy = () => new Uint8Array(buf.subarray(start, end));
  if (packedSameSize) {
    const out = copy();
    out.set(data.bytes, only.value - start);
    return out;
  }
  // float_data written unpacked (one fixed32 field per value), as some writers do.
  if (
    dataType === ElemType.FLOAT &&
    dataFields.length * 4 === n &&
    dataFields.every((f) => f.number === T_FLOAT_DATA && f.wire === 5)
  ) {
    const out = copy();
    dataFields.forEach((f, i) => out.set(data.bytes.subarray(4 * i, 4 * i + 4), f.value - start));
    return out;
  }
  const kept = [...fields(buf, start, end)]
    .filter((f) => !DATA_FIELDS.has(f.number))
    .map((f) => buf.subarray(f.start, f.end));
  return concat(...kept, Uint8Array.from([...encodeVarint(T_RAW_DATA * 8 + 2), ...encodeVarint(n)]), data.bytes);
}

function tensorName(buf: Uint8Array, start: number, end: number): string | undefined {
  for (const f of fields(buf, start, end))
    if (f.number === T_NAME && f.wire === 2)
      return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(buf.subarray(f.value, f.end));
  return undefined;
}

/** `model` with the data of each named initializer of its main graph replaced; every other byte copied. */
export function replaceInitializerData(model: Uint8Array, replacements: Map<string, TensorData>): Uint8Array {
  const done = new Set<string>();
  const parts: Uint8Array[] = [];
  for (const g of fields(model, 0, model.length)) {
    if (g.number !== MODEL_GRAPH || g.wire !== 2) {
      parts.push(model.subarray(g.start, g.end));
      continue;
    }
    const graph: Uint8Array[] = [];
    for (const f of fields(model, g.value, g.end)) {
      const name = f.number === GRAPH_INITIALIZER && f.wire === 2 ? tensorName(model, f.value, f.end) : undefined;
      const data = name === undefined ? undefined : replacements.get(name);
      if (!data) {
        graph.push(model.subarray(f.start, f.end));
        continue;
      }
      if (done.has(name!)) throw new HeadError(`the graph has two initializers named '${name}'`);
      done.add(name!);
      const tensor = patchTensor(model, f.value, f.end, name!, data);
      graph.push(header(model, f, tensor.length), tensor);
    }
    const body = concat(...graph);
    parts.push(header(model, g, body.length), body);
  }
  const missing = [...replacements.keys()].filter((k) => !done.has(k));
  if (missing.length) throw new HeadError(`the model has no initializer ${missing.map((m) => `'${m}'`).join(', ')}`);
  return concat(...parts);
}
