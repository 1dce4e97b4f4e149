/**
 * The LocalModel page for test/browser/local-model.test.ts and bench/browser.ts (served by local-model-page-server.ts;
 * browser code, typechecked by client-sdk/tsconfig.json): the SDK as a web app embeds it (bundled by esbuild), driven
 * through `window.fedge`. The edge's URL comes in the page's query string; onnxruntime-web's .wasm is served by the
 * page's server under /ort/.
 */
import { EdgeClient, LocalModel, type Provider } from '../../client-sdk/index.ts';

const edge = new URL(location.href).searchParams.get('edge')!;
const client = new EdgeClient({ url: edge });
const models = new Map<string, LocalModel>();

type Outcome<T> = ({ ok: true } & T) | { ok: false; name: string; message: string };
async function attempt<T extends object>(f: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, ...(await f()) };
  } catch (e) {
    return { ok: false, name: (e as Error).name, message: (e as Error).message };
  }
}

/** Median and p90 (ms) of `runs` calls after 5 warm-up calls (shader compilation, connection reuse). */
async function timeRuns(once: () => Promise<unknown>, runs: number): Promise<{ p50: number; p90: number }> {
  for (let i = 0; i < 5; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await once();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(runs / 2)]!, p90: times[Math.floor(runs * 0.9)]! };
}

const api = {
  async load(
    key: string,
    o: { model: string; version?: string; providers?: Provider[]; mode?: 'local' | 'edge' | 'auto' },
  ) {
    return attempt(async () => {
      const m = await LocalModel.load({ client, wasmPaths: '/ort/', ...o });
      models.set(key, m);
      return {
        provider: m.provider,
        version: m.version,
        sha256: m.sha256,
        fromCache: m.fromCache,
        inputNames: [...m.inputNames],
      };
    });
  },
  async prefetched(key: string) {
    await models.get(key)!.prefetched;
    return true;
  },
  async run(key: string, input: number[], shape: number[], name = 'input') {
    return attempt(async () => {
      const r = await models.get(key)!.run({ [name]: { data: Float32Array.from(input), shape } });
      const [first] = Object.values(r.outputs);
      return { ranOn: r.ranOn, ms: r.ms, shape: first!.shape, data: Array.from(first!.data as Float32Array) };
    });
  },
  async edge(model: string, input: number[], shape: number[], binary: boolean | 'auto' = 'auto') {
    return attempt(async () => {
      const r = await client.infer(model, { input: { data: Float32Array.from(input), shape } }, { binary });
      const [first] = Object.values(r.outputs);
      return {
        version: r.version,
        provider: r.provider,
        ms: r.ms,
        shape: first!.shape,
        data: Array.from(first!.data as Float32Array),
      };
    });
  },
  /** Median latency (ms) of `runs` single-example runs, locally (`key`) or on the edge (`key` = 'edge:<model>'). */
  async latency(key: string, input: number[], runs: number, shape = [1, input.length]) {
    const x = { input: { data: Float32Array.from(input), shape } };
    const once = key.startsWith('edge:') ? () => client.infer(key.slice(5), x) : () => models.get(key)!.run(x);
    return timeRuns(once, runs);
  },
  /** An identity model (its bytes) run on the device: what LocalModel hands back for `datatype` (FP16, BYTES, …). */
  async identity(bytes: number[], datatype: 'FP16' | 'BYTES', data: number[] | string[], shape: number[]) {
    return attempt(async () => {
      const m = await LocalModel.load({
        model: 'identity',
        bytes: Uint8Array.from(bytes),
        providers: ['wasm'],
        wasmPaths: '/ort/',
      });
      const x =
        datatype === 'FP16'
          ? { data: Uint16Array.from(data as number[]), shape, datatype }
          : { data: data as string[], shape };
      const [first] = Object.values((await m.run({ x })).outputs);
      await m.release();
      return {
        datatype: first!.datatype,
        array: first!.data.constructor.name,
        data: Array.from(first!.data as ArrayLike<number | string>),
      };
    });
  },
  /**
   * bench/browser.ts's comparison: the same model on onnxruntime-web's default build (JSEP, deprecated since ORT
   * 1.29), the build LocalModel used before it moved to the native WebGPU provider. Median and p90 of `runs`.
   */
  async jsepLatency(
    model: string,
    input: number[],
    runs: number,
    provider: 'webgpu' | 'wasm',
    shape = [1, input.length],
  ) {
    const ort = await import('onnxruntime-web');
    ort.env.wasm.wasmPaths = { wasm: new URL('/ort/ort-wasm-simd-threaded.jsep.wasm', location.href).href };
    ort.env.logLevel = 'error';
    const bytes = new Uint8Array(await (await fetch(`${edge}/v2/models/${model}/onnx`)).arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
    });
    const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(input), shape) };
    const r = await timeRuns(() => session.run(feeds), runs);
    await session.release();
    return r;
  },
  async release(key: string) {
    await models.get(key)?.release();
    models.delete(key);
  },
};

Object.assign(globalThis, { fedge: api });
document.title = 'ready';
