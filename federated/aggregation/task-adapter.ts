/**
 * The adapters of a task on a served language model (TaskAdapter, task-protocol.ts), from what the task was created
 * with: `trainable: "lora:<rank>"`, alpha, and A's seed — derived from the task's name and its base's sha256 alone
 * (SHA-256 of both, framed, first 4 bytes), so it is public, the same on a retried create, and anyone can recompute
 * it; a task does not choose its A. Pure.
 */
import { framed } from '../bytes.ts';
import type { DecoderSpec } from '../model/decoder-spec.ts';
import { loraTargets } from '../model/lora.ts';
import type { TaskAdapter } from './task-protocol.ts';

/** `trainable` values that train adapters: `lora:<rank>`. */
export const LORA_TRAINABLE = /^lora:([1-9][0-9]{0,3})$/;

/** alpha when the task does not say: ΔW = 2 · A · B (alpha = 2 · rank, as LoRA is commonly run). */
export const defaultLoraAlpha = (rank: number) => 2 * rank;

/** A's public seed for `task` on the base with SHA-256 `baseSha256` (hex). */
export async function loraSeed(task: string, baseSha256: string): Promise<number> {
  const digest = new Uint8Array(
    await crypto.subtle.digest('SHA-256', framed('fedge.lora-seed/v1', task, baseSha256) as Uint8Array<ArrayBuffer>),
  );
  return new DataView(digest.buffer).getUint32(0);
}

/**
 * The adapters `trainable` (`lora:<rank>`) puts on `spec`; throws ModelSpecError for a rank the decoder cannot take
 * (loraTargets: 1 to embedDim) and RangeError for a `trainable` that is not `lora:<rank>`.
 */
export async function taskAdapter(o: {
  task: string;
  spec: DecoderSpec;
  model: string;
  version: string;
  sha256: string;
  trainable: string;
  alpha?: number | undefined;
}): Promise<TaskAdapter> {
  const m = LORA_TRAINABLE.exec(o.trainable);
  if (!m) throw new RangeError(`trainable must be "lora:<rank>", got ${JSON.stringify(o.trainable)}`);
  const rank = Number(m[1]);
  const { targets, length } = loraTargets(o.spec, rank);
  const alpha = o.alpha ?? defaultLoraAlpha(rank);
  if (!(Number.isFinite(alpha) && alpha > 0)) throw new RangeError(`lora.alpha must be positive, got ${alpha}`);
  return {
    model: o.model,
    version: o.version,
    sha256: o.sha256,
    trainable: o.trainable,
    lora: { rank, alpha, seed: await loraSeed(o.task, o.sha256) },
    targets: targets.length,
    length,
  };
}
