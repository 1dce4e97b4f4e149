/**
 * The OIP v2 inference request header (KServe "Inference Request JSON Object"), validated once at the edge.
 * Tensor data itself is checked against the model in tensor-codec.ts.
 */
import { z } from 'zod';

const parameters = z.record(z.string(), z.unknown());

export const inferInputSchema = z.object({
  name: z.string().min(1, 'input name must not be empty'),
  shape: z.array(z.number().int('dimensions must be integers').nonnegative('dimensions must not be negative')),
  datatype: z.string(),
  data: z.unknown().optional(),
  parameters: parameters.and(z.object({ binary_data_size: z.number().int().nonnegative().optional() })).optional(),
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
