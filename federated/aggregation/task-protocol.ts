/**
 * What a federated task and its devices say to each other besides the SecAgg+ messages themselves (wire.ts):
 * the task's settings, the round a device checks into, the per-device relays of each stage as JSON (bytes in
 * base64), and the status an operator reads. Shared by the FederatedTask Durable Object and the Participant.
 */
import { type ModelSpec, parameterCount } from '../model/model-spec.ts';
import type { DecoderSpec } from '../model/decoder-spec.ts';
import type { LoraSettings } from '../model/lora.ts';
import type { HeadPlace } from '../model/head/head-place.ts';
import { type DdgaussParameters, ddgaussEpsilon, ddgaussParameters } from '../dp/distributed-dp.ts';
import type { ServerOptimizerConfig } from './server-optimizer.ts';
import type { EnrollmentPolicy } from './enrollment.ts';
import type { AdvertiseKeys, KeysBroadcast, SharesDelivery, Stage, UnmaskRequest } from '../secagg/messages.ts';
import { type FixedPoint, fixedPointFor } from '../secagg/fixed-point.ts';
import { type UpdateCodec, encodedLength, updateCodec } from './update-codec.ts';
import { framed, fromBase64, toBase64 } from '../bytes.ts';
import { decodeMessage, encodeMessage } from '../secagg/wire.ts';

export interface LocalTraining {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: 'sgd' | 'momentum' | 'adam';
}

/** Example-level DP-SGD each device runs (Trainer) and the per-device budget it is held to. */
export interface DevicePrivacy {
  l2NormClip: number;
  noiseMultiplier: number;
  delta: number;
  /** Per-device, per-task budget: a device whose ledger would pass it stops taking part. */
  epsilon: number;
}

/**
 * Client-level DP on top of SecAgg+ (optional): each device clips its whole update to L2 `clip` and adds its share
 * of distributed discrete Gaussian noise, so the unmasked sum carries central noise std `noiseMultiplier · clip`
 * (Kairouz, Liu & Steinke 2021) and the aggregate is (ε, δ)-DP for adding or removing one device's data.
 */
export interface DistributedDp {
  clip: number;
  noiseMultiplier: number;
  delta: number;
}

/**
 * A task that fine-tunes a served model's head (federated/model/head): devices embed their examples with the frozen
 * body of `model@version` (sha256-pinned) and train only the head, whose flat weights are the round's; each round
 * publishes the base graph with the averaged head (writeHead: int8 again if the base was int8).
 */
export interface TaskBase {
  model: string;
  version: string;
  sha256: string;
  /** 'head' (the final dense layer) or 'head:N' (the last N). */
  trainable: string;
  head: HeadPlace;
}

/**
 * A task that fine-tunes a served language model (a decoder Fedge exported: federated/model/decoder-weights.ts),
 * `model@version` pinned by sha256 (task-adapter.ts says what each `trainable` trains):
 *  - `lora:<rank>` — LoRA adapters as FFA-LoRA trains them (federated/model/lora.ts): A of every adapted projection is
 *    derived from `lora.seed` (public, fixed for the task), only B trains. The task's global weights are the adapters'
 *    B, flat in loraTargets' layout, 0 at the start and accumulated over rounds (the server steps B by the devices'
 *    mean ΔB); each round publishes the base's float weights + (alpha / rank) · A · B. Since A is fixed, merging every
 *    round's mean into the previous round's merged model and merging the accumulated B into the base are the same
 *    model: rounds accumulate, as FedAvg on the merged weights does. A device builds base + the merge of the B it
 *    downloads (GET …/weights), trains B from there and sends B − the downloaded B.
 *  - `last:<n>` — the last n blocks and ln_f: the global weights are those weights (flat, spec order), starting from
 *    the base's, stepped by the devices' mean change as any task's weights are.
 * Either way each round writes them into the base's bytes, int8 again where the base was (writeDecoderWeights) —
 * the same graph, I/O and tokenizer — always from the pinned base, so int8 rounding does not compound.
 */
export interface TaskAdapter {
  model: string;
  version: string;
  sha256: string;
  /** `lora:<rank>` or `last:<blocks>`. */
  trainable: string;
  /** `lora:<rank>` only: ΔW = (alpha / rank) · A · B, A from `seed`. */
  lora?: LoraSettings;
  /** How many weights the update changes (LoRA: adapted projections; last: the blocks' and ln_f's tensors). */
  targets: number;
  /** Values in the update. */
  length: number;
}

/** What a task trains: a classifier spec (spec mode, head tasks), or the decoder an adapter task fine-tunes. */
export type TaskSpec = ModelSpec | DecoderSpec;

export const isDecoderTask = (spec: TaskSpec): spec is DecoderSpec => (spec as { kind?: unknown }).kind === 'decoder';

export interface TaskSettings {
  task: string;
  /** Model name the task publishes under, and the alias it moves to each new version. */
  model: string;
  alias: string;
  /**
   * What trains: the whole spec model, or (with `base`) the head of a served model, as a spec; with `adapter`, the
   * served decoder's spec (its adapters train).
   */
  spec: TaskSpec;
  base?: TaskBase;
  adapter?: TaskAdapter;
  rounds: number;
  devicesPerRound: number;
  /** Fewest masked inputs a round accepts; fewer and the round is abandoned. */
  minDevices: number;
  /** Seconds each stage waits for devices before closing with whoever answered. */
  stageSeconds: number;
  /**
   * Seconds check-in waits for enough devices before the round expires and the task pauses (resume to wait again;
   * the devices that checked in stay). Absent: DEFAULT_IDLE_SECONDS (task-settings.ts).
   */
  idleSeconds?: number;
  /** Who may enrol beyond the token holders: an issuer's credentials, caps (enrollment.ts). */
  enrollment?: EnrollmentPolicy;
  /**
   * Publishing gated on the operator's evaluation: a round's version is stored but served under the task's alias
   * (and promoted to `promote`, e.g. `latest`) only once an evaluation reports an accuracy of at least
   * `minAccuracy` and no more than `maxDrop` below the best round that passed.
   */
  gate?: PublicationGate;
  /**
   * Poisson cohort sampling (cohort.ts): of the devices that check in, each is in the round with probability
   * `sampleRate`, drawn from a seed committed when the round opens — and the client-level ε amplifies by it.
   */
  cohort?: { sampleRate: number };
  secagg: { neighbours: number; threshold: number };
  /**
   * Most devices one SecAgg+ instance (one aggregator Durable Object) takes. A round of more devices than this is
   * split into shards, each its own SecAgg+ instance, whose unmasked sums the task adds (secagg/shards.ts).
   */
  shardSize?: number;
  /** Per-coordinate clip of the weight update and the example count that gets full weight (fixed-point.ts). */
  update: { clip: number; maxExamples: number };
  training: LocalTraining;
  privacy?: DevicePrivacy;
  distributedDp?: DistributedDp;
  serverOptimizer: ServerOptimizerConfig;
}

/**
 * The round's DDGauss parameters, sized for the fewest devices a round accepts (fewer devices add less noise, so
 * the guarantee holds whenever a round publishes).
 */
export function ddgaussFor(s: TaskSettings): DdgaussParameters | undefined {
  const d = s.distributedDp;
  return (
    d &&
    ddgaussParameters({
      clip: d.clip,
      centralNoiseStd: d.noiseMultiplier * d.clip,
      devices: s.minDevices,
      dimension: updateDimension(s),
    })
  );
}

/** Values in a device's (float) update: the model's parameters, or the adapters' B of an adapter task. */
export function updateDimension(s: Pick<TaskSettings, 'spec' | 'adapter'>): number {
  if (s.adapter) return s.adapter.length;
  if (isDecoderTask(s.spec)) throw new RangeError('a decoder task trains adapters: its settings need `adapter`');
  return parameterCount(s.spec);
}

/** The task's fixed-point encoding: sized so that a full round's sum cannot wrap around 2^32. */
export function fixedPointOf(s: TaskSettings): FixedPoint {
  return fixedPointFor({ maxDevices: s.devicesPerRound, clip: s.update.clip, maxExamples: s.update.maxExamples });
}

/** Words in a masked input of the task (update-codec.ts). */
export function updateLength(s: TaskSettings): number {
  return encodedLength({ dimension: updateDimension(s), distributedDp: ddgaussFor(s) });
}

/** How the task's updates are encoded and its sums decoded in the round with public seed `seed`. */
export function taskUpdateCodec(s: TaskSettings, seed: Uint8Array): UpdateCodec {
  return updateCodec({
    dimension: updateDimension(s),
    fixedPoint: fixedPointOf(s),
    distributedDp: ddgaussFor(s),
    seed,
  });
}

/**
 * Client-level ε of the task after `publishedRounds` unmasked sums (only published sums are released — an abandoned
 * round's sum never is). Amplified by subsampling only when the task samples its cohorts (cohort.ts: each device in
 * a round with probability q, whatever the number enrolled); otherwise a round's cohort is whoever checks in first,
 * so a device may be in every round — q = 1 (Sybil enrolments used to shrink the reported ε through
 * q = devicesPerRound / enrolled).
 */
export function clientEpsilon(s: TaskSettings, publishedRounds: number): number | undefined {
  const p = ddgaussFor(s);
  if (!p || publishedRounds === 0) return p && 0;
  return ddgaussEpsilon({
    params: p,
    rounds: publishedRounds,
    sampleRate: s.cohort?.sampleRate ?? 1,
    delta: s.distributedDp!.delta,
  });
}

/** Longest a relay request is held open waiting for its stage to close (long poll: `?wait=` seconds). */
export const MAX_RELAY_WAIT_SECONDS = 25;

/** A round's SecAgg+ stage (secagg/messages.ts), or 'finished' once the task's last round is over. */
export type TaskStage = Stage | 'finished';

/** GET /v1/tasks/{task}/round: what a device needs to join the current round. */
export interface RoundInfo {
  task: string;
  round: number;
  roundId: string;
  stage: TaskStage;
  /** Whether the round still takes devices (advertise-keys and not full). */
  open: boolean;
  graphSeed: string;
  neighbours: number;
  threshold: number;
  /** Fewest masked inputs the round publishes with (devices refuse rounds that accept fewer than 3). */
  minDevices: number;
  /** Words in a masked input (updateLength). */
  length: number;
  fixedPoint: FixedPoint;
  /** When set, devices encode their update with DDGauss (distributed-dp.ts) instead of fixedPoint. */
  distributedDp?: DdgaussParameters;
  /** Version of the global weights this round trains from (GET /v1/tasks/{task}/weights). */
  weightsVersion: number;
  training: LocalTraining;
  privacy?: DevicePrivacy;
  spec: TaskSpec;
  /** Set when devices train a served model's head: embed with its body first (participant.ts). */
  base?: TaskBase;
  /** Set when devices train adapters of a served language model (TaskAdapter): `spec` is then its decoder's. */
  adapter?: TaskAdapter;
  /** Cohort sampling (cohort.ts): the rate, the seed's commitment (base64), and the seed once check-in has closed. */
  cohort?: { sampleRate: number; commitment: string; seed?: string };
  deadline: string;
}

export interface ShardSummary {
  devices: number;
  survivors: number;
  /** 'running' while the round is: the shard's aggregator has not reported yet. */
  status: 'running' | 'published' | 'abandoned';
  reason?: string;
}

export interface PublicationGate {
  minAccuracy?: number;
  maxDrop?: number;
  /** Another alias of the model to move to a round that passes (e.g. `latest`: what requests naming no version get). */
  promote?: string;
}

export interface RoundRecord {
  round: number;
  status: 'running' | 'published' | 'abandoned';
  advertised: number;
  shared: number;
  submitted: number;
  unmasked: number;
  dropouts: number;
  updateNorm?: number;
  version?: string;
  /** Why the round was abandoned. Names no device; `detail` (the admin's view only) may. */
  reason?: string;
  detail?: string;
  accuracy?: number;
  /** With a publication gate: pending until the round's evaluation, then passed (served) or failed (why). */
  gate?: 'pending' | 'passed' | 'failed';
  /** Cohort sampling: the devices that checked in and those drawn into the round. */
  cohort?: { checkedIn: number; drawn: number };
  gateReason?: string;
  /** Largest ε any device reported having spent on this task by this round. */
  epsilon?: number;
  /** Client-level ε of the distributed DP after this round's sum was released. */
  clientEpsilon?: number;
  /** Sharded rounds: each shard's devices, survivors and outcome (the server learns each published shard's sum). */
  shards?: ShardSummary[];
  /**
   * Revealed shares that did not lie on their owner's polynomial: left out of unmasking (sender or dealer lied). They
   * name devices: the admin's view only.
   */
  badShares?: { holder: string; of: string }[];
  startedAt: string;
  endedAt?: string;
}

export type TaskLifecycle = 'running' | 'paused' | 'finished';

export interface TaskStatus {
  task: string;
  model: string;
  alias: string;
  /** running; paused (by the operator, or because check-in expired: `pausedReason`); finished (all rounds, or the operator). */
  status: TaskLifecycle;
  pausedReason?: string;
  round: number;
  stage: TaskStage;
  rounds: number;
  devicesPerRound: number;
  /** Fewest devices a round starts with (check-in waits for them): minDevices, at least the SecAgg+ threshold + 1. */
  minDevices: number;
  enrolledDevices: number;
  /** The served model whose head trains, and the graph's nodes that do (absent: the whole spec model trains). */
  base?: { model: string; version: string; trainable: string; layers: string[] };
  /** A language-model task's adapters (TaskAdapter without the base's pin): rank, alpha, A's seed, targets, length. */
  adapter?: { trainable: string; lora?: LoraSettings; targets: number; length: number };
  history: RoundRecord[];
  publishedVersions: string[];
  privacy?: DevicePrivacy & { maxSpent: number };
  distributedDp?: DistributedDp & { epsilon: number };
}

/** One task in GET /v1/tasks: its status without the history, and how many rounds published. */
export type TaskSummary = Pick<
  TaskStatus,
  'task' | 'model' | 'status' | 'round' | 'stage' | 'rounds' | 'devicesPerRound' | 'enrolledDevices'
> & {
  /** Rounds that published a model so far. */
  published: number;
};

export type Relay = KeysBroadcast | SharesDelivery | UnmaskRequest;

export const relayToJson = {
  broadcast: (b: KeysBroadcast) => ({
    roundId: b.roundId,
    roster: b.roster,
    neighbours: b.neighbours.map((m) => toBase64(encodeMessage(m))),
  }),
  delivery: (d: SharesDelivery) => ({
    roundId: d.roundId,
    ciphertexts: d.ciphertexts.map((c) => ({ from: c.from, data: toBase64(c.data) })),
  }),
  unmask: (u: UnmaskRequest) => u,
};

type Json<T> = T extends (x: never) => infer R ? R : never;

export const relayFromJson = {
  broadcast: (j: Json<typeof relayToJson.broadcast>): KeysBroadcast => ({
    roundId: j.roundId,
    roster: j.roster,
    neighbours: j.neighbours.map((m) => decodeMessage(fromBase64(m)) as AdvertiseKeys),
  }),
  delivery: (j: Json<typeof relayToJson.delivery>): SharesDelivery => ({
    roundId: j.roundId,
    ciphertexts: j.ciphertexts.map((c) => ({ from: c.from, data: fromBase64(c.data) })),
  }),
  unmask: (j: UnmaskRequest): UnmaskRequest => j,
};

export { DEVICE_SIGNATURE_HEADER } from '../http/headers.ts';

/**
 * What a device signs to fetch a relay: the task, round, relay and its own id. Relays are read-only and carry only
 * what this device is entitled to, so a replayed signature returns what its owner saw already; without one,
 * anybody could list a round's roster or test whether a device takes part.
 */
export function relaySigningBytes(task: string, round: number, kind: string, device: string): Uint8Array {
  return framed('fedge-relay/v1', task, String(round), kind, device);
}
