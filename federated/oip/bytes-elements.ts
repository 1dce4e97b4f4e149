/**
 * BYTES elements in the binary tensor data extension, Triton's layout (Triton "Binary Tensor Data Extension",
 * KServe's binary extension): each element is a 4-byte little-endian unsigned length followed by that many bytes,
 * elements back to back, nothing between. Elements are strings here (UTF-8), as ONNX Runtime's string tensors take
 * them; bytes that are not UTF-8 are refused rather than replaced, so no input is silently altered.
 */
import { refuseTensor } from './tensor-error.ts';

const utf8 = new TextEncoder();

/** The framed bytes of `elements`. */
export function encodeBytesElements(elements: readonly string[]): Uint8Array {
  const encoded = elements.map((e) => utf8.encode(e));
  const out = new Uint8Array(encoded.reduce((n, e) => n + 4 + e.byteLength, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const e of encoded) {
    view.setUint32(offset, e.byteLength, true);
    out.set(e, offset + 4);
    offset += 4 + e.byteLength;
  }
  return out;
}

/** Exactly `count` elements from `bytes`, which they must use up; `what` names the tensor in errors. */
export function decodeBytesElements(bytes: Uint8Array, count: number, what: string): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const out = new Array<string>(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > bytes.byteLength) refuseTensor(`${what}: BYTES element ${i} has no length (the data ends after ${bytes.byteLength} bytes)`);
    const n = view.getUint32(offset, true);
    offset += 4;
    if (n > bytes.byteLength - offset) refuseTensor(`${what}: BYTES element ${i} claims ${n} bytes but only ${bytes.byteLength - offset} remain`);
    try {
      out[i] = decoder.decode(bytes.subarray(offset, offset + n));
    } catch {
      refuseTensor(`${what}: BYTES element ${i} is not valid UTF-8 (string tensors hold text)`);
    }
    offset += n;
  }
  if (offset !== bytes.byteLength) refuseTensor(`${what}: ${count} BYTES elements end after ${offset} bytes, the data has ${bytes.byteLength}`);
  return out;
}
