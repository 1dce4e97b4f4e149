/**
 * POST /v1/tasks: a task from its body (contract/schemas/task-bodies.ts) in spec mode (a spec and its weights), base
 * mode (a served model whose head devices train) or adapter mode (a served language model whose LoRA adapters or last
 * blocks devices train: task-adapter.ts), its SecAgg+ parameters and shards derived, its settings checked with the functions the
 * rounds use, then created in its object and listed.
 */
import type { z } from 'zod';
import type { taskRoutes } from '../contract/tasks.ts';
import type { taskBody } from '../contract/schemas/task-bodies.ts';
import { fail } from '../middleware/errors.ts';
import { taskBaseAlias } from '../registry/model-record.ts';
import { services } from '../services.ts';
import { registerTask } from '../tasks/task-directory.ts';
import { type ModelSpec, ModelSpecError, parameterCount, parseModelSpec } from '../../federated/model/model-spec.ts';
import { HeadError, type HeadPlace, detectHead, headLayers } from '../../federated/model/head/index.ts';
import { getBlob } from '../registry/blob-store.ts';
import { f32, fromBase64 } from '../../federated/bytes.ts';
import { shardSecAggParameters } from '../../federated/secagg/shards.ts';
import {
  type TaskAdapter,
  type TaskBase,
  type TaskSettings,
  updateLength,
} from '../../federated/aggregation/task-protocol.ts';
import {
  DEFAULT_SHARD_SIZE,
  TaskSettingsError,
  validateTaskSettings,
} from '../../federated/aggregation/task-settings.ts';
import { maxMessageBytes } from '../../federated/secagg/wire.ts';
import type { Handler } from './register.ts';
import { type Req, tokenDigest, unwrap } from './task-access.ts';
import { adapterModel } from './task-adapter.ts';
import { DECODER_TRAINABLE } from '../../federated/aggregation/task-adapter.ts';
import type { DecoderSpec } from '../../federated/model/decoder-spec.ts';

/** Spec mode: the spec and its initial weights, as sent. */
function specModel(body: z.infer<typeof taskBody>): { spec: ModelSpec; weights: Float32Array } {
  if (body.base || body.trainable || body.lora)
    fail(400, 'give either spec and weights, or base (and trainable), not both');
  if (body.spec === undefined || body.weights === undefined)
    fail(
      400,
      "give spec and weights (a model in Fedge's spec), or base: { model, version } (a served model whose head devices train)",
    );
  let spec: ModelSpec;
  try {
    spec = parseModelSpec(body.spec);
  } catch (e) {
    if (e instanceof ModelSpecError) fail(400, `spec: ${e.message}`);
    throw e;
  }
  let raw: Uint8Array;
  try {
    raw = fromBase64(body.weights);
  } catch {
    fail(400, 'weights: not base64');
  }
  const d = parameterCount(spec);
  if (raw.byteLength !== 4 * d)
    fail(400, `weights: the spec has ${d} parameters (${4 * d} bytes of float32), got ${raw.byteLength} bytes`);
  const weights = f32(raw.slice(), 'weights');
  if (!weights.every(Number.isFinite)) fail(400, 'weights: every value must be finite');
  return { spec, weights };
}

/**
 * Base mode: the served version's head, found in its graph (detectHead) — its spec trains on the devices and its
 * current weights start the task. A graph without a dense head, or with one the Trainer cannot train, is a 422
 * with the reason; an unknown model or version is a 404.
 */
async function baseModel(
  c: Req,
  body: z.infer<typeof taskBody>,
): Promise<{ spec: ModelSpec; weights: Float32Array; base: TaskBase }> {
  if (body.spec !== undefined || body.weights !== undefined)
    fail(400, 'give either spec and weights, or base (and trainable), not both');
  const { model, version } = body.base!;
  const trainable = body.trainable ?? 'head';
  const { registry } = services(c.env);
  const record = await registry.resolve(model, version);
  try {
    const head = detectHead(await getBlob(c.env.MODEL_BLOBS, record.sha256), { layers: headLayers(trainable) });
    const last = head.spec.layers.at(-1);
    if (last?.type !== 'dense' || last.activation !== 'softmax')
      fail(
        422,
        `base ${model}@${record.version}: its head ends in ${head.output.activation}; devices train softmax (cross-entropy) heads only`,
      );
    const place: HeadPlace = { spec: head.spec, layers: head.layers, embedding: head.embedding, output: head.output };
    return {
      spec: head.spec,
      weights: head.flat,
      base: { model, version: record.version, sha256: record.sha256, trainable, head: place },
    };
  } catch (e) {
    // The graph has no head Fedge can train (trainable itself was validated by the body's schema).
    if (e instanceof HeadError) fail(422, `base ${model}@${record.version}: ${e.message}`);
    throw e;
  }
}

/** What the task trains and starts from: spec mode, a served model's head, or a served language model's adapters. */
async function taskModel(
  c: Req,
  body: z.infer<typeof taskBody>,
): Promise<{ spec: ModelSpec | DecoderSpec; weights: Float32Array; base?: TaskBase; adapter?: TaskAdapter }> {
  if (!body.base) return specModel(body);
  const decoder = body.trainable !== undefined && DECODER_TRAINABLE.test(body.trainable);
  if (body.lora && !body.trainable?.startsWith('lora:')) fail(400, 'lora: { alpha } goes with trainable "lora:<rank>"');
  if (!decoder) return baseModel(c, body);
  if (body.spec !== undefined || body.weights !== undefined)
    fail(400, 'give either spec and weights, or base (and trainable), not both');
  return adapterModel(c, body);
}

export const createTask: Handler<typeof taskRoutes.createTask> = async (c) => {
  const body = c.var.body;
  const { spec, weights, base, adapter } = await taskModel(c, body);
  // Rounds larger than one object's budget are sharded unless the task says otherwise (DEFAULT_SHARD_SIZE).
  const shardSize = body.shardSize ?? (body.devicesPerRound > DEFAULT_SHARD_SIZE ? DEFAULT_SHARD_SIZE : undefined);
  const secagg =
    body.secagg ??
    (() => {
      // Each shard is its own SecAgg+ instance: its k and t follow from a shard's expected size.
      const p = shardSecAggParameters({
        devicesPerRound: body.devicesPerRound,
        shardSize,
        dropoutRate: body.expectedDropout,
      });
      return { neighbours: p.neighbours, threshold: p.threshold };
    })();
  const minDevices = body.minDevices ?? secagg.threshold + 1;
  const {
    enrollmentToken,
    weights: _w,
    expectedDropout: _e,
    spec: _s,
    minDevices: _m,
    base: _b,
    trainable: _t,
    lora: _l,
    ...rest
  } = body;
  const settings: TaskSettings = {
    ...rest,
    spec,
    ...(base && { base }),
    ...(adapter && { adapter }),
    secagg,
    minDevices,
    ...(shardSize !== undefined && { shardSize }),
  };
  try {
    // The same checks the rounds run, now: 400 for settings that cannot work, 422 for ones that void privacy.
    validateTaskSettings(settings);
  } catch (e) {
    if (e instanceof TaskSettingsError) fail(e.status, e.message);
    throw e;
  }
  const created = unwrap(
    await c.env.FEDERATED_TASK.getByName(body.task).create(settings, weights, await tokenDigest(enrollmentToken)),
  );
  // Every round writes its head (or merges its adapters) into the base's bytes: an alias pins the base version, so deleting it is refused
  // (409, naming the alias) for as long as the task may publish. A retried create sets it again.
  const pinned = base ?? adapter;
  if (pinned) await services(c.env).registry.setAlias(pinned.model, taskBaseAlias(body.task), pinned.version);
  // Listed only once it exists (a retry of the same create registers it if this step failed before).
  await registerTask(c.env, body.task, {
    maxMessageBytes: maxMessageBytes(updateLength(settings)),
    sharded: settings.shardSize !== undefined && settings.devicesPerRound > settings.shardSize,
  });
  return c.json({ task: body.task, created: created.created, settings }, created.created ? 201 : 200);
};
