/**
 * Sampling the discrete Gaussian N_Z(0, σ²) (P[x] ∝ exp(−x²/2σ²) on the integers) with the rejection sampler of
 * Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential Privacy" (NeurIPS 2020), Algorithm 3: a
 * discrete Laplace proposal (Algorithm 2) accepted with a Bernoulli(exp(−·)) coin. Randomness comes from the
 * CSPRNG (federated/random.ts).
 * Caveat: the Bernoulli(exp(−γ)) coins compare a 53-bit uniform with Math.exp in double precision instead of the
 * paper's exact rational arithmetic, so probabilities are exact only to ~2^−53 — far below the ε/δ at stake, but
 * not the bit-exact sampler the paper describes.
 */
import { randomWords, unitFloat } from '../random.ts';

const POOL = 4096;
let pool: Uint32Array = new Uint32Array(0);
let at = POOL;

function uniform(): number {
  if (at + 2 > pool.length) {
    pool = randomWords(POOL);
    at = 0;
  }
  const hi = pool[at++]!,
    lo = pool[at++]!;
  return unitFloat(hi, lo);
}

const bernoulliExp = (gamma: number) => uniform() < Math.exp(-gamma);

/** One sample of N_Z(0, σ²). */
export function sampleDiscreteGaussian(sigma: number): number {
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new RangeError(`sigma must be a positive number, got ${sigma}`);
  const t = Math.floor(sigma) + 1;
  const s2 = sigma * sigma;
  for (;;) {
    // Discrete Laplace with scale t (CKS20 Algorithm 2)
    const u = Math.floor(uniform() * t);
    if (!bernoulliExp(u / t)) continue;
    let v = 0;
    while (bernoulliExp(1)) v++;
    const x = u + t * v;
    const negative = uniform() < 0.5;
    if (negative && x === 0) continue;
    const y = negative ? -x : x;
    // Accept with probability exp(−(|y| − σ²/t)² / 2σ²)
    const d = Math.abs(y) - s2 / t;
    if (bernoulliExp((d * d) / (2 * s2))) return y;
  }
}

export function discreteGaussianVector(sigma: number, n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = sampleDiscreteGaussian(sigma);
  return out;
}
