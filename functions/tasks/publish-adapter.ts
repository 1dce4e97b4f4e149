/**
 * The model an adapter task (TaskAdapter) publishes after a round: the base decoder's float weights (its int8 ones
 * dequantized) + (alpha / rank) · A · B for the task's accumulated adapters B, written into the base's bytes
 * (writeDecoderWeights: the adapted projections quantized again per channel where the base was int8; graph, I/O
 * names, tokenizer and generation config the base's, byte for byte) — so the edge's generate routes serve it as
 * they serve the base. Always merged from the pinned base, never from the previous round's int8 file: int8 rounding
 * does not compound over rounds. Reads the base blob; pure otherwise.
 */
import type { TaskSettings } from '../../federated/aggregation/task-protocol.ts';
import { readDecoderWeights, writeDecoderWeights } from '../../federated/model/decoder-weights.ts';
import { type LoraSettings, mergeLora } from '../../federated/model/lora.ts';
import { getBlob } from '../registry/blob-store.ts';

/** The base's bytes with the adapters `b` (the task's global weights) merged in. */
export async function adapterModel(env: Env, s: TaskSettings, b: Float32Array): Promise<Uint8Array> {
  const a = s.adapter!;
  return mergeAdapters(await getBlob(env.MODEL_BLOBS, a.sha256), a.lora, b);
}

/** `base` (a decoder Fedge exported) with W + (alpha / rank) · A · B written into every adapted weight. */
export function mergeAdapters(base: Uint8Array, lora: LoraSettings, b: Float32Array): Uint8Array {
  const { spec, weights } = readDecoderWeights(base);
  const merged = mergeLora(spec, new Map(weights.map((w) => [w.name, w.values])), lora, b);
  return writeDecoderWeights(base, merged);
}
