/**
 * Picks the tfjs backend a Trainer runs on: the first of WebGPU → WebGL → WASM → CPU that is registered and
 * initialises here (browsers register WebGL and CPU with @tensorflow/tfjs; WebGPU and WASM when their packages
 * are imported). In Node, call `useNodeWasm()` (node-backend.ts) first so WASM finds its binary; else CPU.
 * TensorFlow.js (an optional peer dependency) is imported here, on the first selection, not when the SDK loads.
 */
import { loadTfjs } from '../../federated/model/tfjs-loader.ts';
import { registerWasmConvGradients } from '../../federated/model/tfjs-wasm-kernels.ts';

export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';
export const BACKEND_ORDER: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

export class BackendError extends Error {
  override name = 'BackendError';
}

export async function selectBackend(preference: BackendName | 'auto' = 'auto'): Promise<BackendName> {
  const tf = await loadTfjs();
  const candidates = preference === 'auto' ? BACKEND_ORDER : [preference];
  const tried: string[] = [];
  for (const name of candidates) {
    if (!tf.findBackendFactory(name)) {
      tried.push(`${name} (not registered)`);
      continue;
    }
    if (await tf.setBackend(name).catch(() => false)) {
      await tf.ready();
      if (name === 'wasm') registerWasmConvGradients();
      return name;
    }
    tried.push(`${name} (failed to initialise)`);
  }
  throw new BackendError(`no tfjs backend available: tried ${tried.join(', ')}`);
}
