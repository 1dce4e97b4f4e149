/**
 * What the unmasked sum of n honest encodings can be (update-codec.ts). Under SecAgg+ the server sees only the sum,
 * and it adds whatever 32-bit words a device masks; the bounds the honest encoders keep (per-coordinate clip and
 * weight ≤ 1 in fixed point, the L2 clip and conditional rounding of DDGauss) are enforced by nobody else. These
 * checks hold the sum to them, so that a sum one device blew up — every word ±2^31, a weight word of −Σw + 1000,
 * a weight of 0x80000000 that makes Σw ≤ 0 — is refused (its shard dropped, or an unsharded round abandoned)
 * instead of published. They bound the sum, not each device: within the bound one device can still move the mean
 * by up to the honest devices' unused room (robust shard combination, shard-combination.ts, narrows that).
 */
import type { DdgaussParameters } from '../dp/distributed-dp.ts';
import { type FixedPoint, decodeSum } from '../secagg/fixed-point.ts';

/**
 * Fixed point (secagg/fixed-point.ts): each honest device's weight w ∈ [0, 1] and coordinates |w·x| ≤ w·clip, each
 * word stochastically rounded by at most one step. So n of them sum to Σw ∈ [0, n] (± n steps) and
 * |Σ w·x| ≤ clip·Σw (± (clip + 1)·n steps) in every coordinate. Σw must also be positive: a round of no examples
 * has nothing to average.
 */
export function fixedPointSumProblem(sum: Uint32Array, fp: FixedPoint, n: number): string | undefined {
  const { weightedSum, totalWeight } = decodeSum(sum, fp);
  const step = n / fp.scale;
  if (!(totalWeight > 0)) return `its total weight is ${totalWeight.toPrecision(3)}: it holds no examples`;
  if (totalWeight > n + step)
    return `its total weight ${totalWeight.toPrecision(4)} is more than its ${n} devices' (each at most 1)`;
  const limit = fp.clip * (totalWeight + step) + step;
  for (let i = 0; i < weightedSum.length; i++)
    if (!(Math.abs(weightedSum[i]!) <= limit))
      return `coordinate ${i} is ${weightedSum[i]!.toPrecision(4)}, beyond clip × total weight (${limit.toPrecision(4)})`;
  return undefined;
}

/** −ln of the chance an honest sum is refused: ‖noise‖² beyond its Laurent–Massart bound has probability ≤ e^{−x}. */
const NOISE_TAIL = 18;

/**
 * DDGauss (dp/distributed-dp.ts; Kairouz et al. 2021): each honest device sends its rotated, scaled update
 * conditionally rounded to L2 norm ≤ Δ₂ plus discrete Gaussian noise of std σ per coordinate, in Z_{2^bits}. Read as
 * signed, the sum of n is signal + noise with ‖signal‖ ≤ n·Δ₂ and ‖noise‖² ≤ nσ²(d + 2√(d·x) + 2x) but with
 * probability e^{−x} (Laurent & Massart 2000, Lemma 1; the discrete Gaussian is sub-Gaussian with the same σ).
 * At the noise levels DP needs, the noise's norm dwarfs the signal's in high dimension: this refuses gross attacks
 * (wrapped words, updates many clips long), not one that stays within the noise.
 */
export function ddgaussSumProblem(sum: Uint32Array, p: DdgaussParameters, n: number): string | undefined {
  const modulus = 2 ** p.bits,
    half = modulus / 2;
  let sq = 0;
  for (const word of sum) {
    const w = word % modulus;
    const v = w >= half ? w - modulus : w;
    sq += v * v;
  }
  const norm = Math.sqrt(sq);
  const d = p.paddedDimension;
  const noise = Math.sqrt(n * p.localNoiseStd ** 2 * (d + 2 * Math.sqrt(d * NOISE_TAIL) + 2 * NOISE_TAIL));
  const limit = n * p.roundedNormBound + noise;
  return norm <= limit
    ? undefined
    : `its norm ${norm.toPrecision(4)} (lattice steps) is beyond what ${n} clipped, noised updates reach (${limit.toPrecision(4)})`;
}
