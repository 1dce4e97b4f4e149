/**
 * The binary tensor data extension's framing (KServe "Binary Tensor Data Extension", Triton's): a JSON header of
 * `Inference-Header-Content-Length` bytes, then the binary-extension bytes of every binary input (or output) in
 * the header's order. Written once for the Worker and the SDK.
 */
import { HEADER_LENGTH } from '../http/headers.ts';
import { refuseTensor } from './tensor-error.ts';

export { HEADER_LENGTH };

/** JSON header + concatenated binary parts, and the header's length to send with them. */
export function joinBinaryBody(
  header: unknown,
  parts: readonly Uint8Array[],
): { body: Uint8Array<ArrayBuffer>; headerLength: number } {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const body = new Uint8Array(json.byteLength + parts.reduce((n, p) => n + p.byteLength, 0));
  body.set(json, 0);
  let offset = json.byteLength;
  for (const p of parts) {
    body.set(p, offset);
    offset += p.byteLength;
  }
  return { body, headerLength: json.byteLength };
}

/** The header's bytes and the payload after it; `headerLength` is the header value as received. */
export function splitBinaryBody(body: Uint8Array, headerLength: string): { header: Uint8Array; payload: Uint8Array } {
  if (!/^\d{1,15}$/.test(headerLength.trim()))
    refuseTensor(`${HEADER_LENGTH} must be a byte count, got '${headerLength.slice(0, 32)}'`);
  const n = Number(headerLength);
  if (n === 0 || n > body.byteLength)
    refuseTensor(`${HEADER_LENGTH} is ${n} but the body has ${body.byteLength} bytes`);
  return { header: body.subarray(0, n), payload: body.subarray(n) };
}

/** Slices the binary parts named by `sizes` (in order) off `payload`, which they must use up exactly. */
export function binaryParts(
  payload: Uint8Array,
  sizes: readonly (number | undefined)[],
  what: (i: number) => string,
): (Uint8Array | undefined)[] {
  let offset = 0;
  const parts = sizes.map((size, i) => {
    if (size === undefined) return undefined;
    if (offset + size > payload.byteLength)
      refuseTensor(
        `${what(i)}: binary part ends after ${payload.byteLength - offset} of ${size} bytes (truncated body?)`,
      );
    const part = payload.subarray(offset, offset + size);
    offset += size;
    return part;
  });
  if (offset !== payload.byteLength)
    refuseTensor(`binary part has ${payload.byteLength} bytes but the binary_data_size values add up to ${offset}`);
  return parts;
}
