/**
 * The LocalModel page (local-model-page.ts) that the browser test (test/browser/local-model.test.ts) and benchmark
 * (bench/browser.ts) open: bundled with the SDK and served (page-server.ts) with onnxruntime-web's .wasm beside it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { servePage } from './page-server.ts';
import { ORT_WASM_FILES } from '../../client-sdk/local/ort-loader.ts';

// The package exports its .wasm files by name (package.json "exports"): resolve them as a bundler would.
const ortFile = (f: string) => createRequire(import.meta.url).resolve(`onnxruntime-web/${f}`);

/** The page, with the WASM binaries of the two onnxruntime-web builds LocalModel loads (WebGPU and plain). */
export function serveLocalModelPage(o: { jsep?: boolean } = {}) {
  const wasm = (f: string) => ({ type: 'application/wasm', body: readFileSync(ortFile(f)) });
  // The JSEP binary (27 MiB) only for the benchmark's comparison with the build LocalModel no longer uses.
  const files = [...Object.values(ORT_WASM_FILES), ...(o.jsep ? ['ort-wasm-simd-threaded.jsep.wasm'] : [])];
  return servePage(
    new URL('./local-model-page.ts', import.meta.url).pathname,
    Object.fromEntries(files.map((f) => [`/ort/${f}`, wasm(f)])),
  );
}
