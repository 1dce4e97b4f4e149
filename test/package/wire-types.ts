/**
 * Compile-time only (`npm run typecheck`): the registry records the SDK declares (client-sdk/edge/model-records.ts,
 * shipped) are exactly the Worker's (functions/registry/model-record.ts, not shipped). A difference either way is a
 * type error here.
 */
import type * as Sdk from '../../client-sdk/edge/model-records.ts';
import type * as Worker from '../../functions/registry/model-record.ts';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

export const sameRecords: [Same<Sdk.TensorMeta, Worker.TensorMeta>, Same<Sdk.VersionRecord, Worker.VersionRecord>, Same<Sdk.ModelSummary, Worker.ModelSummary>] = [true, true, true];
