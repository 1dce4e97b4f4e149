/**
 * The `metadata_props` of ONNX bytes (onnx.proto ModelProto field 14, StringStringEntryProto key = 1, value = 2),
 * read by walking the top-level protobuf fields and skipping the rest — the graph is never decoded, so reading a
 * model's metadata costs no copy of its weights (the Worker reads it at every upload and load). Pure; no I/O.
 */
import { OnnxFormatError } from './onnx-format-error.ts';
import { concat } from '../bytes.ts';
import { encodeVarint } from './head/wire.ts';

const METADATA_PROPS = 14;

class Reader {
  offset = 0;
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  get done(): boolean {
    return this.offset >= this.bytes.byteLength;
  }

  varint(): number {
    let result = 0,
      scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.offset >= this.bytes.byteLength) throw new OnnxFormatError('not an ONNX model: truncated varint');
      const b = this.bytes[this.offset++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new OnnxFormatError('not an ONNX model: varint longer than 10 bytes');
  }

  /** The next length-delimited field's bytes. */
  chunk(): Uint8Array {
    const n = this.varint();
    if (n > this.bytes.byteLength - this.offset)
      throw new OnnxFormatError('not an ONNX model: a field runs past the end');
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.offset += 8;
    else if (wire === 2) this.chunk();
    else if (wire === 5) this.offset += 4;
    else throw new OnnxFormatError(`not an ONNX model: protobuf wire type ${wire}`);
    if (this.offset > this.bytes.byteLength) throw new OnnxFormatError('not an ONNX model: a field runs past the end');
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }); // a leading U+FEFF is kept, as C++ protobuf keeps it

export function readMetadataProps(bytes: Uint8Array): Record<string, string> {
  const props: Record<string, string> = {};
  const r = new Reader(bytes);
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8),
      wire = tag % 8;
    if (field !== METADATA_PROPS || wire !== 2) {
      r.skip(wire);
      continue;
    }
    const entry = new Reader(r.chunk());
    let key = '',
      value = '';
    while (!entry.done) {
      const t = entry.varint();
      if (t === 0x0a) key = utf8.decode(entry.chunk());
      else if (t === 0x12) value = utf8.decode(entry.chunk());
      else entry.skip(t % 8);
    }
    props[key] = value;
  }
  return props;
}

const utf8Encoder = new TextEncoder();

function lengthDelimited(field: number, body: Uint8Array): Uint8Array {
  const head = [...encodeVarint(field * 8 + 2), ...encodeVarint(body.byteLength)];
  const out = new Uint8Array(head.length + body.byteLength);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/**
 * `bytes` with `props` set in its metadata_props: every existing entry of those keys is dropped and one new entry
 * per key appended. Protobuf merges a message's fields in any order, so the graph's bytes are copied untouched —
 * `fedge pack` never re-encodes a model it did not write.
 */
export function withMetadataProps(bytes: Uint8Array, props: Record<string, string>): Uint8Array {
  const replaced = new Set(Object.keys(props));
  const kept: Uint8Array[] = [];
  const r = new Reader(bytes);
  while (!r.done) {
    const start = r.offset;
    const tag = r.varint();
    const field = Math.floor(tag / 8),
      wire = tag % 8;
    if (field === METADATA_PROPS && wire === 2) {
      const entry = r.chunk();
      if (replaced.has(keyOf(entry))) continue;
    } else r.skip(wire);
    kept.push(bytes.subarray(start, r.offset));
  }
  for (const [key, value] of Object.entries(props)) {
    const entry = concat(lengthDelimited(1, utf8Encoder.encode(key)), lengthDelimited(2, utf8Encoder.encode(value)));
    kept.push(lengthDelimited(METADATA_PROPS, entry));
  }
  return concat(...kept);
}

function keyOf(entry: Uint8Array): string {
  const e = new Reader(entry);
  while (!e.done) {
    const t = e.varint();
    if (t === 0x0a) return utf8.decode(e.chunk());
    e.skip(t % 8);
  }
  return '';
}
