/**
 * One ORT session per model version (sha256) per isolate: created once, shared by every request, and
 * released when it falls out of the least-recently-used window. Runs on one session are serialised —
 * the single-threaded WASM runtime does one at a time anyway, and interleaved runs must not share state.
 * A run that fails is a ModelRunError (the model or the input is wrong, not the server). A run that ran out of
 * the bounded WASM heap also drops every other cached session, so their weights go back to the heap's free list.
 */
import { fromOrtTensor, toOrtTensor } from '../../federated/oip/ort-tensors.ts';
import { type LoadedModel, loadModel } from './model-loader.ts';
import { ort, wasmHeap } from './ort-runtime.ts';
import { ModelRunError } from './run-error.ts';
import type { Tensor } from './tensor-codec.ts';
import type { RunTimer } from '../metrics/run-timing.ts';

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
      const [oldest] = this.#entries.keys();
      this.#drop(oldest!);
    }
  }

  #drop(sha256: string): void {
    const entry = this.#entries.get(sha256);
    if (!entry) return;
    this.#entries.delete(sha256);
    // Release after in-flight runs finish.
    void entry.queue.then(() => entry.loaded).then((m) => m.session.release(), () => undefined);
  }

  /**
   * Runs the session for `sha256` on `inputs`, returning the named outputs (all when `outputNames` is empty).
   * `timer` (statistics) is marked when the run leaves the queue, so waiting is told apart from computing.
   */
  async run(sha256: string, bytes: () => Promise<Uint8Array>, inputs: Tensor[], outputNames: string[], timer?: RunTimer): Promise<Tensor[]> {
    const entry = this.#entry(sha256, bytes);
    const model = await entry.loaded;
    const task = entry.queue.then(() => {
      timer?.mark('start');
      return runSession(model, inputs, outputNames, sha256, timer);
    });
    entry.queue = task.catch(() => undefined);
    try {
      return await task;
    } catch (e) {
      if (e instanceof ModelRunError && e.outOfMemory) for (const other of [...this.#entries.keys()]) if (other !== sha256) this.#drop(other);
      throw e;
    }
  }
}

/** A run that grows the heap by more than this is logged: the growth is permanent (the heap never shrinks). */
const LOGGED_GROWTH = 64 * 1024 * 1024;

/** Runs `model` once; ORT's failures become ModelRunError with its reason. */
export async function runSession(model: LoadedModel, inputs: Tensor[], outputNames: string[], what = 'model', timer?: RunTimer): Promise<Tensor[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of inputs) feeds[t.name] = toOrtTensor(ort.Tensor, t);
  timer?.mark('input');
  const names = outputNames.length ? outputNames : model.outputs.map((o) => o.name);
  const before = wasmHeap().bytes;
  let results: ort.InferenceSession.ReturnType;
  try {
    results = await model.session.run(feeds, names);
    timer?.mark('infer');
  } catch (e) {
    throw ModelRunError.from(e);
  } finally {
    const heap = wasmHeap();
    if (heap.bytes - before > LOGGED_GROWTH) {
      console.warn(`inference on ${what} grew the WASM heap from ${mib(before)} to ${mib(heap.bytes)} MiB (bound ${mib(heap.max)} MiB)`);
    }
  }
  const outputs = names.map((name) => ({ name, ...fromOrtTensor(name, results[name]!) }));
  timer?.mark('output');
  return outputs;
}

const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
