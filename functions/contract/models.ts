/**
 * Model management (admin token): upload immutable versions, move aliases, delete unaliased versions. An upload is
 * published like every version (registry/publish-model.ts): loaded and run once before anything is written.
 */
import * as R from './schemas/models.ts';
import { nameParam } from './params.ts';
import { defineRoutes } from './route.ts';

const TAG = 'Models (admin)';

/** Most bytes of an alias body ({"version": "…"}). */
export const ALIAS_BODY_BYTES = 64 * 1024;

const NOT_FOUND = { 404: 'the model has no such version' };

export const modelRoutes = defineRoutes({
  uploadVersion: {
    method: 'put',
    path: '/v1/models/{name}/versions/{version}',
    tag: TAG,
    security: 'adminToken',
    summary: 'Upload an ONNX model as a new immutable version (moves latest)',
    description: [
      'The bytes are loaded and run once before anything is stored; then the blob goes to R2 under its sha256 and the catalog records the version and moves `latest`, in one transaction.',
      "Without `warmup` the run is on inputs built from the metadata (dynamic dimensions 1, zeros; for a model that fails so, once more with non-batch open dimensions at 512): a failure there is a guess about the inputs, so the model is stored and the answer's `probe` says `ok: false` with ORT's reason (also in GET /v2/models/{name} `parameters.probe`).",
      'With `warmup` the run is on those inputs and must pass (`probe.inputs: "warmup"`). The same bytes again answer 200; with `warmup` they are run on it again and its verdict replaces the stored one.',
    ].join(' '),
    pathParams: { name: nameParam('model name'), version: nameParam('the new version') },
    params: [
      {
        name: 'warmup',
        in: 'query',
        required: false,
        schema: { type: 'string', examples: ['input:1x512,state:2x1x128,sr:=16000'] },
        description:
          "inputs to run the upload on (like Triton's model_warmup): `name:d1xd2…[=value]` per input, comma-separated (the parameter may repeat); `name:` is a scalar; every element gets `value` (default zero; `true`/`false` for BOOL, text for BYTES). Every input with an open dimension must be named; one of fixed shape may be left out (zeros). When given, a failure refuses the upload (400, nothing stored)",
      },
    ],
    body: { type: 'bytes', description: 'the ONNX model', limit: { what: 'model upload', config: 'maxModelBytes' } },
    responses: {
      201: { description: 'stored; `probe` is how it ran', json: R.versionRecord },
      200: {
        description:
          'this version already has exactly these bytes (nothing changed but, with warmup, its probe verdict)',
        json: R.versionRecord,
      },
    },
    errors: {
      400: "the name or version is not valid; warmup is not name:d1xd2…[=value], comma-separated, names an input twice or one the model lacks, leaves out an input with open dimensions, or does not fit the model's shapes, datatypes or FEDGE_MAX_TENSOR_ELEMENTS; the body is empty; not a loadable ONNX model; an input or output is not a tensor or has an element type OIP does not serve; the fixed input shapes exceed FEDGE_MAX_TENSOR_ELEMENTS; the model fails on the warmup inputs (ORT's reason) or answers more than FEDGE_MAX_TENSOR_ELEMENTS on them; without warmup: at dynamic dimensions 1 it needs more than the WASM heap bound or answers more than FEDGE_MAX_TENSOR_ELEMENTS",
      409: 'the version exists with different bytes (versions are immutable)',
      415: 'Content-Type is not application/octet-stream',
    },
  },
  setAlias: {
    method: 'put',
    path: '/v1/models/{name}/aliases/{alias}',
    tag: TAG,
    security: 'adminToken',
    summary: 'Point an alias at a version',
    pathParams: { name: nameParam('model name') },
    body: { type: 'json', schema: R.aliasBody, limit: { what: 'alias body', bytes: ALIAS_BODY_BYTES } },
    responses: { 200: { description: 'the alias now points at the version', json: R.aliasResult } },
    errors: { 400: 'the model or alias name is not valid', ...NOT_FOUND },
  },
  deleteVersion: {
    method: 'delete',
    path: '/v1/models/{name}/versions/{version}',
    tag: TAG,
    security: 'adminToken',
    summary: 'Delete a version no alias points at (its blob too, unless another version has the same bytes)',
    pathParams: { version: { description: 'a version (not an alias)' } },
    responses: { 200: { description: 'deleted', json: R.deleteResult } },
    errors: { ...NOT_FOUND, 409: 'an alias still points at it: move the alias first' },
  },
});
