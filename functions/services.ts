/** Per-isolate services, built once from the Worker's env and shared by every request. */
import { type Config, readConfig } from './config.ts';
import { Registry } from './registry/registry.ts';
import { setMaxWasmBytes } from './inference/ort-runtime.ts';

export interface Services {
  config: Config;
  registry: Registry;
}

const byEnv = new WeakMap<object, Services>();

export function services(env: Env): Services {
  let s = byEnv.get(env);
  if (!s) {
    const config = readConfig(env);
    setMaxWasmBytes(config.maxWasmBytes);
    s = {
      config,
      registry: new Registry(env, config.sessionCacheSize, config.catalogCacheMs, {
        maxBatchSize: config.maxBatchSize,
        maxQueueDelayMs: config.batchDelayMs,
      }),
    };
    byEnv.set(env, s);
  }
  return s;
}
