/**
 * Triton's statistics extension (protocol/extension_statistics.md) and the model_repository extension's index: what
 * they answer, and the index's optional body.
 */
import { z } from 'zod';
import type { ModelStat } from '../../metrics/model-stats.ts';
import type { Covers } from './covers.ts';
import { named } from './named.ts';

const duration = z.looseObject({
  count: z.number().int().nonnegative(),
  ns: z.number().int().nonnegative().describe('cumulative nanoseconds'),
});
export const modelStat = z.looseObject({
  name: z.string(),
  version: z.string(),
  last_inference: z
    .number()
    .int()
    .nonnegative()
    .describe('ms since the epoch of the last inference in this isolate; 0 for none'),
  inference_count: z
    .number()
    .int()
    .nonnegative()
    .describe(
      'successful inferences, each batch item counted (the leading dimension when every input has a dynamic one, else 1)',
    ),
  execution_count: z
    .number()
    .int()
    .nonnegative()
    .describe(
      'successful ONNX Runtime runs: fewer than requests when dynamic batching joined concurrent ones (inference_count / execution_count = mean batch size)',
    ),
  inference_stats: z.looseObject({
    success: duration.describe('successful requests and their whole run (queue, load, compute)'),
    fail: duration.describe('runs ONNX Runtime refused (or whose model could not load)'),
    queue: duration.describe('waiting for the session to load and for earlier runs on it'),
    compute_input: duration.describe('building ONNX Runtime tensors'),
    compute_infer: duration.describe('session.run'),
    compute_output: duration.describe('reading the outputs back'),
  }),
  batch_stats: z.array(
    z.looseObject({
      batch_size: z.number().int().nonnegative(),
      compute_input: duration,
      compute_infer: duration,
      compute_output: duration,
    }),
  ),
});
export const modelStatsResponse = named(
  'ModelStatsResponse',
  z.looseObject({
    model_stats: z.array(modelStat).describe('one entry per version; counters of this isolate only'),
  }),
);
export const repositoryEntry = z.looseObject({
  name: z.string(),
  version: z.string(),
  state: z.enum(['READY', 'UNAVAILABLE']).describe('READY: this isolate holds its ONNX Runtime session'),
  reason: z.string().optional().describe('why it is not READY'),
});
export const repositoryIndex = named('RepositoryIndex', z.array(repositoryEntry));

export type RepositoryEntry = z.output<typeof repositoryEntry>;

export const repositoryIndexBody = named(
  'RepositoryIndexRequest',
  z.object({ ready: z.boolean().optional().describe('true: only the versions that are READY') }),
);

export const COVERED_STATS: [Covers<ModelStat, typeof modelStat>] = [true];
