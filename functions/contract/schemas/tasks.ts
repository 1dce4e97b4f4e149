/** What the federated-task routes answer, as zod schemas: the OpenAPI document's components and the SDK's types. */
import { z } from 'zod';
import type {
  RoundInfo,
  RoundRecord,
  TaskSettings,
  TaskStatus,
  TaskSummary,
} from '../../../federated/aggregation/task-protocol.ts';
import type { ReceiveResult, Refusal } from '../../tasks/task-answers.ts';
import type { Covers } from './covers.ts';
import { DEFAULT_IDLE_SECONDS } from '../../../federated/aggregation/task-settings.ts';
import { named } from './named.ts';

const stage = z.enum(['advertise-keys', 'share-keys', 'masked-input', 'unmask', 'finished']);

const lora = z
  .looseObject({ rank: z.number().int(), alpha: z.number(), seed: z.number().int() })
  .describe('ΔW = (alpha / rank) · A · B; A of each adapted weight comes from `seed` (federated/model/lora.ts: loraA)');
/** An adapter task's adapters (TaskAdapter): what a device needs to rebuild A and the update's layout. */
const adapter = z
  .looseObject({
    model: z.string(),
    version: z.string(),
    sha256: z.string().describe('the base version, pinned: devices read its weights, each round merges into them'),
    trainable: z.string().describe('`lora:<rank>` or `last:<blocks>`'),
    lora: lora.optional(),
    targets: z
      .number()
      .int()
      .describe("weights the update changes: LoRA's adapted projections, or the last blocks' and ln_f's tensors"),
    length: z
      .number()
      .int()
      .describe(
        "values in the update: every target's B (rank × outputs) in loraTargets' order, or the last blocks' weights in the spec's order",
      ),
  })
  .optional()
  .describe(
    "adapter mode: the served language model whose LoRA adapters (FFA-LoRA: A fixed from `lora.seed`, devices train B; the task's weights are B, accumulated over rounds) or last blocks train",
  );

/** Settings as stored (the body with defaults filled in; enrollment token, weights and expectedDropout left out). */
export const taskSettings = named(
  'TaskSettings',
  z.looseObject({
    task: z.string(),
    model: z.string(),
    alias: z.string(),
    spec: z.unknown(),
    adapter,
    rounds: z.number().int(),
    devicesPerRound: z.number().int(),
    shardSize: z.number().int().optional(),
    minDevices: z.number().int(),
    stageSeconds: z.number(),
    idleSeconds: z
      .number()
      .optional()
      .describe(
        `Check-in that waits this long for enough devices expires and pauses the task (default ${DEFAULT_IDLE_SECONDS})`,
      ),
    secagg: z.looseObject({ neighbours: z.number().int(), threshold: z.number().int() }),
    update: z.looseObject({ clip: z.number(), maxExamples: z.number().int() }),
    training: z.unknown(),
    privacy: z.unknown().optional(),
    distributedDp: z.unknown().optional(),
    serverOptimizer: z.unknown(),
  }),
);
export const taskCreated = named(
  'TaskCreated',
  z.looseObject({ task: z.string(), created: z.boolean(), settings: taskSettings }),
);

export const roundRecord = named(
  'RoundRecord',
  z.looseObject({
    round: z.number().int(),
    status: z.enum(['running', 'published', 'abandoned']),
    advertised: z.number().int(),
    shared: z.number().int(),
    submitted: z.number().int(),
    unmasked: z.number().int(),
    dropouts: z.number().int(),
    updateNorm: z.number().optional(),
    version: z.string().optional().describe('the catalog version this round published (r<round>)'),
    reason: z.string().optional().describe('why the round was abandoned (names no device)'),
    detail: z
      .string()
      .optional()
      .describe("admin's view only: why the round was abandoned, with the devices it concerns named"),
    accuracy: z.number().optional(),
    gate: z
      .enum(['pending', 'passed', 'failed'])
      .optional()
      .describe('with a publication gate: pending until the evaluation, then passed (served) or failed'),
    gateReason: z.string().optional().describe('why the round failed its gate'),
    cohort: z
      .looseObject({ checkedIn: z.number().int(), drawn: z.number().int() })
      .optional()
      .describe('cohort sampling: the devices that checked in, and those drawn into the round'),
    epsilon: z.number().optional().describe('largest ε any device reported spending on this task by this round'),
    clientEpsilon: z.number().optional().describe('client-level ε of the distributed DP after this round'),
    badShares: z
      .array(z.looseObject({ holder: z.string(), of: z.string() }))
      .optional()
      .describe("admin's view only: revealed shares that did not lie on their polynomial, and who sent them"),
    shards: z
      .array(
        z.looseObject({
          devices: z.number().int(),
          survivors: z.number().int(),
          status: z.enum(['running', 'published', 'abandoned']),
          reason: z.string().optional(),
        }),
      )
      .optional()
      .describe(
        "sharded rounds: each shard's devices, survivors and outcome (the server learns each published shard's sum)",
      ),
    startedAt: z.string(),
    endedAt: z.string().optional(),
  }),
);

export const taskStatus = named(
  'TaskStatus',
  z.looseObject({
    task: z.string(),
    model: z.string(),
    alias: z.string(),
    status: z.enum(['running', 'paused', 'finished']),
    pausedReason: z.string().optional().describe('Why a paused task is paused: the operator, or check-in that expired'),
    round: z.number().int(),
    stage,
    rounds: z.number().int(),
    devicesPerRound: z.number().int(),
    minDevices: z.number().int().describe('fewest devices a round starts with: check-in waits for them'),
    enrolledDevices: z.number().int(),
    base: z
      .looseObject({ model: z.string(), version: z.string(), trainable: z.string(), layers: z.array(z.string()) })
      .optional()
      .describe(
        'base mode: the served model whose head trains, and the graph nodes that do (adapter mode: the weights adapted)',
      ),
    adapter: z
      .looseObject({
        trainable: z.string(),
        lora: lora.optional(),
        targets: z.number().int(),
        length: z.number().int(),
      })
      .optional()
      .describe(
        'adapter mode: the adapters devices train (rank, alpha, seed), how many weights they adapt, update length',
      ),
    history: z.array(roundRecord),
    publishedVersions: z.array(z.string()),
    privacy: z
      .unknown()
      .optional()
      .describe("the task's DP-SGD settings and maxSpent, the largest ε a device reported"),
    distributedDp: z.unknown().optional().describe("the task's distributed-DP settings and the client-level ε so far"),
  }),
);
export const taskSummary = named(
  'TaskSummary',
  taskStatus
    .pick({
      task: true,
      model: true,
      status: true,
      round: true,
      stage: true,
      rounds: true,
      devicesPerRound: true,
      enrolledDevices: true,
    })
    .extend({ published: z.number().int().describe('rounds that published a model so far') }),
);
export const taskList = named(
  'TaskList',
  z.looseObject({
    tasks: z.array(taskSummary),
    next: z.string().optional().describe('more tasks follow: pass this as `after` for the next page'),
  }),
);

export const enrolled = named(
  'Enrolled',
  z.looseObject({ task: z.string(), device: z.string(), enrolled: z.literal(true) }),
);

export const roundInfo = named(
  'RoundInfo',
  z.looseObject({
    task: z.string(),
    round: z.number().int(),
    roundId: z.string(),
    stage,
    open: z.boolean().describe('whether the round still takes devices (advertise-keys and not full)'),
    graphSeed: z.string().describe('base64; every device recomputes the neighbour graph from it'),
    neighbours: z.number().int(),
    threshold: z.number().int(),
    minDevices: z.number().int(),
    length: z.number().int().describe('words (uint32) in a masked input'),
    fixedPoint: z.looseObject({ clip: z.number(), scale: z.number(), maxExamples: z.number() }),
    distributedDp: z.unknown().optional().describe('DDGauss parameters, when the task uses distributed DP'),
    weightsVersion: z.number().int(),
    training: z.unknown(),
    privacy: z.unknown().optional(),
    spec: z.unknown(),
    adapter,
    cohort: z
      .looseObject({ sampleRate: z.number(), commitment: z.string(), seed: z.string().optional() })
      .optional()
      .describe(
        "cohort sampling: the rate, the SHA-256 of the round's seed (base64), and the seed once check-in closed",
      ),
    deadline: z.string().describe('ISO 8601: when the current stage closes unless everyone answers first'),
  }),
);

export const messageAccepted = named(
  'MessageAccepted',
  z.looseObject({
    accepted: z.literal(true),
    duplicate: z.boolean().describe('true for a byte-identical resend (a no-op)'),
    stage,
    published: z.string().optional().describe('the version this message made the round publish, if it did'),
  }),
);
export const stageClosed = named('StageClosed', z.looseObject({ stage, published: z.string().optional() }));
export const taskLifecycle = named(
  'TaskLifecycle',
  z.looseObject({ task: z.string(), status: z.enum(['running', 'paused', 'finished']) }),
);
export const deviceRevoked = named(
  'DeviceRevoked',
  z.looseObject({ task: z.string(), device: z.string(), revoked: z.literal(true) }),
);
export const taskDeleted = named('TaskDeleted', z.looseObject({ task: z.string(), deleted: z.literal(true) }));
export const evaluationRecorded = named(
  'EvaluationRecorded',
  z.looseObject({
    ok: z.literal(true),
    gate: z
      .enum(['passed', 'failed'])
      .optional()
      .describe('with a publication gate: whether the round is served now (its record says why it failed)'),
    moved: z.boolean().describe("whether the task's aliases moved to the round's version"),
  }),
);

export const broadcastRelay = named(
  'BroadcastRelay',
  z.looseObject({
    roundId: z.string(),
    roster: z.array(z.string()),
    neighbours: z
      .array(z.string())
      .describe("the neighbours' advertise-keys messages, each base64 of the binary wire format"),
  }),
);
export const deliveryRelay = named(
  'DeliveryRelay',
  z.looseObject({
    roundId: z.string(),
    ciphertexts: z.array(
      z.looseObject({ from: z.string(), data: z.string().describe('base64 XSalsa20-Poly1305 box') }),
    ),
  }),
);
export const unmaskRelay = named('UnmaskRelay', z.looseObject({ roundId: z.string(), survivors: z.array(z.string()) }));

type Accepted = Exclude<ReceiveResult, Refusal>;

export const COVERED_TASKS: [
  Covers<TaskSettings, typeof taskSettings>,
  Covers<RoundRecord, typeof roundRecord>,
  Covers<TaskStatus, typeof taskStatus>,
  Covers<TaskSummary, typeof taskSummary>,
  Covers<RoundInfo, typeof roundInfo>,
  Covers<Accepted, typeof messageAccepted>,
] = [true, true, true, true, true, true];
