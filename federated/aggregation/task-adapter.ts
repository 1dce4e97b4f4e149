/**
 * What a task on a served language model trains (TaskAdapter, task-protocol.ts), from what the task was created with:
 *  - `lora:<rank>` — FFA-LoRA adapters (federated/model/lora.ts) with alpha and A's seed, derived from the task's name
 *    and its base's sha256 alone (SHA-256 of both, framed, first 4 bytes), so it is public, the same on a retried
 *    create, and anyone can recompute it; a task does not choose its A. The update is every target's B.
 *  - `last:<n>` — the last n blocks and ln_f themselves (as the device's LanguageModelTrainer trains them): the update
 *    is their weights' change, flat in the spec's order.
 * Pure.
 */
import { framed } from '../bytes.ts';
import { type DecoderSpec, decoderParameterShapes } from '../model/decoder-spec.ts';
import { loraTargets } from '../model/lora.ts';
import { ModelSpecError } from '../model/model-spec.ts';
import type { TaskAdapter } from './task-protocol.ts';

/** `trainable` values for a language model: `lora:<rank>` or `last:<blocks>`. */
export const DECODER_TRAINABLE = /^(lora|last):([1-9][0-9]{0,3})$/;

/** alpha when the task does not say: α/r = 1, as the device's LanguageModelTrainer defaults. */
export const defaultLoraAlpha = (rank: number) => rank;

/** A's public seed for `task` on the base with SHA-256 `baseSha256` (hex). */
export async function loraSeed(task: string, baseSha256: string): Promise<number> {
  const digest = new Uint8Array(
    await crypto.subtle.digest('SHA-256', framed('fedge.lora-seed/v1', task, baseSha256) as Uint8Array<ArrayBuffer>),
  );
  return new DataView(digest.buffer).getUint32(0);
}

/** The weights `last:<blocks>` trains, in the spec's order: every weight of the last `blocks` blocks, then ln_f. */
export function lastBlockWeights(spec: DecoderSpec, blocks: number): { name: string; shape: number[] }[] {
  if (!Number.isInteger(blocks) || blocks < 1 || blocks > spec.layers)
    throw new ModelSpecError(`last:<n> must name 1 to ${spec.layers} blocks, got ${blocks}`);
  return decoderParameterShapes(spec).filter(({ name }) => {
    if (name.startsWith('ln_f.')) return true;
    const block = /^h\.(\d+)\./.exec(name);
    return !!block && Number(block[1]) >= spec.layers - blocks;
  });
}

/** The names of the weights a task's update changes: the LoRA targets, or the last blocks' weights. */
export function adaptedWeights(spec: DecoderSpec, a: Pick<TaskAdapter, 'trainable' | 'lora'>): string[] {
  const [, kind, n] = DECODER_TRAINABLE.exec(a.trainable) ?? [];
  if (kind === 'lora') return loraTargets(spec, Number(n)).targets.map((t) => t.name);
  return lastBlockWeights(spec, Number(n)).map((w) => w.name);
}

/**
 * What `trainable` trains on `spec`; throws ModelSpecError for a rank or block count the decoder cannot take and
 * RangeError for a `trainable` it does not know, or alpha with `last:<n>`.
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
  const m = DECODER_TRAINABLE.exec(o.trainable);
  if (!m)
    throw new RangeError(`trainable must be "lora:<rank>" or "last:<blocks>", got ${JSON.stringify(o.trainable)}`);
  const pin = { model: o.model, version: o.version, sha256: o.sha256, trainable: o.trainable };
  const n = Number(m[2]);
  if (m[1] === 'last') {
    if (o.alpha !== undefined) throw new RangeError('lora: { alpha } goes with trainable "lora:<rank>"');
    const weights = lastBlockWeights(o.spec, n);
    return {
      ...pin,
      targets: weights.length,
      length: weights.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0),
    };
  }
  const { targets, length } = loraTargets(o.spec, n);
  const alpha = o.alpha ?? defaultLoraAlpha(n);
  if (!(Number.isFinite(alpha) && alpha > 0)) throw new RangeError(`lora.alpha must be positive, got ${alpha}`);
  return { ...pin, lora: { rank: n, alpha, seed: await loraSeed(o.task, o.sha256) }, targets: targets.length, length };
}
