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
import { batchKey, concatInputs, rowsOf, splitOutputs } from './dynamic-batcher.ts';

/** A request waiting to join a batched run. */
interface Job {
  key: string;
  inputs: Tensor[];
  outputNames: string[];
  rows: number;
  timer: RunTimer | undefined;
  resolve(outputs: Tensor[]): void;
  reject(e: unknown): void;
}

interface Entry {
  loaded: Promise<LoadedModel>;
  queue: Promise<unknown>;
  /** Batchable requests waiting for their turn to run (alone or in another's batch). */
  waiting: Job[];
}

/** Dynamic batching (dynamic-batcher.ts): most rows per run (1: off), and how long a request waits for others (ms). */
export interface BatchingOptions {
  maxBatchSize: number;
  maxQueueDelayMs: number;
}

export class SessionCache {
  readonly #entries = new Map<string, Entry>();
  readonly #capacity: number;
  readonly #batching: BatchingOptions;

  constructor(capacity: number, batching: BatchingOptions = { maxBatchSize: 1, maxQueueDelayMs: 0 }) {
    this.#capacity = Math.max(1, capacity);
    this.#batching = batching;
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
    entry = { loaded, queue: Promise.resolve(), waiting: [] };
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
    void entry.queue
      .then(() => entry.loaded)
      .then(
        (m) => m.session.release(),
        () => undefined,
      );
  }

  /**
   * Runs the session for `sha256` on `inputs`, returning the named outputs (all when `outputNames` is empty).
   * `timer` (statistics) is marked when the run leaves the queue, so waiting is told apart from computing.
   */
  async run(
    sha256: string,
    bytes: () => Promise<Uint8Array>,
    inputs: Tensor[],
    outputNames: string[],
    timer?: RunTimer,
  ): Promise<Tensor[]> {
    const entry = this.#entry(sha256, bytes);
    const model = await entry.loaded;
    const key = this.#batching.maxBatchSize > 1 ? batchKey(model, inputs, outputNames) : undefined;
    if (key !== undefined && rowsOf(inputs) < this.#batching.maxBatchSize) {
      let settle!: Pick<Job, 'resolve' | 'reject'>;
      const done = new Promise<Tensor[]>((resolve, reject) => (settle = { resolve, reject }));
      const job: Job = { key, inputs, outputNames, rows: rowsOf(inputs), timer, ...settle };
      entry.waiting.push(job);
      // One turn of the event loop, in this request's own context: a run in WASM never yields, so requests already
      // received behind this one reach run() only now. The first whose turn comes leads a run over every waiting
      // request of its key; the others find theirs done. (A request never waits on another request's timer:
      // workerd cancels a request whose context has nothing left to wait for as hung.)
      await new Promise((r) => setTimeout(r, this.#batching.maxQueueDelayMs));
      if (entry.waiting.includes(job)) {
        const task = entry.queue.then(() => this.#runBatch(entry, model, sha256, job));
        entry.queue = task.catch(() => undefined);
      }
      return this.#outOfMemoryDrops(sha256, done);
    }
    const task = entry.queue.then(() => {
      timer?.mark('start');
      return runSession(model, inputs, outputNames, sha256, timer);
    });
    entry.queue = task.catch(() => undefined);
    return this.#outOfMemoryDrops(sha256, task);
  }

  async #outOfMemoryDrops(sha256: string, task: Promise<Tensor[]>): Promise<Tensor[]> {
    try {
      return await task;
    } catch (e) {
      if (e instanceof ModelRunError && e.outOfMemory)
        for (const other of [...this.#entries.keys()]) if (other !== sha256) this.#drop(other);
      throw e;
    }
  }

  /** One run over `lead` and every other waiting request of its key, up to maxBatchSize rows; results split back. */
  async #runBatch(entry: Entry, model: LoadedModel, sha256: string, lead: Job): Promise<void> {
    if (!entry.waiting.includes(lead)) return;
    const batch: Job[] = [lead];
    let rows = lead.rows;
    entry.waiting = entry.waiting.filter((j) => {
      if (j === lead) return false;
      if (j.key !== lead.key || rows + j.rows > this.#batching.maxBatchSize) return true;
      batch.push(j);
      rows += j.rows;
      return false;
    });
    // Requests that did not fit (another key, or the batch is full) lead their own runs on their turn.
    for (const j of batch) {
      j.timer?.mark('start');
      j.timer?.execution(j === lead, rows);
    }
    const one = async (j: Job) => {
      try {
        j.resolve(await runSession(model, j.inputs, j.outputNames, sha256, j.timer));
      } catch (e) {
        j.reject(e);
      }
    };
    if (batch.length === 1) return one(lead);
    let split: Tensor[][] | undefined;
    try {
      const outputs = await runSession(
        model,
        concatInputs(batch.map((j) => j.inputs)),
        lead.outputNames,
        sha256,
        lead.timer,
      );
      for (const j of batch.slice(1)) j.timer?.copyMarks(lead.timer);
      split = splitOutputs(
        outputs,
        batch.map((j) => j.rows),
      );
    } catch {
      split = undefined;
    }
    if (split) batch.forEach((j, i) => j.resolve(split![i]!));
    // The batched run failed or its outputs do not follow the rows: each request runs alone, and meets its own error.
    else for (const j of batch) j.timer?.execution(true, j.rows), await one(j);
  }
}

/** A run that grows the heap by more than this is logged: the growth is permanent (the heap never shrinks). */
const LOGGED_GROWTH = 64 * 1024 * 1024;

/** Runs `model` once; ORT's failures become ModelRunError with its reason. */
export async function runSession(
  model: LoadedModel,
  inputs: Tensor[],
  outputNames: string[],
  what = 'model',
  timer?: RunTimer,
): Promise<Tensor[]> {
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
      console.warn(
        `inference on ${what} grew the WASM heap from ${mib(before)} to ${mib(heap.bytes)} MiB (bound ${mib(heap.max)} MiB)`,
      );
    }
  }
  const outputs = names.map((name) => ({ name, ...fromOrtTensor(name, results[name]!) }));
  timer?.mark('output');
  return outputs;
}

const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
