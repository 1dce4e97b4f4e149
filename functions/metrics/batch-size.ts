/**
 * The batch size of a request, as Triton counts it for `inference_count`: a model whose every input has a leading
 * dynamic dimension (-1) is batched along it, so a request's batch is that dimension of what was sent; any other
 * model takes one inference per request (Triton's max_batch_size = 0).
 */
import type { TensorMeta } from '../registry/model-record.ts';

export function batchSize(declared: readonly TensorMeta[], sent: readonly { shape: readonly number[] }[]): number {
  const batched = declared.length > 0 && declared.every((t) => t.shape.length > 0 && t.shape[0] === -1);
  return batched && sent.length > 0 ? (sent[0]!.shape[0] ?? 1) : 1;
}
