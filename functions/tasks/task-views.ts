/**
 * What a task shows from its storage: the round devices read (GET …/round), the status an operator reads
 * (GET /v1/tasks/{task}) and its line in the task list. Reads only; the task's object (federated-task.ts) answers with them.
 */
import {
  type RoundInfo,
  type RoundRecord,
  type TaskLifecycle,
  type TaskSettings,
  type TaskStatus,
  type TaskSummary,
  ddgaussFor,
  fixedPointOf,
  isDecoderTask,
  updateLength,
} from '../../federated/aggregation/task-protocol.ts';
import { adaptedWeights } from '../../federated/aggregation/task-adapter.ts';
import { roundMinimum } from '../../federated/aggregation/round-controller.ts';
import type { RoundPointer, TaskStore } from './task-store.ts';
import { cohortCommitment } from '../../federated/aggregation/cohort.ts';
import { fromBase64, toBase64 } from '../../federated/bytes.ts';

/** Why and since when a task is paused, when it is. */
export type Paused = { reason: string; since: string };

export const pausedOf = (store: TaskStore): Paused | undefined => store.meta<Paused>('paused');

export const lifecycleOf = (store: TaskStore, p: RoundPointer): TaskLifecycle =>
  p.stage === 'finished' ? 'finished' : pausedOf(store) ? 'paused' : 'running';

/** What a round shows of its cohort draw: the rate, the seed's commitment, and the seed once check-in closed. */
export async function cohortInfo(s: TaskSettings, p: RoundPointer): Promise<RoundInfo['cohort']> {
  if (!s.cohort || !p.cohortSeed) return undefined;
  return {
    sampleRate: s.cohort.sampleRate,
    commitment: toBase64(await cohortCommitment(fromBase64(p.cohortSeed))),
    ...(p.stage !== 'advertise-keys' && { seed: p.cohortSeed }),
  };
}

export function roundInfo(
  store: TaskStore,
  s: TaskSettings,
  p: RoundPointer,
  checkedIn: number,
  cohort: RoundInfo['cohort'],
): RoundInfo {
  return {
    task: s.task,
    round: p.round,
    roundId: p.roundId,
    stage: p.stage,
    open: p.stage === 'advertise-keys' && checkedIn < s.devicesPerRound && !pausedOf(store),
    graphSeed: p.graphSeed,
    neighbours: s.secagg.neighbours,
    threshold: s.secagg.threshold,
    minDevices: s.minDevices,
    length: updateLength(s),
    fixedPoint: fixedPointOf(s),
    distributedDp: ddgaussFor(s),
    weightsVersion: p.weightsVersion,
    training: s.training,
    privacy: s.privacy,
    spec: s.spec,
    ...(s.base && { base: s.base }),
    ...(s.adapter && { adapter: s.adapter }),
    ...(cohort && { cohort }),
    deadline: new Date(p.deadline).toISOString(),
  };
}

/** A language-model task's base (the weights its update changes, as the layers that train) and adapters. */
function adapterStatus(s: TaskSettings): Pick<TaskStatus, 'base' | 'adapter'> {
  const a = s.adapter!;
  const layers = isDecoderTask(s.spec) ? adaptedWeights(s.spec, a) : [];
  return {
    base: { model: a.model, version: a.version, trainable: a.trainable, layers },
    adapter: { trainable: a.trainable, ...(a.lora && { lora: a.lora }), targets: a.targets, length: a.length },
  };
}

/** A round's record as the public sees it: no field that names a device (the shares each device revealed badly, the reason's detail). */
const publicRecord = ({ badShares: _b, detail: _d, ...rest }: RoundRecord): RoundRecord => rest;

/**
 * `progress`: a sharded round's shards as the coordinator knows them (shard-coordinator.ts), merged into its record.
 * `admin`: the operator's view, which names devices (bad shares, why a round was abandoned in detail); the public
 * view names none.
 */
export function taskStatus(
  store: TaskStore,
  s: TaskSettings,
  p: RoundPointer,
  progress: Partial<RoundRecord> | undefined,
  admin: boolean,
): TaskStatus {
  const paused = pausedOf(store);
  const history = store
    .history()
    .map((h) => (progress && h.round === p.round && h.status === 'running' ? { ...h, ...progress } : h))
    .map((h) => (admin ? h : publicRecord(h)));
  return {
    task: s.task,
    model: s.model,
    alias: s.alias,
    status: lifecycleOf(store, p),
    ...(paused && { pausedReason: paused.reason }),
    round: p.round,
    stage: p.stage,
    rounds: s.rounds,
    devicesPerRound: s.devicesPerRound,
    minDevices: roundMinimum(s),
    enrolledDevices: store.deviceCount(),
    ...(s.base && {
      base: {
        model: s.base.model,
        version: s.base.version,
        trainable: s.base.trainable,
        layers: s.base.head.layers.flatMap((l) => l.nodes),
      },
    }),
    ...(s.adapter && adapterStatus(s)),
    history,
    publishedVersions: history.filter((h) => h.version).map((h) => h.version!),
    privacy: s.privacy ? { ...s.privacy, maxSpent: store.maxEpsilon() } : undefined,
    distributedDp: s.distributedDp && {
      ...s.distributedDp,
      epsilon: history.findLast((h) => h.clientEpsilon !== undefined)?.clientEpsilon ?? 0,
    },
  };
}

export function taskSummary(store: TaskStore, s: TaskSettings, p: RoundPointer): TaskSummary {
  return {
    task: s.task,
    model: s.model,
    status: lifecycleOf(store, p),
    round: p.round,
    stage: p.stage,
    rounds: s.rounds,
    devicesPerRound: s.devicesPerRound,
    enrolledDevices: store.deviceCount(),
    published: store.publishedRounds(),
  };
}
