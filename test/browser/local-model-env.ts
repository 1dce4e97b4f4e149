/**
 * What the LocalModel browser test and benchmark share: the local edge server (`npm start`'s), the page bundled
 * with the SDK, onnxruntime-web's .wasm served beside it, and MNIST digits to feed both.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { servePage } from './harness.ts';

// The package exports its .wasm files by name (package.json "exports"): resolve them as a bundler would.
const ortFile = (f: string) => createRequire(import.meta.url).resolve(`onnxruntime-web/${f}`);

/** The page, with the ort WASM binaries the default onnxruntime-web build loads (WebGPU/JSEP and plain). */
export function serveLocalModelPage() {
  const wasm = (f: string) => ({ type: 'application/wasm', body: readFileSync(ortFile(f)) });
  return servePage(new URL('./pages/local-model-page.ts', import.meta.url).pathname, {
    '/ort/ort-wasm-simd-threaded.jsep.wasm': wasm('ort-wasm-simd-threaded.jsep.wasm'),
  });
}
