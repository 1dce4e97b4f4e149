/**
 * Every HTTP header the edge's browser clients send or read beyond the CORS-safelisted ones (Fetch standard §3.2.2,
 * "CORS-safelisted request-header"; §3.2.3 "CORS-safelisted response-header name"). One list: the Worker's CORS
 * policy allows and exposes exactly these, the SDK uses these names, and docs/http-api.md lists them (a test checks
 * all three). A header missing here works from the edge's own origin and fails in every page on another one.
 */

/** Length of the JSON header of a binary OIP body (KServe's binary tensor data extension). */
export const HEADER_LENGTH = 'Inference-Header-Content-Length';
/** A device's Ed25519 signature over its relay request (relaySigningBytes). */
export const DEVICE_SIGNATURE_HEADER = 'Fedge-Device-Signature';
/** The example-level ε a device has spent on its own data, reported at check-in. */
export const EPSILON_SPENT_HEADER = 'Fedge-Epsilon-Spent';
/** The version of the task's global weights a weights download carries. */
export const WEIGHTS_VERSION_HEADER = 'Fedge-Weights-Version';
/** Which execution provider ran an inference at the edge (wasm, webgpu). */
export const EXECUTION_PROVIDER_HEADER = 'Fedge-Execution-Provider';
/** The sha256 of the model version that answered. */
export const MODEL_SHA256_HEADER = 'Fedge-Model-Sha256';
/** The concrete version an alias resolved to. */
export const MODEL_VERSION_HEADER = 'Fedge-Model-Version';
export const REQUEST_ID_HEADER = 'X-Request-Id';

/** Headers a page may send (the preflight's Access-Control-Allow-Headers). */
export const REQUEST_HEADERS = [
  'Content-Type',
  'Authorization',
  'If-None-Match',
  HEADER_LENGTH,
  REQUEST_ID_HEADER,
  DEVICE_SIGNATURE_HEADER,
  EPSILON_SPENT_HEADER,
] as const;

/** Headers a page may read from an answer (Access-Control-Expose-Headers). */
export const RESPONSE_HEADERS = [
  HEADER_LENGTH,
  REQUEST_ID_HEADER,
  'Retry-After',
  'ETag',
  EXECUTION_PROVIDER_HEADER,
  MODEL_SHA256_HEADER,
  MODEL_VERSION_HEADER,
  WEIGHTS_VERSION_HEADER,
] as const;
