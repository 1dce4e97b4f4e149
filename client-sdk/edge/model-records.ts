/**
 * The registry's answers as the SDK types them: a model version's record, its tensors, a model's summary. The
 * Worker's own definitions live in functions/registry/model-record.ts, which the package does not ship;
 * test/package/wire-types.ts (checked by `npm run typecheck`) fails if the two ever differ.
 */
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
