/**
 * ONNX Runtime Web inside workerd. Workers refuse to compile WebAssembly from bytes at run time, so the
 * SIMD build is imported as a compiled module and ORT is handed a placeholder `wasmBinary`; the wrapped
 * `WebAssembly.instantiate` recognises the placeholder and instantiates the precompiled module instead.
 * One thread (no SharedArrayBuffer workers in an isolate), no proxy worker.
 *
 * Memory: the emscripten heap is one WebAssembly.Memory that only grows, and ORT keeps one instance per
 * isolate (its `initializeWebAssembly` runs once and cannot be undone), so a heap cannot be given back by
 * dropping sessions. The bound is therefore set where the heap is made: ORT's memory is created with a
 * `maximum` of `maxWasmBytes` instead of 4 GiB. An allocation past it fails inside ORT, which throws (the run
 * or the load fails with ORT's reason) and the instance stays usable; the heap never exceeds the bound. What
 * released sessions held is reused, so a load or run out of memory is retried once the others are released (memory.ts).
 */
import * as ort from 'onnxruntime-web/wasm';
import { DEFAULTS } from '../config.ts';
import { DEQUANTIZE_ONCE } from '../../federated/oip/ort-session-options.ts';
// Wrangler's module collector resolves wasm imports by path, not through package exports.
import ortWasmModule from '../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm';

export { ort };

/** The execution provider this isolate runs: WebGPU needs `navigator.gpu`, which workerd does not expose. */
export type ExecutionProvider = 'wasm' | 'webgpu';

// An empty but valid wasm header: ORT only passes it on to WebAssembly.instantiate, which we intercept.
const PLACEHOLDER = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

const PAGE = 65536;

let configured = false;
let maxWasmBytes = DEFAULTS.maxWasmBytes;
let memory: WebAssembly.Memory | undefined;
/** Sessions created and not yet released, in this isolate (memory.ts: is anything else holding the heap?). */
const live = new Set<ort.InferenceSession>();

/** How many ORT sessions are alive (created, not released) in this isolate. */
export function liveSessions(): number {
  return live.size;
}

/** Sets the heap bound; only takes effect before the first session is created (the heap is made once). */
export function setMaxWasmBytes(bytes: number): void {
  if (!memory) maxWasmBytes = Math.max(16 * 1024 * 1024, Math.min(bytes, 65536 * PAGE));
}

/** The heap's current size in bytes (0 before ORT started), and its bound. */
export function wasmHeap(): { bytes: number; max: number } {
  return { bytes: memory?.buffer.byteLength ?? 0, max: maxWasmBytes };
}

/**
 * ORT's glue creates its memory as `new WebAssembly.Memory({ initial, maximum: 65536, shared: true })` right
 * before instantiating. While ORT starts, the constructor is swapped for one that lowers `maximum` to the
 * bound; it is put back as soon as the module is instantiated.
 */
function capMemory(): () => void {
  const Native = WebAssembly.Memory;
  const limitPages = () => Math.floor(maxWasmBytes / PAGE);
  class Capped extends Native {
    constructor(d: WebAssembly.MemoryDescriptor) {
      const capped =
        d.maximum !== undefined && d.maximum > limitPages() ? { ...d, maximum: Math.max(d.initial, limitPages()) } : d;
      super(capped);
    }
  }
  (WebAssembly as { Memory: unknown }).Memory = Capped;
  return () => {
    (WebAssembly as { Memory: unknown }).Memory = Native;
  };
}

function findMemory(imports: WebAssembly.Imports | undefined): WebAssembly.Memory | undefined {
  for (const mod of Object.values(imports ?? {})) {
    for (const v of Object.values(mod)) if (v instanceof WebAssembly.Memory) return v;
  }
  return undefined;
}

function configure(): void {
  if (configured) return;
  configured = true;
  const restoreMemory = capMemory();
  const instantiate = WebAssembly.instantiate.bind(WebAssembly) as (
    src: BufferSource | WebAssembly.Module,
    imports?: WebAssembly.Imports,
  ) => Promise<unknown>;
  // Only the placeholder is redirected; every other call goes through unchanged.
  (WebAssembly as { instantiate: unknown }).instantiate = async (src: unknown, imports?: WebAssembly.Imports) => {
    if (src instanceof Uint8Array && isPlaceholder(src)) {
      restoreMemory();
      memory = findMemory(imports);
      const instance = (await instantiate(ortWasmModule, imports)) as WebAssembly.Instance;
      return { instance, module: ortWasmModule };
    }
    return instantiate(src as BufferSource, imports);
  };
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmBinary = PLACEHOLDER;
  // 'fatal': a failed run is answered with ORT's reason (400); logging it as well would write a line per bad request.
  ort.env.logLevel = 'fatal';
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
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [executionProvider()],
    graphOptimizationLevel: 'all',
    // One isolate serves many models; a session should not keep a large arena around after a request.
    enableCpuMemArena: false,
    // A run that fails is the caller's or the model's fault and is answered with ORT's reason (400); ORT's own
    // error log would only repeat it once per bad request.
    logSeverityLevel: 4,
    // Int8 weights dequantized once at load (DEQUANTIZE_ONCE says why). No prepacking: MLAS would keep a packed copy
    // of each weight beside the initializer, so a session held about twice its weights, for no run time measured on
    // the bundled models (docs/benchmarks.md, "Inference memory").
    extra: { session: { ...DEQUANTIZE_ONCE, disable_prepacking: '1' } },
  });
  live.add(session);
  const release = session.release.bind(session);
  session.release = () => {
    live.delete(session);
    return release();
  };
  return session;
}
