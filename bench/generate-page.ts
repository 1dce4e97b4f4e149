/**
 * The page bench/generate.ts opens in Chromium (bundled by esbuild and served by dev/harness/page-server.ts): the same
 * model file generated from on the device two ways, each timed as its text arrives —
 *   LocalModel.generateStream (the client SDK: the shared decode loop on onnxruntime-web, WASM or WebGPU), and
 *   transformers.js's text-generation pipeline (its own decode loop on its own onnxruntime-web), with a streamer that
 *   stamps each new token.
 * Files the page's server holds: /model.onnx (the bench's copy of the model), /ort/ (onnxruntime-web's binaries for
 * LocalModel), /tjs-ort/ (the binaries of transformers.js's onnxruntime-web) and /tjs-models/<id>/ (the model as a
 * Hugging Face folder: config.json, tokenizer files, onnx/model_quantized.onnx). Driven through `window.fedgeGenerate`.
 */
import { LocalModel, type Provider } from '../client-sdk/index.ts';
import { BaseStreamer, env, pipeline } from '@huggingface/transformers';

import type { PageRun, PageTrace } from './generate-trace.ts';

export type { PageRun, PageTrace };

type Outcome<T> = ({ ok: true } & T) | { ok: false; error: string };

async function attempt<T extends object>(f: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, ...(await f()) };
  } catch (e) {
    const err = e as Error;
    return { ok: false, error: `${err.name}: ${err.message}` };
  }
}

/** New tokens of the warm-up generation: enough to compile every shader and size every buffer. */
const WARM_TOKENS = 8;

async function timed(
  once: (maxTokens: number) => Promise<PageTrace>,
  maxTokens: number,
  runs: number,
): Promise<{ warm: PageTrace; traces: PageTrace[] }> {
  const warm = await once(Math.min(WARM_TOKENS, maxTokens));
  const traces: PageTrace[] = [];
  for (let i = 0; i < runs; i++) traces.push(await once(maxTokens));
  return { warm, traces };
}

const modelBytes = async () => new Uint8Array(await (await fetch('/model.onnx')).arrayBuffer());

/** LocalModel on `provider` only (it says which provider ran; anything else is an error here). */
function localModel(provider: Provider, prompt: string, maxTokens: number, runs: number): Promise<Outcome<PageRun>> {
  return attempt(async () => {
    const bytes = await modelBytes();
    const started = performance.now();
    const model = await LocalModel.load({
      model: 'fedge-gpt-bench',
      bytes,
      providers: [provider],
      wasmPaths: '/ort/',
      cache: false,
    });
    const loadMs = performance.now() - started;
    try {
      if (model.provider !== provider) throw new Error(`LocalModel ran on ${model.provider}, not ${provider}`);
      const once = async (tokens: number): Promise<PageTrace> => {
        const arrivals: Arrival[] = [];
        const t0 = performance.now();
        const stream = model.generateStream(prompt, { max_tokens: tokens, temperature: 0 });
        for (;;) {
          const next = await stream.next();
          const t = performance.now() - t0;
          if (next.done) {
            const r = next.value;
            return {
              arrivals,
              ms: t,
              text: r.text,
              completionTokens: r.completionTokens,
              promptTokens: r.promptTokens,
              finishReason: r.finishReason,
            };
          }
          arrivals.push({ t, text: next.value });
        }
      };
      return { ranOn: `LocalModel ${model.provider}`, loadMs, ...(await timed(once, maxTokens, runs)) };
    } finally {
      await model.release();
    }
  });
}

/** Stamps each generated token as transformers.js's generate() hands it over (the first put is the prompt). */
class TimingStreamer extends BaseStreamer {
  readonly t0 = performance.now();
  promptTokens = -1;
  readonly arrivals: Arrival[] = [];
  override put(value: bigint[][]): void {
    const t = performance.now() - this.t0;
    if (this.promptTokens < 0) {
      this.promptTokens = value[0]!.length;
      return;
    }
    this.arrivals.push({ t, text: '', id: Number(value[0]![0]) });
  }
  override end(): void {}
}

let tjsConfigured = false;
function configureTransformersJs(): void {
  if (tjsConfigured) return;
  tjsConfigured = true;
  // Only the files this page serves: no Hub, no CDN, no Cache API.
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = '/tjs-models/';
  env.useBrowserCache = false;
  env.useWasmCache = false;
  const onnx = env.backends.onnx as { wasm?: { wasmPaths?: unknown } };
  const here = (globalThis as unknown as { location: { href: string } }).location.href;
  onnx.wasm!.wasmPaths = {
    mjs: new URL('/tjs-ort/ort-wasm-simd-threaded.asyncify.mjs', here).href,
    wasm: new URL('/tjs-ort/ort-wasm-simd-threaded.asyncify.wasm', here).href,
  };
}

function transformersJs(
  modelId: string,
  device: 'wasm' | 'webgpu',
  dtype: 'q8' | 'int8',
  prompt: string,
  maxTokens: number,
  runs: number,
): Promise<Outcome<PageRun>> {
  return attempt(async () => {
    configureTransformersJs();
    const started = performance.now();
    const generator = await pipeline('text-generation', modelId, { device, dtype });
    const loadMs = performance.now() - started;
    try {
      const once = async (tokens: number): Promise<PageTrace> => {
        const streamer = new TimingStreamer();
        const out = (await generator(prompt, {
          max_new_tokens: tokens,
          // eos must not end the run early: the same count as every other contestant.
          min_new_tokens: tokens,
          do_sample: false,
          return_full_text: false,
          add_special_tokens: true,
          streamer,
        } as never)) as { generated_text: string }[];
        const ms = performance.now() - streamer.t0;
        return {
          arrivals: streamer.arrivals,
          ms,
          text: out[0]!.generated_text,
          completionTokens: streamer.arrivals.length,
          promptTokens: streamer.promptTokens,
          finishReason: streamer.arrivals.length >= tokens ? 'length' : 'stop',
        };
      };
      const session = (generator.model as unknown as { sessions: Record<string, { config?: { device?: string } }> })
        .sessions.model;
      return {
        ranOn: `transformers.js ${session?.config?.device ?? device} ${dtype}`,
        loadMs,
        ...(await timed(once, maxTokens, runs)),
      };
    } finally {
      await generator.dispose();
    }
  });
}

Object.assign(globalThis, { fedgeGenerate: { localModel, transformersJs } });
(globalThis as unknown as { document: { title: string } }).document.title = 'ready';
