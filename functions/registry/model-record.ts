/** What the catalog stores about a model version: immutable once written, identified by its sha256. */
import type { Datatype } from '../../federated/oip/datatypes.ts';

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

/** Names of models, versions and aliases: URL-safe, short, no leading punctuation. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const LATEST = 'latest';
