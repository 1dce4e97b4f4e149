/**
 * The JSON bodies of the federated-task routes, validated once at the edge (routes/tasks.ts) and documented from the
 * same schemas (input mode: defaults shown, defaulted fields optional). What JSON Schema cannot say — spec vs base
 * mode, the settings' cross-checks — is in the routes' descriptions and errors (contract/tasks.ts).
 */
import { z } from 'zod';
import { MAX_STAGE_FACTOR } from '../../../federated/aggregation/round-controller.ts';
import {
  DEFAULT_IDLE_SECONDS,
  MAX_IDLE_SECONDS,
  MIN_STAGE_SECONDS,
} from '../../../federated/aggregation/task-settings.ts';
import { nameSchema as name } from './name.ts';
import { named } from './named.ts';

const positive = z.number().positive().finite();

export const taskBody = named(
  'CreateTaskRequest',
  z.object({
    task: name.describe('the task name (URL path segment)'),
    model: name.describe('the catalog model the task publishes under, version r<round>'),
    alias: name.default('federated').describe('alias moved to each published version'),
    spec: z
      .unknown()
      .optional()
      .describe(
        'spec mode: a model spec (fedge.model/v1, federated/model/model-spec.ts): input shape, layers, input/output names, labels',
      ),
    weights: z
      .string()
      .min(1)
      .optional()
      .describe("spec mode: initial global weights: float32 little-endian, flat in the spec's parameter order, base64"),
    base: z
      .object({ model: name, version: name })
      .optional()
      .describe('base mode: a served version (a version or an alias) whose head devices train'),
    trainable: z
      .string()
      .regex(/^head(?::[1-9][0-9]?)?$/, 'trainable must be "head" or "head:<layers>" (1-99)')
      .optional()
      .describe('base mode: "head" (the final dense layer) or "head:<layers>" (the last 1-99 dense layers)'),
    rounds: z.number().int().min(1).max(10_000),
    devicesPerRound: z.number().int().min(3).max(10_000),
    shardSize: z
      .number()
      .int()
      .min(3)
      .max(10_000)
      .optional()
      .describe(
        "most devices one SecAgg+ instance takes: a larger round is split into shards run by parallel aggregator objects; the server learns each shard's sum",
      ),
    minDevices: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('fewest masked inputs a round publishes with (default threshold + 1; at least 3, else 422)'),
    stageSeconds: positive
      .max(3600)
      .default(30)
      .describe(
        `how long a stage waits for devices (at least ${MIN_STAGE_SECONDS}); a stage still receiving answers stays open up to ${MAX_STAGE_FACTOR}×`,
      ),
    idleSeconds: positive
      .optional()
      .describe(
        `check-in that waits this long for enough devices expires and pauses the task (stageSeconds…${MAX_IDLE_SECONDS}, default ${DEFAULT_IDLE_SECONDS})`,
      ),
    expectedDropout: z
      .number()
      .min(0)
      .max(0.6)
      .default(0.3)
      .describe('used only to derive secagg when it is not given (secAggParameters)'),
    secagg: z
      .object({ neighbours: z.number().int().min(2), threshold: z.number().int().min(2) })
      .optional()
      .describe(
        'neighbours k (even below min(devicesPerRound, shardSize) − 1, at most 254) and threshold t (> k/2, else 422); default from secAggParameters for min(devicesPerRound, shardSize) devices',
      ),
    update: z
      .object({ clip: positive.default(1), maxExamples: z.number().int().min(1).default(1000) })
      .default({ clip: 1, maxExamples: 1000 })
      .describe('per-coordinate clip of the weight update and the example count that gets full weight (fixed point)'),
    training: z
      .object({
        epochs: z.number().int().min(1).max(100).default(1),
        batchSize: z.number().int().min(1).max(4096).default(32),
        learningRate: positive.default(0.05),
        optimizer: z.enum(['sgd', 'momentum', 'adam']).default('sgd'),
      })
      .default({ epochs: 1, batchSize: 32, learningRate: 0.05, optimizer: 'sgd' }),
    privacy: z
      .object({ l2NormClip: positive, noiseMultiplier: positive, delta: z.number().gt(0).lt(1), epsilon: positive })
      .optional()
      .describe('example-level DP-SGD every device runs, and its per-device budget epsilon (δ = delta)'),
    distributedDp: z
      .object({ clip: positive, noiseMultiplier: positive, delta: z.number().gt(0).lt(1).default(1e-5) })
      .optional()
      .describe('client-level distributed discrete Gaussian noise (DDGauss), sized for minDevices'),
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
      .describe('step applied to the unmasked mean update'),
    enrollmentToken: z
      .string()
      .min(16)
      .describe('devices enroll with it (Authorization: Bearer); stored as its SHA-256'),
  }),
);

export const enrollBody = named(
  'EnrollRequest',
  z.object({
    device: name.describe('the device id'),
    identityKey: z.string().min(1).describe('its Ed25519 public key, 32 bytes, base64'),
  }),
);

export const evaluationBody = named(
  'EvaluationRequest',
  z.object({
    round: z.number().int().min(1).describe('a published round'),
    accuracy: z.number().min(0).max(1).describe('held-out accuracy of its model, 0…1'),
  }),
);
