/**
 * BYTES elements in the binary tensor data extension, Triton's layout (Triton "Binary Tensor Data Extension",
 * KServe's binary extension): each element is a 4-byte little-endian unsigned length followed by that many bytes,
 * elements back to back, nothing between. Elements are strings here (UTF-8), as ONNX Runtime's string tensors take
 * them; bytes that are not UTF-8 are refused rather than replaced, so no input is silently altered.
 */
import { frameAt, framedList } from '../bytes.ts';
import { refuseTensor } from './tensor-error.ts';

/** The framed bytes of `elements` (the same length-prefixed framing as federated/bytes.ts `framed`). */
export function encodeBytesElements(elements: readonly string[]): Uint8Array {
  return framedList(elements);
}

/** Exactly `count` elements from `bytes`, which they must use up; `what` names the tensor in errors. */
export function decodeBytesElements(bytes: Uint8Array, count: number, what: string): string[] {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const out = new Array<string>(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const frame = frameAt(bytes, offset);
    if (!frame.part) {
      if (frame.claimed === undefined)
        refuseTensor(`${what}: BYTES element ${i} has no length (the data ends after ${bytes.byteLength} bytes)`);
      refuseTensor(
        `${what}: BYTES element ${i} claims ${frame.claimed} bytes but only ${bytes.byteLength - offset - 4} remain`,
      );
    }
    try {
      out[i] = decoder.decode(frame.part);
    } catch {
      refuseTensor(`${what}: BYTES element ${i} is not valid UTF-8 (string tensors hold text)`);
    }
    offset = frame.next;
  }
  if (offset !== bytes.byteLength)
    refuseTensor(`${what}: ${count} BYTES elements end after ${offset} bytes, the data has ${bytes.byteLength}`);
  return out;
}
