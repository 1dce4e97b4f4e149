/**
 * A device's training in a round of a task on a served language model (issue 33): its own text, tokenized with the
 * model's own tokenizer and cut into windows, trains what the task's adapter names — LoRA's B (FFA-LoRA: A from the
 * task's public seed) or the last blocks — from the task's current model (the base with the task's weights merged),
 * under example-level DP-SGD with each window as the example when the task asks. What leaves the device is only the
 * change of the trained values, masked by SecAgg+ (participant.ts). No text, no tokens.
 */
import { readDecoderWeights } from '../../federated/model/decoder-weights.ts';
import type { DecoderSpec } from '../../federated/model/decoder-spec.ts';
import type { NamedWeight } from '../../federated/model/model-spec.ts';
import { mergeLora } from '../../federated/model/lora.ts';
import { readMetadataProps } from '../../federated/model/onnx-metadata.ts';
import { parseGenerationConfig } from '../../federated/generation/generation-config.ts';
import { type TextTokenizer, loadTokenizer } from '../../federated/text/tokenizer.ts';
import type { LocalTraining, TaskAdapter } from '../../federated/aggregation/task-protocol.ts';
import { LanguageModelTrainer, type LmFitResult, type TrainableSpec } from '../training/lm-trainer.ts';
import type { PrivacyOptions } from '../training/trainer.ts';
import type { BackendName } from '../training/backend.ts';

/** What a device trains a language model on: its own texts (messages, notes), in order. */
export interface TextData {
  texts: readonly string[];
}

export const isTextData = (data: unknown): data is TextData =>
  typeof data === 'object' && data !== null && Array.isArray((data as TextData).texts);

/** Tokens a training window predicts (each window is one example under DP-SGD): short enough for a phone's memory. */
export const WINDOW_TOKENS = 64;

/** A language model as a device trains it: the base's spec, float weights and tokenizer, read once per base file. */
export interface LanguageBase {
  sha256: string;
  spec: DecoderSpec;
  weights: NamedWeight[];
  tokenizer: TextTokenizer;
  eos: number | undefined;
}

export function readLanguageBase(bytes: Uint8Array, sha256: string): LanguageBase {
  const { spec, weights } = readDecoderWeights(bytes);
  const props = readMetadataProps(bytes);
  const tokenizer = loadTokenizer(props['tokenizer.json'] ?? '');
  const config = parseGenerationConfig(props['generation_config.json'], spec.vocabSize);
  return { sha256, spec, weights, tokenizer, eos: config.eosTokenIds[0] };
}

/**
 * The texts as training windows: each text's tokens then end-of-sequence, in one stream, cut into windows of
 * WINDOW_TOKENS + 1 (the last one shorter, if it has at least two tokens).
 */
export function textWindows(base: LanguageBase, data: TextData): Int32Array[] {
  const stream: number[] = [];
  for (const text of data.texts) {
    stream.push(...base.tokenizer.encode(text));
    if (base.eos !== undefined) stream.push(base.eos);
  }
  const size = Math.min(WINDOW_TOKENS, base.spec.contextLength) + 1;
  const windows: Int32Array[] = [];
  for (let at = 0; at + 1 < stream.length; at += size - 1) windows.push(Int32Array.from(stream.slice(at, at + size)));
  return windows.filter((w) => w.length >= 2);
}

/** The task's current model as the trainer starts from it: the base with the task's weights (B, or blocks) in. */
function startingWeights(base: LanguageBase, adapter: TaskAdapter, global: Float32Array): NamedWeight[] {
  if (adapter.lora) {
    const merged = mergeLora(base.spec, new Map(base.weights.map((w) => [w.name, w.values])), adapter.lora, global);
    return base.weights.map((w) => ({ ...w, values: merged.get(w.name) ?? w.values }));
  }
  // last:<n>: the task's weights are those tensors, flat in spec order.
  const blocks = Number(adapter.trainable.split(':')[1]);
  const trained = (name: string) =>
    name.startsWith('ln_f.') || Number(/^h\.(\d+)\./.exec(name)?.[1] ?? -1) >= base.spec.layers - blocks;
  let at = 0;
  return base.weights.map((w) => {
    if (!trained(w.name)) return w;
    const values = global.slice(at, at + w.values.length);
    at += w.values.length;
    return { ...w, values };
  });
}

/** Trains the device's part of the round: the change of the trained values (the task's update layout) and the fit. */
export async function trainLanguageModel(o: {
  base: LanguageBase;
  adapter: TaskAdapter;
  global: Float32Array;
  windows: Int32Array[];
  training: LocalTraining;
  privacy: PrivacyOptions | undefined;
  backend: BackendName | 'auto';
  signal?: AbortSignal | undefined;
}): Promise<{ delta: Float32Array; fit: LmFitResult }> {
  if (o.global.length !== o.adapter.length)
    throw new RangeError(`the task's weights have ${o.global.length} values, its adapter ${o.adapter.length}`);
  const trainer = await LanguageModelTrainer.create({
    spec: o.base.spec,
    weights: startingWeights(o.base, o.adapter, o.global),
    trainable: o.adapter.trainable as TrainableSpec,
    ...(o.adapter.lora && { lora: { alpha: o.adapter.lora.alpha, seed: o.adapter.lora.seed } }),
    backend: o.backend,
  });
  try {
    const fit = await trainer.fit(o.windows, { ...o.training, privacy: o.privacy, signal: o.signal });
    // lora: B started at 0 on the merged model, so B itself is the change; last:<n>: the blocks' change.
    return { delta: trainer.update(), fit };
  } finally {
    trainer.dispose();
  }
}
