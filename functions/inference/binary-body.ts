/**
 * Reading a request body: the binary extension's framing (federated/oip/binary-framing.ts, shared with the SDK)
 * and the JSON header, parsed with a bound on its nesting.
 */
import { refuseTensor } from './errors.ts';
import { clip } from './quote.ts';
import { splitBinaryBody as split } from '../../federated/oip/binary-framing.ts';

export { HEADER_LENGTH, joinBinaryBody } from '../../federated/oip/binary-framing.ts';

export function splitBinaryBody(body: Uint8Array, headerLength: string): { header: unknown; payload: Uint8Array } {
  const { header, payload } = split(body, headerLength);
  return { header: parseJson(header), payload };
}

/**
 * Deepest nesting of arrays and objects a request body may have. JSON.parse itself copes with any depth, but
 * 4 M nested arrays cost seconds and hundreds of MB, and every recursive walk over the result (a stringify,
 * a schema) would overflow the stack. Tensors nest as deep as their rank; deeper ones can be sent flat.
 */
export const MAX_JSON_DEPTH = 64;

/** Refuses text nested deeper than `max` before parsing it: one pass over the characters, strings skipped. */
function checkDepth(text: string, max: number): void {
  // Nesting needs as many opening brackets: text with at most `max` of them (counted by native indexOf, strings
  // included, so the bound only errs on the safe side) skips the character walk — a tensor body has a handful.
  let opening = 0;
  for (const bracket of ['[', '{']) for (let i = text.indexOf(bracket); i >= 0 && opening <= max; i = text.indexOf(bracket, i + 1)) opening++;
  if (opening <= max) return;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip a string literal (a backslash escapes the next character).
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) refuseTensor(`request JSON is nested deeper than ${max} levels`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

// One decoder for every request: decode() without { stream } keeps no state between calls.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** UTF-8 JSON, at most `maxDepth` arrays/objects deep; anything else is a 400 that quotes little of the input. */
export function parseJson(bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    refuseTensor('request JSON is not valid UTF-8');
  }
  checkDepth(text, maxDepth);
  try {
    return JSON.parse(text);
  } catch (e) {
    // V8 quotes a few characters of the input; clip anyway, the message is the engine's to change.
    refuseTensor(`request body is not valid JSON: ${clip(String((e as Error)?.message ?? e), 200)}`);
  }
}
