/** What the catalog stores about a model version (the records are shared with the SDK) and the names it accepts. */
export type { ModelSummary, TensorMeta, VersionRecord } from '../../federated/oip/model-records.ts';

/** Names of models, versions and aliases: URL-safe, short, no leading punctuation. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const LATEST = 'latest';
