/**
 * Open Inference Protocol v2 (KServe "Predict Protocol, version 2"): the catalog, model metadata, readiness, the ONNX
 * bytes and inference with the binary tensor data extension. Each model route comes twice: the model's `latest`, and
 * a version (or alias) under /versions/{version}.
 */
import { inferRequestSchema } from '../inference/infer-request.ts';
import { MAX_JSON_DEPTH } from '../middleware/json-body.ts';
import * as R from './schemas/models.ts';
import { ifNoneMatch } from './params.ts';
import { type Errors, type Param, type Route, defineRoutes } from './route.ts';
import { named } from './schemas/named.ts';

export const inferRequest = named('InferRequest', inferRequestSchema);

const TAG = 'Inference (OIP v2)';

/** Cache-Control of a model's bytes: a concrete version never changes; an alias may move. */
export const CACHE_VERSION = 'public, max-age=31536000, immutable';
export const CACHE_ALIAS = 'no-cache';

const missing = (versioned: boolean): Errors => ({
  404: `unknown model, or ${versioned ? 'no such version or alias' : "it has no 'latest' alias"}`,
});

const headerLength: Param = {
  name: 'Inference-Header-Content-Length',
  in: 'header',
  required: false,
  schema: { type: 'integer', minimum: 1 },
  description:
    'binary tensor data extension: the body starts with this many bytes of JSON header, then the raw bytes of every input with parameters.binary_data_size, in order',
};

/** Server-side refusals (5xx, so not among the documented 4xx errors) a load or run can answer. */
const MEMORY =
  "A model that does not fit ORT's WebAssembly heap (FEDGE_MAX_WASM_BYTES), even after the isolate's other sessions are released, answers 503 while sessions in use hold the memory (retry) or 507 when it alone needs more.";

const INFER_400 = [
  `the body is not UTF-8 JSON or nests deeper than ${MAX_JSON_DEPTH} levels; the header does not match InferRequest;`,
  'Inference-Header-Content-Length is not a byte count within the body;',
  "a tensor does not fit the model (unknown, missing or repeated input; datatype; shape; more elements than FEDGE_MAX_TENSOR_ELEMENTS, inputs added up; data count, ragged nesting, a non-finite float or a value outside its datatype's range; binary sizes that do not add up);",
  'an unknown or repeated output;',
  "the model failed on this input (ORT's reason);",
  'the outputs add up to more than FEDGE_MAX_TENSOR_ELEMENTS',
].join(' ');

function modelRoutes(versioned: boolean) {
  const base = versioned ? '/v2/models/{name}/versions/{version}' : '/v2/models/{name}';
  const metadata: Route = {
    method: 'get',
    path: base,
    tag: TAG,
    summary: versioned
      ? 'Metadata of a version (or of what an alias points at)'
      : "Metadata of a model's latest version",
    responses: {
      200: {
        description: 'inputs, outputs, versions; parameters name the version and its sha256',
        json: R.modelMetadata,
      },
    },
    errors: missing(versioned),
  };
  const ready: Route = {
    method: 'get',
    path: `${base}/ready`,
    tag: TAG,
    summary: 'Load the model into this isolate and say it is ready',
    description: MEMORY,
    responses: { 200: { description: 'loaded', json: R.modelReady } },
    errors: {
      400: 'the stored model cannot be loaded',
      ...missing(versioned),
    },
  };
  const onnx: Route = {
    method: 'get',
    path: `${base}/onnx`,
    tag: TAG,
    summary: 'The ONNX bytes, to run the model on the device (LocalModel)',
    description: `ETag is the sha256. A concrete version is immutable (Cache-Control: ${CACHE_VERSION}); an alias answers with what it points at now (${CACHE_ALIAS}), named in Fedge-Model-Version. Models are as public as inference on them.`,
    params: [ifNoneMatch],
    responses: {
      200: {
        description: 'the model',
        bytes: 'ONNX model',
        headers: {
          ETag: 'ETag',
          'Fedge-Model-Version': 'Fedge-Model-Version',
          'Fedge-Model-Sha256': 'Fedge-Model-Sha256',
          'Cache-Control': 'Cache-Control',
        },
      },
      304: { description: 'the ETag sent in If-None-Match is still current (no body)' },
    },
    errors: missing(versioned),
  };
  const infer: Route = {
    method: 'post',
    path: `${base}/infer`,
    tag: TAG,
    summary: versioned ? 'Run a version (or alias) of a model' : "Run a model's latest version",
    description: [
      'OIP v2 inference. JSON tensors (`data` flat row-major, or nested exactly as `shape`), or the binary tensor data',
      'extension: set Inference-Header-Content-Length, send the JSON header then the raw little-endian bytes of each',
      'input with `parameters.binary_data_size`, in order. Outputs come back as JSON, or as binary data when',
      "`parameters.binary_data_output` (all) or an output's `parameters.binary_data` asks — then the answer is",
      'application/octet-stream framed the same way. A bad body is reported before an unknown model.',
      MEMORY,
    ].join(' '),
    params: [headerLength],
    body: {
      type: 'bytes',
      json: inferRequest,
      description:
        'binary tensor data: Inference-Header-Content-Length bytes of JSON (InferRequest), then the binary inputs; any Content-Type is accepted when that header is set',
      limit: { what: 'inference request', config: 'maxInferBytes' },
    },
    responses: {
      200: {
        description: 'the outputs',
        json: R.inferResponse,
        bytes:
          'Inference-Header-Content-Length bytes of JSON (InferResponse, binary outputs with parameters.binary_data_size), then their raw bytes in order',
        headers: {
          'Fedge-Execution-Provider': 'Fedge-Execution-Provider',
          'Fedge-Model-Sha256': 'Fedge-Model-Sha256',
          'Inference-Header-Content-Length': 'Inference-Header-Content-Length',
        },
      },
    },
    errors: {
      400: INFER_400,
      415: 'Content-Type is neither JSON (application/json, +json) nor absent, and Inference-Header-Content-Length is not set',
      ...missing(versioned),
    },
  };
  return { metadata, ready, onnx, infer };
}

const latest = modelRoutes(false);
const version = modelRoutes(true);

export const inferenceRoutes = defineRoutes({
  listModels: {
    method: 'get',
    path: '/v2/models',
    tag: TAG,
    summary: 'Every model with its versions and aliases',
    responses: { 200: { description: 'the catalog', json: R.modelList } },
  },
  getModelMetadata: latest.metadata,
  getModelReady: latest.ready,
  getVersionMetadata: version.metadata,
  getVersionReady: version.ready,
  getModelOnnx: latest.onnx,
  getVersionOnnx: version.onnx,
  inferLatest: latest.infer,
  inferVersion: version.infer,
});
