/** Picks tfjs's WASM backend in Node (it ships its .wasm in the package), falling back to CPU. */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { registerWasmConvGradients } from '../federated/model/tfjs-wasm-kernels.ts';

export async function useNodeBackend(preferred: 'wasm' | 'cpu' = 'wasm'): Promise<string> {
  if (preferred === 'wasm') {
    const require = createRequire(import.meta.url);
    const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    setWasmPaths(pathToFileURL(dist + '/').href.replace('file://', ''));
    if (await tf.setBackend('wasm').catch(() => false)) {
      registerWasmConvGradients();
      return tf.getBackend();
    }
  }
  await tf.setBackend('cpu');
  return tf.getBackend();
}
