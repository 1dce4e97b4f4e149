/**
 * One ORT session per model version (sha256) per isolate: created once, shared by every request, and
 * released when it falls out of the least-recently-used window. Runs on one session are serialised —
 * the single-threaded WASM runtime does one at a time anyway, and interleaved runs must not share state.
 * A run that fails is a ModelRunError (the model or the input is wrong, not the server). A load or a run that runs
 * out of the bounded WASM heap has every other cached session released — their weights go back to the heap's free
 * list — and is tried once more (memory.ts says what still failing answers). The retry happens outside the session's
 * queue: runs on two sessions that ran out at once each wait for the other's release, never for each other's retry.
 */
import { fromOrtTensor, toOrtTensor } from '../../federated/oip/ort-tensors.ts';
import { MemoryBusyError, type SessionHolder, holdSessions, outOfMemory, releaseHeldSessions } from './memory.ts';
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
  /** The session, once loaded (what releaseAll releases; an entry still loading holds none yet). */
  session?: ort.InferenceSession | undefined;
  queue: Promise<unknown>;
  /** Batchable requests waiting for their turn to run (alone or in another's batch). */
  waiting: Job[];
  /** Set when the session is released: a run queued after the drop finds it and runs on a fresh entry. */
  released: boolean;
}

/** The session a run was queued on was released first (evicted): the run goes again on a fresh entry. */
class SessionReleased extends Error {
  override name = 'SessionReleased';
}
/** Fresh entries one request tries before giving up (each try means its session was evicted under it). */
const RELEASED_TRIES = 4;

/** Dynamic batching (dynamic-batcher.ts): most rows per run (1: off), and how long a request waits for others (ms). */
export interface BatchingOptions {
  maxBatchSize: number;
  maxQueueDelayMs: number;
}

export class SessionCache implements SessionHolder {
  readonly #entries = new Map<string, Entry>();
  readonly #capacity: number;
  readonly #batching: BatchingOptions;

  constructor(capacity: number, batching: BatchingOptions = { maxBatchSize: 1, maxQueueDelayMs: 0 }) {
    this.#capacity = Math.max(1, capacity);
    this.#batching = batching;
    holdSessions(this);
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
    const loaded = bytes().then((b) => loadModel(b, { stored: true }));
    const created: Entry = { loaded, queue: Promise.resolve(), waiting: [], released: false };
    this.#entries.set(sha256, created);
    loaded.then(
      (m) => (created.session = m.session),
      () => this.#entries.get(sha256) === created && this.#entries.delete(sha256),
    );
    entry = created;
    this.#evict();
    return entry;
  }

  #evict(): void {
    while (this.#entries.size > this.#capacity) {
      const [oldest] = this.#entries.keys();
      void this.#drop(oldest!);
    }
  }

  /** Takes `sha256` out of the cache and releases its session after the runs already queued on it; resolves when released. */
  #drop(sha256: string): Promise<void> {
    const entry = this.#entries.get(sha256);
    if (!entry) return Promise.resolve();
    this.#entries.delete(sha256);
    const release = entry.queue
      .then(() => entry.loaded)
      .then(
        (m) => {
          entry.released = true;
          return m.session.release();
        },
        () => undefined,
      );
    entry.queue = release.catch(() => undefined);
    return entry.queue.then(() => undefined);
  }

  /** Releases every loaded session but `keep` (memory.ts, when a load or run ran out of memory). */
  async releaseAll(keep?: ort.InferenceSession): Promise<void> {
    const drops: Promise<void>[] = [];
    for (const [sha256, entry] of this.#entries)
      if (entry.session && entry.session !== keep) drops.push(this.#drop(sha256));
    await Promise.all(drops);
  }

  /**
   * Runs the session for `sha256` on `inputs`, returning the named outputs (all when `outputNames` is empty).
   * `timer` (statistics) is marked when the run leaves the queue, so waiting is told apart from computing.
   */
  run(
    sha256: string,
    bytes: () => Promise<Uint8Array>,
    inputs: Tensor[],
    outputNames: string[],
    timer?: RunTimer,
  ): Promise<Tensor[]> {
    return this.#retrying(sha256, (first) => this.#runOnce(sha256, bytes, inputs, outputNames, timer, first));
  }

  /**
   * Runs `job` on the session of `sha256` in its queue — one step of a generation (federated/generation), whose
   * feeds and outputs stay ORT tensors — with run()'s answers to eviction and to running out of memory.
   */
  runSessionJob<T>(
    sha256: string,
    bytes: () => Promise<Uint8Array>,
    job: (model: LoadedModel) => Promise<T>,
  ): Promise<T> {
    return this.#retrying(sha256, async () => {
      const entry = this.#entry(sha256, bytes);
      const model = await entry.loaded;
      const task = entry.queue.then(async () => {
        if (entry.released) throw new SessionReleased();
        try {
          return await job(model);
        } catch (e) {
          throw ModelRunError.from(e);
        }
      });
      entry.queue = task.catch(() => undefined);
      return task;
    });
  }

  /** `attempt` (first: whether it may batch), again on a fresh entry after an eviction and once after an out-of-memory. */
  async #retrying<T>(sha256: string, attempt: (first: boolean) => Promise<T>): Promise<T> {
    let tries = 0;
    let retried = false;
    for (;;) {
      try {
        return await attempt(!retried);
      } catch (e) {
        if (e instanceof SessionReleased) {
          if (++tries < RELEASED_TRIES) continue;
          throw new MemoryBusyError(
            `out of memory: this model's session was released ${RELEASED_TRIES} times while the request waited for it (other models needed the memory); retry shortly`,
          );
        }
        if (!(e instanceof ModelRunError && e.outOfMemory)) throw e;
        if (retried) throw outOfMemory('this run', 1, e.message);
        retried = true;
        // Outside the session's queue (the module comment); the session this run needs is kept.
        await releaseHeldSessions(this.#entries.get(sha256)?.session);
      }
    }
  }

  /** One try of run(): on the current entry of `sha256`, batched with other requests when `batch` and batching is on. */
  async #runOnce(
    sha256: string,
    bytes: () => Promise<Uint8Array>,
    inputs: Tensor[],
    outputNames: string[],
    timer: RunTimer | undefined,
    batch: boolean,
  ): Promise<Tensor[]> {
    const entry = this.#entry(sha256, bytes);
    const model = await entry.loaded;
    const key = batch && this.#batching.maxBatchSize > 1 ? batchKey(model, inputs, outputNames) : undefined;
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
      return done;
    }
    const task = entry.queue.then(() => {
      if (entry.released) throw new SessionReleased();
      timer?.mark('start');
      return runSession(model, inputs, outputNames, sha256, timer);
    });
    entry.queue = task.catch(() => undefined);
    return task;
  }

  /** One run over `lead` and every other waiting request of its key, up to maxBatchSize rows; results split back. */
  async #runBatch(entry: Entry, model: LoadedModel, sha256: string, lead: Job): Promise<void> {
    if (!entry.waiting.includes(lead)) return;
    if (entry.released) {
      // Evicted before this turn: the lead goes again on a fresh entry; the others, still waiting, do on theirs.
      entry.waiting = entry.waiting.filter((j) => j !== lead);
      return lead.reject(new SessionReleased());
    }
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
