/**
 * The OIP v2 inference request header (KServe "Inference Request JSON Object"), validated once at the edge.
 * Tensor data itself is checked against the model in tensor-codec.ts.
 */
import { z } from 'zod';
import { clip } from './quote.ts';

const parameters = z.record(z.string(), z.unknown());

export const inferInputSchema = z.object({
  name: z.string().min(1, 'input name must not be empty'),
  shape: z.array(z.number().int('dimensions must be integers').nonnegative('dimensions must not be negative')),
  datatype: z.string(),
  data: z.unknown().optional(),
  parameters: parameters
    .and(z.object({ binary_data_size: z.number().int().nonnegative().optional() }))
    .optional(),
});

export const inferRequestSchema = z.object({
  id: z.string().optional(),
  parameters: parameters.and(z.object({ binary_data_output: z.boolean().optional() })).optional(),
  inputs: z.array(inferInputSchema).min(1, 'inputs must name at least one tensor'),
  outputs: z
    .array(
      z.object({
        name: z.string().min(1),
        parameters: parameters.and(z.object({ binary_data: z.boolean().optional() })).optional(),
      }),
    )
    .optional(),
});

export type InferInput = z.infer<typeof inferInputSchema>;
export type InferRequest = z.infer<typeof inferRequestSchema>;

/**
 * First problem, as "inputs[0].shape[1]: dimensions must not be negative". Path keys can be the caller's
 * (a parameters record), so the path and the message are clipped.
 */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const path = issue.path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${clip(String(p))}` : clip(String(p))), '');
  return `${clip(path, 200) || 'request'}: ${clip(issue.message, 200)}`;
}
