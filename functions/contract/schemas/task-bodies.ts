/**
 * The JSON bodies of the federated-task routes, validated once at the edge (routes/tasks.ts) and documented from the
 * same schemas (input mode: defaults shown, defaulted fields optional). What JSON Schema cannot say — spec vs base
 * mode, the settings' cross-checks — is in the routes' descriptions and errors (contract/tasks.ts).
 */
import { z } from 'zod';
import { MAX_STAGE_FACTOR } from '../../../federated/aggregation/round-controller.ts';
import {
  DEFAULT_IDLE_SECONDS,
  DEFAULT_SHARD_SIZE,
  MAX_IDLE_SECONDS,
  MIN_STAGE_SECONDS,
} from '../../../federated/aggregation/task-settings.ts';
import { nameSchema as name } from './name.ts';
import { named } from './named.ts';

const positive = z.number().positive().finite();

export const taskBody = named(
  'CreateTaskRequest',
  z.object({
    task: name.describe("the task's name (a URL path segment)"),
    model: name.describe('the catalog model it publishes under, as version `r<round>`'),
    alias: name.default('federated').describe('the alias moved to each published version'),
    spec: z
      .unknown()
      .optional()
      .describe(
        'spec mode: a model spec, `fedge.model/v1` (`federated/model/model-spec.ts`): input shape, layers, input and output names, labels',
      ),
    weights: z
      .string()
      .min(1)
      .optional()
      .describe(
        "spec mode: initial global weights: float32 little-endian, flat in the spec's parameter order, base64 (exactly 4 × the parameter count bytes, all finite)",
      ),
    base: z
      .object({ model: name, version: name })
      .optional()
      .describe(
        'base mode (instead of `spec` + `weights`): `{model, version}` — a served version (a version name or an alias, pinned to its sha256 at creation) whose head devices train; the task starts from the graph\'s own head weights. With `trainable: "lora:R"`: a language model Fedge exported whose adapters devices train, starting from B = 0 (the base itself)',
      ),
    trainable: z
      .string()
      .regex(
        /^(?:head(?::[1-9][0-9]?)?|(?:lora|last):[1-9][0-9]{0,3})$/,
        'trainable must be "head", "head:<layers>" (1-99), "lora:<rank>" or "last:<blocks>" (1-9999)',
      )
      .optional()
      .describe(
        "base mode, default `head`: `head` (the final dense layer: Gemm, or MatMul + Add, then perhaps Softmax/LogSoftmax) or `head:N` (the last N dense layers, 1-99, joined by Relu/Sigmoid/Tanh). On a served language model Fedge exported (e.g. `fedge-gpt`): `lora:R` — LoRA adapters of rank R (1 to the model's width) on every attention and MLP projection, FFA-LoRA: A fixed from the task's public seed (`adapter.lora.seed`: SHA-256 of the task name and the base's sha256), devices train only B; the task's weights are B (`adapter.length` values), accumulated over rounds, and each round publishes the base with W + (alpha / R) · A · B merged in; or `last:N` — the last N blocks and ln_f train (1 to the model's layers), the task's weights are theirs. Either way each round's version is the base's graph, tokenizer and I/O, int8 again where the base was",
      ),
    lora: z
      .object({ alpha: positive.max(1e4).optional() })
      .optional()
      .describe('with `trainable: "lora:R"`: `{alpha}` — ΔW = (alpha / R) · A · B; default alpha = R'),
    rounds: z.number().int().min(1).max(10_000),
    devicesPerRound: z.number().int().min(3).max(10_000).describe('the most devices a round takes'),
    shardSize: z
      .number()
      .int()
      .min(3)
      .max(10_000)
      .optional()
      .describe(
        `the most devices one SecAgg+ instance takes; default ${DEFAULT_SHARD_SIZE} when devicesPerRound is larger (one aggregator object's memory and CPU budget at d ≈ 2·10⁵). A round of more devices is split, when check-in closes, into shards of at most this many (by SHA-256 of a fresh seed and the device id), each run by its own aggregator Durable Object in parallel; the task combines the shards' unmasked sums robustly (each shard's mean clipped to twice the median's norm; a shard whose sum fails its bounds is dropped). \`secagg\`, \`minDevices\` and the distributed-DP noise apply per shard; the server learns each shard's sum. Status records list each shard's \`{devices, survivors, status, reason?}\` (\`status\` is \`running\` until its aggregator reports)`,
      ),
    minDevices: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('fewest masked inputs a round publishes with; default threshold + 1; at least 3 (else 422)'),
    stageSeconds: positive
      .max(3600)
      .default(30)
      .describe(
        `${MIN_STAGE_SECONDS}…3600: how long a stage waits for devices; a stage still receiving answers is extended by this much per answer, up to ${MAX_STAGE_FACTOR}×`,
      ),
    idleSeconds: positive
      .optional()
      .describe(
        `\`stageSeconds\`…${MAX_IDLE_SECONDS.toLocaleString('en-US')} (${MAX_IDLE_SECONDS / 86_400} days), default ${DEFAULT_IDLE_SECONDS}: check-in that has waited this long for enough devices expires — the task pauses, saying why in \`pausedReason\`, and nothing holds a round open for good; the devices that checked in stay for when it resumes`,
      ),
    enrollment: z
      .object({
        issuerKey: z
          .string()
          .optional()
          .describe(
            "the app backend's Ed25519 public key (32 bytes, base64): every enrolment then needs a credential it signed (`mintEnrollmentCredential`, fedge/federated) for that task, device id and identity key — the app decides how many identities a user gets",
          ),
        maxDevices: z.number().int().min(1).optional().describe('most devices the task enrols (then 409)'),
        maxPerAddress: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe('most devices enrolled from one client address (then 429)'),
      })
      .optional()
      .describe(
        "`{issuerKey?, maxDevices?, maxPerAddress?}`: who may enrol beyond the holders of the enrollment token (which every browser participant holds). `issuerKey`: the app backend's Ed25519 public key, base64 — each enrolment then needs its credential for that task, device and identity key (`mintEnrollmentCredential`), so the app decides how many identities a user gets; `maxDevices`: most devices the task enrols (409 after); `maxPerAddress`: most devices from one client address (429 after)",
      ),
    gate: z
      .object({
        minAccuracy: z.number().min(0).max(1).optional(),
        maxDrop: z.number().min(0).max(1).optional(),
        promote: name.optional(),
      })
      .optional()
      .describe(
        "`{minAccuracy?, maxDrop?, promote?}`: publishing gated on the operator's evaluation. Each round's version is stored but served under the task's alias only once `POST …/evaluations` reports an accuracy of at least `minAccuracy` and no more than `maxDrop` below the best round served; then also `promote` (another alias of the model, e.g. `latest`) moves to it. A round that fails is recorded (`gate: failed`, `gateReason`) and not served",
      ),
    cohort: z
      .object({ sampleRate: z.number().gt(0).lt(1) })
      .optional()
      .describe(
        '`{sampleRate}`: Poisson cohort sampling — when check-in closes, each device that checked in (up to `devicesPerRound`) is in the round with probability `sampleRate`, drawn from a seed committed when the round opened and revealed after (devices check the draw); the others sit the round out, and the client-level ε amplifies by `sampleRate`. Unsharded rounds only; size `devicesPerRound` so that `sampleRate` × it comfortably exceeds `minDevices`',
      ),
    expectedDropout: z
      .number()
      .min(0)
      .max(0.6)
      .default(0.3)
      .describe('used only to derive `secagg` when it is not given (`secAggParameters`)'),
    secagg: z
      .object({ neighbours: z.number().int().min(2), threshold: z.number().int().min(2) })
      .optional()
      .describe(
        "`{neighbours: k, threshold: t}`: k even below min(devicesPerRound, shardSize) − 1, at most 254; t > k/2 (else 422). Default from `secAggParameters` for min(devicesPerRound, shardSize) devices; sharded: sized for a shard's expected load (`shardSecAggParameters`), k even",
      ),
    update: z
      .object({ clip: positive.default(1), maxExamples: z.number().int().min(1).default(1000) })
      .default({ clip: 1, maxExamples: 1000 })
      .describe('per-coordinate clip of the weight update; the example count that gets full weight (fixed point)'),
    training: z
      .object({
        epochs: z.number().int().min(1).max(100).default(1),
        batchSize: z.number().int().min(1).max(4096).default(32),
        learningRate: positive.default(0.05),
        optimizer: z.enum(['sgd', 'momentum', 'adam']).default('sgd'),
      })
      .default({ epochs: 1, batchSize: 32, learningRate: 0.05, optimizer: 'sgd' })
      .describe('local training on each device (`sgd`, `momentum`, `adam`)'),
    privacy: z
      .object({ l2NormClip: positive, noiseMultiplier: positive, delta: z.number().gt(0).lt(1), epsilon: positive })
      .optional()
      .describe(
        'optional: `{l2NormClip, noiseMultiplier, delta, epsilon}`: example-level DP-SGD on each device, per-device budget `epsilon` (δ = `delta`)',
      ),
    distributedDp: z
      .object({ clip: positive, noiseMultiplier: positive, delta: z.number().gt(0).lt(1).default(1e-5) })
      .optional()
      .describe(
        'optional: `{clip, noiseMultiplier, delta [1e-5]}`: client-level distributed discrete Gaussian noise (DDGauss), sized for `minDevices`',
      ),
    serverOptimizer: z
      .discriminatedUnion('kind', [
        z.object({ kind: z.literal('fedavg'), learningRate: positive.optional() }),
        z.object({
          kind: z.literal('fedavgm'),
          learningRate: positive.optional(),
          momentum: z.number().min(0).lt(1).optional(),
        }),
        z.object({
          kind: z.literal('fedadam'),
          learningRate: positive.optional(),
          beta1: z.number().min(0).lt(1).optional(),
          beta2: z.number().min(0).lt(1).optional(),
          tau: positive.optional(),
        }),
      ])
      .default({ kind: 'fedavg' })
      .describe(
        'step applied to the unmasked mean update: `fedavg {learningRate}`, `fedavgm {learningRate, momentum}` or `fedadam {learningRate, beta1, beta2, tau}`',
      ),
    enrollmentToken: z
      .string()
      .min(16)
      .describe('devices enroll with it (`Authorization: Bearer`); stored only as its SHA-256'),
  }),
);

export const enrollBody = named(
  'EnrollRequest',
  z.object({
    device: name.describe('the device id'),
    identityKey: z.string().min(1).describe('its Ed25519 public key, 32 bytes, base64'),
    credential: z
      .object({
        expires: z.number().int().describe('unix seconds'),
        signature: z.string().max(100).describe("the issuer's Ed25519 signature, base64"),
      })
      .optional()
      .describe("when the task names an enrollment.issuerKey: the app backend's credential for this device"),
  }),
);

export const evaluationBody = named(
  'EvaluationRequest',
  z.object({
    round: z.number().int().min(1).describe('a published round'),
    accuracy: z.number().min(0).max(1).describe('held-out accuracy of its model, 0…1'),
  }),
);
