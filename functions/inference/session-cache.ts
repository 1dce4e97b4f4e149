/**
 * One ORT session per model version (sha256) per isolate: created once, shared by every request, and
 * released when it falls out of the least-recently-used window. Runs on one session are serialised —
 * the single-threaded WASM runtime does one at a time anyway, and interleaved runs must not share state.
 */
import { DATATYPE_INFO, datatypeOfOrt, type TypedArray } from '../../federated/oip/datatypes.ts';
import { type LoadedModel, loadModel } from './model-loader.ts';
import { ort } from './ort-runtime.ts';
import type { Tensor } from './tensor-codec.ts';

interface Entry {
  loaded: Promise<LoadedModel>;
  queue: Promise<unknown>;
}

export class SessionCache {
  readonly #entries = new Map<string, Entry>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  get size(): number {
    return this.#entries.size;
  }

  has(sha256: string): boolean {
    return this.#entries.has(sha256);
  }

  /** The session for `sha256`, loading the bytes once even when many requests ask at the same time. */
  async get(sha256: string, bytes: () => Promise<Uint8Array>): Promise<LoadedModel> {
    return this.#entry(sha256, bytes).loaded;
  }

  #entry(sha256: string, bytes: () => Promise<Uint8Array>): Entry {
    let entry = this.#entries.get(sha256);
    if (entry) {
      this.#entries.delete(sha256); // refresh recency
      this.#entries.set(sha256, entry);
      return entry;
    }
    const loaded = bytes().then(loadModel);
    entry = { loaded, queue: Promise.resolve() };
    this.#entries.set(sha256, entry);
    loaded.catch(() => this.#entries.get(sha256) === entry && this.#entries.delete(sha256));
    this.#evict();
    return entry;
  }

  #evict(): void {
    while (this.#entries.size > this.#capacity) {
      const [oldest, entry] = this.#entries.entries().next().value as [string, Entry];
      this.#entries.delete(oldest);
      // Release after in-flight runs finish.
      void entry.queue.then(() => entry.loaded).then((m) => m.session.release(), () => undefined);
    }
  }

  /** Runs the session for `sha256` on `inputs`, returning the named outputs (all when `outputNames` is empty). */
  async run(sha256: string, bytes: () => Promise<Uint8Array>, inputs: Tensor[], outputNames: string[]): Promise<Tensor[]> {
    const entry = this.#entry(sha256, bytes);
    const model = await entry.loaded;
    const task = entry.queue.then(() => runSession(model, inputs, outputNames));
    entry.queue = task.catch(() => undefined);
    return task;
  }
}

async function runSession(model: LoadedModel, inputs: Tensor[], outputNames: string[]): Promise<Tensor[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of inputs) feeds[t.name] = new ort.Tensor(DATATYPE_INFO[t.datatype].ort, t.data as never, t.shape);
  const names = outputNames.length ? outputNames : model.outputs.map((o) => o.name);
  const results = await model.session.run(feeds, names);
  return names.map((name) => {
    const r = results[name]!;
    const datatype = datatypeOfOrt(r.type)!;
    let data = r.data as TypedArray;
    if (datatype === 'FP16' && !(data instanceof Uint16Array)) {
      const d = data as unknown as ArrayBufferView;
      data = new Uint16Array(d.buffer, d.byteOffset, d.byteLength / 2); // Float16Array -> raw halves
    }
    return { name, datatype, shape: r.dims.slice(), data };
  });
}
