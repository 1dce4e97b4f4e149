/**
 * KServe/Triton binary tensor data extension framing: a JSON header of `Inference-Header-Content-Length`
 * bytes, then the raw tensor bytes of every binary input (or output) in order.
 */
import { fail } from '../middleware/errors.ts';

export const HEADER_LENGTH = 'Inference-Header-Content-Length';

export function splitBinaryBody(body: Uint8Array, headerLength: string): { header: unknown; payload: Uint8Array } {
  if (!/^\d+$/.test(headerLength.trim())) fail(400, `${HEADER_LENGTH} must be a byte count, got ${JSON.stringify(headerLength)}`);
  const n = Number(headerLength);
  if (n === 0 || n > body.byteLength) fail(400, `${HEADER_LENGTH} is ${n} but the body has ${body.byteLength} bytes`);
  return { header: parseJson(body.subarray(0, n)), payload: body.subarray(n) };
}

export function parseJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    fail(400, 'request JSON is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    fail(400, `request body is not valid JSON: ${(e as Error).message}`);
  }
}

/** JSON header + concatenated binary parts, and the header length to send with them. */
export function joinBinaryBody(header: unknown, parts: Uint8Array[]): { body: Uint8Array; headerLength: number } {
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
