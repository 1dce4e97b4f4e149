/**
 * ONNX Runtime Web inside workerd. Workers refuse to compile WebAssembly from bytes at run time, so the
 * SIMD build is imported as a compiled module and ORT is handed a placeholder `wasmBinary`; the wrapped
 * `WebAssembly.instantiate` recognises the placeholder and instantiates the precompiled module instead.
 * One thread (no SharedArrayBuffer workers in an isolate), no proxy worker.
 */
import * as ort from 'onnxruntime-web/wasm';
// Wrangler's module collector resolves wasm imports by path, not through package exports.
import ortWasmModule from '../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm';

export { ort };

/** The execution provider this isolate runs: WebGPU needs `navigator.gpu`, which workerd does not expose. */
export type ExecutionProvider = 'wasm' | 'webgpu';

// An empty but valid wasm header: ORT only passes it on to WebAssembly.instantiate, which we intercept.
const PLACEHOLDER = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

let configured = false;

function configure(): void {
  if (configured) return;
  configured = true;
  const instantiate = WebAssembly.instantiate.bind(WebAssembly) as (
    src: BufferSource | WebAssembly.Module,
    imports?: WebAssembly.Imports,
  ) => Promise<unknown>;
  // Only the placeholder is redirected; every other call goes through unchanged.
  (WebAssembly as { instantiate: unknown }).instantiate = async (src: unknown, imports?: WebAssembly.Imports) => {
    if (src instanceof Uint8Array && isPlaceholder(src)) {
      const instance = (await instantiate(ortWasmModule, imports)) as WebAssembly.Instance;
      return { instance, module: ortWasmModule };
    }
    return instantiate(src as BufferSource, imports);
  };
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmBinary = PLACEHOLDER;
  ort.env.logLevel = 'error';
}

function isPlaceholder(bytes: Uint8Array): boolean {
  // ORT copies wasmBinary into a fresh Uint8Array, so compare contents, not identity.
  return bytes.byteLength === PLACEHOLDER.byteLength && bytes.every((b, i) => b === PLACEHOLDER[i]);
}

/** Which provider sessions use here: WebGPU only where the runtime exposes a real (non-fallback) GPU adapter
 * and a WebGPU-capable ORT build is bundled. The Worker bundles the WASM-only build (half the size), so: wasm. */
export function executionProvider(): ExecutionProvider {
  return 'wasm';
}

export async function createSession(bytes: Uint8Array): Promise<ort.InferenceSession> {
  configure();
  return ort.InferenceSession.create(bytes, {
    executionProviders: [executionProvider()],
    graphOptimizationLevel: 'all',
    // One isolate serves many models; a session should not keep a large arena around after a request.
    enableCpuMemArena: false,
    // Weight-only int8 models store DequantizeLinear(int8 initializer) → MatMul. ORT keeps DequantizeLinear out
    // of constant folding while its QDQ fusions are on, so every run would dequantize every weight again.
    // Turning the QDQ transformers off lets constant folding dequantize once at load: int8 on the wire and
    // in R2, fp32 compute (MatMulInteger-style int8 is slower than fp32 in WASM).
    extra: { session: { disable_quant_qdq: '1' } },
  });
}
