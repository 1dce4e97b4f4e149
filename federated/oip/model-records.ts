/**
 * What the model registry answers, as the Worker stores it and the SDK reads it: a version's record (immutable,
 * identified by its sha256), its tensors' OIP metadata, a model's versions and aliases. One definition for both sides.
 */
import type { Datatype } from './datatypes.ts';

export interface TensorMeta {
  name: string;
  datatype: Datatype;
  /** -1 marks a dynamic dimension. */
  shape: number[];
}

export interface VersionRecord {
  model: string;
  version: string;
  sha256: string;
  bytes: number;
  inputs: TensorMeta[];
  outputs: TensorMeta[];
  createdAt: string;
}

export interface ModelSummary {
  name: string;
  versions: string[];
  aliases: Record<string, string>;
}
