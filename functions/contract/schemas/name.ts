/** Names of models, versions, aliases, tasks and devices: one rule (NAME_PATTERN), said one way. */
import { z } from 'zod';
import { NAME_PATTERN } from '../../registry/model-record.ts';

export const NAME_RULE = "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit";

/** A name in a JSON body. */
export const nameSchema = z.string().regex(NAME_PATTERN, NAME_RULE);
