/** What the catalog stores about a model version (the records are shared with the SDK) and the names it accepts. */
/**
 * VersionRecord's `probe`: how an uploaded version ran once at upload (inference/probe.ts). `inputs`: `generated` from
 * its metadata (open dimensions 1, zeros; a failure there is stored as `ok: false`, not refused) or the uploader's
 * `warmup` (a failure there is refused, so a stored warm-up verdict is always ok). `shapes`: what it ran on, in the
 * warm-up syntax.
 */
export type { ModelSummary, ProbeVerdict, TensorMeta, VersionRecord } from '../../federated/oip/model-records.ts';

/** Names of models, versions and aliases: URL-safe, short, no leading punctuation. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const LATEST = 'latest';

/** The alias that pins a federated task's base version: every round writes its head into those bytes. */
export const taskBaseAlias = (task: string) => `task.${task}`;
/** The task an alias pins a base for, if it is such a pin. */
export const pinningTask = (alias: string): string | undefined =>
  alias.startsWith('task.') ? alias.slice('task.'.length) : undefined;
