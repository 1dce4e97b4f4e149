/**
 * Trainer: fine-tunes a model built from a model spec on the device's own examples with TensorFlow.js, plainly
 * or with DP-SGD (Abadi et al., CCS 2016, Algorithm 1): Poisson sampling of each example with rate q = B/N,
 * per-example L2 clipping to C, Gaussian noise N(0, σ²C²) on the clipped sum, division by the expected batch B,
 * then the optimizer step (post-processing). The RDP accountant (federated/dp/rdp.ts) tracks ε for exactly this
 * sampling; a PrivacyLedger, if given, is charged atomically before the run and refuses runs over budget.
 * network.ts holds the clipping rules: ghost norms when only dense layers train (close to plain-SGD speed), an exact
 * per-example autodiff loop when a conv layer trains.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../federated/model/tfjs-loader.ts';
import type { ModelSpec, NamedWeight } from '../../federated/model/model-spec.ts';
import { parameterShapes } from '../../federated/model/model-spec.ts';
import { buildTfjsModel, readTfjsWeights } from '../../federated/model/tfjs-model.ts';
import type { Reservation } from '../privacy/ledger.ts';
import { type BackendName, selectBackend } from './backend.ts';
import {
  type Network,
  UnsupportedSpec,
  allVariables,
  clippedGradientSums,
  createNetwork,
  disposeNetwork,
  forward,
  frozenFeatures,
  trainableVariables,
} from './network.ts';
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
import { type PrivacyOptions, TrainerError } from './training-options.ts';

export { TrainerError, type PrivacyOptions };

export interface Examples {
  /** n × features, row-major, in the spec's input layout */
  x: Float32Array;
  /** class index per example */
  y: Int32Array | number[];
}

export interface Example {
  x: Float32Array;
  y: number;
}

export interface FitOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer?: 'sgd' | 'momentum' | 'adam' | undefined;
  privacy?: PrivacyOptions | undefined;
  onProgress?: ((p: { epoch: number; epochs: number; step: number; steps: number; loss: number }) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export interface FitResult {
  steps: number;
  examples: number;
  seconds: number;
  examplesPerSecond: number;
  loss: number;
  /** ε of this run alone (δ as given), when private. */
  epsilon?: number | undefined;
  noiseMultiplier?: number | undefined;
  /** ε spent on the source so far and what is left, when a ledger was given. */
  budget?: { spent: number; remaining: number } | undefined;
  /** The run's held charge (privacy.reserve): the caller commits or releases it. */
  reservation?: Reservation | undefined;
}

export interface TrainerOptions {
  spec: ModelSpec;
  /** Starting weights (e.g. the served global model); default: fresh Glorot initialisation. */
  weights?: NamedWeight[] | undefined;
  backend?: BackendName | 'auto' | undefined;
  /** Train all layers, or only the last k layers with parameters (dense or conv2d); the rest stay fixed. */
  trainableLayers?: 'all' | number | undefined;
}

async function collect(
  data: Examples | Iterable<Example> | AsyncIterable<Example>,
  features: number,
): Promise<{ x: Float32Array; y: Int32Array; n: number }> {
  if ('x' in data && 'y' in data) {
    const n = data.y.length;
    if (data.x.length !== n * features)
      throw new TrainerError(`examples: x has ${data.x.length} values, expected ${n} × ${features}`);
    const y = Int32Array.from(data.y);
    return { x: data.x, y, n };
  }
  // DP-SGD's Poisson sampling needs random access to every example, so a stream is gathered first.
  const xs: Float32Array[] = [],
    ys: number[] = [];
  for await (const e of data as AsyncIterable<Example>) {
    if (e.x.length !== features)
      throw new TrainerError(`example ${xs.length}: ${e.x.length} values, expected ${features}`);
    xs.push(e.x);
    ys.push(e.y);
  }
  const x = new Float32Array(xs.length * features);
  xs.forEach((v, i) => x.set(v, i * features));
  return { x, y: Int32Array.from(ys), n: ys.length };
}

export class Trainer {
  readonly spec: ModelSpec;
  readonly backend: BackendName;
  readonly #net: Network;
  #disposed = false;

  private constructor(spec: ModelSpec, backend: BackendName, net: Network) {
    this.spec = spec;
    this.backend = backend;
    this.#net = net;
  }

  /** How DP-SGD clips per example: 'ghost' (only dense layers train: fast) or 'per-example' (exact autodiff loop). */
  // Spelled out rather than Network['clipping']: the shipped declarations must not reach tfjs's types (optional).
  get clipping(): 'ghost' | 'per-example' {
    return this.#net.clipping;
  }

  static async create(opts: TrainerOptions): Promise<Trainer> {
    const paramLayers = opts.spec.layers.filter((l) => l.type === 'dense' || l.type === 'conv2d').length;
    const backend = await selectBackend(opts.backend ?? 'auto');
    let weights = opts.weights;
    if (!weights) {
      const model = buildTfjsModel(opts.spec, 1);
      weights = readTfjsWeights(opts.spec, model);
      model.dispose();
    }
    const shapes = parameterShapes(opts.spec);
    weights.forEach((w, i) => {
      const want = shapes[i];
      if (!want || w.name !== want.name || w.values.length !== want.shape.reduce((a, b) => a * b, 1))
        throw new TrainerError(`weights[${i}]: expected ${want?.name} [${want?.shape}]`);
    });
    const trainable =
      opts.trainableLayers === undefined || opts.trainableLayers === 'all' ? paramLayers : opts.trainableLayers;
    if (!Number.isInteger(trainable) || trainable < 1 || trainable > paramLayers)
      throw new TrainerError(`trainableLayers must be 'all' or 1..${paramLayers}, got ${opts.trainableLayers}`);
    try {
      return new Trainer(opts.spec, backend, createNetwork(opts.spec, weights, trainable));
    } catch (e) {
      throw e instanceof UnsupportedSpec ? new TrainerError(e.message) : e;
    }
  }

  get features(): number {
    return this.spec.inputShape.reduce((a, b) => a * b, 1);
  }

  /** The current weights in spec order (copies). */
  weights(): NamedWeight[] {
    this.#check();
    const shapes = parameterShapes(this.spec);
    return allVariables(this.#net).map((v, i) => ({
      name: shapes[i]!.name,
      shape: shapes[i]!.shape,
      values: v.dataSync() as Float32Array,
    }));
  }

  evaluate(data: Examples): { accuracy: number; loss: number } {
    this.#check();
    const n = data.y.length;
    return tf.tidy(() => {
      const p = forward(this.#net, tf.tensor2d(data.x, [n, this.features]));
      const y = tf.tensor1d(Int32Array.from(data.y), 'int32');
      const accuracy = tf.mean(tf.cast(tf.equal(tf.argMax(p, 1), y), 'float32')).dataSync()[0]!;
      const loss = tf
        .neg(tf.mean(tf.log(tf.add(tf.sum(tf.mul(p, tf.oneHot(y, p.shape[1]!)), 1), 1e-7))))
        .dataSync()[0]!;
      return { accuracy, loss };
    });
  }

  async fit(data: Examples | Iterable<Example> | AsyncIterable<Example>, opts: FitOptions): Promise<FitResult> {
    this.#check();
    const { epochs, batchSize, learningRate } = opts;
    checkFitOptions(opts);
    const set = await collect(data, this.features);
    if (set.n === 0) throw new TrainerError('no examples to train on');
    const classes = this.spec.labels.length;
    for (const label of set.y)
      if (!(label >= 0 && label < classes))
        throw new TrainerError(`label ${label} is not a class index 0..${classes - 1}`);
    const priv = opts.privacy;
    const sampleRate = Math.min(1, batchSize / set.n);
    const stepsPerEpoch = planSteps(set.n, batchSize, !!priv);
    const steps = epochs * stepsPerEpoch;
    const run = priv ? await startPrivateRun(priv, sampleRate, steps) : undefined;
    const sigma = run?.sigma;
    const optimizer = createOptimizer(opts.optimizer, learningRate);
    const trainable = trainableVariables(this.#net);
    const started = performance.now();
    let seen = 0,
      lastLoss = NaN;
    const xAll = tf.tidy(() => frozenFeatures(this.#net, tf.tensor2d(set.x, [set.n, this.features])));
    const yAll = tf.tensor1d(set.y, 'int32');
    try {
      for (let epoch = 0; epoch < epochs; epoch++) {
        const order = priv ? undefined : shuffled(set.n);
        for (let step = 0; step < stepsPerEpoch; step++) {
          if (opts.signal?.aborted) throw new TrainerError('training cancelled');
          // DP: Poisson sampling, as the accountant assumes. Plain: consecutive slices of a shuffle.
          const idx = priv
            ? poissonSample(set.n, sampleRate)
            : order!.subarray(step * batchSize, Math.min(set.n, (step + 1) * batchSize));
          if (idx.length === 0 && !priv) continue;
          const grads = tf.tidy(() => {
            const ids = tf.tensor1d(idx, 'int32');
            const { sums, loss } = idx.length
              ? clippedGradientSums(
                  this.#net,
                  tf.gather(xAll, ids),
                  tf.gather(yAll, ids) as TF.Tensor1D,
                  priv ? priv.l2NormClip : Infinity,
                )
              : { sums: trainable.map((v) => tf.zerosLike(v)), loss: NaN }; // an empty Poisson draw still adds noise
            if (!Number.isNaN(loss)) lastLoss = loss;
            const denom = priv ? sampleRate * set.n : idx.length;
            return averagedGradients(sums, denom, priv && { sigma: sigma!, l2NormClip: priv.l2NormClip });
          });
          optimizer.applyGradients(trainable.map((v, i) => ({ name: v.name, tensor: grads[i]! })));
          grads.forEach((g) => g.dispose());
          seen += idx.length;
          opts.onProgress?.({ epoch: epoch + 1, epochs, step: step + 1, steps: stepsPerEpoch, loss: lastLoss });
          // Let the page (or the event loop) breathe between steps.
          if (step % 8 === 7) await new Promise((r) => setTimeout(r, 0));
        }
      }
    } catch (e) {
      // A held charge whose run failed: its weights are the caller's to throw away, nothing of them left the device.
      await run?.reservation?.release();
      throw e;
    } finally {
      xAll.dispose();
      yAll.dispose();
      disposeOptimizer(optimizer);
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      steps,
      examples: seen,
      seconds,
      examplesPerSecond: seen / seconds,
      loss: lastLoss,
      epsilon: run?.epsilon,
      noiseMultiplier: sigma,
      budget: run?.budget,
      reservation: run?.reservation,
    };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    disposeNetwork(this.#net);
  }

  #check(): void {
    if (this.#disposed) throw new TrainerError('this Trainer was disposed');
  }
}
