/**
 * Byte utilities for the whole core, the Worker and the SDK, each doing one job (in the manner of noble-hashes'
 * `utils`): views between typed arrays, concatenation, comparison, UTF-8, base64 and length-prefixed framing.
 * Views share memory with what they view — writing one writes the other — and never copy; where a copy is wanted
 * (to own the bytes, or to align them) callers say so with `.slice()`. Bad inputs throw a TypeError or RangeError
 * whose message starts with the label the caller gave, so a failure says which bytes were wrong.
 */

/** Throws a TypeError unless `a` is a typed array or DataView (a bare ArrayBuffer or a number is a caller's bug). */
function abView(a: unknown, label: string): asserts a is ArrayBufferView {
  if (!ArrayBuffer.isView(a))
    throw new TypeError(`${label}: expected a typed array or DataView, got ${a === null ? 'null' : typeof a}`);
}

/**
 * `a`'s memory as `size`-byte elements: the offset must be a multiple of `size` (typed arrays cannot start
 * mid-element) and so must the length (a trailing partial element would be silently dropped).
 */
function aligned(a: unknown, size: number, label: string): asserts a is ArrayBufferView {
  abView(a, label);
  if (a.byteOffset % size !== 0 || a.byteLength % size !== 0) {
    throw new RangeError(
      `${label}: ${size}-byte elements need a byte offset and length that are multiples of ${size}, got offset ${a.byteOffset} and length ${a.byteLength}`,
    );
  }
}

/** The bytes of any typed array or DataView: the same memory, so no copy. */
export function u8<B extends ArrayBufferLike>(a: ArrayBufferView<B>, label = 'u8'): Uint8Array<B> {
  abView(a, label);
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The same bytes read as signed (ONNX int8 tensors travel as raw bytes). */
export function i8<B extends ArrayBufferLike>(a: ArrayBufferView<B>, label = 'i8'): Int8Array<B> {
  abView(a, label);
  return new Int8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The same memory as 16-bit words (float16 bits); RangeError when it does not hold whole, aligned words. */
export function u16<B extends ArrayBufferLike>(a: ArrayBufferView<B>, label = 'u16'): Uint16Array<B> {
  aligned(a, 2, label);
  return new Uint16Array(a.buffer, a.byteOffset, a.byteLength / 2);
}

/** The same memory as 32-bit words (masks and sums in Z_2^32); RangeError when it does not hold whole, aligned words. */
export function u32<B extends ArrayBufferLike>(a: ArrayBufferView<B>, label = 'u32'): Uint32Array<B> {
  aligned(a, 4, label);
  return new Uint32Array(a.buffer, a.byteOffset, a.byteLength / 4);
}

/** The same memory as float32 values (weights); RangeError when it does not hold whole, aligned values. */
export function f32<B extends ArrayBufferLike>(a: ArrayBufferView<B>, label = 'f32'): Float32Array<B> {
  aligned(a, 4, label);
  return new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
}

/** A DataView over the same memory, for reading fields at any offset and in either byte order. */
export function dataView(a: ArrayBufferView, label = 'dataView'): DataView {
  abView(a, label);
  return new DataView(a.buffer, a.byteOffset, a.byteLength);
}

/** The parts one after another, in a new buffer. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const [i, p] of parts.entries()) {
    if (!(p instanceof Uint8Array)) throw new TypeError(`concat: part ${i} is not a Uint8Array`);
    length += p.byteLength;
  }
  const out = new Uint8Array(length);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/**
 * Whether `a` and `b` hold the same bytes. Callers compare secrets with it (identity keys, commitments, digests), so
 * for equal lengths it reads every byte whatever differs — no early exit that would time how many leading bytes
 * match. (JavaScript gives no hard constant-time guarantee; this removes the data-dependent branch.) Lengths are
 * public and compared first.
 */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

// Pure: bundles that never encode text (EdgeClient alone) drop it.
const encoder = /* @__PURE__ */ new TextEncoder();
/** UTF-8 bytes of `s` (lone surrogates become U+FFFD, as TextEncoder does). */
export const utf8 = (s: string): Uint8Array => encoder.encode(s);

/**
 * The same bytes typed as Web Crypto's BufferSource. The DOM library types BufferSource as ArrayBuffer-backed only
 * (to exclude SharedArrayBuffer); nothing here ever allocates shared memory, so this is a type-level statement.
 */
export const bufferSource = (u: Uint8Array): Uint8Array<ArrayBuffer> => u as Uint8Array<ArrayBuffer>;

/** Bytes per String.fromCharCode call: spreading a whole large array would overflow the call stack. */
const BASE64_SLICE = 0x8000;

/** Standard base64 (RFC 4648 §4, padded), for bytes inside JSON bodies and headers. */
export function toBase64(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('toBase64: expected a Uint8Array');
  let s = '';
  for (let i = 0; i < bytes.length; i += BASE64_SLICE) s += String.fromCharCode(...bytes.subarray(i, i + BASE64_SLICE));
  return btoa(s);
}

/** Bytes of standard base64. Throws (atob's DOMException) on characters outside the alphabet or a bad length. */
export function fromBase64(text: string): Uint8Array {
  if (typeof text !== 'string') throw new TypeError('fromBase64: expected a string');
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Bytes of base64url, padded or not (RFC 4648 §5: JWK fields). */
export function fromBase64Url(text: string): Uint8Array {
  if (typeof text !== 'string') throw new TypeError('fromBase64Url: expected a string');
  return fromBase64(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
}

/**
 * Length-prefixed framing: each part as its 4-byte little-endian length, then its bytes (strings as UTF-8). The one
 * encoding behind signed and hashed inputs (SecAgg+ signing bytes, key derivation, relay signatures), the SecAgg+
 * wire format and OIP's BYTES tensors. Because every part says where it ends, ("ab", "c") and ("a", "bc") never
 * frame alike: distinct part lists give distinct bytes, which is what makes it safe to sign or hash.
 */
export function framed(...parts: (Uint8Array | string)[]): Uint8Array {
  return framedList(parts);
}

/** {@link framed} over an array (a BYTES tensor's elements can be too many to spread as arguments). */
export function framedList(parts: readonly (Uint8Array | string)[]): Uint8Array {
  const bytes = parts.map((p, i) => {
    if (typeof p === 'string') return utf8(p);
    if (!(p instanceof Uint8Array)) throw new TypeError(`framed: part ${i} is neither bytes nor a string`);
    // The length prefix is 32 bits; a part that does not fit would wrap and frame as something else.
    if (p.byteLength > 0xffffffff)
      throw new RangeError(`framed: part ${i} is ${p.byteLength} bytes, more than a 4-byte length can say`);
    return p;
  });
  const out = new Uint8Array(bytes.reduce((n, b) => n + 4 + b.byteLength, 0));
  const view = dataView(out);
  let off = 0;
  for (const b of bytes) {
    view.setUint32(off, b.byteLength, true);
    out.set(b, off + 4);
    off += 4 + b.byteLength;
  }
  return out;
}

/**
 * The frame at `offset` of framed bytes: `part` (a view, not a copy) and `next`, where the following frame starts.
 * When it does not fit, `part` is absent and `claimed` says why: undefined when fewer than 4 bytes remain for the
 * length, else the length the frame claims (more than remain). Readers that need their own error messages (the
 * SecAgg+ head, OIP BYTES elements) read frame by frame with it; `unframe` reads them all.
 */
export function frameAt(
  bytes: Uint8Array,
  offset: number,
): { part: Uint8Array; next: number } | { part?: undefined; claimed: number | undefined } {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('frameAt: expected a Uint8Array');
  if (!(Number.isInteger(offset) && offset >= 0))
    throw new RangeError(`frameAt: offset must be a non-negative integer, got ${offset}`);
  if (offset + 4 > bytes.byteLength) return { claimed: undefined };
  const length = dataView(bytes).getUint32(offset, true);
  // Compared against what remains, never added to the offset first: a claimed length is untrusted input.
  if (length > bytes.byteLength - offset - 4) return { claimed: length };
  return { part: bytes.subarray(offset + 4, offset + 4 + length), next: offset + 4 + length };
}

/**
 * The parts of a `framed` byte string, or null when a length runs past the end or there are more than `maxParts`
 * (malformed input: a body of millions of empty frames must not become millions of views).
 */
export function unframe(bytes: Uint8Array, maxParts = Infinity): Uint8Array[] | null {
  const parts: Uint8Array[] = [];
  for (let off = 0; off < bytes.byteLength; ) {
    if (parts.length >= maxParts) return null;
    const frame = frameAt(bytes, off);
    if (!frame.part) return null;
    parts.push(frame.part);
    off = frame.next;
  }
  return parts;
}
