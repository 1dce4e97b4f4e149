/**
 * LanguageModelTrainer: fine-tunes a decoder (federated/model/decoder-spec.ts, e.g. the default fedge-gpt) on the
 * device's own token sequences with TensorFlow.js — causal language-model loss, plainly or under example-level DP-SGD
 * with each *sequence* as the example (Abadi et al. 2016, Algorithm 1, as the classifier Trainer does; the shared
 * pieces are in dp-sgd.ts): Poisson sampling at q = B/N, each sequence's gradient of the trained parameters clipped as
 * a whole to C, N(0, σ²C²) on the sum, division by the expected batch qN; ε from the RDP accountant for exactly that
 * sampling, the ledger charged (or the charge reserved) before the run.
 *
 * What trains (`trainable`):
 * - `lora:<rank>` — FFA-LoRA (federated/model/lora.ts): on every attention and MLP projection W, A [in, rank] is
 *   frozen, derived from the task's public seed; only B [rank, out] trains, from 0. The forward adds (α/r)·(x·A)·B.
 *   Per-sequence gradients of B come from one backward pass over per-sequence copies of B (lm-forward.ts).
 * - `last:<n>` — the last n blocks and ln_f; the embeddings and earlier blocks are frozen.
 * - `all` — every weight; on WASM the embeddings are looked up by one-hot matmul (gather's gradient needs
 *   UnsortedSegmentSum, which tfjs-backend-wasm lacks). Under DP, last/all clip per sequence by a loop of
 *   one-sequence backward passes (exact; slower than LoRA's batched per-sequence gradients).
 *
 * Memory: GELU and the cross-entropy carry hand-written gradients, each block is recomputed in the backward pass
 * (checkpointing, on by default) and `microBatch` sequences go through at a time (default 1); the step is the same.
 *
 * Sequences: token windows of 2 to contextLength + 1 tokens; position t predicts token t + 1. Sequences of different
 * lengths in one batch are right-padded (attention mask 0, no loss on padding), and each sequence's loss is the mean
 * over its own positions, so every sequence weighs the same.
 */
import type * as TF from '@tensorflow/tfjs';
import { type TokenRows, tokenBatch } from '../../federated/model/decoder-batch.ts';
import { type DecoderSpec, decoderParameterShapes, decoderWeightMap } from '../../federated/model/decoder-spec.ts';
import { type LoraSettings, type LoraTarget, loraA, loraTargets } from '../../federated/model/lora.ts';
import { ModelSpecError, type NamedWeight } from '../../federated/model/model-spec.ts';
import { tf } from '../../federated/model/tfjs-loader.ts';
import {
  type NextTokenScore,
  addScores,
  perplexity,
  scoreNextTokens,
} from '../../federated/generation/language-metrics.ts';
import type { Reservation } from '../privacy/ledger.ts';
import { type BackendName, selectBackend } from './backend.ts';
import {
  averagedGradients,
  checkFitOptions,
  createOptimizer,
  disposeOptimizer,
  poissonSample,
  shuffled,
  startPrivateRun,
  stepsPerEpoch as planSteps,
} from './dp-sgd.ts';
import { type OptimizerName, type PrivacyOptions, TrainerError } from './training-options.ts';
import { type Adapter, type CustomGradient, type LmForwardOptions, lmForward } from './lm-forward.ts';

/**
 * Sequences per forward/backward pass unless fit is told otherwise. 1: on WASM in Node it was as fast as 8 for the
 * default model (batch 8 × 64 positions, lora:4) and held a fourth of the memory (docs/sdk.md, the device's cost).
 */
export const DEFAULT_MICRO_BATCH = 1;

export type TrainableSpec = `lora:${number}` | `last:${number}` | 'all';

export interface LanguageModelTrainerOptions {
  spec: DecoderSpec;
  /** Starting float weights in spec order (decoderParameterShapes), e.g. the served model's. */
  weights: NamedWeight[];
  trainable: TrainableSpec;
  /** For `lora:<rank>`: α (default: the rank, so α/r = 1) and the public seed A is derived from (default 0). */
  lora?: { alpha?: number | undefined; seed?: number | undefined } | undefined;
  backend?: BackendName | 'auto' | undefined;
  /**
   * Gradient checkpointing (default true): each block is recomputed in the backward pass instead of keeping its
   * activations — the same gradients, less memory, one more forward pass of compute.
   */
  checkpoint?: boolean | undefined;
}

/** A token sequence: 2 to contextLength + 1 token ids. */
export type Sequence = Int32Array | readonly number[];

export interface LmFitOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer?: OptimizerName | undefined;
  privacy?: PrivacyOptions | undefined;
  /**
   * Sequences per forward/backward pass (default DEFAULT_MICRO_BATCH): a step's gradient is the same whatever this
   * is — it bounds the activations alive at once (memory), at some cost in speed.
   */
  microBatch?: number | undefined;
  onProgress?: ((p: { epoch: number; epochs: number; step: number; steps: number; loss: number }) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export interface LmFitResult {
  steps: number;
  /** Sequences the steps used (Poisson draws under DP). */
  sequences: number;
  seconds: number;
  /** Mean next-token cross-entropy (nats) of the last step's sequences, before clipping. */
  loss: number;
  epsilon?: number | undefined;
  noiseMultiplier?: number | undefined;
  budget?: { spent: number; remaining: number } | undefined;
  reservation?: Reservation | undefined;
}

export interface LmEvaluation {
  perplexity: number;
  /** Next-token top-1 accuracy (recall@1). */
  top1: number;
  /** Positions scored. */
  tokens: number;
  /** Summed negative log-likelihood (nats). */
  nll: number;
}

/** What a DP step computes before the noise: the clipped per-sequence gradients' sum, and each sequence's norm. */
export interface ClippedSum {
  sum: Float32Array;
  norms: number[];
}

type Mode = { kind: 'lora'; rank: number } | { kind: 'last'; blocks: number } | { kind: 'all' };

function parseTrainable(spec: DecoderSpec, value: string): Mode {
  if (value === 'all') return { kind: 'all' };
  const m = /^(lora|last):(\d+)$/.exec(value);
  if (m?.[1] === 'lora') {
    const rank = Number(m[2]);
    if (!(rank >= 1 && rank <= spec.embedDim))
      throw new TrainerError(`trainable lora:<rank>: rank must be 1..${spec.embedDim}, got ${m[2]}`);
    return { kind: 'lora', rank };
  }
  if (m?.[1] === 'last') {
    const blocks = Number(m[2]);
    if (!(blocks >= 1 && blocks <= spec.layers))
      throw new TrainerError(`trainable last:<n>: n must be 1..${spec.layers}, got ${m[2]}`);
    return { kind: 'last', blocks };
  }
  throw new TrainerError(`trainable must be "lora:<rank>", "last:<n>" or "all", got ${JSON.stringify(value)}`);
}

/** A batch as the loss reads it: the decoder's inputs, each position's target and its weight 1/(sequence's positions). */
interface LossBatch {
  tokens: ReturnType<typeof tokenBatch>;
  targets: Int32Array;
  weights: Float32Array;
}

export class LanguageModelTrainer {
  readonly spec: DecoderSpec;
  readonly backend: BackendName;
  readonly trainable: TrainableSpec;
  /** For lora: the settings the update must be merged with (mergeLora). */
  readonly lora: LoraSettings | undefined;
  /** Whether training recomputes each block in the backward pass (LanguageModelTrainerOptions.checkpoint). */
  readonly checkpoint: boolean;
  readonly #mode: Mode;
  readonly #base: NamedWeight[];
  /** Every parameter by name: a tf.Variable when it trains, a kept tensor otherwise. */
  readonly #params: Record<string, TF.Tensor>;
  /** The trained variables, in update order (B's in loraTargets order; else weights in spec order). */
  readonly #trained: TF.Variable[];
  readonly #trainedNames: string[];
  readonly #targets: LoraTarget[];
  readonly #a: TF.Tensor2D[];
  readonly #embedding: 'gather' | 'one-hot-matmul';
  #disposed = false;

  private constructor(opts: LanguageModelTrainerOptions, backend: BackendName, mode: Mode) {
    this.spec = opts.spec;
    this.backend = backend;
    this.trainable = opts.trainable;
    this.checkpoint = opts.checkpoint ?? true;
    this.#mode = mode;
    this.#base = opts.weights.map((w) => ({ name: w.name, shape: [...w.shape], values: Float32Array.from(w.values) }));
    const shapes = decoderParameterShapes(this.spec);
    const trainsWeight = (name: string) => {
      if (mode.kind === 'all') return true;
      if (mode.kind === 'lora') return false;
      if (name.startsWith('ln_f.')) return true;
      const block = /^h\.(\d+)\./.exec(name);
      return !!block && Number(block[1]) >= this.spec.layers - mode.blocks;
    };
    this.#params = {};
    this.#trained = [];
    this.#trainedNames = [];
    this.#a = [];
    this.#targets = [];
    this.lora = undefined;
    for (const [i, { name, shape }] of shapes.entries()) {
      const init = tf.tensor(this.#base[i]!.values, shape, 'float32');
      if (trainsWeight(name)) {
        const v = tf.variable(init, true);
        init.dispose();
        this.#params[name] = v;
        this.#trained.push(v);
        this.#trainedNames.push(name);
      } else this.#params[name] = tf.keep(init);
    }
    if (mode.kind === 'lora') {
      const alpha = opts.lora?.alpha ?? mode.rank;
      if (!(alpha > 0)) throw new TrainerError(`lora.alpha must be > 0, got ${alpha}`);
      const settings: LoraSettings = { rank: mode.rank, alpha, seed: opts.lora?.seed ?? 0 };
      this.lora = settings;
      loraTargets(this.spec, mode.rank).targets.forEach((t, index) => {
        this.#targets.push(t);
        this.#a.push(tf.keep(tf.tensor2d(loraA(t, index, settings), [t.inputs, mode.rank])));
        const zeros = tf.zeros([mode.rank, t.outputs]);
        this.#trained.push(tf.variable(zeros, true));
        zeros.dispose();
        this.#trainedNames.push(t.name);
      });
    }
    // Gather's gradient needs UnsortedSegmentSum, which tfjs-backend-wasm lacks: only where the tables train.
    this.#embedding = mode.kind === 'all' && backend === 'wasm' ? 'one-hot-matmul' : 'gather';
  }

  static async create(opts: LanguageModelTrainerOptions): Promise<LanguageModelTrainer> {
    try {
      decoderWeightMap(opts.spec, opts.weights, 'LanguageModelTrainer');
    } catch (e) {
      throw e instanceof ModelSpecError ? new TrainerError(e.message) : e;
    }
    const mode = parseTrainable(opts.spec, opts.trainable);
    const backend = await selectBackend(opts.backend ?? 'auto');
    return new LanguageModelTrainer(opts, backend, mode);
  }

  /** Values that train (the length of update()). */
  get trainableCount(): number {
    return this.#trained.reduce((n, v) => n + v.size, 0);
  }

  /**
   * The flat update a device sends: for lora, every B in loraTargets order (row-major [rank, out]); for last/all, the
   * trained weights' change from the starting weights, in spec order.
   */
  update(): Float32Array {
    this.#check();
    const out = new Float32Array(this.trainableCount);
    let offset = 0;
    this.#trained.forEach((v, i) => {
      const values = v.dataSync() as Float32Array;
      if (this.#mode.kind === 'lora') out.set(values, offset);
      else {
        const base = this.#base.find((w) => w.name === this.#trainedNames[i])!.values;
        for (let j = 0; j < values.length; j++) out[offset + j] = values[j]! - base[j]!;
      }
      offset += values.length;
    });
    return out;
  }

  /** The names of the trained weights in update order (for lora, the adapted weights). */
  get updateLayout(): { name: string; size: number }[] {
    return this.#trained.map((v, i) => ({ name: this.#trainedNames[i]!, size: v.size }));
  }

  /** The current float weights in spec order (lora: W + (α/r)·A·B merged), for evaluation or export. */
  weights(): NamedWeight[] {
    this.#check();
    const merged = new Map<string, Float32Array>();
    if (this.#mode.kind === 'lora') {
      const scale = this.lora!.alpha / this.lora!.rank;
      this.#targets.forEach((t, i) => {
        const w = tf.tidy(() =>
          this.#params[t.name]!.add(tf.matMul(this.#a[i]!, this.#trained[i]! as TF.Tensor2D).mul(scale)),
        );
        merged.set(t.name, w.dataSync() as Float32Array);
        w.dispose();
      });
    }
    return decoderParameterShapes(this.spec).map(({ name, shape }) => ({
      name,
      shape,
      values: merged.get(name) ?? (this.#params[name]!.dataSync() as Float32Array).slice(),
    }));
  }

  /**
   * Logits [batch, length, vocab] (row-major) of the current model — lora's adapters applied as in training — for
   * rows of token ids (equal length; an attention mask for padding): next-word suggestions from the device's model.
   */
  logits(inputIds: TokenRows, attentionMask?: TokenRows): Float32Array {
    this.#check();
    const tokens = tokenBatch(this.spec, inputIds, attentionMask);
    const t = lmForward(tf, this.spec, this.#params, tokens, this.#forwardOptions());
    const out = t.dataSync() as Float32Array;
    t.dispose();
    return out;
  }

  /** Perplexity and next-token top-1 of the current model on `sequences` (every position predicts the next token). */
  evaluate(sequences: readonly Sequence[], batchSize = 8): LmEvaluation {
    this.#check();
    const seqs = this.#sequences(sequences);
    const V = this.spec.vocabSize;
    let score: NextTokenScore = { nll: 0, correct: 0, count: 0 };
    for (let start = 0; start < seqs.length; start += batchSize) {
      const chunk = seqs.slice(start, start + batchSize);
      const batch = this.#batch(chunk);
      const t = tf.tidy(() => lmForward(tf, this.spec, this.#params, batch.tokens, this.#forwardOptions()));
      const logits = t.dataSync() as Float32Array;
      t.dispose();
      const s = batch.tokens.length;
      chunk.forEach((seq, r) => {
        const n = seq.length - 1;
        const rows = logits.subarray(r * s * V, (r * s + n) * V);
        score = addScores(score, scoreNextTokens(rows, V, seq.subarray(1)));
      });
    }
    return { perplexity: perplexity(score), top1: score.correct / score.count, tokens: score.count, nll: score.nll };
  }

  /**
   * Each sequence's gradient of the trained parameters, clipped to `l2NormClip` and summed (flat, update order), with
   * the unclipped norms: what a DP-SGD step adds noise to. For tests and audits; fit computes the same on the device.
   */
  clippedGradientSum(sequences: readonly Sequence[], l2NormClip: number, microBatch?: number): ClippedSum {
    this.#check();
    const seqs = this.#sequences(sequences);
    const { sums, norms, loss } = this.#clippedSums(seqs, l2NormClip, microBatch ?? seqs.length);
    const sum = new Float32Array(this.trainableCount);
    let offset = 0;
    for (const g of sums) {
      sum.set(g.dataSync() as Float32Array, offset);
      offset += g.size;
    }
    const out = { sum, norms: Array.from(norms.dataSync()) };
    for (const t of [...sums, norms, loss]) t.dispose();
    return out;
  }

  async fit(sequences: readonly Sequence[], opts: LmFitOptions): Promise<LmFitResult> {
    this.#check();
    checkFitOptions(opts);
    const { epochs, batchSize } = opts;
    const seqs = this.#sequences(sequences);
    const n = seqs.length;
    if (n === 0) throw new TrainerError('no sequences to train on');
    const priv = opts.privacy;
    const sampleRate = Math.min(1, batchSize / n);
    const stepsPerEpoch = planSteps(n, batchSize, !!priv);
    const steps = epochs * stepsPerEpoch;
    const run = priv ? await startPrivateRun(priv, sampleRate, steps) : undefined;
    const micro = opts.microBatch ?? DEFAULT_MICRO_BATCH;
    if (!(Number.isInteger(micro) && micro >= 1))
      throw new TrainerError(`microBatch must be a positive integer, got ${opts.microBatch}`);
    const optimizer = createOptimizer(opts.optimizer, opts.learningRate);
    const started = performance.now();
    let seen = 0,
      lastLoss = Number.NaN;
    try {
      for (let epoch = 0; epoch < epochs; epoch++) {
        const order = priv ? undefined : shuffled(n);
        for (let step = 0; step < stepsPerEpoch; step++) {
          if (opts.signal?.aborted) throw new TrainerError('training cancelled');
          const idx = priv
            ? poissonSample(n, sampleRate)
            : order!.subarray(step * batchSize, Math.min(n, (step + 1) * batchSize));
          const chosen = Array.from(idx, (i) => seqs[i]!);
          let grads: TF.Tensor[];
          if (priv) {
            const { sums, norms, loss } = chosen.length
              ? this.#clippedSums(chosen, priv.l2NormClip, micro)
              : { sums: this.#trained.map((v) => tf.zerosLike(v)), norms: tf.zeros([0]), loss: tf.scalar(Number.NaN) };
            grads = averagedGradients(sums, sampleRate * n, { sigma: run!.sigma, l2NormClip: priv.l2NormClip });
            if (chosen.length) lastLoss = loss.dataSync()[0]! / chosen.length;
            for (const t of [...sums, norms, loss]) t.dispose();
          } else {
            // Micro-batches: the same gradient, with the activations of `micro` sequences alive at a time.
            let sums: TF.Tensor[] | undefined;
            let loss = 0;
            for (let start = 0; start < chosen.length; start += micro) {
              const batch = this.#batch(chosen.slice(start, start + micro));
              const { value, grads: byName } = tf.variableGrads(() => this.#lossSum(batch), this.#trained);
              const g = this.#trained.map((v) => byName[v.name]!);
              loss += value.dataSync()[0]!;
              value.dispose();
              if (!sums) sums = g;
              else {
                const prev: TF.Tensor[] = sums;
                sums = tf.tidy(() => prev.map((a, k) => a.add(g[k]!)));
                for (const t of [...prev, ...g]) t.dispose();
              }
            }
            grads = sums!.map((g) => tf.div(g, chosen.length));
            for (const t of sums!) t.dispose();
            lastLoss = loss / chosen.length;
          }
          optimizer.applyGradients(this.#trained.map((v, i) => ({ name: v.name, tensor: grads[i]! })));
          for (const g of grads) g.dispose();
          seen += chosen.length;
          opts.onProgress?.({ epoch: epoch + 1, epochs, step: step + 1, steps: stepsPerEpoch, loss: lastLoss });
          // Let the page (or the event loop) breathe between steps.
          await new Promise((r) => setTimeout(r, 0));
        }
      }
    } catch (e) {
      await run?.reservation?.release();
      throw e;
    } finally {
      disposeOptimizer(optimizer);
    }
    return {
      steps,
      sequences: seen,
      seconds: (performance.now() - started) / 1000,
      loss: lastLoss,
      epsilon: run?.epsilon,
      noiseMultiplier: run?.sigma,
      budget: run?.budget,
      reservation: run?.reservation,
    };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const t of Object.values(this.#params)) t.dispose();
    for (const t of [...this.#trained, ...this.#a]) t.dispose();
  }

  #check(): void {
    if (this.#disposed) throw new TrainerError('this LanguageModelTrainer was disposed');
  }

  #sequences(sequences: readonly Sequence[]): Int32Array[] {
    const { contextLength: T, vocabSize: V } = this.spec;
    return sequences.map((s, i) => {
      if (s.length < 2 || s.length > T + 1)
        throw new TrainerError(`sequence ${i}: ${s.length} tokens, expected 2 to ${T + 1} (contextLength + 1)`);
      const seq = s instanceof Int32Array ? s : Int32Array.from(s);
      const bad = seq.findIndex((t) => !(Number.isInteger(t) && t >= 0 && t < V));
      if (bad >= 0) throw new TrainerError(`sequence ${i}: token ${seq[bad]} at ${bad} is not in [0, ${V})`);
      return seq;
    });
  }

  /** Inputs = each sequence but its last token, right-padded; targets = the next tokens; weights 1/positions. */
  #batch(seqs: Int32Array[]): LossBatch {
    const s = Math.max(...seqs.map((q) => q.length)) - 1;
    const ids = seqs.map(() => new Array<number>(s).fill(this.spec.padTokenId));
    const mask = seqs.map(() => new Array<number>(s).fill(0));
    const targets = new Int32Array(seqs.length * s);
    const weights = new Float32Array(seqs.length * s);
    seqs.forEach((q, r) => {
      const n = q.length - 1;
      for (let t = 0; t < n; t++) {
        ids[r]![t] = q[t]!;
        mask[r]![t] = 1;
        targets[r * s + t] = q[t + 1]!;
        weights[r * s + t] = 1 / n;
      }
    });
    return { tokens: tokenBatch(this.spec, ids, mask), targets, weights };
  }

  /** The forward's options; `training`: with checkpointing (when on), differentiating the trained tensors. */
  #forwardOptions(perSequenceB?: TF.Tensor[], training = false): LmForwardOptions {
    const checkpoint =
      training && this.checkpoint
        ? {
            differentiable: (t: TF.Tensor) =>
              (this.#trained as TF.Tensor[]).includes(t) || (perSequenceB?.includes(t) ?? false),
          }
        : undefined;
    if (this.#mode.kind !== 'lora') return { embedding: this.#embedding, checkpoint };
    const scale = this.lora!.alpha / this.lora!.rank;
    const adapters = new Map<string, Adapter>();
    this.#targets.forEach((t, i) =>
      adapters.set(t.name, { a: this.#a[i]!, b: perSequenceB?.[i] ?? this.#trained[i]!, scale }),
    );
    return { embedding: this.#embedding, adapters, checkpoint };
  }

  /**
   * Σ over the batch's sequences of each one's mean next-token cross-entropy (a scalar). The cross-entropy's gradient
   * is written out (softmax − one-hot, weighted): autodiff through logSoftmax would keep some ten [positions, vocab]
   * intermediates for the backward pass; this keeps the logits alone.
   */
  #lossSum(batch: LossBatch, perSequenceB?: TF.Tensor[]): TF.Scalar {
    return tf.tidy(() => {
      const { batch: b, length: s } = batch.tokens;
      const V = this.spec.vocabSize;
      const N = b * s;
      const logits = lmForward(tf, this.spec, this.#params, batch.tokens, this.#forwardOptions(perSequenceB, true));
      const targets = tf.tensor1d(batch.targets, 'int32');
      const picks = tf.tensor1d(
        batch.targets.map((t, i) => i * V + t),
        'int32',
      );
      const weights = tf.tensor1d(batch.weights);
      const crossEntropy = tf.customGrad(((x: TF.Tensor, save: (t: TF.Tensor[]) => void) => {
        // What the backward pass reads must be saved (kept past this tidy), not captured.
        save([x, targets, weights]);
        const nll = tf.sub(tf.logSumExp(x, 1), tf.gather(x.reshape([N * V]), picks));
        return {
          value: tf.sum(tf.mul(nll, weights)),
          gradFunc: (dy: TF.Tensor, [logits, ids, w]: TF.Tensor[]) => [
            tf
              .sub(tf.softmax(logits!), tf.oneHot(ids as TF.Tensor1D, V).toFloat())
              .mul(w!.reshape([N, 1]))
              .mul(dy),
          ],
        };
      }) as CustomGradient);
      return crossEntropy(logits.reshape([N, V])) as TF.Scalar;
    });
  }

  /**
   * Clipped per-sequence gradient sums (tensors, update order), the per-sequence norms [n] and the summed loss.
   * lora: one backward pass over per-sequence copies of every B, `micro` sequences at a time; last/all: one backward
   * pass per sequence.
   */
  #clippedSums(
    seqs: Int32Array[],
    clip: number,
    micro = Number.POSITIVE_INFINITY,
  ): { sums: TF.Tensor[]; norms: TF.Tensor1D; loss: TF.Scalar } {
    if (this.#mode.kind === 'lora' && seqs.length > micro) {
      let acc: { sums: TF.Tensor[]; norms: TF.Tensor1D; loss: TF.Scalar } | undefined;
      for (let start = 0; start < seqs.length; start += micro) {
        const part = this.#clippedSums(seqs.slice(start, start + micro), clip, micro);
        if (!acc) acc = part;
        else {
          const prev: { sums: TF.Tensor[]; norms: TF.Tensor1D; loss: TF.Scalar } = acc;
          acc = tf.tidy(() => ({
            sums: prev.sums.map((a, k) => a.add(part.sums[k]!)),
            norms: tf.concat([prev.norms, part.norms]) as TF.Tensor1D,
            loss: prev.loss.add(part.loss) as TF.Scalar,
          }));
          for (const t of [...prev.sums, prev.norms, prev.loss, ...part.sums, part.norms, part.loss]) t.dispose();
        }
      }
      return acc!;
    }
    if (this.#mode.kind === 'lora') {
      const batch = this.#batch(seqs);
      const b = seqs.length;
      return tf.tidy(() => {
        const copies = this.#trained.map((v) => tf.tile(v.expandDims(0), [b, 1, 1]));
        const { value, grads } = tf.valueAndGrads((...bs: TF.Tensor[]) => this.#lossSum(batch, bs))(copies);
        // grads[k]: [b, rank, out], sequence i's own gradient of B_k in row i.
        const norms = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g), [1, 2])))) as TF.Tensor1D;
        const factor = tf.minimum(1, tf.div(clip, tf.maximum(norms, 1e-12)));
        const sums = grads.map((g) => tf.sum(tf.mul(g, factor.reshape([b, 1, 1])), 0));
        return { sums, norms, loss: value as TF.Scalar };
      });
    }
    let sums = this.#trained.map((v) => tf.zerosLike(v) as TF.Tensor);
    let loss = tf.scalar(0);
    const norms: TF.Scalar[] = [];
    for (const seq of seqs) {
      const batch = this.#batch([seq]);
      const next = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => this.#lossSum(batch), this.#trained);
        const g = this.#trained.map((v) => grads[v.name]!);
        const norm = tf.sqrt(tf.addN(g.map((t) => tf.sum(tf.square(t))))) as TF.Scalar;
        const factor = tf.minimum(1, tf.div(clip, tf.maximum(norm, 1e-12)));
        return { sums: sums.map((s, k) => s.add(g[k]!.mul(factor))), loss: loss.add(value) as TF.Scalar, norm };
      });
      for (const t of [...sums, loss]) t.dispose();
      sums = next.sums;
      loss = next.loss;
      norms.push(next.norm);
    }
    const stacked = tf.stack(norms) as TF.Tensor1D;
    for (const t of norms) t.dispose();
    return { sums, norms: stacked, loss };
  }
}
