/**
 * TensorFlow.js's WASM backend for training in the page and in its workers: registered on first use, its binaries
 * served from /assets/tfjs-wasm/ (web/build.ts copies them). The language model trains on WASM (docs/sdk.md: lora:4
 * fits Chromium's memory there); a worker has no WebGL, and the page's WebGL is slower for a transformer.
 */
export const TFJS_WASM_FILES = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
] as const;

let registered: Promise<void> | undefined;

/** Registers the WASM backend (once); then `backend: 'wasm'` trains on it. */
export function useTfjsWasm(): Promise<void> {
  registered ??= import('@tensorflow/tfjs-backend-wasm').then((wasm) => {
    wasm.setWasmPaths(`${location.origin}/assets/tfjs-wasm/`);
  });
  return registered;
}
