/** Limits and switches from the Worker's variables (wrangler.toml [vars]), parsed once per isolate. */
export interface Config {
  corsOrigins: string[] | '*';
  maxInferBytes: number;
  maxModelBytes: number;
  maxTensorElements: number;
  /** A request body must arrive whole within this (408 otherwise). */
  bodyTimeoutMs: number;
  sessionCacheSize: number;
  /** Largest ONNX Runtime WebAssembly heap of one isolate (inference/memory.ts: what a load or run needing more answers). */
  maxWasmBytes: number;
  catalogCacheMs: number;
  rateLimit: boolean;
  /** Dynamic batching: most rows one ORT run takes from concurrent requests (1: off), and how long a request that
   * finds its session idle waits for others (ms; 0: it runs at once, and batches form from requests that arrive
   * while a run holds the session). */
  maxBatchSize: number;
  batchDelayMs: number;
  /** Text generation (functions/generation): prompt tokens and new tokens per request, generations running at once
   * per isolate (each holds its key/value cache), and wall time per request (the output ends there, "length"). */
  maxPromptTokens: number;
  maxNewTokens: number;
  maxGenerations: number;
  generateTimeoutMs: number;
}

export const DEFAULTS: Config = {
  corsOrigins: '*',
  maxInferBytes: 8 * 1024 * 1024,
  maxModelBytes: 64 * 1024 * 1024,
  maxTensorElements: 4 * 1024 * 1024,
  bodyTimeoutMs: 30_000,
  // Both sized for a deployed isolate's 128 MB, shared with the JS heap and the bodies in flight: measured in
  // docs/benchmarks.md, "Inference memory".
  sessionCacheSize: 4,
  maxWasmBytes: 64 * 1024 * 1024,
  catalogCacheMs: 1000,
  rateLimit: true,
  maxBatchSize: 1,
  batchDelayMs: 0,
  // A generation's cache is layers × 2 × context × width floats (the default model at 256 positions: 2 MiB), inside
  // the same 128 MB isolate as the sessions: 8 at once keep it well within.
  maxPromptTokens: 512,
  maxNewTokens: 256,
  maxGenerations: 8,
  generateTimeoutMs: 30_000,
};

function integer(value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) {
    console.warn(`config: ${name}=${JSON.stringify(value)} is not an integer ≥ ${min}; using ${fallback}`);
    return fallback;
  }
  return n;
}

const positive = (value: string | undefined, name: string, fallback: number) => integer(value, name, fallback, 1);

type Vars = Partial<
  Record<
    | 'FEDGE_CORS_ORIGINS'
    | 'FEDGE_MAX_INFER_BYTES'
    | 'FEDGE_MAX_MODEL_BYTES'
    | 'FEDGE_MAX_TENSOR_ELEMENTS'
    | 'FEDGE_BODY_TIMEOUT_MS'
    | 'FEDGE_SESSION_CACHE_SIZE'
    | 'FEDGE_MAX_WASM_BYTES'
    | 'FEDGE_CATALOG_CACHE_MS'
    | 'FEDGE_RATE_LIMIT'
    | 'FEDGE_MAX_BATCH_SIZE'
    | 'FEDGE_BATCH_DELAY_MS'
    | 'FEDGE_MAX_PROMPT_TOKENS'
    | 'FEDGE_MAX_NEW_TOKENS'
    | 'FEDGE_MAX_GENERATIONS'
    | 'FEDGE_GENERATE_TIMEOUT_MS',
    string
  >
>;

export function readConfig(env: Vars): Config {
  const origins = (env.FEDGE_CORS_ORIGINS ?? '*').trim();
  return {
    corsOrigins:
      origins === '*'
        ? '*'
        : origins
            .split(',')
            .map((o) => o.trim())
            .filter(Boolean),
    maxInferBytes: positive(env.FEDGE_MAX_INFER_BYTES, 'FEDGE_MAX_INFER_BYTES', DEFAULTS.maxInferBytes),
    maxModelBytes: positive(env.FEDGE_MAX_MODEL_BYTES, 'FEDGE_MAX_MODEL_BYTES', DEFAULTS.maxModelBytes),
    maxTensorElements: positive(env.FEDGE_MAX_TENSOR_ELEMENTS, 'FEDGE_MAX_TENSOR_ELEMENTS', DEFAULTS.maxTensorElements),
    bodyTimeoutMs: positive(env.FEDGE_BODY_TIMEOUT_MS, 'FEDGE_BODY_TIMEOUT_MS', DEFAULTS.bodyTimeoutMs),
    sessionCacheSize: positive(env.FEDGE_SESSION_CACHE_SIZE, 'FEDGE_SESSION_CACHE_SIZE', DEFAULTS.sessionCacheSize),
    maxWasmBytes: positive(env.FEDGE_MAX_WASM_BYTES, 'FEDGE_MAX_WASM_BYTES', DEFAULTS.maxWasmBytes),
    catalogCacheMs: integer(env.FEDGE_CATALOG_CACHE_MS, 'FEDGE_CATALOG_CACHE_MS', DEFAULTS.catalogCacheMs, 0),
    rateLimit: (env.FEDGE_RATE_LIMIT ?? 'on') !== 'off',
    maxBatchSize: positive(env.FEDGE_MAX_BATCH_SIZE, 'FEDGE_MAX_BATCH_SIZE', DEFAULTS.maxBatchSize),
    batchDelayMs: integer(env.FEDGE_BATCH_DELAY_MS, 'FEDGE_BATCH_DELAY_MS', DEFAULTS.batchDelayMs, 0),
    maxPromptTokens: positive(env.FEDGE_MAX_PROMPT_TOKENS, 'FEDGE_MAX_PROMPT_TOKENS', DEFAULTS.maxPromptTokens),
    maxNewTokens: positive(env.FEDGE_MAX_NEW_TOKENS, 'FEDGE_MAX_NEW_TOKENS', DEFAULTS.maxNewTokens),
    maxGenerations: positive(env.FEDGE_MAX_GENERATIONS, 'FEDGE_MAX_GENERATIONS', DEFAULTS.maxGenerations),
    generateTimeoutMs: positive(env.FEDGE_GENERATE_TIMEOUT_MS, 'FEDGE_GENERATE_TIMEOUT_MS', DEFAULTS.generateTimeoutMs),
  };
}
