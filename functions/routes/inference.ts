/**
 * Open Inference Protocol v2 (KServe "Predict Protocol, version 2"): model metadata, readiness and
 * inference, with the binary tensor data extension in both directions.
 */
import type { Context } from 'hono';
import { CACHE_ALIAS, CACHE_VERSION, type inferenceRoutes } from '../contract/inference.ts';
import { mediaType } from '../middleware/content-type.ts';
import { fail } from '../middleware/errors.ts';
import { executionProvider } from '../inference/ort-runtime.ts';
import { HEADER_LENGTH, joinBinaryBody, splitBinaryBody } from '../inference/binary-body.ts';
import { inferRequestSchema, type InferRequest } from '../inference/infer-request.ts';
import { describeIssue, parseJson } from '../middleware/json-body.ts';
import { type Tensor, decodeInputs, toBinaryData, toJsonData } from '../inference/tensor-codec.ts';
import { checkOutputSize } from '../inference/probe.ts';
import { quote, quoteList } from '../inference/quote.ts';
import type { VersionRecord } from '../registry/model-record.ts';
import { getBlob } from '../registry/blob-store.ts';
import { services } from '../services.ts';
import { EXECUTION_PROVIDER_HEADER, MODEL_SHA256_HEADER, MODEL_VERSION_HEADER } from '../../federated/http/headers.ts';
import type { Handlers } from './register.ts';

type Ctx = Context<{ Bindings: Env }>;

const PLATFORM = 'onnxruntime_onnx';

function metadata(record: VersionRecord, versions: string[]) {
  return {
    name: record.model,
    versions,
    platform: PLATFORM,
    inputs: record.inputs,
    outputs: record.outputs,
    parameters: {
      version: record.version,
      sha256: record.sha256,
      ...(record.probe && { probe: record.probe }),
      ...(record.textGeneration && { text_generation: record.textGeneration }),
    },
  };
}

async function modelMetadata(c: Ctx, ref?: string) {
  const { registry } = services(c.env);
  const name = c.req.param('name')!;
  const record = await registry.resolve(name, ref);
  const summary = await registry.getModel(name);
  return c.json(metadata(record, summary?.versions ?? [record.version]));
}

async function modelReady(c: Ctx, ref?: string) {
  const { registry } = services(c.env);
  const record = await registry.resolve(c.req.param('name')!, ref);
  await registry.load(record);
  return c.json({ name: record.model, version: record.version, ready: true });
}

/**
 * The ONNX bytes of a version, for clients that run the model on the device (LocalModel). Same visibility as
 * inference. A concrete version is immutable (cache forever, ETag = sha256); an alias answers with what it points
 * at now, named in Fedge-Model-Version.
 */
async function modelBytes(c: Ctx, ref?: string) {
  const { registry } = services(c.env);
  const record = await registry.resolve(c.req.param('name')!, ref);
  const etag = `"${record.sha256}"`;
  const headers = {
    ETag: etag,
    [MODEL_VERSION_HEADER]: record.version,
    [MODEL_SHA256_HEADER]: record.sha256,
    'Cache-Control': ref === record.version ? CACHE_VERSION : CACHE_ALIAS,
  };
  if (c.req.header('If-None-Match') === etag) return c.body(null, 304, headers);
  const bytes = await getBlob(c.env.MODEL_BLOBS, record.sha256);
  return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { ...headers, 'Content-Type': 'application/octet-stream' });
}

async function readRequest(c: Ctx): Promise<{ request: InferRequest; payload?: Uint8Array }> {
  const headerLength = c.req.header(HEADER_LENGTH);
  const type = mediaType(c);
  if (headerLength === undefined && type && type !== 'application/json' && !type.endsWith('+json')) {
    fail(415, `content type ${type} is not accepted: send application/json, or set ${HEADER_LENGTH} for a binary body`);
  }
  const body = new Uint8Array(await c.req.arrayBuffer());
  const { header, payload } =
    headerLength !== undefined ? splitBinaryBody(body, headerLength) : { header: parseJson(body), payload: undefined };
  const parsed = inferRequestSchema.safeParse(header);
  if (!parsed.success) fail(400, describeIssue(parsed.error));
  return { request: parsed.data, payload };
}

/**
 * Runs the model; a run ORT refuses is the request's or the model's fault, never the server's. Answered 400 as
 * Triton answers a failed inference (KServe/Triton map a model's execution error to 400 Bad Request): the caller
 * sent a tensor this graph cannot take (a Reshape that does not fit), or its output would not fit the bounded
 * WASM heap. 422 would say "the body is well-formed but semantically wrong", which is true of the request only
 * when the fault is the input's; the server cannot tell that from a broken model, so it keeps Triton's 400.
 * Outputs larger than a response may carry are refused before they are serialised.
 */
async function run(c: Ctx, record: VersionRecord, tensors: Tensor[], outputs: string[]): Promise<Tensor[]> {
  const { registry, config } = services(c.env);
  // A ModelRunError (ORT failed) answers 400 through onError, as Triton does.
  const result = await registry.run(record, tensors, outputs);
  checkOutputSize(result, config.maxTensorElements);
  return result;
}

/** Lets `work` finish after the response is sent (ExecutionContext.waitUntil; absent when the app runs without one). */
function keepAlive(c: Ctx, work: Promise<unknown>): void {
  let ctx: { waitUntil(promise: Promise<unknown>): void };
  try {
    ctx = c.executionCtx;
  } catch {
    return; // app.request() without an execution context (tests): nothing ends the request's I/O early
  }
  ctx.waitUntil(work);
}

async function infer(c: Ctx, ref?: string) {
  const { registry, config } = services(c.env);
  // Resolve the model while the body streams in: the catalog lookup is a Durable Object round trip.
  // A bad body is still reported first (the lookup's rejection is observed only after the body parsed).
  // A fresh resolution held in the isolate (the common case) needs neither a promise nor waitUntil.
  const name = c.req.param('name')!;
  const cached = registry.cached(name, ref);
  const pending = cached ? undefined : registry.resolve(name, ref);
  // The lookup may also be registering the bundled models, a promise every request of the isolate shares: a request
  // refused before it awaited the lookup must not leave it to be cancelled with the request (Workers end a request's
  // I/O when it answers), or later requests would wait on it forever.
  if (pending)
    keepAlive(
      c,
      pending.catch(() => undefined),
    );
  const { request, payload } = await readRequest(c);
  const record = cached ?? (await pending!);
  const tensors = decodeInputs(request.inputs, record.inputs, payload, { maxElements: config.maxTensorElements });
  const requested = request.outputs ?? [];
  const known = new Set(record.outputs.map((o) => o.name));
  const seen = new Set<string>();
  for (const o of requested) {
    if (!known.has(o.name)) fail(400, `unknown output ${quote(o.name)}; the model gives ${quoteList([...known])}`);
    if (seen.has(o.name)) fail(400, `output ${quote(o.name)} is requested twice`);
    seen.add(o.name);
  }
  const outputs = await run(
    c,
    record,
    tensors,
    requested.map((o) => o.name),
  );
  const allBinary = request.parameters?.binary_data_output === true;
  const binaryWanted = (name: string) =>
    allBinary || requested.find((o) => o.name === name)?.parameters?.binary_data === true;
  const parts: Uint8Array[] = [];
  const response = {
    model_name: record.model,
    model_version: record.version,
    ...(request.id !== undefined ? { id: request.id } : {}),
    outputs: outputs.map((t) => {
      if (binaryWanted(t.name)) {
        const bytes = toBinaryData(t);
        parts.push(bytes);
        return {
          name: t.name,
          datatype: t.datatype,
          shape: t.shape,
          parameters: { binary_data_size: bytes.byteLength },
        };
      }
      return { name: t.name, datatype: t.datatype, shape: t.shape, data: toJsonData(t) };
    }),
  };
  const headers = { [EXECUTION_PROVIDER_HEADER]: executionProvider(), [MODEL_SHA256_HEADER]: record.sha256 };
  if (!parts.length) return c.json(response, 200, headers);
  const { body, headerLength } = joinBinaryBody(response, parts);
  return c.body(body.buffer as ArrayBuffer, 200, {
    ...headers,
    'Content-Type': 'application/octet-stream',
    [HEADER_LENGTH]: String(headerLength),
  });
}

const version = (c: Ctx) => c.req.param('version');

export const inferenceHandlers: Handlers<typeof inferenceRoutes> = {
  listModels: async (c) => {
    const { registry } = services(c.env);
    return c.json({ models: await registry.listModels() });
  },
  getModelMetadata: (c) => modelMetadata(c),
  getModelReady: (c) => modelReady(c),
  getVersionMetadata: (c) => modelMetadata(c, version(c)),
  getVersionReady: (c) => modelReady(c, version(c)),
  getModelOnnx: (c) => modelBytes(c),
  getVersionOnnx: (c) => modelBytes(c, version(c)),
  inferLatest: (c) => infer(c),
  inferVersion: (c) => infer(c, version(c)),
};
