/**
 * What the model registry answers, as the Worker stores it and the SDK reads it: a version's record (immutable,
 * identified by its sha256), its tensors' OIP metadata, a model's versions and aliases. One definition for both sides.
 */
import type { Datatype } from './datatypes.ts';
import type { HashedBagOfWords } from '../model/text-features.ts';

/** How an input's floats are made from raw text; the model then also takes BYTES (one string per example). */
export type Featurizer = HashedBagOfWords;

export interface TensorMeta {
  name: string;
  datatype: Datatype;
  /** -1 marks a dynamic dimension. */
  shape: number[];
  /**
   * Declared by the model (its ONNX metadata, `fedge.featurizers`): the input also takes text as a BYTES tensor of
   * `shape` without its last axis, which the edge (and LocalModel) turn into this input with the featurizer.
   */
  featurizer?: Featurizer;
  /**
   * Declared by the model (its ONNX metadata, `fedge.labels`): what each index of the output's last axis means, e.g.
   * `["ham", "spam"]` — so a caller knows which probability is which without the model's card.
   */
  labels?: string[];
}

/** How an uploaded version ran once before it was stored: on inputs built from its metadata, or the uploader's warm-up. */
export interface ProbeVerdict {
  ok: boolean;
  inputs: 'generated' | 'warmup';
  shapes: string;
  /** ORT's reason, when the run on generated inputs failed. */
  error?: string;
}

/** A version that can generate text (a decoder carrying its tokenizer): what a caller needs to know before asking. */
export interface TextGeneration {
  /** Token ids the tokenizer knows. */
  vocabSize: number;
  /** Positions the model was trained for (prompt + new tokens), when its file says. */
  contextLength?: number;
  layers: number;
}

export interface VersionRecord {
  model: string;
  version: string;
  sha256: string;
  bytes: number;
  inputs: TensorMeta[];
  outputs: TensorMeta[];
  createdAt: string;
  /** Only for versions uploaded since uploads report it (not bundled or task-published ones). */
  probe?: ProbeVerdict;
  /** Present when the version can generate text (the generate routes, /openai/v1). */
  textGeneration?: TextGeneration;
}

export interface ModelSummary {
  name: string;
  versions: string[];
  aliases: Record<string, string>;
}
