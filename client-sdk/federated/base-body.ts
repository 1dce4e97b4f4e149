/**
 * The frozen body of a task's base model, on the device: the served version's bytes (LocalModel's cache, sha256-
 * checked against the task's pin), cut at the head's input (headBody), run by LocalModel on WebGPU or WASM. It turns
 * a device's raw examples — the base model's own input, e.g. [n, 1, 28, 28] — into the embeddings its head trains
 * on; only the head's update ever leaves the device.
 */
import type { TaskBase } from '../../federated/aggregation/task-protocol.ts';
import { headBody } from '../../federated/model/head/body.ts';
import { elementCount } from '../../federated/oip/tensor.ts';
import type { EdgeClient } from '../edge/edge-client.ts';
import { LocalModel, type Provider } from '../local/local-model.ts';
import { LocalModelError } from '../local/local-model-error.ts';
import { type ModelCache, defaultModelCache } from '../local/model-cache.ts';
import { modelBytes } from '../local/model-bytes.ts';

/** Examples per body run when the base takes any batch size. */
const BATCH = 64;

export class BaseBody {
  readonly base: TaskBase;
  readonly #model: LocalModel;
  readonly #input: string;
  readonly #exampleShape: number[];
  /** Examples per run: BATCH, or the base's fixed batch dimension. */
  readonly #batch: number;

  private constructor(base: TaskBase, model: LocalModel, input: string, exampleShape: number[], batch: number) {
    this.base = base;
    this.#model = model;
    this.#input = input;
    this.#exampleShape = exampleShape;
    this.#batch = batch;
  }

  static async load(o: {
    client: EdgeClient;
    base: TaskBase;
    cache?: ModelCache | undefined;
    providers?: Provider[] | undefined;
    wasmPaths?: string | undefined;
    signal?: AbortSignal | undefined;
  }): Promise<BaseBody> {
    const { client, base } = o;
    const meta = await client.model(base.model, base.version, { signal: o.signal });
    if (meta.inputs.length !== 1)
      throw new LocalModelError(
        `base ${base.model}@${base.version} has ${meta.inputs.length} inputs; devices embed examples for one-input models`,
      );
    const [input] = meta.inputs;
    if (input!.datatype !== 'FP32' && !input!.featurizer)
      throw new LocalModelError(`base ${base.model}@${base.version} takes ${input!.datatype}; examples are float32`);
    const exampleShape = input!.shape.slice(1);
    if (exampleShape.some((d) => d < 0))
      throw new LocalModelError(
        `base ${base.model}@${base.version}: input '${input!.name}' has open dimensions besides the batch ([${input!.shape}]); examples need a fixed shape`,
      );
    const { bytes } = await modelBytes({
      client,
      model: base.model,
      version: base.version,
      sha256: base.sha256,
      cache: o.cache ?? defaultModelCache(),
      signal: o.signal,
    });
    const model = await LocalModel.load({
      model: `${base.model}@${base.version}/body`,
      bytes: headBody(bytes, base.head),
      providers: o.providers,
      wasmPaths: o.wasmPaths,
      cache: false,
    });
    const batch = input!.shape[0]! > 0 ? input!.shape[0]! : BATCH;
    return new BaseBody(base, model, input!.name, exampleShape, batch);
  }

  get provider(): string {
    return this.#model.provider;
  }

  /** Embeddings [n, size] of n examples laid out as the base model's input, row-major. */
  async embed(x: Float32Array, n: number, signal?: AbortSignal): Promise<Float32Array> {
    const per = elementCount(this.#exampleShape);
    if (x.length !== n * per)
      throw new LocalModelError(
        `examples: x has ${x.length} values, the base takes ${n} × [${this.#exampleShape}] = ${n * per}`,
      );
    const { size, output } = this.base.head.embedding;
    const out = new Float32Array(n * size);
    for (let start = 0; start < n; start += this.#batch) {
      signal?.throwIfAborted();
      // A fixed batch dimension takes exactly that many rows: the last run is padded with zeros and cut back.
      const rows = Math.min(this.#batch, n - start);
      const b = this.#batch === BATCH ? rows : this.#batch;
      const data = new Float32Array(b * per);
      data.set(x.subarray(start * per, (start + rows) * per));
      const r = await this.#model.run(
        { [this.#input]: { data, shape: [b, ...this.#exampleShape] } },
        signal ? { signal } : {},
      );
      out.set((r.outputs[output]!.data as Float32Array).subarray(0, rows * size), start * size);
    }
    return out;
  }

  release(): Promise<void> {
    return this.#model.release();
  }
}
