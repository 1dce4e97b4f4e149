/**
 * Federated tasks. Admin: create a task, list and read it, pause, resume, finish or delete it, close a stage, report
 * an evaluation. Devices: enroll (with the task's enrollment token), read the current round, download the global
 * weights, send SecAgg+ messages (binary wire format) and read what the server relays to them after each stage.
 */
import type { z } from 'zod';
import { MAX_JSON_DEPTH as MAX_TASK_DEPTH, MAX_SETTINGS_BYTES } from '../../federated/aggregation/task-settings.ts';
import { MAX_RELAY_WAIT_SECONDS } from '../../federated/aggregation/task-protocol.ts';
import { KiB, NO_TASK, deviceLimit } from './errors.ts';
import { deviceQuery, ifNoneMatch } from './params.ts';
import { type Errors, type Route, defineRoutes } from './route.ts';
import * as B from './schemas/task-bodies.ts';
import * as R from './schemas/tasks.ts';

const TAG = 'Federated tasks';

/** Filters of GET /v1/tasks: `active` is running or paused. */
export const STATUS_FILTERS = ['running', 'paused', 'finished', 'active'] as const;
/** Most tasks one page of GET /v1/tasks lists (each is one read of its object), and how many by default. */
export const MAX_TASKS_PAGE = 100;
export const DEFAULT_TASKS_PAGE = 50;
/** Most bytes of an enrollment or an evaluation body. */
export const SMALL_BODY_BYTES = 4 * 1024;

const FINISHED: Errors = { 409: 'the task has finished' };

/** A lifecycle step of a task (admin): pause, resume, finish. */
const lifecycle = (path: string, summary: string, answer: string, finished = true): Route => ({
  method: 'post',
  path: `/v1/tasks/{task}/${path}`,
  tag: TAG,
  security: 'adminToken',
  summary,
  responses: { 200: { description: answer, json: R.taskLifecycle } },
  errors: { ...NO_TASK, ...(finished ? FINISHED : {}) },
});

function relay(kind: 'broadcast' | 'delivery' | 'unmask'): Route {
  const kinds: Record<typeof kind, [string, z.ZodType, string]> = {
    broadcast: [
      "After advertise-keys: the roster and this device's neighbours' advertised keys",
      R.broadcastRelay,
      'this device is not in the round',
    ],
    delivery: [
      "After share-keys: the encrypted shares this device's neighbours dealt it",
      R.deliveryRelay,
      'this device did not share keys in the round',
    ],
    unmask: [
      'After masked-input: who survived (whose self-mask shares to reveal, and whose mask-key shares)',
      R.unmaskRelay,
      "this device's masked input is not in the round",
    ],
  };
  const [summary, schema, absent] = kinds[kind];
  return {
    method: 'get',
    path: `/v1/tasks/{task}/rounds/{round}/${kind}`,
    tag: TAG,
    summary,
    security: 'deviceSignature',
    description:
      'Only the device itself may read it: Fedge-Device-Signature is its Ed25519 signature over (task, round, relay, device) (relaySigningBytes in federated/aggregation/task-protocol.ts).',
    params: [
      deviceQuery,
      {
        name: 'wait',
        in: 'query',
        required: false,
        schema: { type: 'number', minimum: 0, maximum: MAX_RELAY_WAIT_SECONDS, default: 0 },
        description: 'long poll: hold the request up to this many seconds until the stage closes',
      },
    ],
    responses: {
      200: { description: 'what the server relays to this device', json: schema },
      204: { description: 'the `wait` ended with the stage still open: ask again (no body)' },
    },
    errors: {
      400: `round is not a positive integer; device is missing or not a valid name; wait is not 0…${MAX_RELAY_WAIT_SECONDS}; Fedge-Device-Signature is not base64`,
      401: 'no Fedge-Device-Signature',
      403: "the signature is not the device's, or the device is not enrolled",
      ...NO_TASK,
      422: `the round is over (the task is at another round), the task has finished, or ${absent}`,
      425: 'the stage is still open (without `wait`): ask again',
      ...deviceLimit('relay limit'),
    },
  };
}

export const taskRoutes = defineRoutes({
  createTask: {
    method: 'post',
    path: '/v1/tasks',
    tag: TAG,
    security: 'adminToken',
    summary: 'Create a federated task (its first round opens at once)',
    description: `The settings are checked with the same functions the rounds use: 400 for settings that cannot work, 422 for settings that would leave a device's input unprotected (every device would refuse such a round too). The same body again answers 200. Give spec and weights (spec mode), or base and perhaps trainable (base mode: a served model's head trains; or, with \`trainable: "lora:<rank>"\` or \`"last:<blocks>"\` on a language model Fedge exported, its LoRA adapters or last blocks train and each round publishes the merged model, which the generate routes serve). Settings with the spec are at most ${KiB(MAX_SETTINGS_BYTES)} as JSON.`,
    body: {
      type: 'json',
      schema: B.taskBody,
      maxDepth: MAX_TASK_DEPTH,
      limit: { what: 'task body', config: 'maxModelBytes' },
    },
    responses: {
      201: { description: 'created', json: R.taskCreated },
      200: { description: 'the task exists with exactly these settings', json: R.taskCreated },
    },
    errors: {
      400: `spec is not a valid model spec; weights are not base64, not 4 × the spec's parameter count bytes, or not all finite; both spec/weights and base given, or neither; the settings cannot work (a stage too short, neighbours odd below devicesPerRound − 1 or over 254, threshold above neighbours or needing more devices than devicesPerRound, minDevices above devicesPerRound, fixed point that would overflow, distributedDp out of range, an update over the word limit, settings over ${KiB(MAX_SETTINGS_BYTES)})`,
      409: 'a task of this name exists with other settings',
      422: "the settings void privacy: threshold ≤ neighbours/2 or < 2, minDevices < 3, or distributed-DP noise not sized for minDevices; base's graph has no head devices can train; with lora:<rank> or last:<blocks>, base is not a decoder Fedge exported (a classifier, or a third-party decoder without fedge.spec) or the rank or block count is above its width or depth",
    },
  },
  listTasks: {
    method: 'get',
    path: '/v1/tasks',
    tag: TAG,
    summary: 'The tasks that exist, by name, a page at a time: name, model, round, stage, enrolled devices',
    params: [
      {
        name: 'after',
        in: 'query',
        required: false,
        schema: { type: 'string' },
        description: "list the tasks whose names sort after this one (the previous page's `next`)",
      },
      {
        name: 'limit',
        in: 'query',
        required: false,
        schema: { type: 'integer', minimum: 1, maximum: MAX_TASKS_PAGE, default: DEFAULT_TASKS_PAGE },
        description: 'most tasks in the page',
      },
      {
        name: 'status',
        in: 'query',
        required: false,
        schema: { type: 'string', enum: [...STATUS_FILTERS] },
        description:
          'only tasks with this status (`active`: running or paused); a filtered page may hold fewer than `limit` tasks',
      },
    ],
    responses: { 200: { description: 'one page of tasks', json: R.taskList } },
    errors: {
      400: `after is not a task name, limit is not an integer from 1 to ${MAX_TASKS_PAGE}, or status is not ${STATUS_FILTERS.join(', ')}`,
    },
  },
  getTask: {
    method: 'get',
    path: '/v1/tasks/{task}',
    tag: TAG,
    summary: "A task's status: round, stage, history of every round, published versions, ε",
    description:
      "Public, naming no device. With the admin token, the operator's view: each round's `badShares` (who revealed a bad share of whose secret) and `detail` (why it was abandoned, devices named).",
    responses: { 200: { description: 'the status', json: R.taskStatus } },
    errors: NO_TASK,
  },
  deleteTask: {
    method: 'delete',
    path: '/v1/tasks/{task}',
    tag: TAG,
    security: 'adminToken',
    summary:
      "Delete a task: finish it, release its base pin, delete its storage and its aggregators', and unlist it. The model versions it published stay (delete them under /v1/models)",
    responses: { 200: { description: 'deleted', json: R.taskDeleted } },
    errors: NO_TASK,
  },
  closeStage: {
    method: 'post',
    path: '/v1/tasks/{task}/close-stage',
    tag: TAG,
    security: 'adminToken',
    summary: 'Close the current stage now (finishing the round after unmask)',
    responses: {
      200: {
        description: 'the stage the task is at now, and the version published if the round finished',
        json: R.stageClosed,
      },
    },
    errors: NO_TASK,
  },
  pauseTask: lifecycle(
    'pause',
    "Stop a task's clock: its round waits where it is (check-ins, messages and sum kept), devices' messages are refused with 409 until it resumes",
    'paused (also when it was)',
  ),
  resumeTask: lifecycle(
    'resume',
    'Start a paused task again: the current stage gets a full stageSeconds from now',
    'running (also when it was)',
  ),
  finishTask: lifecycle(
    'finish',
    'End a task for good: a round under way is abandoned, no round opens again, its base pin is released; published versions stay served',
    'finished (also when it was)',
    false,
  ),
  postEvaluation: {
    method: 'post',
    path: '/v1/tasks/{task}/evaluations',
    tag: TAG,
    security: 'adminToken',
    summary: "Record a published round's held-out accuracy",
    body: {
      type: 'json',
      schema: B.evaluationBody,
      limit: { what: 'evaluation body', bytes: SMALL_BODY_BYTES },
    },
    responses: { 200: { description: 'recorded', json: R.evaluationRecorded } },
    errors: { 404: 'no such task, or no such round', 422: 'the round published no model' },
  },
  enrollDevice: {
    method: 'post',
    path: '/v1/tasks/{task}/devices',
    tag: TAG,
    security: 'enrollmentToken',
    summary: "Enroll a device: register its Ed25519 identity key with the task's enrollment token",
    body: {
      type: 'json',
      schema: B.enrollBody,
      readBy: 'handler',
      limit: { what: 'enrollment body', bytes: SMALL_BODY_BYTES },
    },
    responses: {
      201: { description: 'enrolled', json: R.enrolled },
      200: { description: 'already enrolled with this key', json: R.enrolled },
    },
    errors: {
      ...NO_TASK,
      400: 'identityKey is not base64 or not 32 bytes',
      401: 'no enrollment token (Authorization: Bearer …)',
      403: "the enrollment token is not valid for this task; the task's issuer did not vouch for this device (credential missing, expired or not its signature)",
      409: 'the device is enrolled with another identity key; the task has enrolled its enrollment.maxDevices',
      429: 'enrollment.maxPerAddress devices have enrolled from this address',
    },
  },
  revokeDevice: {
    method: 'delete',
    path: '/v1/tasks/{task}/devices/{device}',
    tag: TAG,
    security: 'adminToken',
    summary:
      'Revoke an enrolled device: its identity key is forgotten and its messages are refused from now on (a round it is in may be abandoned)',
    responses: { 200: { description: 'revoked', json: R.deviceRevoked } },
    errors: { 404: 'no such task, or no such device enrolled in it' },
  },
  getRound: {
    method: 'get',
    path: '/v1/tasks/{task}/round',
    tag: TAG,
    summary: 'The current round: what a device needs to join it',
    responses: { 200: { description: 'the round', json: R.roundInfo } },
    errors: NO_TASK,
  },
  getWeights: {
    method: 'get',
    path: '/v1/tasks/{task}/weights',
    tag: TAG,
    summary: 'The global weights the current round trains from',
    params: [ifNoneMatch],
    responses: {
      200: {
        description: "float32 little-endian, flat in the spec's parameter order",
        bytes: 'weights',
        headers: { ETag: 'WeightsETag', 'Fedge-Weights-Version': 'Fedge-Weights-Version' },
      },
      304: { description: 'the ETag sent in If-None-Match is still current (no body)' },
    },
    errors: NO_TASK,
  },
  postMessage: {
    method: 'post',
    path: '/v1/tasks/{task}/messages',
    tag: TAG,
    summary: 'One signed SecAgg+ message from an enrolled device (binary wire format)',
    description:
      "The message carries its sender and an Ed25519 signature over (protocol, round id, stage, sender, payload digest) with the identity key the device enrolled (federated/secagg/wire.ts, messages.ts). A byte-identical resend is a no-op (200). The body is bounded by the largest message this task's rounds take.",
    params: [
      {
        name: 'Fedge-Epsilon-Spent',
        in: 'header',
        required: false,
        schema: { type: 'number', minimum: 0 },
        description: 'ε this device has spent on the task so far (shown in the status as the largest reported)',
      },
    ],
    body: {
      type: 'bytes',
      description: 'encodeMessage(…) of an advertise-keys, share-keys, masked-input or unmask message',
      limit: { what: 'SecAgg+ message', handler: "the largest message this task's rounds take" },
    },
    responses: {
      202: { description: 'accepted', json: R.messageAccepted },
      200: { description: 'the same bytes were accepted before (no-op)', json: R.messageAccepted },
    },
    errors: {
      415: 'Content-Type is not application/octet-stream',
      400: "Fedge-Epsilon-Spent is not a non-negative number; the body is empty or is not a SecAgg+ message of this task's update length",
      ...NO_TASK,
      403: 'the sender is not enrolled or not in this round, or the signature is not its',
      409: 'the device already sent a different message of this stage this round',
      422: "the task has finished; the round is full; the message does not fit the round's current state (another round or stage, a share with a bad x or y, …)",
      ...deviceLimit('message limit'),
    },
  },
  getBroadcastRelay: relay('broadcast'),
  getDeliveryRelay: relay('delivery'),
  getUnmaskRelay: relay('unmask'),
});
