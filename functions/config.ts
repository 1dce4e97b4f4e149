/** Limits and switches from the Worker's variables (wrangler.toml [vars]), parsed once per isolate. */
export interface Config {
  corsOrigins: string[] | '*';
  maxInferBytes: number;
  maxModelBytes: number;
  maxTensorElements: number;
  sessionCacheSize: number;
  catalogCacheMs: number;
  rateLimit: boolean;
}

export const DEFAULTS: Config = {
  corsOrigins: '*',
  maxInferBytes: 8 * 1024 * 1024,
  maxModelBytes: 64 * 1024 * 1024,
  maxTensorElements: 4 * 1024 * 1024,
  sessionCacheSize: 8,
  catalogCacheMs: 1000,
  rateLimit: true,
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

type Vars = Partial<Record<'FEDGE_CORS_ORIGINS' | 'FEDGE_MAX_INFER_BYTES' | 'FEDGE_MAX_MODEL_BYTES' | 'FEDGE_MAX_TENSOR_ELEMENTS' | 'FEDGE_SESSION_CACHE_SIZE' | 'FEDGE_CATALOG_CACHE_MS' | 'FEDGE_RATE_LIMIT', string>>;

export function readConfig(env: Vars): Config {
  const origins = (env.FEDGE_CORS_ORIGINS ?? '*').trim();
  return {
    corsOrigins: origins === '*' ? '*' : origins.split(',').map((o) => o.trim()).filter(Boolean),
    maxInferBytes: positive(env.FEDGE_MAX_INFER_BYTES, 'FEDGE_MAX_INFER_BYTES', DEFAULTS.maxInferBytes),
    maxModelBytes: positive(env.FEDGE_MAX_MODEL_BYTES, 'FEDGE_MAX_MODEL_BYTES', DEFAULTS.maxModelBytes),
    maxTensorElements: positive(env.FEDGE_MAX_TENSOR_ELEMENTS, 'FEDGE_MAX_TENSOR_ELEMENTS', DEFAULTS.maxTensorElements),
    sessionCacheSize: positive(env.FEDGE_SESSION_CACHE_SIZE, 'FEDGE_SESSION_CACHE_SIZE', DEFAULTS.sessionCacheSize),
    catalogCacheMs: integer(env.FEDGE_CATALOG_CACHE_MS, 'FEDGE_CATALOG_CACHE_MS', DEFAULTS.catalogCacheMs, 0),
    rateLimit: (env.FEDGE_RATE_LIMIT ?? 'on') !== 'off',
  };
}
