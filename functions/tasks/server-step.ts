/**
 * What a finished round does to the task's model before it is published: the server optimizer's step on the
 * round's mean update (federated/aggregation/server-optimizer.ts) over the stored weights and optimizer state, and
 * the record fields that say how it went. Reads storage, writes nothing: the task's object publishes the weights,
 * then commits them with `commitStep` in one transaction.
 */
import { type ServerOptimizerState, l2Norm, serverStep } from '../../federated/aggregation/server-optimizer.ts';
import type { RoundRecord, TaskSettings } from '../../federated/aggregation/task-protocol.ts';
import { clientEpsilon } from '../../federated/aggregation/task-protocol.ts';
import { u8 } from '../../federated/bytes.ts';
import { SecAggAbort } from '../../federated/secagg/messages.ts';
import type { TaskStore } from './task-store.ts';

export interface SteppedModel {
  weights: Float32Array;
  optimizer: ServerOptimizerState;
  updateNorm: number;
}

/** The new global weights: throws SecAggAbort when the step gives non-finite weights (nothing is published). */
export function stepModel(store: TaskStore, s: TaskSettings, mean: Float32Array): SteppedModel {
  const weights = store.floats('weights')!.slice();
  const opt: ServerOptimizerState = { m: store.floats('opt-m')?.slice(), v: store.floats('opt-v')?.slice() };
  const optimizer = serverStep(s.serverOptimizer, weights, mean, opt);
  if (!weights.every(Number.isFinite))
    throw new SecAggAbort('the server optimizer step gave non-finite weights; nothing was published');
  return { weights, optimizer, updateNorm: l2Norm(mean) };
}

/** Stores the stepped model (inside the caller's transaction). */
export function commitStep(store: TaskStore, m: SteppedModel): void {
  store.writeBlob('weights', u8(m.weights));
  if (m.optimizer.m) store.writeBlob('opt-m', u8(m.optimizer.m));
  if (m.optimizer.v) store.writeBlob('opt-v', u8(m.optimizer.v));
}

/** The record of a round that published `version`. */
export function publishedRecord(
  store: TaskStore,
  s: TaskSettings,
  rec: RoundRecord,
  o: { outcome: Partial<RoundRecord>; survivors: number; updateNorm: number; version: string },
): RoundRecord {
  let epsilon: number | undefined;
  try {
    epsilon = clientEpsilon(s, store.publishedRounds() + 1);
  } catch (e) {
    console.error(`task ${s.task} round ${rec.round}: client-level ε could not be computed:`, e);
  }
  return {
    ...rec,
    ...o.outcome,
    status: 'published',
    dropouts: (rec.cohort?.drawn ?? rec.advertised) - o.survivors,
    updateNorm: o.updateNorm,
    version: o.version,
    ...(s.gate && { gate: 'pending' as const }),
    epsilon: store.maxEpsilon(),
    clientEpsilon: epsilon,
    endedAt: new Date().toISOString(),
  };
}
