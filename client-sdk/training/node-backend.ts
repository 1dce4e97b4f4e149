/**
 * Node only: points tfjs-backend-wasm at the .wasm files it ships in node_modules, so the WASM backend works offline.
 * The backend (an optional peer dependency) is required here, when asked for, so fedge/client/node loads without it.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { missingDependency } from '../../federated/model/missing-dependency.ts';

const PACKAGE = '@tensorflow/tfjs-backend-wasm';

export function useNodeWasm(): void {
  const require = createRequire(import.meta.url);
  let wasm: { setWasmPaths(prefix: string): void };
  try {
    // Node resolves the package's CommonJS build for import and require alike: one tfjs-core either way.
    wasm = require(PACKAGE) as typeof wasm;
  } catch (e) {
    throw missingDependency(e, PACKAGE, 'useNodeWasm (the WASM training backend)');
  }
  wasm.setWasmPaths(`${dirname(require.resolve(`${PACKAGE}/dist/tfjs-backend-wasm.wasm`))}/`);
}
