/**
 * LocalModel: the edge's model run on the device with onnxruntime-web — the WebGPU execution provider where
 * `navigator.gpu` gives an adapter, WASM (SIMD) otherwise — and honest about which one ran. Bytes come from the edge
 * (or the app) and are cached by sha256, so a reload does not download again. With `mode: 'auto'` the model runs
 * locally when its bytes are already on the device, and on the edge otherwise while they download for next time.
 */
import type * as ort from 'onnxruntime-web';
import { type OrtModule, loadOrt } from './ort-loader.ts';
import { datatypeOfOrt } from '../../federated/oip/datatypes.ts';
import { fromOrtTensor, toOrtTensor } from '../../federated/oip/ort-tensors.ts';
import type { Featurizer } from '../../federated/oip/model-records.ts';
import { readFeaturizers } from '../../federated/model/featurizers.ts';
import { hashTexts } from '../../federated/model/text-features.ts';
import type { EdgeClient } from '../edge/edge-client.ts';
import { type Tensor, type TensorInput, toTensor } from '../edge/tensors.ts';
import { sha256Hex } from '../../federated/model/digest.ts';
import { type ModelCache, defaultModelCache } from './model-cache.ts';
import { cachedBytes, downloadBytes } from './model-bytes.ts';
import { LocalModelError } from './local-model-error.ts';

export type Provider = 'webgpu' | 'wasm';

/** The one WASM binary the default onnxruntime-web build needs for both WebGPU (JSEP) and WASM; serve it as an asset. */
export const ORT_WASM_FILE = 'ort-wasm-simd-threaded.jsep.wasm';
export type RanOn = Provider | 'edge';

export { LocalModelError };

export interface LocalModelOptions {
  /** The edge to download from (and to run on, for mode 'edge'/'auto'). */
  client?: EdgeClient | undefined;
  model: string;
  /** Version or alias (default `latest`). */
  version?: string | undefined;
  /** ONNX bytes to use instead of downloading. */
  bytes?: Uint8Array | undefined;
  /** Providers to try, in order (default: webgpu, then wasm). */
  providers?: Provider[] | undefined;
  /** Where the model's bytes are kept (default: Cache API in browsers, memory elsewhere); false: no cache. */
  cache?: ModelCache | false | undefined;
  /**
   * Where onnxruntime-web's WASM binary is served (ORT_WASM_FILE from node_modules/onnxruntime-web/dist), e.g.
   * '/assets/ort-wasm-simd-threaded.jsep.wasm', or gzipped with a '.gz' suffix. Default: next to the bundle.
   */
  wasmUrl?: string | undefined;
  /** 'local' (default): always on the device; 'edge': always on the edge; 'auto': on the device when cached. */
  mode?: 'local' | 'edge' | 'auto' | undefined;
  signal?: AbortSignal | undefined;
}

export interface LocalRunResult {
  outputs: Record<string, Tensor>;
  ranOn: RanOn;
  ms: number;
}

/** Whether this context offers a WebGPU adapter (SwiftShader counts: it is what a GPU-less machine has). */
export async function webgpuAvailable(): Promise<boolean> {
  const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<unknown> } } }).navigator?.gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

let gunzipped: Promise<void> | undefined;

/**
 * Points onnxruntime-web at its WASM binary — only the .wasm: the JS glue is inside the bundle already. A URL ending
 * in .gz is fetched and inflated here (DecompressionStream) and handed over as bytes: static hosts that cap a
 * file's size (Workers static assets: 25 MiB, below the 27 MiB binary) can serve it gzipped (6.4 MiB).
 */
async function useWasm(ort: OrtModule, wasmUrl: string): Promise<void> {
  const url = new URL(wasmUrl, (globalThis as { location?: { href: string } }).location?.href);
  if (!url.pathname.endsWith('.gz')) {
    ort.env.wasm.wasmPaths = { wasm: url };
    return;
  }
  gunzipped ??= (async () => {
    const res = await fetch(url);
    if (!res.ok || !res.body) throw new LocalModelError(`onnxruntime-web's WASM binary: ${url} answered ${res.status}`);
    ort.env.wasm.wasmBinary = await new Response(res.body.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer();
  })();
  gunzipped.catch(() => (gunzipped = undefined));
  await gunzipped;
}

/** The text featurizers the model declares (its ONNX metadata), as the edge reads them; a bad declaration is refused. */
function declaredFeaturizers(bytes: Uint8Array, session: ort.InferenceSession): Record<string, Featurizer> {
  const inputs = session.inputMetadata.map((m) => ({
    name: m.name,
    datatype: (m.isTensor && datatypeOfOrt(m.type)) || 'unknown',
    shape: m.isTensor ? m.shape.map((d) => (typeof d === 'number' && d >= 0 && d < 2 ** 31 ? d : -1)) : [],
  }));
  try {
    return readFeaturizers(bytes, inputs);
  } catch (e) {
    throw new LocalModelError(`the model's metadata: ${(e as Error).message}`);
  }
}

async function createSession(ort: OrtModule, bytes: Uint8Array, providers: Provider[]): Promise<{ session: ort.InferenceSession; provider: Provider; tried: string[]; featurizers: Record<string, Featurizer> }> {
  const tried: string[] = [];
  for (const provider of providers) {
    if (provider === 'webgpu' && !(await webgpuAvailable())) {
      tried.push('webgpu: no adapter');
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(bytes, { executionProviders: [provider], graphOptimizationLevel: 'all' });
      return { session, provider, tried, featurizers: declaredFeaturizers(bytes, session) };
    } catch (e) {
      tried.push(`${provider}: ${(e as Error).message}`);
    }
  }
  throw new LocalModelError(`no execution provider could load the model (${tried.join('; ')})`);
}

/** onnxruntime-web, set up: loaded only when the model runs on the device (mode 'edge' never needs it). */
async function deviceRuntime(wasmUrl: string | undefined): Promise<OrtModule> {
  const ort = await loadOrt();
  if (wasmUrl) await useWasm(ort, wasmUrl);
  ort.env.logLevel = 'error';
  return ort;
}

export class LocalModel {
  readonly model: string;
  /** The version that runs (resolved from an alias), and the sha256 of its bytes ('' when unknown). */
  readonly version: string;
  readonly sha256: string;
  /** Whether the bytes came from the device's cache (no download). */
  readonly fromCache: boolean;
  #session: ort.InferenceSession | undefined;
  readonly #ort: OrtModule | undefined;
  #ranOn: RanOn;
  readonly #client: EdgeClient | undefined;
  readonly #featurizers: Record<string, Featurizer>;
  #queue: Promise<unknown> = Promise.resolve();
  /** Resolves when a background download (mode 'auto' on a cache miss) has stored the bytes. */
  readonly prefetched: Promise<void>;

  private constructor(o: { model: string; version: string; sha256: string; fromCache: boolean; ort?: OrtModule | undefined; session?: ort.InferenceSession | undefined; featurizers?: Record<string, Featurizer>; ranOn: RanOn; client?: EdgeClient | undefined; prefetched?: Promise<void> | undefined }) {
    this.model = o.model;
    this.version = o.version;
    this.sha256 = o.sha256;
    this.fromCache = o.fromCache;
    this.#session = o.session;
    this.#ort = o.ort;
    this.#ranOn = o.ranOn;
    this.#client = o.client;
    this.#featurizers = o.featurizers ?? {};
    this.prefetched = o.prefetched ?? Promise.resolve();
  }

  /** Where run() runs: 'webgpu' or 'wasm' on the device, or 'edge'. */
  get provider(): RanOn {
    return this.#ranOn;
  }

  get inputNames(): readonly string[] {
    return this.#session?.inputNames ?? [];
  }

  get outputNames(): readonly string[] {
    return this.#session?.outputNames ?? [];
  }

  static async load(o: LocalModelOptions): Promise<LocalModel> {
    const mode = o.mode ?? 'local';
    const providers = o.providers ?? ['webgpu', 'wasm'];
    const cache = o.cache === false ? undefined : (o.cache ?? defaultModelCache());
    if (o.bytes) {
      const sha256 = await sha256Hex(o.bytes);
      const ort = await deviceRuntime(o.wasmUrl);
      const { session, provider, featurizers } = await createSession(ort, o.bytes, providers);
      return new LocalModel({ model: o.model, version: o.version ?? '', sha256, fromCache: false, ort, session, featurizers, ranOn: provider, client: o.client });
    }
    const client = o.client ?? (() => { throw new LocalModelError('LocalModel.load needs { client } to download the model, or { bytes }'); })();
    const meta = await client.model(o.model, o.version, { signal: o.signal });
    const { version, sha256 } = meta.parameters;
    if (mode === 'edge') return new LocalModel({ model: o.model, version, sha256, fromCache: false, ranOn: 'edge', client });
    const ref = { client, model: o.model, version, sha256, cache, signal: o.signal };
    const cached = await cachedBytes(ref);
    const download = () => downloadBytes(ref);
    if (!cached && mode === 'auto') {
      // Not on the device yet: answer from the edge now, and fetch the bytes so the next load runs locally.
      const prefetched = download().then(() => undefined);
      prefetched.catch(() => undefined);
      return new LocalModel({ model: o.model, version, sha256, fromCache: false, ranOn: 'edge', client, prefetched });
    }
    const bytes = cached ?? (await download());
    const ort = await deviceRuntime(o.wasmUrl);
    const { session, provider, featurizers } = await createSession(ort, bytes, providers);
    return new LocalModel({ model: o.model, version, sha256, fromCache: cached !== undefined, ort, session, featurizers, ranOn: provider, client });
  }

  /**
   * Runs the model on its inputs (by name): typed arrays in, typed arrays with shapes out. An input the model declares a
   * text featurizer for also takes strings (one per example), featurized as the edge and the Trainer do. Calls run
   * one at a time.
   */
  run(inputs: Record<string, TensorInput>, o: { signal?: AbortSignal } = {}): Promise<LocalRunResult> {
    const tensors: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(inputs)) tensors[k] = toTensor(k, v);
    const job = this.#queue.then(() => this.#run(tensors, o.signal));
    this.#queue = job.catch(() => undefined);
    return job;
  }

  async #run(tensors: Record<string, Tensor>, signal?: AbortSignal): Promise<LocalRunResult> {
    signal?.throwIfAborted();
    const started = performance.now();
    if (this.#ranOn === 'edge') {
      const r = await this.#client!.infer(this.model, tensors, { version: this.version, signal });
      return { outputs: r.outputs, ranOn: 'edge', ms: performance.now() - started };
    }
    const session = this.#session;
    if (!session) throw new LocalModelError('this LocalModel was released');
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(tensors)) {
      if (!session.inputNames.includes(name)) throw new LocalModelError(`the model has no input '${name}' (inputs: ${session.inputNames.join(', ')})`);
      const f = this.#featurizers[name];
      const fed: Tensor = t.datatype === 'BYTES' && f ? { datatype: 'FP32', shape: [...t.shape, f.buckets], data: hashTexts(t.data, f) } : t;
      feeds[name] = toOrtTensor(this.#ort!.Tensor as never, fed);
    }
    for (const name of session.inputNames) if (!(name in feeds)) throw new LocalModelError(`input '${name}' is missing`);
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await session.run(feeds);
    } catch (e) {
      throw new LocalModelError(`the model refused the inputs: ${(e as Error).message}`);
    }
    const outputs: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(results)) {
      try {
        outputs[name] = fromOrtTensor(name, t);
      } catch (e) {
        throw new LocalModelError((e as Error).message);
      }
    }
    return { outputs, ranOn: this.#ranOn, ms: performance.now() - started };
  }

  async release(): Promise<void> {
    await this.#queue;
    await this.#session?.release();
    this.#session = undefined;
  }
}
