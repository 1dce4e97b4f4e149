/**
 * Is a graph a decoder Fedge can generate with? The I/O layout Hugging Face Optimum exports for
 * text-generation-with-past (what transformers.js runs): `input_ids` [batch, sequence] → `logits`
 * [batch, sequence, vocab], with the key/value cache as `past_key_values.{i}.key|value` inputs and
 * `present.{i}.key|value` outputs ([batch, heads, past, head_dim]); `attention_mask`, `position_ids` and the merged
 * decoder's `use_cache_branch` when the graph has them. Read from the session's own input and output metadata.
 */
import { LanguageModelError } from './errors.ts';

/** A tensor as the model's metadata states it: OIP datatype and shape (-1 where open). */
export interface TensorSignature {
  name: string;
  datatype: string;
  shape: number[];
}

export interface DecoderLayout {
  layers: number;
  heads: number;
  headDim: number;
  /** The logits' last axis, when the graph fixes it. */
  vocabSize: number | undefined;
  attentionMask: boolean;
  positionIds: boolean;
  /** Optimum's merged decoder (decoder_model_merged.onnx): a BOOL [1] saying whether the past is used. */
  useCacheBranch: boolean;
}

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;
const PRESENT = /^present\.(\d+)\.(key|value)$/;

const fixed = (d: number | undefined): d is number => typeof d === 'number' && d > 0;

/** The layout of a decoder; a graph that is not one is a LanguageModelError saying what is missing. */
export function decoderLayout(inputs: TensorSignature[], outputs: TensorSignature[]): DecoderLayout {
  const input = new Map(inputs.map((t) => [t.name, t]));
  const output = new Map(outputs.map((t) => [t.name, t]));
  const ids = input.get('input_ids');
  if (!ids || ids.datatype !== 'INT64')
    throw new LanguageModelError('not a decoder: it has no INT64 input "input_ids"');
  const logits = output.get('logits');
  if (!logits || logits.datatype !== 'FP32')
    throw new LanguageModelError('not a decoder: it has no FP32 output "logits"');
  const past = inputs.filter((t) => PAST.test(t.name));
  if (!past.length)
    throw new LanguageModelError(
      'not a decoder with a key/value cache: it has no "past_key_values.{i}.key" inputs (export it with past, e.g. Optimum\'s text-generation-with-past)',
    );
  const layers = past.length / 2;
  const first = input.get('past_key_values.0.key');
  const [, heads, , headDim] = first?.shape ?? [];
  if (!first || !fixed(heads) || !fixed(headDim))
    throw new LanguageModelError(
      'past_key_values.0.key must be [batch, heads, past, head_dim] with fixed heads and head_dim',
    );
  for (let i = 0; i < layers; i++)
    for (const part of ['key', 'value']) {
      const p = input.get(`past_key_values.${i}.${part}`);
      if (!p || p.datatype !== 'FP32' || p.shape[1] !== heads || p.shape[3] !== headDim)
        throw new LanguageModelError(
          `past_key_values.${i}.${part} is missing, or is not FP32 [batch, ${heads}, past, ${headDim}] like past_key_values.0.key`,
        );
      if (!output.has(`present.${i}.${part}`))
        throw new LanguageModelError(`it has past_key_values.${i}.${part} but no output present.${i}.${part}`);
    }
  if (outputs.filter((t) => PRESENT.test(t.name)).length !== past.length)
    throw new LanguageModelError('the present.* outputs do not match the past_key_values.* inputs');
  const known = new Set(['input_ids', 'attention_mask', 'position_ids', 'use_cache_branch']);
  const other = inputs.find((t) => !known.has(t.name) && !PAST.test(t.name));
  if (other) throw new LanguageModelError(`not a decoder Fedge can feed: unknown input "${other.name}"`);
  const vocab = logits.shape.at(-1);
  return {
    layers,
    heads,
    headDim,
    vocabSize: fixed(vocab) ? vocab : undefined,
    attentionMask: input.has('attention_mask'),
    positionIds: input.has('position_ids'),
    useCacheBranch: input.has('use_cache_branch'),
  };
}
