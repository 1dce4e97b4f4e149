/**
 * Per-version inference statistics in the shape of Triton's statistics extension (protocol/extension_statistics.md):
 * `inference_count` counts batch items of successful requests, `execution_count` successful ORT runs — fewer than
 * requests when dynamic batching (functions/inference/dynamic-batcher.ts) ran several as one, so
 * inference_count / execution_count is the mean batch size; `batch_stats` are per executed batch size;
 * `success`/`fail` count requests with their total duration; `queue` and `compute_*` cover successful requests. Durations in ns, `last_inference` in ms
 * since the epoch. Kept in this isolate's memory: a new isolate starts from zero.
 */
export interface Duration {
  count: number;
  ns: number;
}

export interface BatchStats {
  batch_size: number;
  compute_input: Duration;
  compute_infer: Duration;
  compute_output: Duration;
}

export interface ModelStat {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: {
    success: Duration;
    fail: Duration;
    queue: Duration;
    compute_input: Duration;
    compute_infer: Duration;
    compute_output: Duration;
  };
  batch_stats: BatchStats[];
}

/** What one run reports (milliseconds, as RunTimer measures). */
export interface RunOutcome {
  ok: boolean;
  batch: number;
  totalMs: number;
  queueMs?: number;
  inputMs?: number;
  inferMs?: number;
  outputMs?: number;
  /** Dynamic batching: whether this request started its ORT run (runs count once), and that run's rows. */
  leader?: boolean;
  executionBatch?: number;
}

const zero = (): Duration => ({ count: 0, ns: 0 });
const add = (d: Duration, ms = 0) => {
  d.count += 1;
  d.ns += Math.round(ms * 1e6);
};

export function emptyStat(name: string, version: string): ModelStat {
  return {
    name,
    version,
    last_inference: 0,
    inference_count: 0,
    execution_count: 0,
    inference_stats: {
      success: zero(),
      fail: zero(),
      queue: zero(),
      compute_input: zero(),
      compute_infer: zero(),
      compute_output: zero(),
    },
    batch_stats: [],
  };
}

interface Entry {
  sha256: string;
  stat: ModelStat;
}

export class ModelStats {
  readonly #byVersion = new Map<string, Entry>();

  #key = (model: string, version: string) => `${model}\u0000${version}`;

  record(model: string, version: string, sha256: string, run: RunOutcome, now = Date.now()): void {
    const key = this.#key(model, version);
    let entry = this.#byVersion.get(key);
    // A version deleted and uploaded again with other bytes is another model: its counters start again.
    if (!entry || entry.sha256 !== sha256)
      this.#byVersion.set(key, (entry = { sha256, stat: emptyStat(model, version) }));
    const s = entry.stat;
    s.last_inference = now;
    if (!run.ok) {
      add(s.inference_stats.fail, run.totalMs);
      return;
    }
    s.inference_count += run.batch;
    const is = s.inference_stats;
    add(is.success, run.totalMs);
    add(is.queue, run.queueMs);
    add(is.compute_input, run.inputMs);
    add(is.compute_infer, run.inferMs);
    add(is.compute_output, run.outputMs);
    // A request that joined another's run shares that execution: it is counted (and timed per batch size) once.
    if (run.leader === false) return;
    s.execution_count += 1;
    const size = run.executionBatch ?? run.batch;
    let b = s.batch_stats.find((x) => x.batch_size === size);
    if (!b) {
      s.batch_stats.push(
        (b = { batch_size: size, compute_input: zero(), compute_infer: zero(), compute_output: zero() }),
      );
      s.batch_stats.sort((x, y) => x.batch_size - y.batch_size);
    }
    add(b.compute_input, run.inputMs);
    add(b.compute_infer, run.inferMs);
    add(b.compute_output, run.outputMs);
  }

  /** The statistics of a version with these bytes (zeros when this isolate never ran it). */
  get(model: string, version: string, sha256: string): ModelStat {
    const entry = this.#byVersion.get(this.#key(model, version));
    return entry && entry.sha256 === sha256 ? structuredClone(entry.stat) : emptyStat(model, version);
  }
}
