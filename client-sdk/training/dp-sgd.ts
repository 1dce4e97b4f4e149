/**
 * The DP-SGD pieces every trainer shares (the classifier Trainer and the LanguageModelTrainer): the privacy options,
 * the run's σ and ε from the RDP accountant for exactly its Poisson sampling, the ledger's charge or reservation
 * (taken before training: an interrupted run has still touched the data), Poisson sampling and shuffles from the
 * CSPRNG, the noisy average of clipped gradient sums, and the optimizers. What an "example" is — a feature row or a
 * token sequence — and how its gradient is clipped is each trainer's own.
 */
import type * as TF from '@tensorflow/tfjs';
import { DEFAULT_ORDERS, computeRdp, noiseMultiplierFor, rdpToEpsilon } from '../../federated/dp/rdp.ts';
import { randomWords } from '../../federated/random.ts';
import { tf } from '../../federated/model/tfjs-loader.ts';
import type { PrivacyLedger, Reservation } from '../privacy/ledger.ts';
import { gaussianNoise } from './gaussian-noise.ts';
import { type OptimizerName, type PrivacyOptions, TrainerError } from './training-options.ts';

export { TrainerError, type OptimizerName, type PrivacyOptions };

/** The run's privacy, settled before its first step. */
export interface PrivateRun {
  sigma: number;
  /** ε of this run alone (δ as given). */
  epsilon: number;
  budget?: { spent: number; remaining: number } | undefined;
  reservation?: Reservation | undefined;
}

/** The checks every fit makes on epochs, batch size and learning rate. */
export function checkFitOptions(opts: { epochs: number; batchSize: number; learningRate: number }): void {
  const { epochs, batchSize, learningRate } = opts;
  if (!(Number.isInteger(epochs) && epochs >= 1))
    throw new TrainerError(`epochs must be a positive integer, got ${epochs}`);
  if (!(Number.isInteger(batchSize) && batchSize >= 1))
    throw new TrainerError(`batchSize must be a positive integer, got ${batchSize}`);
  if (!(learningRate > 0)) throw new TrainerError(`learningRate must be > 0, got ${learningRate}`);
}

/**
 * σ (given, or derived from the target ε), ε for `steps` Poisson-sampled steps at rate `sampleRate` (RDP, then the
 * conversion at δ), and the ledger charged — or the charge reserved, with `priv.reserve` — before training.
 */
export async function startPrivateRun(priv: PrivacyOptions, sampleRate: number, steps: number): Promise<PrivateRun> {
  if (!(priv.l2NormClip > 0)) throw new TrainerError(`l2NormClip must be > 0, got ${priv.l2NormClip}`);
  if (priv.noiseMultiplier === undefined && priv.epsilon === undefined)
    throw new TrainerError('privacy: give noiseMultiplier or epsilon');
  const sigma =
    priv.noiseMultiplier ?? noiseMultiplierFor({ epsilon: priv.epsilon!, delta: priv.delta, sampleRate, steps });
  if (!(sigma > 0)) throw new TrainerError(`noiseMultiplier must be > 0, got ${sigma}`);
  const rdp = computeRdp(sampleRate, sigma, steps, DEFAULT_ORDERS);
  const epsilon = rdpToEpsilon(DEFAULT_ORDERS, rdp, priv.delta).epsilon;
  let budget: PrivateRun['budget'], reservation: Reservation | undefined;
  if (priv.ledger && priv.reserve) {
    reservation = await priv.ledger.reserve(priv.source ?? 'default', rdp);
    budget = { spent: reservation.spent, remaining: reservation.remaining };
  } else if (priv.ledger) budget = await priv.ledger.charge(priv.source ?? 'default', rdp);
  return { sigma, epsilon, budget, reservation };
}

/**
 * The step's gradients from clipped sums: plain, sum / batch; private, (sum + N(0, σ²C²)) / (q·n), the expected
 * batch (Abadi et al. 2016; an empty Poisson draw still adds noise). New tensors; the sums are not disposed.
 */
export function averagedGradients(
  sums: TF.Tensor[],
  denominator: number,
  noise?: { sigma: number; l2NormClip: number },
): TF.Tensor[] {
  return tf.tidy(() =>
    sums.map((g) => {
      const noisy = noise ? tf.add(g, tf.tensor(gaussianNoise(g.size, noise.sigma * noise.l2NormClip), g.shape)) : g;
      return tf.div(noisy, denominator);
    }),
  );
}

export function createOptimizer(name: OptimizerName | undefined, learningRate: number): TF.Optimizer {
  return name === 'adam'
    ? tf.train.adam(learningRate)
    : name === 'momentum'
      ? tf.train.momentum(learningRate, 0.9)
      : tf.train.sgd(learningRate);
}

export function disposeOptimizer(optimizer: TF.Optimizer): void {
  optimizer.dispose();
  // tfjs's MomentumOptimizer.dispose() forgets the learning-rate scalar its SGD base class keeps (`c`): one leaked
  // tensor per run otherwise.
  if (optimizer instanceof tf.MomentumOptimizer) (optimizer as unknown as { c?: TF.Tensor }).c?.dispose();
}

export function shuffled(n: number): Int32Array {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  const r = randomWords(n);
  for (let i = n - 1; i > 0; i--) {
    const j = r[i]! % (i + 1);
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx;
}

/** Each index independently with probability q (CSPRNG coins): the sampling the RDP analysis assumes. */
export function poissonSample(n: number, q: number): Int32Array {
  const coins = randomWords(n);
  const threshold = q * 4294967296;
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (coins[i]! < threshold) out.push(i);
  return Int32Array.from(out);
}

/**
 * The step plan: DP draws N/B Poisson samples per epoch (each of expected size B); plain training visits every
 * example once per epoch in slices of B.
 */
export function stepsPerEpoch(n: number, batchSize: number, isPrivate: boolean): number {
  return isPrivate ? Math.max(1, Math.round(n / batchSize)) : Math.ceil(n / batchSize);
}
