/**
 * Federated tasks. Admin: create a task, read its status, close a stage, report an evaluation. Devices: enroll
 * (with the task's enrollment token), read the current round, download the global weights, send SecAgg+ messages
 * (binary wire format) and fetch what the server relays to them after each stage. Each task is one FederatedTask
 * Durable Object; this file validates input once and maps the object's refusals to JSON errors.
 * A task name is looked up in the TaskDirectory first: an unknown task is 404 without its object ever being created.
 * Bodies are read here, bounded in size and time (read-body.ts), before the task's object sees them — a message
 * trickled byte by byte costs its sender the request, never the task's queue; a message's cap follows the task's d.
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { adminAuth } from '../middleware/admin-auth.ts';
import { limitBody } from '../middleware/body-limit.ts';
import { readBody } from '../middleware/read-body.ts';
import { fail } from '../middleware/errors.ts';
import { requireContentType } from '../middleware/content-type.ts';
import { sha256Hex } from '../../federated/model/digest.ts';
import { type WithBody, jsonBody, readJson } from '../middleware/json-body.ts';
import { taskBaseAlias } from '../registry/model-record.ts';
import { checkName, isName, nameSchema as name } from './names.ts';
import { services } from '../services.ts';
import { MAX_RELAY_WAIT_SECONDS } from '../tasks/federated-task.ts';
import type { Refusal } from '../tasks/task-answers.ts';
import { listTasks, registerTask } from '../tasks/task-directory.ts';
import { TaskClient } from '../tasks/task-client.ts';
import { type ModelSpec, ModelSpecError, parameterCount, parseModelSpec } from '../../federated/model/model-spec.ts';
import { HeadError, type HeadPlace, detectHead, headLayers } from '../../federated/model/head/index.ts';
import { getBlob } from '../registry/blob-store.ts';
import { f32, frameAt, fromBase64 } from '../../federated/bytes.ts';
import { shardSecAggParameters } from '../../federated/secagg/shards.ts';
import { DEVICE_SIGNATURE_HEADER, EPSILON_SPENT_HEADER, WEIGHTS_VERSION_HEADER } from '../../federated/http/headers.ts';
import {
  type TaskBase,
  type TaskSettings,
  type TaskSummary,
  updateLength,
} from '../../federated/aggregation/task-protocol.ts';
import {
  DEFAULT_SHARD_SIZE,
  MAX_JSON_DEPTH,
  TaskSettingsError,
  validateTaskSettings,
} from '../../federated/aggregation/task-settings.ts';
import { MESSAGE_HEAD_BYTES, maxMessageBytes, messageHead } from '../../federated/secagg/wire.ts';
import { SecAggError } from '../../federated/secagg/messages.ts';

type Ctx = Context<{ Bindings: Env }>;
/** What helpers read of a request, whatever else its route's middleware set (e.g. jsonBody's `body`). */
type Req = Pick<Ctx, 'env' | 'req'>;

const positive = z.number().positive().finite();
export const taskBody = z.object({
  task: name,
  model: name,
  alias: name.default('federated'),
  /** Spec mode: a model written in Fedge's spec and its initial weights. */
  spec: z.unknown().optional(),
  /** Initial global weights: float32 little-endian, flat in the spec's parameter order, base64. */
  weights: z.string().min(1).optional(),
  /** Base mode: fine-tune the head of a served version (federated/model/head). */
  base: z.object({ model: name, version: name }).optional(),
  /** Validated here once: headLayers (federated/model/head) reads it. */
  trainable: z
    .string()
    .regex(/^head(?::[1-9][0-9]?)?$/, 'trainable must be "head" or "head:<layers>" (1-99)')
    .optional(),
  rounds: z.number().int().min(1).max(10_000),
  devicesPerRound: z.number().int().min(3).max(10_000),
  /** Most devices one SecAgg+ instance takes; a larger round is split into parallel shards (federated/secagg/shards.ts). */
  shardSize: z.number().int().min(3).max(10_000).optional(),
  minDevices: z.number().int().min(1).optional(),
  stageSeconds: positive.max(3600).default(30), // minimum: task-settings.ts
  /** Check-in that waits this long for enough devices expires and pauses the task (task-settings.ts: DEFAULT_IDLE_SECONDS). */
  idleSeconds: positive.optional(),
  expectedDropout: z.number().min(0).max(0.6).default(0.3),
  secagg: z.object({ neighbours: z.number().int().min(2), threshold: z.number().int().min(2) }).optional(),
  update: z
    .object({ clip: positive.default(1), maxExamples: z.number().int().min(1).default(1000) })
    .default({ clip: 1, maxExamples: 1000 }),
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
    .optional(),
  distributedDp: z
    .object({ clip: positive, noiseMultiplier: positive, delta: z.number().gt(0).lt(1).default(1e-5) })
    .optional(),
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
    .default({ kind: 'fedavg' }),
  /** Devices enroll with this token (Authorization: Bearer); keep it in the app, not in the page source. */
  enrollmentToken: z.string().min(16),
});

export const enrollBody = z.object({ device: name, identityKey: z.string().min(1) });
export const evaluationBody = z.object({ round: z.number().int().min(1), accuracy: z.number().min(0).max(1) });

/** The task the path names; 404 (and no object created) for a task that does not exist. */
async function task(c: Req): Promise<TaskClient> {
  const id = c.req.param('task')!;
  const client = isName(id) ? await TaskClient.open(c.env, id) : undefined;
  if (!client) fail(404, `no task '${id.slice(0, 64)}'`);
  return client;
}

function unwrap<T>(r: T | Refusal): Exclude<T, Refusal> {
  if (r && typeof r === 'object' && 'refused' in r) {
    const { status, error, retryAfterSeconds } = (r as Refusal).refused;
    fail(status, error, retryAfterSeconds === undefined ? undefined : { 'Retry-After': String(retryAfterSeconds) });
  }
  return r as Exclude<T, Refusal>;
}

/** Spec mode: the spec and its initial weights, as sent. */
function specModel(body: z.infer<typeof taskBody>): { spec: ModelSpec; weights: Float32Array } {
  if (body.base || body.trainable) fail(400, 'give either spec and weights, or base (and trainable), not both');
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

async function createTask(c: WithBody<typeof taskBody>) {
  const body = c.var.body;
  const { spec, weights, base } = body.base ? await baseModel(c, body) : { ...specModel(body), base: undefined };
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
    ...rest
  } = body;
  const settings: TaskSettings = {
    ...rest,
    spec,
    ...(base && { base }),
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
  // Every round writes its head into the base's bytes: an alias pins the base version, so deleting it is refused
  // (409, naming the alias) for as long as the task may publish. A retried create sets it again.
  if (base) await services(c.env).registry.setAlias(base.model, taskBaseAlias(body.task), base.version);
  // Listed only once it exists (a retry of the same create registers it if this step failed before).
  await registerTask(c.env, body.task, {
    maxMessageBytes: maxMessageBytes(updateLength(settings)),
    sharded: settings.shardSize !== undefined && settings.devicesPerRound > settings.shardSize,
  });
  return c.json({ task: body.task, created: created.created, settings }, created.created ? 201 : 200);
}

const tokenDigest = (token: string) => sha256Hex(new TextEncoder().encode(token));

async function enroll(c: Ctx) {
  const t = await task(c);
  const token = c.req
    .header('Authorization')
    ?.match(/^Bearer\s+(.+)$/i)?.[1]
    ?.trim();
  if (!token) fail(401, 'enrollment token required: send Authorization: Bearer <token>');
  const body = await readJson(c, enrollBody);
  let key: Uint8Array;
  try {
    key = fromBase64(body.identityKey);
  } catch {
    fail(400, 'identityKey: not base64');
  }
  if (key.byteLength !== 32) fail(400, `identityKey: an Ed25519 public key is 32 bytes, got ${key.byteLength}`);
  const r = unwrap(await t.enroll(await tokenDigest(token), body.device, key));
  return c.json({ task: c.req.param('task'), device: body.device, enrolled: true }, r.enrolled ? 201 : 200);
}

async function message(c: Ctx) {
  requireContentType(c, 'application/octet-stream', 'the SecAgg+ message');
  const spent = c.req.header(EPSILON_SPENT_HEADER);
  const epsilon = spent === undefined ? undefined : Number(spent);
  if (epsilon !== undefined && !(epsilon >= 0 && Number.isFinite(epsilon)))
    fail(400, `${EPSILON_SPENT_HEADER} must be a non-negative number`);
  const t = await task(c);
  // Read whole, bounded by the largest message this task's rounds take and by time, before the task's queue.
  const body = await readBody(c, {
    maxBytes: t.entry.maxMessageBytes,
    what: 'SecAgg+ message',
    timeoutMs: services(c.env).config.bodyTimeoutMs,
  });
  if (!body.byteLength) fail(400, 'not a SecAgg+ message: the body is empty');
  const head = headOf(body);
  const r = unwrap(
    await t.receive(
      head.stage === 'masked-input'
        ? {
            stage: head.stage,
            head: { roundId: head.roundId, from: head.from, signature: head.signature },
            words: chunked(maskedWords(body, head.bodyOffset)),
          }
        : { stage: head.stage, head, bytes: body },
      epsilon,
    ),
  );
  return c.json(r, r.duplicate ? 200 : 202);
}

function headOf(body: Uint8Array): ReturnType<typeof messageHead> {
  try {
    return messageHead(body.subarray(0, MESSAGE_HEAD_BYTES));
  } catch (e) {
    if (e instanceof SecAggError) fail(400, `not a SecAgg+ message: ${e.message}`);
    throw e;
  }
}

/** A masked input's words: its one frame after the head, which must end the body. */
function maskedWords(body: Uint8Array, offset: number): Uint8Array {
  const frame = frameAt(body, offset);
  if (!frame.part || frame.next !== body.byteLength)
    fail(400, 'not a SecAgg+ message: malformed message: a masked input is one frame of words that ends the message');
  return frame.part;
}

/**
 * Chunks the task's object reads one at a time (it never holds a masked input whole). Not its scratch rows' size
 * (tasks/masked-input-stream.ts MASKED_CHUNK_BYTES): the object re-cuts whatever arrives.
 */
const STREAM_CHUNK_BYTES = 64 * 1024;
function chunked(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (off >= bytes.byteLength) return controller.close();
        controller.enqueue(bytes.slice(off, off + STREAM_CHUNK_BYTES));
        off += STREAM_CHUNK_BYTES;
      },
    },
    { highWaterMark: 0 },
  );
}

function relay(kind: 'broadcast' | 'delivery' | 'unmask') {
  return async (c: Ctx) => {
    const round = Number(c.req.param('round'));
    if (!Number.isInteger(round) || round < 1)
      fail(400, `round must be a positive integer, got '${c.req.param('round')}'`);
    const device = c.req.query('device');
    if (!device) fail(400, 'query parameter device is required');
    checkName(device, 'device');
    const wait = c.req.query('wait') === undefined ? 0 : Number(c.req.query('wait'));
    if (!(wait >= 0 && wait <= MAX_RELAY_WAIT_SECONDS))
      fail(400, `wait must be a number of seconds from 0 to ${MAX_RELAY_WAIT_SECONDS}`);
    const header = c.req.header(DEVICE_SIGNATURE_HEADER);
    let signature: Uint8Array | undefined;
    if (header !== undefined) {
      try {
        signature = fromBase64(header.trim());
      } catch {
        fail(400, `${DEVICE_SIGNATURE_HEADER}: not base64`);
      }
    }
    const r = await (await task(c)).relay(kind, round, device, signature, wait);
    // A long poll that ended with the stage still open is no error: 204, ask again (425 answers a plain poll).
    if (wait > 0 && 'refused' in r && r.refused.status === 425) return c.body(null, 204);
    return c.json(unwrap(r).json);
  };
}

async function weights(c: Ctx) {
  const r = unwrap(await (await task(c)).weights());
  const etag = `"w${r.version}"`;
  if (c.req.header('If-None-Match') === etag) return c.body(null, 304, { ETag: etag });
  return c.body(r.bytes as Uint8Array<ArrayBuffer>, 200, {
    'Content-Type': 'application/octet-stream',
    ETag: etag,
    [WEIGHTS_VERSION_HEADER]: String(r.version),
  });
}

async function closeStage(c: Ctx) {
  return c.json(unwrap(await (await task(c)).closeStage()));
}

/** Pauses or resumes a task: its clock stops (nothing closes, no message is taken) or starts again. */
function setRunning(running: boolean) {
  return async (c: Ctx) => {
    const t = await task(c);
    return c.json({ task: t.name, ...unwrap(await (running ? t.resume() : t.pause())) });
  };
}

/** Ends a task for good and releases its base pin: a finished task never publishes into the base again. */
async function finishTask(c: Ctx) {
  const t = await task(c);
  return c.json({ task: t.name, ...unwrap(await t.finish()) });
}

/** Deletes a task and what it stored (TaskClient.delete); the model versions it published stay. */
async function deleteTask(c: Ctx) {
  const t = await task(c);
  await t.delete();
  return c.json({ task: t.name, deleted: true });
}

/** Filters of GET /v1/tasks: `active` is running or paused. */
const STATUS_FILTERS = ['running', 'paused', 'finished', 'active'] as const;

/** Most tasks one page of GET /v1/tasks lists (each is one read of its object). */
export const MAX_TASKS_PAGE = 100;

/**
 * GET /v1/tasks?after=&limit=&status=: tasks by name, a page at a time; `next` is the `after` of the next page.
 * `status` filters the page (so a filtered page may hold fewer than `limit` tasks while `next` says more follow).
 */
async function listTaskSummaries(c: Ctx) {
  const status = c.req.query('status');
  if (status !== undefined && !(STATUS_FILTERS as readonly string[]).includes(status))
    fail(400, `status must be one of ${STATUS_FILTERS.join(', ')}`);
  const after = c.req.query('after') ?? '';
  if (after && !isName(after)) fail(400, 'after must be a task name');
  const limit = c.req.query('limit') === undefined ? 50 : Number(c.req.query('limit'));
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= MAX_TASKS_PAGE))
    fail(400, `limit must be an integer from 1 to ${MAX_TASKS_PAGE}`);
  const { names, more } = await listTasks(c.env, after, limit);
  const tasks = (await Promise.all(names.map(async (n) => c.env.FEDERATED_TASK.getByName(n).summary()))) as (
    | TaskSummary
    | Refusal
  )[];
  const listed = tasks.filter(
    (t): t is TaskSummary =>
      !('refused' in t) &&
      (status === undefined || t.status === status || (status === 'active' && t.status !== 'finished')),
  );
  return c.json({ tasks: listed, ...(more && names.length ? { next: names.at(-1) } : {}) });
}

export const taskRoutes = new Hono<{ Bindings: Env }>()
  .get('/', listTaskSummaries)
  .post(
    '/',
    adminAuth(),
    limitBody((cfg) => cfg.maxModelBytes, 'task body'),
    jsonBody(taskBody, { maxDepth: MAX_JSON_DEPTH }),
    createTask,
  )
  .get('/:task', async (c) => c.json(unwrap(await (await task(c)).status())))
  .delete('/:task', adminAuth(), deleteTask)
  .post('/:task/close-stage', adminAuth(), closeStage)
  .post('/:task/pause', adminAuth(), setRunning(false))
  .post('/:task/resume', adminAuth(), setRunning(true))
  .post('/:task/finish', adminAuth(), finishTask)
  .post(
    '/:task/evaluations',
    adminAuth(),
    limitBody(() => 4096, 'evaluation body'),
    jsonBody(evaluationBody),
    async (c) => {
      const { round, accuracy } = c.var.body;
      return c.json(unwrap(await (await task(c)).evaluation(round, accuracy)));
    },
  )
  .post(
    '/:task/devices',
    limitBody(() => 4096, 'enrollment body'),
    enroll,
  )
  .get('/:task/round', async (c) => c.json(unwrap(await (await task(c)).roundInfo())))
  .get('/:task/weights', weights)
  .post('/:task/messages', message)
  .get('/:task/rounds/:round/broadcast', relay('broadcast'))
  .get('/:task/rounds/:round/delivery', relay('delivery'))
  .get('/:task/rounds/:round/unmask', relay('unmask'));
