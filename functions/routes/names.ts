/** Names in paths and queries, checked by the one rule (NAME_PATTERN) and said one way (contract/schemas/name.ts). */
import { NAME_RULE } from '../contract/schemas/name.ts';
import { quote } from '../inference/quote.ts';
import { fail } from '../middleware/errors.ts';
import { NAME_PATTERN } from '../registry/model-record.ts';

export const isName = (value: string): boolean => NAME_PATTERN.test(value);

/** `value` when it is a valid name; else a 400 naming what it is ("model name", "device"). */
export function checkName(value: string, what: string): string {
  if (!isName(value)) fail(400, `${what} ${quote(value)} is not valid: ${NAME_RULE}`);
  return value;
}
