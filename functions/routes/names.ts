/** Names of models, versions, aliases, tasks and devices: one rule (NAME_PATTERN), checked and said one way. */
import { z } from 'zod';
import { quote } from '../inference/quote.ts';
import { fail } from '../middleware/errors.ts';
import { NAME_PATTERN } from '../registry/model-record.ts';

export const NAME_RULE = "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit";

/** A name in a JSON body. */
export const nameSchema = z.string().regex(NAME_PATTERN, NAME_RULE);

export const isName = (value: string): boolean => NAME_PATTERN.test(value);

/** `value` when it is a valid name; else a 400 naming what it is ("model name", "device"). */
export function checkName(value: string, what: string): string {
  if (!isName(value)) fail(400, `${what} ${quote(value)} is not valid: ${NAME_RULE}`);
  return value;
}
