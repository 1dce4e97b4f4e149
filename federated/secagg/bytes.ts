/** Byte helpers shared by the SecAgg+ modules: concatenation, equality, length-prefixed framing. */

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

const encoder = new TextEncoder();
export const utf8 = (s: string) => encoder.encode(s);

/** Each part prefixed by its 4-byte little-endian length, so ("ab","c") and ("a","bc") never frame alike. */
export function framed(...parts: (Uint8Array | string)[]): Uint8Array {
  const bytes = parts.map((p) => (typeof p === 'string' ? utf8(p) : p));
  const out = new Uint8Array(bytes.reduce((n, b) => n + 4 + b.byteLength, 0));
  const view = new DataView(out.buffer);
  let off = 0;
  for (const b of bytes) {
    view.setUint32(off, b.byteLength, true);
    out.set(b, off + 4);
    off += 4 + b.byteLength;
  }
  return out;
}

/**
 * The parts of a `framed` byte string, or null when a length runs past the end or there are more than `maxParts`
 * (malformed input: a body of millions of empty frames must not become millions of views).
 */
export function unframe(bytes: Uint8Array, maxParts = Infinity): Uint8Array[] | null {
  const parts: Uint8Array[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let off = 0; off < bytes.byteLength;) {
    if (off + 4 > bytes.byteLength || parts.length >= maxParts) return null;
    const len = view.getUint32(off, true);
    if (len > bytes.byteLength - off - 4) return null;
    parts.push(bytes.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return parts;
}

/**
 * The same bytes typed as Web Crypto's BufferSource. The DOM library types BufferSource as ArrayBuffer-backed only
 * (to exclude SharedArrayBuffer); nothing here ever allocates shared memory, so this is a type-level statement.
 */
export const bufferSource = (u: Uint8Array): Uint8Array<ArrayBuffer> => u as Uint8Array<ArrayBuffer>;

/** Standard base64 (RFC 4648 §4), for bytes inside JSON bodies. */
export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
