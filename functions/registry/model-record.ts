/** What the catalog stores about a model version (the records are shared with the SDK) and the names it accepts. */
export type { ModelSummary, TensorMeta, VersionRecord } from '../../federated/oip/model-records.ts';

/** Names of models, versions and aliases: URL-safe, short, no leading punctuation. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const LATEST = 'latest';

/** The alias that pins a federated task's base version: every round writes its head into those bytes. */
export const taskBaseAlias = (task: string) => `task.${task}`;
/** The task an alias pins a base for, if it is such a pin. */
export const pinningTask = (alias: string): string | undefined => (alias.startsWith('task.') ? alias.slice('task.'.length) : undefined);
