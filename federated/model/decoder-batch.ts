/**
 * A batch of token sequences as the decoder reads it: ids, attention mask and position ids, flat row-major
 * [batch, length]. Position ids count real tokens only (cumsum(mask) - 1, as Hugging Face and transformers.js
 * compute them), so a left-padded row embeds its first real token at position 0, exactly as it would unpadded.
 */
import type { DecoderSpec } from './decoder-spec.ts';
import { ModelSpecError } from './model-spec.ts';

export interface TokenBatch {
  batch: number;
  length: number;
  ids: Int32Array;
  /** 1 = a real token, 0 = padding (its key is masked for every query) */
  mask: Int32Array;
  positions: Int32Array;
}

/** One sequence (a flat array) or a batch of equal-length rows. */
export type TokenRows = Int32Array | readonly (readonly number[])[];

function rows(value: TokenRows, label: string): { batch: number; length: number; flat: Int32Array } {
  if (value instanceof Int32Array) return { batch: 1, length: value.length, flat: value };
  const length = value[0]?.length ?? 0;
  if (value.some((r) => r.length !== length))
    throw new ModelSpecError(`${label}: every row must have the same length (${length})`);
  return { batch: value.length, length, flat: Int32Array.from(value.flat()) };
}

/** Validates ids (and a mask) against the spec and derives the position ids. */
export function tokenBatch(spec: DecoderSpec, inputIds: TokenRows, attentionMask?: TokenRows): TokenBatch {
  const { batch, length, flat: ids } = rows(inputIds, 'input ids');
  if (batch === 0 || length === 0) throw new ModelSpecError('input ids: expected at least one token');
  if (length > spec.contextLength)
    throw new ModelSpecError(`input ids: ${length} tokens exceed the context length ${spec.contextLength}`);
  const bad = ids.findIndex((t) => !(t >= 0 && t < spec.vocabSize));
  if (bad >= 0) throw new ModelSpecError(`input ids: token ${ids[bad]} at ${bad} is not in [0, ${spec.vocabSize})`);
  let mask: Int32Array;
  if (attentionMask === undefined) mask = new Int32Array(ids.length).fill(1);
  else {
    const m = rows(attentionMask, 'attention mask');
    if (m.batch !== batch || m.length !== length)
      throw new ModelSpecError(`attention mask: expected [${batch}, ${length}], got [${m.batch}, ${m.length}]`);
    if (m.flat.some((v) => v !== 0 && v !== 1)) throw new ModelSpecError('attention mask: values must be 0 or 1');
    mask = m.flat;
  }
  const positions = new Int32Array(ids.length);
  for (let b = 0; b < batch; b++) {
    let seen = 0;
    for (let t = 0; t < length; t++) {
      const i = b * length + t;
      seen += mask[i]!;
      // A padding slot's position is never seen by a real token (its key is masked); 0 keeps it a valid index.
      positions[i] = Math.max(seen - 1, 0);
    }
  }
  return { batch, length, ids, mask, positions };
}
