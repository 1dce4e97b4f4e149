/**
 * The parts of the OpenAPI document no single route owns: tags, response headers, security schemes, and zod →
 * JSON Schema (draft 2020-12, OpenAPI 3.1's dialect).
 */
import { z } from 'zod';

export type Json = Record<string, unknown>;

/** JSON Schema (draft 2020-12) of a zod schema, ready to sit under components.schemas. */
export function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as Json;
  return rest;
}

export const TAGS = [
  {
    name: 'Inference (OIP v2)',
    description: 'Open Inference Protocol v2 (KServe predict protocol v2) with the binary tensor data extension',
  },
  {
    name: 'Text generation',
    description:
      "Language models: OIP's generate extension (Triton's generate / generate_stream) and an OpenAI-compatible surface under /openai/v1",
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

export const HEADERS: Record<string, Json> = {
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

export const SECURITY_SCHEMES: Record<string, Json> = {
  adminToken: {
    type: 'http',
    scheme: 'bearer',
    description: 'FEDGE_ADMIN_TOKEN (a Worker secret); wrong tries are limited per address (ADMIN_AUTH_LIMITER)',
  },
  enrollmentToken: { type: 'http', scheme: 'bearer', description: "the task's enrollmentToken" },
  deviceSignature: {
    type: 'apiKey',
    in: 'header',
    name: 'Fedge-Device-Signature',
    description:
      "base64 Ed25519 signature, with the device's enrolled identity key, over relaySigningBytes(task, round, relay, device)",
  },
};
