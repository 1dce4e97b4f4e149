/**
 * What the routes answer, as zod schemas for the OpenAPI document (document.ts). Handlers build their answers from
 * TypeScript types, not from schemas, so each schema here is checked at compile time against the type its route
 * returns (`Covers` below): every documented field exists in the real type with a compatible type, and renaming or
 * removing a field on the server breaks `npm run typecheck` until this file follows. Fields the server sends but a
 * schema leaves out are allowed (looseObject: clients must ignore what they do not know).
 * Documentation only: no route parses its own answer with these.
 */
import { z } from 'zod';
import { DATATYPES } from '../../federated/oip/datatypes.ts';
import type { ModelSummary, ProbeVerdict, TensorMeta, VersionRecord } from '../registry/model-record.ts';
import type {
  RoundInfo,
  RoundRecord,
  TaskSettings,
  TaskStatus,
  TaskSummary,
} from '../../federated/aggregation/task-protocol.ts';
import type { ReceiveResult, Refusal } from '../tasks/task-answers.ts';
import type { ModelStat } from '../metrics/model-stats.ts';
import type { RepositoryEntry } from '../routes/stats.ts';

const name = z.string().describe("1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
const sha256 = z
  .string()
  .regex(/^[0-9a-f]{64}$/)
  .describe('SHA-256 of the ONNX bytes, lower-case hex');
const stage = z.enum(['advertise-keys', 'share-keys', 'masked-input', 'unmask', 'finished']);

export const errorBody = z.object({
  error: z.string().describe('what was wrong; quotes at most 64 characters of what was sent'),
});

export const serverMetadata = z.looseObject({ name: z.string(), version: z.string(), extensions: z.array(z.string()) });
export const live = z.looseObject({ live: z.literal(true) });
export const ready = z.looseObject({
  ready: z.literal(true),
  default_model: z.string(),
  execution_provider: z.enum(['wasm', 'webgpu']),
});

export const tensorMeta = z.looseObject({
  name: z.string(),
  datatype: z.enum(DATATYPES),
  shape: z.array(z.number().int().min(-1)).describe('-1 marks a dynamic dimension'),
  featurizer: z
    .looseObject({
      kind: z.literal('hashedBagOfWords'),
      buckets: z.number().int(),
      ngrams: z.union([z.literal(1), z.literal(2)]),
      maxChars: z.number().int(),
    })
    .optional()
    .describe(
      'declared by the model: the input also takes raw text, a BYTES tensor of its shape without the last axis',
    ),
  labels: z
    .array(z.string())
    .optional()
    .describe("declared by the model (fedge.labels): what each index of the output's last axis means"),
});

export const modelSummary = z.looseObject({
  name: z.string(),
  versions: z.array(z.string()).describe('oldest first'),
  aliases: z.record(z.string(), z.string()).describe('alias → version'),
});
export const modelList = z.looseObject({ models: z.array(modelSummary) });

export const probeVerdict = z
  .looseObject({
    ok: z.boolean().describe('whether the run passed'),
    inputs: z
      .enum(['generated', 'warmup'])
      .describe(
        "generated: built from the model's metadata (dynamic dimensions 1, zeros; a failure is reported here, not refused); warmup: the upload's warmup query (a failure is refused, so this is always ok)",
      ),
    shapes: z.string().describe('what it ran on, in the warmup syntax: name:d1xd2…[=value], comma-separated'),
    error: z.string().optional().describe("ONNX Runtime's reason, when the run on generated inputs failed"),
  })
  .describe('how the version ran once at upload; absent for bundled and task-published versions');

export const modelMetadata = z.looseObject({
  name: z.string(),
  versions: z.array(z.string()),
  platform: z.literal('onnxruntime_onnx'),
  inputs: z.array(tensorMeta),
  outputs: z.array(tensorMeta),
  parameters: z.looseObject({
    version: z.string().describe('the version the reference resolved to'),
    sha256,
    probe: probeVerdict.optional(),
  }),
});
export const modelReady = z.looseObject({ name: z.string(), version: z.string(), ready: z.literal(true) });

export const inferResponse = z.looseObject({
  model_name: z.string(),
  model_version: z.string(),
  id: z.string().optional().describe("the request's id, when it sent one"),
  outputs: z.array(
    z.looseObject({
      name: z.string(),
      datatype: z.enum(DATATYPES),
      shape: z.array(z.number().int().nonnegative()),
      data: z
        .array(z.union([z.number(), z.boolean(), z.string()]))
        .optional()
        .describe('flat, row-major; BOOL as booleans, FP16 as numbers, INT64/UINT64 beyond 2^53 as decimal strings'),
      parameters: z
        .looseObject({ binary_data_size: z.number().int().nonnegative() })
        .optional()
        .describe('set instead of data when the output travels as binary tensor data'),
    }),
  ),
});

export const versionRecord = z.looseObject({
  model: z.string(),
  version: z.string(),
  sha256,
  bytes: z.number().int().positive(),
  inputs: z.array(tensorMeta),
  outputs: z.array(tensorMeta),
  createdAt: z.string().describe('ISO 8601'),
  probe: probeVerdict.optional(),
});
export const aliasResult = z.looseObject({ model: z.string(), alias: z.string(), version: z.string(), sha256 });
export const deleteResult = z.looseObject({ model: z.string(), version: z.string(), deleted: z.literal(true) });

/** Settings as stored (the body with defaults filled in; enrollment token, weights and expectedDropout left out). */
export const taskSettings = z.looseObject({
  task: z.string(),
  model: z.string(),
  alias: z.string(),
  spec: z.unknown(),
  rounds: z.number().int(),
  devicesPerRound: z.number().int(),
  shardSize: z.number().int().optional(),
  minDevices: z.number().int(),
  stageSeconds: z.number(),
  idleSeconds: z
    .number()
    .optional()
    .describe('Check-in that waits this long for enough devices expires and pauses the task (default 3600)'),
  secagg: z.looseObject({ neighbours: z.number().int(), threshold: z.number().int() }),
  update: z.looseObject({ clip: z.number(), maxExamples: z.number().int() }),
  training: z.unknown(),
  privacy: z.unknown().optional(),
  distributedDp: z.unknown().optional(),
  serverOptimizer: z.unknown(),
});
export const taskCreated = z.looseObject({ task: z.string(), created: z.boolean(), settings: taskSettings });

export const roundRecord = z.looseObject({
  round: z.number().int(),
  status: z.enum(['running', 'published', 'abandoned']),
  advertised: z.number().int(),
  shared: z.number().int(),
  submitted: z.number().int(),
  unmasked: z.number().int(),
  dropouts: z.number().int(),
  updateNorm: z.number().optional(),
  version: z.string().optional().describe('the catalog version this round published (r<round>)'),
  reason: z.string().optional().describe('why the round was abandoned'),
  accuracy: z.number().optional(),
  epsilon: z.number().optional().describe('largest ε any device reported spending on this task by this round'),
  clientEpsilon: z.number().optional().describe('client-level ε of the distributed DP after this round'),
  badShares: z
    .array(z.looseObject({ holder: z.string(), of: z.string() }))
    .optional()
    .describe('revealed shares that did not lie on their polynomial, and who sent them'),
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
});

export const taskStatus = z.looseObject({
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
    .describe('base mode: the served model whose head trains, and the graph nodes that do'),
  history: z.array(roundRecord),
  publishedVersions: z.array(z.string()),
  privacy: z.unknown().optional().describe("the task's DP-SGD settings and maxSpent, the largest ε a device reported"),
  distributedDp: z.unknown().optional().describe("the task's distributed-DP settings and the client-level ε so far"),
});
export const taskSummary = taskStatus
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
  .extend({ published: z.number().int().describe('rounds that published a model so far') });
export const taskList = z.looseObject({
  tasks: z.array(taskSummary),
  next: z.string().optional().describe('more tasks follow: pass this as `after` for the next page'),
});

export const enrolled = z.looseObject({ task: z.string(), device: z.string(), enrolled: z.literal(true) });

export const roundInfo = z.looseObject({
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
  deadline: z.string().describe('ISO 8601: when the current stage closes unless everyone answers first'),
});

export const messageAccepted = z.looseObject({
  accepted: z.literal(true),
  duplicate: z.boolean().describe('true for a byte-identical resend (a no-op)'),
  stage,
  published: z.string().optional().describe('the version this message made the round publish, if it did'),
});
export const stageClosed = z.looseObject({ stage, published: z.string().optional() });
export const taskLifecycle = z.looseObject({ task: z.string(), status: z.enum(['running', 'paused', 'finished']) });
export const taskDeleted = z.looseObject({ task: z.string(), deleted: z.literal(true) });
export const evaluationRecorded = z.looseObject({ ok: z.literal(true) });

export const broadcastRelay = z.looseObject({
  roundId: z.string(),
  roster: z.array(z.string()),
  neighbours: z
    .array(z.string())
    .describe("the neighbours' advertise-keys messages, each base64 of the binary wire format"),
});
export const deliveryRelay = z.looseObject({
  roundId: z.string(),
  ciphertexts: z.array(z.looseObject({ from: z.string(), data: z.string().describe('base64 XSalsa20-Poly1305 box') })),
});
export const unmaskRelay = z.looseObject({ roundId: z.string(), survivors: z.array(z.string()) });

// Triton's statistics extension (protocol/extension_statistics.md) and the model_repository extension's index.
const duration = z.looseObject({
  count: z.number().int().nonnegative(),
  ns: z.number().int().nonnegative().describe('cumulative nanoseconds'),
});
export const modelStat = z.looseObject({
  name: z.string(),
  version: z.string(),
  last_inference: z
    .number()
    .int()
    .nonnegative()
    .describe('ms since the epoch of the last inference in this isolate; 0 for none'),
  inference_count: z
    .number()
    .int()
    .nonnegative()
    .describe(
      'successful inferences, each batch item counted (the leading dimension when every input has a dynamic one, else 1)',
    ),
  execution_count: z
    .number()
    .int()
    .nonnegative()
    .describe(
      'successful ONNX Runtime runs: fewer than requests when dynamic batching joined concurrent ones (inference_count / execution_count = mean batch size)',
    ),
  inference_stats: z.looseObject({
    success: duration.describe('successful requests and their whole run (queue, load, compute)'),
    fail: duration.describe('runs ONNX Runtime refused (or whose model could not load)'),
    queue: duration.describe('waiting for the session to load and for earlier runs on it'),
    compute_input: duration.describe('building ONNX Runtime tensors'),
    compute_infer: duration.describe('session.run'),
    compute_output: duration.describe('reading the outputs back'),
  }),
  batch_stats: z.array(
    z.looseObject({
      batch_size: z.number().int().nonnegative(),
      compute_input: duration,
      compute_infer: duration,
      compute_output: duration,
    }),
  ),
});
export const modelStatsResponse = z.looseObject({
  model_stats: z.array(modelStat).describe('one entry per version; counters of this isolate only'),
});
export const repositoryEntry = z.looseObject({
  name: z.string(),
  version: z.string(),
  state: z.enum(['READY', 'UNAVAILABLE']).describe('READY: this isolate holds its ONNX Runtime session'),
  reason: z.string().optional().describe('why it is not READY'),
});
export const repositoryIndex = z.array(repositoryEntry);

// ---- compile-time checks: each documented field exists in the type the route answers with ---------------------

/** A schema's output type without looseObject's index signatures (an interface never has one). */
type Known<T> = T extends readonly (infer E)[]
  ? Known<E>[]
  : T extends object
    ? { [K in keyof T as string extends K ? never : K]: Known<T[K]> }
    : T;
type Covers<T, S extends z.ZodType> = [T] extends [Known<z.output<S>>] ? true : false;
type Accepted = Exclude<ReceiveResult, Refusal>;

export const COVERED: [
  Covers<ModelSummary, typeof modelSummary>,
  Covers<TensorMeta, typeof tensorMeta>,
  Covers<VersionRecord, typeof versionRecord>,
  Covers<ProbeVerdict, typeof probeVerdict>,
  Covers<TaskSettings, typeof taskSettings>,
  Covers<RoundRecord, typeof roundRecord>,
  Covers<TaskStatus, typeof taskStatus>,
  Covers<TaskSummary, typeof taskSummary>,
  Covers<RoundInfo, typeof roundInfo>,
  Covers<Accepted, typeof messageAccepted>,
  Covers<{ error: string }, typeof errorBody>,
  Covers<ModelStat, typeof modelStat>,
  Covers<RepositoryEntry, typeof repositoryEntry>,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true];
