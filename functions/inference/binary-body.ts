/**
 * Reading an inference body: the binary extension's framing (federated/oip/binary-framing.ts, shared with the SDK)
 * and its JSON header, parsed like every JSON body (middleware/json-body.ts).
 */
import { parseJson } from '../middleware/json-body.ts';
import { splitBinaryBody as split } from '../../federated/oip/binary-framing.ts';

export { HEADER_LENGTH, joinBinaryBody } from '../../federated/oip/binary-framing.ts';

export function splitBinaryBody(body: Uint8Array, headerLength: string): { header: unknown; payload: Uint8Array } {
  const { header, payload } = split(body, headerLength);
  return { header: parseJson(header), payload };
}
