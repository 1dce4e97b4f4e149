/**
 * The model a task on a served language model (TaskAdapter) publishes after a round, written into the base decoder's
 * bytes (writeDecoderWeights: the changed weights quantized again per channel where the base was int8; graph, I/O
 * names, tokenizer and generation config the base's, byte for byte) — so the edge's generate routes serve it as they
 * serve the base:
 *  - `lora:<rank>`: the base's float weights (its int8 ones dequantized) + (alpha / rank) · A · B for the task's
 *    accumulated adapters B (its global weights);
 *  - `last:<n>`: the task's global weights are the last blocks' and ln_f's weights themselves.
 * Always from the pinned base, never from the previous round's int8 file: int8 rounding does not compound over
 * rounds. Reads the base blob; pure otherwise.
 */
import type { TaskAdapter, TaskSettings } from '../../federated/aggregation/task-protocol.ts';
import { lastBlockWeights } from '../../federated/aggregation/task-adapter.ts';
import { readDecoderWeights, writeDecoderWeights } from '../../federated/model/decoder-weights.ts';
import { mergeLora } from '../../federated/model/lora.ts';
import { getBlob } from '../registry/blob-store.ts';

/** The base's bytes with the task's global weights `w` (B, or the last blocks' weights) in. */
export async function adapterModel(env: Env, s: TaskSettings, w: Float32Array): Promise<Uint8Array> {
  const a = s.adapter!;
  return applyAdapter(await getBlob(env.MODEL_BLOBS, a.sha256), a, w);
}

/** `base` (a decoder Fedge exported) with the task's global weights `w` written in as `a` says. */
export function applyAdapter(
  base: Uint8Array,
  a: Pick<TaskAdapter, 'trainable' | 'lora'>,
  w: Float32Array,
): Uint8Array {
  const { spec, weights } = readDecoderWeights(base);
  if (a.lora)
    return writeDecoderWeights(base, mergeLora(spec, new Map(weights.map((x) => [x.name, x.values])), a.lora, w));
  return writeDecoderWeights(base, unflattenLast(spec, a.trainable, w));
}

/** The last blocks' weights by name, from their flat values (spec order). */
function unflattenLast(spec: Parameters<typeof lastBlockWeights>[0], trainable: string, w: Float32Array) {
  const out = new Map<string, Float32Array>();
  let offset = 0;
  for (const { name, shape } of lastBlockWeights(spec, Number(trainable.slice('last:'.length)))) {
    const n = shape.reduce((x, y) => x * y, 1);
    out.set(name, w.subarray(offset, offset + n));
    offset += n;
  }
  if (offset !== w.length)
    throw new Error(`${trainable}: the task's weights have ${w.length} values, expected ${offset}`);
  return out;
}
