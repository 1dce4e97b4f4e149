/**
 * LocalModel: the edge's model run on the device with onnxruntime-web — its native WebGPU execution provider where
 * `navigator.gpu` gives an adapter (and the engine has JSPI), WASM (SIMD) otherwise; ort-loader.ts says which build
 * each needs — and honest about which one ran. Bytes come from the edge
 * (or the app) and are cached by sha256, so a reload does not download again. With `mode: 'auto'` the model runs
 * locally when its bytes are already on the device, and on the edge otherwise while they download for next time.
 */
import type * as ort from 'onnxruntime-web';
import { type OrtBuild, type OrtModule, jspiAvailable, loadOrt } from './ort-loader.ts';
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
import { DEQUANTIZE_ONCE } from '../../federated/oip/ort-session-options.ts';
import { readMetadataProps } from '../../federated/model/onnx-metadata.ts';
import { LanguageModelError } from '../../federated/generation/errors.ts';
import { type LanguageModel, carriesTokenizer, readLanguageModel } from '../../federated/generation/language-model.ts';
import { ortSignatures } from '../../federated/generation/ort-step.ts';
import type { GenerateParameters } from '../../federated/generation/oip-parameters.ts';
import {
  DEVICE_GENERATION_LIMITS,
  type DeviceSession,
  type LocalGenerateResult,
  generateOnDevice,
  generateOnEdge,
} from './local-generation.ts';

export { DEVICE_GENERATION_LIMITS, type LocalGenerateResult };

export type Provider = 'webgpu' | 'wasm';

export { ORT_WASM_FILES } from './ort-loader.ts';
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
   * The URL prefix (a folder) where onnxruntime-web's WASM binaries are served — ORT_WASM_FILES, copied from
   * node_modules/onnxruntime-web/dist — e.g. '/assets/ort/'. Default: next to the bundle.
   */
  wasmPaths?: string | undefined;
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

/** The text featurizers the model declares (its ONNX metadata), as the edge reads them; a bad declaration is refused. */
function declaredFeaturizers(bytes: Uint8Array, session: ort.InferenceSession): Record<string, Featurizer> {
  try {
    return readFeaturizers(bytes, ortSignatures(session.inputNames, session.inputMetadata));
  } catch (e) {
    throw new LocalModelError(`the model's metadata: ${(e as Error).message}`);
  }
}

/** The language model the file carries (its tokenizer, read as the edge reads it), if it carries one. */
function declaredLanguageModel(bytes: Uint8Array, session: ort.InferenceSession): LanguageModel | undefined {
  const props = readMetadataProps(bytes);
  if (!carriesTokenizer(props)) return undefined;
  try {
    return readLanguageModel(
      props,
      ortSignatures(session.inputNames, session.inputMetadata),
      ortSignatures(session.outputNames, session.outputMetadata),
    );
  } catch (e) {
    if (e instanceof LanguageModelError) throw new LocalModelError(`the model cannot generate: ${e.message}`);
    throw e;
  }
}

/**
 * The build a load uses (ort-loader.ts): the WebGPU one when WebGPU is among the providers asked and this engine has
 * an adapter and JSPI; the plain WASM one otherwise — one WASM binary to download either way.
 */
async function chooseBuild(providers: Provider[], tried: string[]): Promise<OrtBuild> {
  if (!providers.includes('webgpu')) return 'wasm';
  if (!(await webgpuAvailable())) tried.push('webgpu: no adapter');
  else if (!jspiAvailable())
    tried.push("webgpu: this engine lacks WebAssembly JSPI, which onnxruntime-web's WebGPU build needs");
  else return 'webgpu';
  return 'wasm';
}

/** One provider at a time, in the order asked: onnxruntime-web would fall back silently, and LocalModel says which ran. */
async function createSession(
  bytes: Uint8Array,
  providers: Provider[],
  wasmPaths: string | undefined,
): Promise<{
  ort: OrtModule;
  session: ort.InferenceSession;
  provider: Provider;
  tried: string[];
  featurizers: Record<string, Featurizer>;
  language: LanguageModel | undefined;
}> {
  const tried: string[] = [];
  const build = await chooseBuild(providers, tried);
  const ort = await loadOrt(build, wasmPaths);
  for (const provider of providers) {
    if (provider === 'webgpu' && build !== 'webgpu') continue;
    try {
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        // Errors only: WebGPU leaves a decoder's shape arithmetic on the CPU and ORT warns about it on the console.
        logSeverityLevel: 3,
        // The edge's arithmetic: int8 weights dequantized once at load, not at every run.
        extra: { session: { ...DEQUANTIZE_ONCE } },
      });
      return {
        ort,
        session,
        provider,
        tried,
        featurizers: declaredFeaturizers(bytes, session),
        language: declaredLanguageModel(bytes, session),
      };
    } catch (e) {
      tried.push(`${provider}: ${(e as Error).message}`);
    }
  }
  throw new LocalModelError(`no execution provider could load the model (${tried.join('; ')})`);
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
  readonly #language: LanguageModel | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** Resolves when a background download (mode 'auto' on a cache miss) has stored the bytes. */
  readonly prefetched: Promise<void>;

  private constructor(o: {
    model: string;
    version: string;
    sha256: string;
    fromCache: boolean;
    ort?: OrtModule | undefined;
    session?: ort.InferenceSession | undefined;
    featurizers?: Record<string, Featurizer>;
    language?: LanguageModel | undefined;
    ranOn: RanOn;
    client?: EdgeClient | undefined;
    prefetched?: Promise<void> | undefined;
  }) {
    this.model = o.model;
    this.version = o.version;
    this.sha256 = o.sha256;
    this.fromCache = o.fromCache;
    this.#session = o.session;
    this.#ort = o.ort;
    this.#ranOn = o.ranOn;
    this.#client = o.client;
    this.#featurizers = o.featurizers ?? {};
    this.#language = o.language;
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
      const { ort, session, provider, featurizers, language } = await createSession(o.bytes, providers, o.wasmPaths);
      return new LocalModel({
        model: o.model,
        version: o.version ?? '',
        sha256,
        fromCache: false,
        ort,
        session,
        featurizers,
        language,
        ranOn: provider,
        client: o.client,
      });
    }
    const client =
      o.client ??
      (() => {
        throw new LocalModelError('LocalModel.load needs { client } to download the model, or { bytes }');
      })();
    const meta = await client.model(o.model, o.version, { signal: o.signal });
    const { version, sha256 } = meta.parameters;
    if (mode === 'edge')
      return new LocalModel({ model: o.model, version, sha256, fromCache: false, ranOn: 'edge', client });
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
    const { ort, session, provider, featurizers, language } = await createSession(bytes, providers, o.wasmPaths);
    return new LocalModel({
      model: o.model,
      version,
      sha256,
      fromCache: cached !== undefined,
      ort,
      session,
      featurizers,
      language,
      ranOn: provider,
      client,
    });
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
      if (!session.inputNames.includes(name))
        throw new LocalModelError(`the model has no input '${name}' (inputs: ${session.inputNames.join(', ')})`);
      const f = this.#featurizers[name];
      const fed: Tensor =
        t.datatype === 'BYTES' && f
          ? { datatype: 'FP32', shape: [...t.shape, f.buckets], data: hashTexts(t.data, f) }
          : t;
      feeds[name] = toOrtTensor(this.#ort!.Tensor as never, fed);
    }
    for (const name of session.inputNames)
      if (!(name in feeds)) throw new LocalModelError(`input '${name}' is missing`);
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

  /**
   * Whether generate() can run on the device: the file is a decoder that carries its tokenizer. (A model that runs on
   * the edge asks the edge, which refuses one that cannot.)
   */
  get canGenerate(): boolean {
    return this.#language !== undefined;
  }

  /**
   * Generates text from `prompt` — on the device with the same tokenizer, decode loop and sampling code as the edge,
   * so greedy decoding (`temperature: 0`) gives the edge's text token for token — or on the edge in mode 'edge'.
   * Parameters as the HTTP API names them. One generation (or run) at a time.
   */
  async generate(
    prompt: string,
    parameters: GenerateParameters = {},
    o: { signal?: AbortSignal | undefined } = {},
  ): Promise<LocalGenerateResult> {
    const stream = this.generateStream(prompt, parameters, o);
    for (;;) {
      const next = await stream.next();
      if (next.done) return next.value;
    }
  }

  /** generate(), as the text arrives: yields each new piece of text, returns the result; leaving early stops it. */
  generateStream(
    prompt: string,
    parameters: GenerateParameters = {},
    o: { signal?: AbortSignal | undefined } = {},
  ): AsyncGenerator<string, LocalGenerateResult> {
    if (this.#ranOn === 'edge')
      return generateOnEdge(this.#client!, this.model, this.version, prompt, parameters, o.signal);
    if (!this.#language)
      throw new LocalModelError(
        `${this.model} cannot generate: it is not a decoder carrying its tokenizer (see fedge pack)`,
      );
    const device: DeviceSession = {
      ort: this.#ort!,
      session: () => this.#session as never,
      ranOn: this.#ranOn,
      queue: (job) => {
        const run = this.#queue.then(job);
        this.#queue = run.catch(() => undefined);
        return run;
      },
    };
    return generateOnDevice(device, this.#language, prompt, parameters, o.signal);
  }

  async release(): Promise<void> {
    await this.#queue;
    await this.#session?.release();
    this.#session = undefined;
  }
}
