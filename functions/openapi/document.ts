/**
 * The OpenAPI 3.1 document of the edge's HTTP API (served at GET /openapi.json by routes/openapi.ts).
 * - Request bodies are the routes' own zod schemas (inferRequestSchema, taskBody, enrollBody, evaluationBody,
 *   aliasBody) turned into JSON Schema draft 2020-12 — OpenAPI 3.1's dialect — by zod's `z.toJSONSchema`, in
 *   input mode (defaults shown, defaulted fields optional): what is documented is what the route validates.
 * - Responses are the zod schemas of responses.ts, checked at compile time against the types the routes answer with.
 * - Errors are `{ "error": "…" }` (middleware/errors.ts) with the statuses each route can answer and when.
 * What JSON Schema cannot say is said in words: checks against the model's metadata (names, datatypes, shapes,
 * values), the binary tensor data framing, the SecAgg+ wire format, limits read from the Worker's variables.
 * test/functions/openapi/openapi.test.ts holds this list to the app's own route list, so a route without an entry fails.
 */
import { z } from 'zod';
import { inferRequestSchema } from '../inference/infer-request.ts';
import { MAX_JSON_DEPTH as MAX_BODY_DEPTH } from '../middleware/json-body.ts';
import { aliasBody } from '../routes/models.ts';
import { enrollBody, evaluationBody, taskBody } from '../routes/tasks.ts';
import { SERVER_VERSION } from '../routes/health.ts';
import { repositoryIndexBody } from '../routes/stats.ts';
import { LATENCY_BUCKETS } from '../metrics/isolate-metrics.ts';
import { DEFAULTS } from '../config.ts';
import { MAX_RELAY_WAIT_SECONDS } from '../tasks/federated-task.ts';
import { MAX_JSON_DEPTH as MAX_TASK_DEPTH, MAX_SETTINGS_BYTES } from '../../federated/aggregation/task-settings.ts';
import * as R from './responses.ts';

type Json = Record<string, unknown>;

/** JSON Schema (draft 2020-12) of a zod schema, ready to sit under components.schemas. */
export function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as Json;
  return rest;
}

/** Adds descriptions to properties, by dotted path ('secagg.neighbours'), without touching the route's schema. */
function describe(schema: Json, descriptions: Record<string, string>): Json {
  for (const [path, text] of Object.entries(descriptions)) {
    let node: Json | undefined = schema;
    for (const key of path.split('.')) node = (node?.properties as Record<string, Json> | undefined)?.[key];
    if (!node) throw new Error(`openapi: no property ${path} to describe`);
    node.description = text;
  }
  return schema;
}

const MiB = (n: number) => `${n / 1024 / 1024} MiB`;

const REQUEST_SCHEMAS = [
  'InferRequest',
  'CreateTaskRequest',
  'EnrollRequest',
  'EvaluationRequest',
  'SetAliasRequest',
  'RepositoryIndexRequest',
] as const;

/** Request bodies: the routes' own schemas (built when the document is first asked for, not at module load). */
const requestSchemas = (): Record<(typeof REQUEST_SCHEMAS)[number], Json> => ({
  InferRequest: describe(jsonSchema(inferRequestSchema), {
    id: 'echoed in the response',
    inputs:
      'every input the model takes, once each; checked against the model metadata (name, datatype, shape) and FEDGE_MAX_TENSOR_ELEMENTS',
    outputs:
      'only these outputs (default: all), each at most once; parameters.binary_data asks for one as binary tensor data',
    parameters: 'parameters.binary_data_output: every output as binary tensor data',
  }),
  CreateTaskRequest: describe(jsonSchema(taskBody), {
    task: 'the task name (URL path segment)',
    model: 'the catalog model the task publishes under, version r<round>',
    alias: 'alias moved to each published version',
    spec: 'a model spec (fedge.model/v1, federated/model/model-spec.ts): input shape, layers, input/output names, labels',
    weights: "initial global weights: float32 little-endian, flat in the spec's parameter order, base64",
    minDevices: 'fewest masked inputs a round publishes with (default threshold + 1; at least 3, else 422)',
    stageSeconds:
      'how long a stage waits for devices (at least 1); a stage still receiving answers stays open up to 6×',
    expectedDropout: 'used only to derive secagg when it is not given (secAggParameters)',
    secagg:
      'neighbours k (even below min(devicesPerRound, shardSize) − 1, at most 254) and threshold t (> k/2, else 422); default from secAggParameters for min(devicesPerRound, shardSize) devices',
    shardSize:
      "most devices one SecAgg+ instance takes: a larger round is split into shards run by parallel aggregator objects; the server learns each shard's sum",
    update: 'per-coordinate clip of the weight update and the example count that gets full weight (fixed point)',
    privacy: 'example-level DP-SGD every device runs, and its per-device budget epsilon (δ = delta)',
    distributedDp: 'client-level distributed discrete Gaussian noise (DDGauss), sized for minDevices',
    serverOptimizer: 'step applied to the unmasked mean update',
    enrollmentToken: 'devices enroll with it (Authorization: Bearer); stored as its SHA-256',
  }),
  EnrollRequest: describe(jsonSchema(enrollBody), {
    device: 'the device id',
    identityKey: 'its Ed25519 public key, 32 bytes, base64',
  }),
  EvaluationRequest: describe(jsonSchema(evaluationBody), {
    round: 'a published round',
    accuracy: 'held-out accuracy of its model, 0…1',
  }),
  SetAliasRequest: describe(jsonSchema(aliasBody), { version: 'an existing version of the model' }),
  RepositoryIndexRequest: describe(jsonSchema(repositoryIndexBody), {
    ready: 'true: only the versions that are READY',
  }),
});

const responseSchemas = {
  Error: R.errorBody,
  ServerMetadata: R.serverMetadata,
  Live: R.live,
  Ready: R.ready,
  TensorMetadata: R.tensorMeta,
  ModelSummary: R.modelSummary,
  ModelList: R.modelList,
  ModelMetadata: R.modelMetadata,
  ModelReady: R.modelReady,
  InferResponse: R.inferResponse,
  VersionRecord: R.versionRecord,
  ProbeVerdict: R.probeVerdict,
  AliasResult: R.aliasResult,
  DeleteResult: R.deleteResult,
  TaskSettings: R.taskSettings,
  TaskCreated: R.taskCreated,
  RoundRecord: R.roundRecord,
  TaskStatus: R.taskStatus,
  TaskList: R.taskList,
  Enrolled: R.enrolled,
  RoundInfo: R.roundInfo,
  MessageAccepted: R.messageAccepted,
  StageClosed: R.stageClosed,
  TaskLifecycle: R.taskLifecycle,
  TaskDeleted: R.taskDeleted,
  EvaluationRecorded: R.evaluationRecorded,
  BroadcastRelay: R.broadcastRelay,
  DeliveryRelay: R.deliveryRelay,
  UnmaskRelay: R.unmaskRelay,
  ModelStatsResponse: R.modelStatsResponse,
  RepositoryIndex: R.repositoryIndex,
} satisfies Record<string, z.ZodType>;

type SchemaName = (typeof REQUEST_SCHEMAS)[number] | keyof typeof responseSchemas;
const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: SchemaName) => ({ 'application/json': { schema: ref(name) } });
const bytes = (description: string) => ({
  'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream', description } },
});
const header = (name: string) => ({ $ref: `#/components/headers/${name}` });

// ---- errors: status → when ---------------------------------------------------------------------------------------

type Errors = Record<number, string>;

function merge(...sets: Errors[]): Errors {
  const out: Errors = {};
  for (const set of sets)
    for (const [status, when] of Object.entries(set)) out[+status] = out[+status] ? `${out[+status]}; ${when}` : when;
  return out;
}

const RATE: Errors = {
  429: 'over the per-client rate limit (RATE_LIMITER: 1,200 requests a minute per connecting address, or for the admin; FEDGE_RATE_LIMIT=off turns it off); Retry-After: 60',
};
const body = (limit: string): Errors => ({
  408: 'the body did not arrive whole within FEDGE_BODY_TIMEOUT_MS (30 s)',
  413: `the body is larger than ${limit} (counted as it arrives, whatever Content-Length says)`,
  429: 'the isolate is busy reading other bodies (48 MiB in flight) and this one could not start within the timeout; Retry-After: 1',
});
const ADMIN: Errors = {
  401: 'no admin token (Authorization: Bearer …); WWW-Authenticate: Bearer',
  403: 'the admin token is wrong, or the admin API is disabled (FEDGE_ADMIN_TOKEN not set)',
  429: 'more than 10 wrong admin tokens a minute from this address: the address is refused for a minute before its token is compared, the right one included; Retry-After',
};
const JSON_BODY = (depth: number): Errors => ({
  400: `the body is not UTF-8 JSON, is nested deeper than ${depth} levels, or does not match the schema (the message names the first problem's path)`,
  415: 'Content-Type is not application/json',
});
const NO_TASK: Errors = { 404: 'no such task (no Durable Object is created for it)' };
const DEVICE_LIMIT = (what: string): Errors => ({
  429: `this device is over its ${what} (per device, counted only after its signature verified); Retry-After`,
});

// ---- operations ----------------------------------------------------------------------------------------------

interface Operation {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  tag: 'Inference (OIP v2)' | 'Models (admin)' | 'Federated tasks' | 'Monitoring' | 'Documents';
  id: string;
  summary: string;
  description?: string;
  security?: 'adminToken' | 'enrollmentToken' | 'deviceSignature';
  parameters?: (ParamName | Json)[];
  requestBody?: Json;
  responses: Record<string, Json>;
  errors: Errors;
}

type ParamName = keyof typeof param;

const param = {
  name: { name: 'name', in: 'path', required: true, schema: { type: 'string' }, description: 'model name' },
  version: {
    name: 'version',
    in: 'path',
    required: true,
    schema: { type: 'string' },
    description: 'a version, or an alias name (latest, stable, …)',
  },
  uploadVersion: {
    name: 'version',
    in: 'path',
    required: true,
    schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
    description: 'the new version',
  },
  modelName: {
    name: 'name',
    in: 'path',
    required: true,
    schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
    description: 'model name',
  },
  alias: {
    name: 'alias',
    in: 'path',
    required: true,
    schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
    description: 'alias name; `latest` pins it until the next upload',
  },
  task: { name: 'task', in: 'path', required: true, schema: { type: 'string' }, description: 'task name' },
  round: {
    name: 'round',
    in: 'path',
    required: true,
    schema: { type: 'integer', minimum: 1 },
    description: 'the round the device is in',
  },
  device: {
    name: 'device',
    in: 'query',
    required: true,
    schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
    description: 'the device asking (it signs the request)',
  },
  after: {
    name: 'after',
    in: 'query',
    required: false,
    schema: { type: 'string' },
    description: "list the tasks whose names sort after this one (the previous page's `next`)",
  },
  limit: {
    name: 'limit',
    in: 'query',
    required: false,
    schema: { type: 'integer', minimum: 1, maximum: 100, default: 50 },
    description: 'most tasks in the page',
  },
  taskStatus: {
    name: 'status',
    in: 'query',
    required: false,
    schema: { type: 'string', enum: ['running', 'paused', 'finished', 'active'] },
    description:
      'only tasks with this status (`active`: running or paused); a filtered page may hold fewer than `limit` tasks',
  },
  wait: {
    name: 'wait',
    in: 'query',
    required: false,
    schema: { type: 'number', minimum: 0, maximum: MAX_RELAY_WAIT_SECONDS, default: 0 },
    description: 'long poll: hold the request up to this many seconds until the stage closes',
  },
  ifNoneMatch: {
    name: 'If-None-Match',
    in: 'header',
    required: false,
    schema: { type: 'string' },
    description: 'the ETag you have: 304 when it is still current',
  },
  headerLength: {
    name: 'Inference-Header-Content-Length',
    in: 'header',
    required: false,
    schema: { type: 'integer', minimum: 1 },
    description:
      'binary tensor data extension: the body starts with this many bytes of JSON header, then the raw bytes of every input with parameters.binary_data_size, in order',
  },
  warmup: {
    name: 'warmup',
    in: 'query',
    required: false,
    schema: { type: 'string', examples: ['input:1x512,state:2x1x128,sr:=16000'] },
    description:
      "inputs to run the upload on (like Triton's model_warmup): `name:d1xd2…[=value]` per input, comma-separated (the parameter may repeat); `name:` is a scalar; every element gets `value` (default zero; `true`/`false` for BOOL, text for BYTES). Every input with an open dimension must be named; one of fixed shape may be left out (zeros). When given, a failure refuses the upload (400, nothing stored)",
  },
  epsilonSpent: {
    name: 'Fedge-Epsilon-Spent',
    in: 'header',
    required: false,
    schema: { type: 'number', minimum: 0 },
    description: 'ε this device has spent on the task so far (shown in the status as the largest reported)',
  },
};

const ok = (description: string, content?: Json, headers?: Record<string, Json>) => ({
  description,
  ...(content ? { content } : {}),
  ...(headers ? { headers } : {}),
});
const notModified = ok('the ETag sent in If-None-Match is still current (no body)');

const modelErrors = (what: string): Errors => ({ 404: `unknown model, or ${what}` });
const loadErrors: Errors = {
  400: 'the stored model cannot be loaded (e.g. it needs more than FEDGE_MAX_WASM_BYTES of WebAssembly heap)',
};

const INFER_400 = [
  'the body is not UTF-8 JSON or nests deeper than 64 levels; the header does not match InferRequest;',
  'Inference-Header-Content-Length is not a byte count within the body;',
  "a tensor does not fit the model (unknown, missing or repeated input; datatype; shape; more elements than FEDGE_MAX_TENSOR_ELEMENTS, inputs added up; data count, ragged nesting, a non-finite float or a value outside its datatype's range; binary sizes that do not add up);",
  'an unknown or repeated output;',
  "the model failed on this input (ORT's reason, including out of memory against FEDGE_MAX_WASM_BYTES);",
  'the outputs add up to more than FEDGE_MAX_TENSOR_ELEMENTS',
].join(' ');

function inferOperation(path: string, id: string, versioned: boolean): Operation {
  return {
    method: 'post',
    path,
    tag: 'Inference (OIP v2)',
    id,
    summary: versioned ? 'Run a version (or alias) of a model' : "Run a model's latest version",
    description: [
      'OIP v2 inference. JSON tensors (`data` flat row-major, or nested exactly as `shape`), or the binary tensor data',
      'extension: set Inference-Header-Content-Length, send the JSON header then the raw little-endian bytes of each',
      'input with `parameters.binary_data_size`, in order. Outputs come back as JSON, or as binary data when',
      "`parameters.binary_data_output` (all) or an output's `parameters.binary_data` asks — then the answer is",
      'application/octet-stream framed the same way. A bad body is reported before an unknown model.',
    ].join(' '),
    parameters: versioned ? ['name', 'version', 'headerLength'] : ['name', 'headerLength'],
    requestBody: {
      required: true,
      content: {
        'application/json': { schema: ref('InferRequest') },
        ...bytes(
          'binary tensor data: Inference-Header-Content-Length bytes of JSON (InferRequest), then the binary inputs; any Content-Type is accepted when that header is set',
        ),
      },
    },
    responses: {
      200: ok(
        'the outputs',
        {
          ...json('InferResponse'),
          ...bytes(
            'Inference-Header-Content-Length bytes of JSON (InferResponse, binary outputs with parameters.binary_data_size), then their raw bytes in order',
          ),
        },
        {
          'Fedge-Execution-Provider': header('Fedge-Execution-Provider'),
          'Fedge-Model-Sha256': header('Fedge-Model-Sha256'),
          'Inference-Header-Content-Length': header('Inference-Header-Content-Length'),
        },
      ),
    },
    errors: merge(
      {
        400: INFER_400,
        415: 'Content-Type is neither JSON (application/json, +json) nor absent, and Inference-Header-Content-Length is not set',
      },
      modelErrors(versioned ? 'no such version or alias' : "it has no 'latest' alias"),
      body(`FEDGE_MAX_INFER_BYTES (default ${MiB(DEFAULTS.maxInferBytes)})`),
    ),
  };
}

function metadataOperations(versioned: boolean): Operation[] {
  const base = versioned ? '/v2/models/{name}/versions/{version}' : '/v2/models/{name}';
  const params: ParamName[] = versioned ? ['name', 'version'] : ['name'];
  const missing = modelErrors(versioned ? 'no such version or alias' : "it has no 'latest' alias");
  const suffix = versioned ? 'Version' : 'Model';
  return [
    {
      method: 'get',
      path: base,
      tag: 'Inference (OIP v2)',
      id: `get${suffix}Metadata`,
      summary: versioned
        ? 'Metadata of a version (or of what an alias points at)'
        : "Metadata of a model's latest version",
      parameters: params,
      responses: {
        200: ok('inputs, outputs, versions; parameters name the version and its sha256', json('ModelMetadata')),
      },
      errors: missing,
    },
    {
      method: 'get',
      path: `${base}/ready`,
      tag: 'Inference (OIP v2)',
      id: `get${suffix}Ready`,
      summary: 'Load the model into this isolate and say it is ready',
      parameters: params,
      responses: { 200: ok('loaded', json('ModelReady')) },
      errors: merge(loadErrors, missing),
    },
    {
      method: 'get',
      path: `${base}/onnx`,
      tag: 'Inference (OIP v2)',
      id: `get${suffix}Onnx`,
      summary: 'The ONNX bytes, to run the model on the device (LocalModel)',
      description:
        'ETag is the sha256. A concrete version is immutable (Cache-Control: public, max-age=31536000, immutable); an alias answers with what it points at now (no-cache), named in Fedge-Model-Version. Models are as public as inference on them.',
      parameters: [...params, 'ifNoneMatch'],
      responses: {
        200: ok('the model', bytes('ONNX model'), {
          ETag: header('ETag'),
          'Fedge-Model-Version': header('Fedge-Model-Version'),
          'Fedge-Model-Sha256': header('Fedge-Model-Sha256'),
          'Cache-Control': header('Cache-Control'),
        }),
        304: notModified,
      },
      errors: missing,
    },
  ];
}

function relayOperation(kind: 'broadcast' | 'delivery' | 'unmask'): Operation {
  const what = {
    broadcast: [
      "After advertise-keys: the roster and this device's neighbours' advertised keys",
      'BroadcastRelay',
      'this device is not in the round',
    ],
    delivery: [
      "After share-keys: the encrypted shares this device's neighbours dealt it",
      'DeliveryRelay',
      'this device did not share keys in the round',
    ],
    unmask: [
      'After masked-input: who survived (whose self-mask shares to reveal, and whose mask-key shares)',
      'UnmaskRelay',
      "this device's masked input is not in the round",
    ],
  }[kind] as [string, SchemaName, string];
  return {
    method: 'get',
    path: `/v1/tasks/{task}/rounds/{round}/${kind}`,
    tag: 'Federated tasks',
    id: `get${kind[0]!.toUpperCase()}${kind.slice(1)}Relay`,
    summary: what[0],
    security: 'deviceSignature',
    description:
      'Only the device itself may read it: Fedge-Device-Signature is its Ed25519 signature over (task, round, relay, device) (relaySigningBytes in federated/aggregation/task-protocol.ts).',
    parameters: ['task', 'round', 'device', 'wait'],
    responses: {
      200: ok('what the server relays to this device', json(what[1])),
      204: ok('the `wait` ended with the stage still open: ask again (no body)'),
    },
    errors: merge(
      {
        400: `round is not a positive integer; device is missing or not a valid name; wait is not 0…${MAX_RELAY_WAIT_SECONDS}; Fedge-Device-Signature is not base64`,
      },
      { 401: 'no Fedge-Device-Signature', 403: "the signature is not the device's, or the device is not enrolled" },
      NO_TASK,
      {
        422: `the round is over (the task is at another round), the task has finished, or ${what[2]}`,
        425: 'the stage is still open (without `wait`): ask again',
      },
      DEVICE_LIMIT('relay limit (30 at once, then 2 a second)'),
    ),
  };
}

const PER_ISOLATE =
  'Counters are per isolate and in memory (Cloudflare runs many isolates and recycles them); the durable record is the Workers Analytics Engine dataset fedge_inference.';

const MONITORING: Operation[] = [
  {
    method: 'get',
    path: '/v2/models/stats',
    tag: 'Monitoring',
    id: 'getAllModelStats',
    summary: 'Statistics of every version of every model (Triton statistics extension)',
    description: `Triton's statistics extension: one entry per version in the catalog, zeros for a version this isolate never ran. ${PER_ISOLATE}`,
    responses: { 200: ok('the statistics', json('ModelStatsResponse')) },
    errors: {},
  },
  {
    method: 'get',
    path: '/v2/models/{name}/stats',
    tag: 'Monitoring',
    id: 'getModelStats',
    summary: 'Statistics of every version of a model',
    description: PER_ISOLATE,
    parameters: ['name'],
    responses: { 200: ok('the statistics', json('ModelStatsResponse')) },
    errors: { 404: 'unknown model' },
  },
  {
    method: 'get',
    path: '/v2/models/{name}/versions/{version}/stats',
    tag: 'Monitoring',
    id: 'getVersionStats',
    summary: 'Statistics of a version (or of what an alias points at)',
    description: PER_ISOLATE,
    parameters: ['name', 'version'],
    responses: { 200: ok('the statistics (one entry)', json('ModelStatsResponse')) },
    errors: modelErrors('no such version or alias'),
  },
  {
    method: 'post',
    path: '/v2/repository/index',
    tag: 'Monitoring',
    id: 'repositoryIndex',
    summary: 'Every version in the catalog and whether this isolate has it loaded (model_repository extension)',
    description:
      "READY when this isolate holds the version's ONNX Runtime session; UNAVAILABLE (with a reason) otherwise — it loads on its first inference or …/ready. The body is optional.",
    requestBody: { required: false, content: json('RepositoryIndexRequest') },
    responses: { 200: ok('the index', json('RepositoryIndex')) },
    errors: merge(JSON_BODY(MAX_BODY_DEPTH), body('4 KiB')),
  },
  {
    method: 'get',
    path: '/metrics',
    tag: 'Monitoring',
    id: 'getMetrics',
    summary: 'Prometheus metrics of this isolate (text exposition format 0.0.4)',
    description: `fedge_http_requests_total{method,route,status} (route = the route pattern), fedge_inference_requests_total{model,outcome}, fedge_inference_duration_seconds{model} (histogram, buckets ${LATENCY_BUCKETS.join(', ')} s), fedge_inference_batch_size{model} (histogram), fedge_sessions_loaded, fedge_isolate_start_time_seconds. ${PER_ISOLATE}`,
    responses: {
      200: ok('the metrics', {
        'text/plain': { schema: { type: 'string', description: 'Prometheus text exposition format, version 0.0.4' } },
      }),
    },
    errors: {},
  },
];

export const OPERATIONS: Operation[] = [
  {
    method: 'get',
    path: '/openapi.json',
    tag: 'Documents',
    id: 'getOpenApi',
    summary: 'This document (OpenAPI 3.1)',
    responses: { 200: ok('the OpenAPI document', { 'application/json': { schema: { type: 'object' } } }) },
    errors: {},
  },
  {
    method: 'get',
    path: '/v2',
    tag: 'Inference (OIP v2)',
    id: 'getServerMetadata',
    summary: 'Server metadata (name, version, extensions)',
    responses: { 200: ok('server metadata', json('ServerMetadata')) },
    errors: {},
  },
  {
    method: 'get',
    path: '/v2/health/live',
    tag: 'Inference (OIP v2)',
    id: 'getLive',
    summary: 'Liveness',
    responses: { 200: ok('live', json('Live')) },
    errors: {},
  },
  {
    method: 'get',
    path: '/v2/health/ready',
    tag: 'Inference (OIP v2)',
    id: 'getReady',
    summary: 'Readiness: loads the default model, so the first inference is warm',
    responses: { 200: ok('ready', json('Ready')) },
    errors: merge({ 503: 'the default model could not be resolved or loaded' }),
  },
  {
    method: 'get',
    path: '/v2/models',
    tag: 'Inference (OIP v2)',
    id: 'listModels',
    summary: 'Every model with its versions and aliases',
    responses: { 200: ok('the catalog', json('ModelList')) },
    errors: {},
  },
  ...metadataOperations(false),
  ...metadataOperations(true),
  inferOperation('/v2/models/{name}/infer', 'inferLatest', false),
  inferOperation('/v2/models/{name}/versions/{version}/infer', 'inferVersion', true),
  {
    method: 'put',
    path: '/v1/models/{name}/versions/{version}',
    tag: 'Models (admin)',
    id: 'uploadVersion',
    security: 'adminToken',
    summary: 'Upload an ONNX model as a new immutable version (moves latest)',
    description: [
      'The bytes are loaded and run once before anything is stored; then the blob goes to R2 under its sha256 and the catalog records the version and moves `latest`, in one transaction.',
      "Without `warmup` the run is on inputs built from the metadata (dynamic dimensions 1, zeros; for a model that fails so, once more with non-batch open dimensions at 512): a failure there is a guess about the inputs, so the model is stored and the answer's `probe` says `ok: false` with ORT's reason (also in GET /v2/models/{name} `parameters.probe`).",
      'With `warmup` the run is on those inputs and must pass (`probe.inputs: "warmup"`). The same bytes again answer 200; with `warmup` they are run on it again and its verdict replaces the stored one.',
    ].join(' '),
    parameters: ['modelName', 'uploadVersion', 'warmup'],
    requestBody: { required: true, content: bytes('the ONNX model') },
    responses: {
      201: ok('stored; `probe` is how it ran', json('VersionRecord')),
      200: ok(
        'this version already has exactly these bytes (nothing changed but, with warmup, its probe verdict)',
        json('VersionRecord'),
      ),
    },
    errors: merge(
      {
        400: "the name or version is not valid; warmup is not name:d1xd2…[=value], comma-separated, names an input twice or one the model lacks, leaves out an input with open dimensions, or does not fit the model's shapes, datatypes or FEDGE_MAX_TENSOR_ELEMENTS; the body is empty; not a loadable ONNX model; an input or output is not a tensor or has an element type OIP does not serve; the fixed input shapes exceed FEDGE_MAX_TENSOR_ELEMENTS; the model fails on the warmup inputs (ORT's reason) or answers more than FEDGE_MAX_TENSOR_ELEMENTS on them; without warmup: at dynamic dimensions 1 it needs more than the WASM heap bound or answers more than FEDGE_MAX_TENSOR_ELEMENTS",
        409: 'the version exists with different bytes (versions are immutable)',
        415: 'Content-Type is not application/octet-stream',
      },
      body(`FEDGE_MAX_MODEL_BYTES (default ${MiB(DEFAULTS.maxModelBytes)})`),
      ADMIN,
    ),
  },
  {
    method: 'put',
    path: '/v1/models/{name}/aliases/{alias}',
    tag: 'Models (admin)',
    id: 'setAlias',
    security: 'adminToken',
    summary: 'Point an alias at a version',
    parameters: ['modelName', 'alias'],
    requestBody: { required: true, content: json('SetAliasRequest') },
    responses: { 200: ok('the alias now points at the version', json('AliasResult')) },
    errors: merge(
      { 400: 'the model or alias name is not valid' },
      JSON_BODY(MAX_BODY_DEPTH),
      { 404: 'the model has no such version' },
      body('64 KiB'),
      ADMIN,
    ),
  },
  {
    method: 'delete',
    path: '/v1/models/{name}/versions/{version}',
    tag: 'Models (admin)',
    id: 'deleteVersion',
    security: 'adminToken',
    summary: 'Delete a version no alias points at (its blob too, unless another version has the same bytes)',
    parameters: ['name', { ...param.version, description: 'a version (not an alias)' }],
    responses: { 200: ok('deleted', json('DeleteResult')) },
    errors: merge(
      { 404: 'the model has no such version', 409: 'an alias still points at it: move the alias first' },
      ADMIN,
    ),
  },
  {
    method: 'post',
    path: '/v1/tasks',
    tag: 'Federated tasks',
    id: 'createTask',
    security: 'adminToken',
    summary: 'Create a federated task (its first round opens at once)',
    description: `The settings are checked with the same functions the rounds use: 400 for settings that cannot work, 422 for settings that would leave a device's input unprotected (every device would refuse such a round too). The same body again answers 200. Settings with the spec are at most ${MAX_SETTINGS_BYTES / 1024} KiB as JSON.`,
    requestBody: { required: true, content: json('CreateTaskRequest') },
    responses: {
      201: ok('created', json('TaskCreated')),
      200: ok('the task exists with exactly these settings', json('TaskCreated')),
    },
    errors: merge(
      JSON_BODY(MAX_TASK_DEPTH),
      {
        400: "spec is not a valid model spec; weights are not base64, not 4 × the spec's parameter count bytes, or not all finite; the settings cannot work (a stage under 1 s, neighbours odd below devicesPerRound − 1 or over 254, threshold above neighbours or needing more devices than devicesPerRound, minDevices above devicesPerRound, fixed point that would overflow, distributedDp out of range, an update over 16 Mi words, settings over 256 KiB)",
        409: 'a task of this name exists with other settings',
        422: 'the settings void privacy: threshold ≤ neighbours/2 or < 2, minDevices < 3, or distributed-DP noise not sized for minDevices',
      },
      body(`FEDGE_MAX_MODEL_BYTES (default ${MiB(DEFAULTS.maxModelBytes)})`),
      ADMIN,
    ),
  },
  {
    method: 'get',
    path: '/v1/tasks',
    tag: 'Federated tasks',
    id: 'listTasks',
    summary: 'The tasks that exist, by name, a page at a time: name, model, round, stage, enrolled devices',
    parameters: ['after', 'limit', 'taskStatus'],
    responses: { 200: ok('one page of tasks', json('TaskList')) },
    errors: {
      400: 'after is not a task name, limit is not an integer from 1 to 100, or status is not running, paused, finished or active',
    },
  },
  {
    method: 'get',
    path: '/v1/tasks/{task}',
    tag: 'Federated tasks',
    id: 'getTask',
    summary: "A task's status: round, stage, history of every round, published versions, ε",
    parameters: ['task'],
    responses: { 200: ok('the status', json('TaskStatus')) },
    errors: NO_TASK,
  },
  {
    method: 'post',
    path: '/v1/tasks/{task}/pause',
    tag: 'Federated tasks',
    id: 'pauseTask',
    security: 'adminToken',
    summary:
      "Stop a task's clock: its round waits where it is (check-ins, messages and sum kept), devices' messages are refused with 409 until it resumes",
    parameters: ['task'],
    responses: { 200: ok('paused (also when it was)', json('TaskLifecycle')) },
    errors: merge(NO_TASK, { 409: 'the task has finished' }, ADMIN),
  },
  {
    method: 'post',
    path: '/v1/tasks/{task}/resume',
    tag: 'Federated tasks',
    id: 'resumeTask',
    security: 'adminToken',
    summary: 'Start a paused task again: the current stage gets a full stageSeconds from now',
    parameters: ['task'],
    responses: { 200: ok('running (also when it was)', json('TaskLifecycle')) },
    errors: merge(NO_TASK, { 409: 'the task has finished' }, ADMIN),
  },
  {
    method: 'post',
    path: '/v1/tasks/{task}/finish',
    tag: 'Federated tasks',
    id: 'finishTask',
    security: 'adminToken',
    summary:
      'End a task for good: a round under way is abandoned, no round opens again, its base pin is released; published versions stay served',
    parameters: ['task'],
    responses: { 200: ok('finished (also when it was)', json('TaskLifecycle')) },
    errors: merge(NO_TASK, ADMIN),
  },
  {
    method: 'delete',
    path: '/v1/tasks/{task}',
    tag: 'Federated tasks',
    id: 'deleteTask',
    security: 'adminToken',
    summary:
      "Delete a task: finish it, release its base pin, delete its storage and its aggregators', and unlist it. The model versions it published stay (delete them under /v1/models)",
    parameters: ['task'],
    responses: { 200: ok('deleted', json('TaskDeleted')) },
    errors: merge(NO_TASK, ADMIN),
  },
  {
    method: 'post',
    path: '/v1/tasks/{task}/close-stage',
    tag: 'Federated tasks',
    id: 'closeStage',
    security: 'adminToken',
    summary: 'Close the current stage now (finishing the round after unmask)',
    parameters: ['task'],
    responses: {
      200: ok('the stage the task is at now, and the version published if the round finished', json('StageClosed')),
    },
    errors: merge(NO_TASK, ADMIN),
  },
  {
    method: 'post',
    path: '/v1/tasks/{task}/evaluations',
    tag: 'Federated tasks',
    id: 'postEvaluation',
    security: 'adminToken',
    summary: "Record a published round's held-out accuracy",
    parameters: ['task'],
    requestBody: { required: true, content: json('EvaluationRequest') },
    responses: { 200: ok('recorded', json('EvaluationRecorded')) },
    errors: merge(
      JSON_BODY(MAX_TASK_DEPTH),
      { 404: 'no such task, or no such round', 422: 'the round published no model' },
      body('4 KiB'),
      ADMIN,
    ),
  },
  {
    method: 'post',
    path: '/v1/tasks/{task}/devices',
    tag: 'Federated tasks',
    id: 'enrollDevice',
    security: 'enrollmentToken',
    summary: "Enroll a device: register its Ed25519 identity key with the task's enrollment token",
    parameters: ['task'],
    requestBody: { required: true, content: json('EnrollRequest') },
    responses: { 201: ok('enrolled', json('Enrolled')), 200: ok('already enrolled with this key', json('Enrolled')) },
    errors: merge(
      NO_TASK,
      JSON_BODY(MAX_TASK_DEPTH),
      {
        400: 'identityKey is not base64 or not 32 bytes',
        401: 'no enrollment token (Authorization: Bearer …)',
        403: 'the enrollment token is not valid for this task',
        409: 'the device is enrolled with another identity key',
      },
      body('4 KiB'),
    ),
  },
  {
    method: 'get',
    path: '/v1/tasks/{task}/round',
    tag: 'Federated tasks',
    id: 'getRound',
    summary: 'The current round: what a device needs to join it',
    parameters: ['task'],
    responses: { 200: ok('the round', json('RoundInfo')) },
    errors: NO_TASK,
  },
  {
    method: 'get',
    path: '/v1/tasks/{task}/weights',
    tag: 'Federated tasks',
    id: 'getWeights',
    summary: 'The global weights the current round trains from',
    parameters: ['task', 'ifNoneMatch'],
    responses: {
      200: ok("float32 little-endian, flat in the spec's parameter order", bytes('weights'), {
        ETag: header('WeightsETag'),
        'Fedge-Weights-Version': header('Fedge-Weights-Version'),
      }),
      304: notModified,
    },
    errors: NO_TASK,
  },
  {
    method: 'post',
    path: '/v1/tasks/{task}/messages',
    tag: 'Federated tasks',
    id: 'postMessage',
    summary: 'One signed SecAgg+ message from an enrolled device (binary wire format)',
    description:
      "The message carries its sender and an Ed25519 signature over (protocol, round id, stage, sender, payload digest) with the identity key the device enrolled (federated/secagg/wire.ts, messages.ts). A byte-identical resend is a no-op (200). The body is bounded by the largest message this task's rounds take.",
    parameters: ['task', 'epsilonSpent'],
    requestBody: {
      required: true,
      content: bytes('encodeMessage(…) of an advertise-keys, share-keys, masked-input or unmask message'),
    },
    responses: {
      202: ok('accepted', json('MessageAccepted')),
      200: ok('the same bytes were accepted before (no-op)', json('MessageAccepted')),
    },
    errors: merge(
      {
        415: 'Content-Type is not application/octet-stream',
        400: "Fedge-Epsilon-Spent is not a non-negative number; the body is empty or is not a SecAgg+ message of this task's update length",
      },
      NO_TASK,
      {
        403: 'the sender is not enrolled or not in this round, or the signature is not its',
        409: 'the device already sent a different message of this stage this round',
        422: "the task has finished; the round is full; the message does not fit the round's current state (another round or stage, a share with a bad x or y, …)",
      },
      body("the largest message this task's rounds take"),
      DEVICE_LIMIT('message limit (12 at once, then one every 2 s)'),
    ),
  },
  relayOperation('broadcast'),
  relayOperation('delivery'),
  relayOperation('unmask'),
  ...MONITORING,
];

const TAGS = [
  {
    name: 'Inference (OIP v2)',
    description: 'Open Inference Protocol v2 (KServe predict protocol v2) with the binary tensor data extension',
  },
  {
    name: 'Models (admin)',
    description: 'The model registry: immutable, content-addressed versions and movable aliases',
  },
  {
    name: 'Federated tasks',
    description:
      'Federated learning with SecAgg+ (admin creates; devices enroll, join rounds, send messages, read relays)',
  },
  {
    name: 'Monitoring',
    description: "Triton's statistics extension, the model_repository index, Prometheus metrics (per isolate)",
  },
  { name: 'Documents', description: 'This document' },
];

const HEADERS: Record<string, Json> = {
  'X-Request-Id': {
    description: 'the request id (sent on every answer; logged with errors)',
    schema: { type: 'string' },
  },
  'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' } },
  'WWW-Authenticate': {
    description: 'Bearer realm="fedge-admin" (admin routes without a token)',
    schema: { type: 'string' },
  },
  'Fedge-Execution-Provider': {
    description: 'where the edge ran the model (wasm in workerd)',
    schema: { type: 'string', enum: ['wasm', 'webgpu'] },
  },
  'Fedge-Model-Sha256': { description: 'sha256 of the version that answered', schema: { type: 'string' } },
  'Fedge-Model-Version': { description: 'the version an alias resolved to', schema: { type: 'string' } },
  'Inference-Header-Content-Length': {
    description: 'present when the answer carries binary tensor data: bytes of JSON header before the binary outputs',
    schema: { type: 'integer' },
  },
  ETag: { description: '"<sha256>" of the model bytes', schema: { type: 'string' } },
  'Cache-Control': {
    description: 'immutable for a concrete version, no-cache for an alias',
    schema: { type: 'string' },
  },
  WeightsETag: { description: '"w<version>" of the global weights', schema: { type: 'string' } },
  'Fedge-Weights-Version': {
    description: 'version of the global weights (RoundInfo.weightsVersion)',
    schema: { type: 'integer' },
  },
};

function errorResponse(status: number, when: string): Json {
  const headers: Record<string, Json> = { 'X-Request-Id': header('X-Request-Id') };
  if (status === 429) headers['Retry-After'] = header('Retry-After');
  if (status === 401 && when.includes('WWW-Authenticate')) headers['WWW-Authenticate'] = header('WWW-Authenticate');
  return { description: when, headers, content: json('Error') };
}

function operationObject(op: Operation): Json {
  const responses: Record<string, Json> = {};
  for (const [status, r] of Object.entries(op.responses)) {
    responses[status] = {
      ...r,
      headers: { 'X-Request-Id': header('X-Request-Id'), ...((r.headers as Json | undefined) ?? {}) },
    };
  }
  // Every route is behind the per-client rate limit (middleware/rate-limit.ts), before anything else.
  for (const [status, when] of Object.entries(merge(RATE, op.errors)).sort(([a], [b]) => +a - +b))
    responses[status] = errorResponse(+status, when);
  return {
    operationId: op.id,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    ...(op.security ? { security: [{ [op.security]: [] }] } : {}),
    ...(op.parameters ? { parameters: op.parameters.map((p) => (typeof p === 'string' ? param[p] : p)) } : {}),
    ...(op.requestBody ? { requestBody: op.requestBody } : {}),
    responses,
  };
}

let built: Json | undefined;

/** The document (built once per isolate); `origin` fills `servers` so tools call the edge that served it. */
export function openApiDocument(origin?: string): Json {
  built ??= build();
  return origin ? { ...built, servers: [{ url: origin }] } : built;
}

function build(): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operationObject(op);
  const schemas: Record<string, Json> = { ...requestSchemas() };
  for (const [name, schema] of Object.entries(responseSchemas)) schemas[name] = jsonSchema(schema, 'output');
  return {
    openapi: '3.1.1',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: 'Fedge edge API',
      version: SERVER_VERSION,
      summary: 'OIP v2 inference on Cloudflare Workers, a model registry, and federated tasks with SecAgg+',
      description: [
        'Every error is `{"error": "…"}` with a 4xx status (a 5xx only for a bug, naming the request id, or 503 from readiness); a refused request changes nothing.',
        'Every answer carries X-Request-Id. Every route is rate limited per client (429 + Retry-After).',
        'Browsers: CORS for FEDGE_CORS_ORIGINS; admin routes answer only origins listed by name.',
        "Request bodies are the routes' own zod schemas; limits come from the Worker's variables (wrangler.toml [vars]).",
        'Prose: docs/http-api.md in the repository.',
      ].join(' '),
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    tags: TAGS,
    paths,
    components: {
      schemas,
      headers: HEADERS,
      securitySchemes: {
        adminToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'FEDGE_ADMIN_TOKEN (a Worker secret); 10 wrong tries a minute per address',
        },
        enrollmentToken: { type: 'http', scheme: 'bearer', description: "the task's enrollmentToken" },
        deviceSignature: {
          type: 'apiKey',
          in: 'header',
          name: 'Fedge-Device-Signature',
          description:
            "base64 Ed25519 signature, with the device's enrolled identity key, over relaySigningBytes(task, round, relay, device)",
        },
      },
    },
  };
}
