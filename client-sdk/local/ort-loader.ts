/**
 * onnxruntime-web, imported when a LocalModel loads: it is an optional peer dependency (about 140 MB installed), so
 * an app that only calls the edge installs and bundles without it.
 *
 * Two of its builds, each with the one WASM binary it needs (ORT_WASM_FILES), both under the 25 MiB a file that
 * Workers static assets (and most CDNs) serve as is:
 * - `webgpu`: `onnxruntime-web/jspi` — ONNX Runtime's native WebGPU execution provider (the C++ one that replaces
 *   the deprecated JSEP build), built with JS Promise Integration (WebAssembly.Suspending); it runs the WASM provider
 *   too. `onnxruntime-web/webgpu` is the same provider built with Asyncify instead, for engines without JSPI, but
 *   its binary is 25.5 MiB — over that limit — so engines without JSPI get the plain build.
 * - `wasm`: `onnxruntime-web/wasm` — the plain SIMD build (CPU only), 14 MiB.
 */
import type * as Ort from 'onnxruntime-web';
import { missingDependency } from '../../federated/model/missing-dependency.ts';

export type OrtModule = typeof Ort;
export type OrtBuild = 'webgpu' | 'wasm';

/** The WASM binary each build fetches, from node_modules/onnxruntime-web/dist: serve both beside your app. */
export const ORT_WASM_FILES: Readonly<Record<OrtBuild, string>> = {
  webgpu: 'ort-wasm-simd-threaded.jspi.wasm',
  wasm: 'ort-wasm-simd-threaded.wasm',
};

/** Whether this engine can run the WebGPU build (JSPI: WebAssembly.Suspending; Chromium 137+). */
export const jspiAvailable = (): boolean => typeof WebAssembly === 'object' && 'Suspending' in WebAssembly;

const isNode = (): boolean =>
  typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

const loaded: Partial<Record<OrtBuild, Promise<OrtModule>>> = {};

/**
 * The build, imported once per page. `wasmPaths` is the URL prefix ORT_WASM_FILES are served under (default: next
 * to the bundle, where ORT looks itself).
 */
export function loadOrt(build: OrtBuild, wasmPaths?: string): Promise<OrtModule> {
  loaded[build] ??= (async () => {
    let ort: OrtModule;
    try {
      // Literal specifiers inside try: bundled when installed; when not, esbuild leaves them to fail at run time and
      // Vite substitutes a stub that throws (onnxruntime-web is an optional peer).
      ort =
        build === 'webgpu'
          ? ((await import('onnxruntime-web/jspi')) as OrtModule)
          : ((await import('onnxruntime-web/wasm')) as OrtModule);
    } catch (e) {
      throw missingDependency(e, 'onnxruntime-web', 'LocalModel');
    }
    if (wasmPaths) {
      const folder = new URL(
        wasmPaths.endsWith('/') ? wasmPaths : `${wasmPaths}/`,
        (globalThis as { location?: { href: string } }).location?.href,
      );
      // Only the .wasm: the JS glue is inside the bundle already.
      ort.env.wasm.wasmPaths = { wasm: new URL(ORT_WASM_FILES[build], folder).href };
    }
    ort.env.logLevel = 'error';
    // In Node, ORT sizes its thread pool from `require('node:os')` when numThreads is unset, and a bundled ESM build
    // has no `require` on Node 20 ("Dynamic require of node:os is not supported"): no backend loads. One thread
    // also matches the browser without cross-origin isolation, where ORT cannot start threads anyway.
    if (isNode()) ort.env.wasm.numThreads = 1;
    return ort;
  })();
  loaded[build].catch(() => delete loaded[build]);
  return loaded[build];
}
