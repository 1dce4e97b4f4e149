/**
 * Real-valued updates ↔ Z_2^32 for secure summation. Each coordinate is clipped to [−clip, clip], multiplied by
 * the device's weight w ∈ [0, 1] (its example count over `maxExamples`, capped), scaled by `scale` and rounded
 * stochastically — up with probability equal to the fractional part, so E[encoded] = w·x·scale exactly (no
 * rounding bias that would add up over thousands of devices). The weight itself is appended as one more word,
 * so the secure sum also yields Σw and the server divides to get the weighted mean (FedAvg's n_k/n weighting,
 * McMahan et al. 2017) without learning any single device's count. `scale` is chosen so that the sum of
 * `maxDevices` encodings cannot wrap around 2^32.
 */
import { randomWords } from '../random.ts';

export interface FixedPoint {
  clip: number;
  scale: number;
  maxExamples: number;
}

export function fixedPointFor(opts: { maxDevices: number; clip: number; maxExamples: number }): FixedPoint {
  const { maxDevices, clip, maxExamples } = opts;
  if (!(Number.isInteger(maxDevices) && maxDevices >= 1))
    throw new RangeError(`maxDevices must be a positive integer, got ${maxDevices}`);
  if (!(clip > 0 && Number.isFinite(clip))) throw new RangeError(`clip must be a positive number, got ${clip}`);
  if (!(maxExamples >= 1)) throw new RangeError(`maxExamples must be ≥ 1, got ${maxExamples}`);
  // |Σ| ≤ maxDevices · (clip · scale + 1) < 2^31 keeps the signed sum inside Z_2^32 (the +1 is rounding up).
  const scale = Math.floor((2 ** 31 - 1) / maxDevices - 1) / clip;
  if (scale < 1)
    throw new RangeError(`clip ${clip} × ${maxDevices} devices leaves less than one step per unit in 32 bits`);
  return { clip, scale, maxExamples };
}

/** Uniform [0, 1) from the CSPRNG, `n` of them (rounding coins need not be secret, but must not be biased). */
function coins(n: number): Float64Array {
  return Float64Array.from(randomWords(n), (w) => w / 2 ** 32);
}

export function stochasticRound(v: number, coin: number): number {
  const lo = Math.floor(v);
  return coin < v - lo ? lo + 1 : lo;
}

/** d values → d + 1 words: the weighted, clipped, scaled, stochastically rounded values, then the weight. */
export function encodeUpdate(values: Float32Array, examples: number, fp: FixedPoint): Uint32Array {
  if (!(examples >= 0) || !Number.isFinite(examples))
    throw new RangeError(`examples must be a non-negative number, got ${examples}`);
  const w = Math.min(examples, fp.maxExamples) / fp.maxExamples;
  const c = coins(values.length + 1);
  const out = new Uint32Array(values.length + 1);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) throw new RangeError(`update value ${i} is not finite (${v})`);
    const clipped = Math.max(-fp.clip, Math.min(fp.clip, v));
    out[i] = stochasticRound(clipped * w * fp.scale, c[i]!) >>> 0;
  }
  out[values.length] = stochasticRound(w * fp.scale, c[values.length]!) >>> 0;
  return out;
}

const signed = (word: number) => (word >= 2 ** 31 ? word - 2 ** 32 : word);

/** The secure sum back to reals: Σ w·x, Σ w, and the weighted mean Σ w·x / Σ w (zeros when Σ w = 0). */
export function decodeSum(
  sum: Uint32Array,
  fp: FixedPoint,
): { weightedSum: Float64Array; totalWeight: number; mean: Float32Array } {
  const d = sum.length - 1;
  const totalWeight = signed(sum[d]!) / fp.scale;
  const weightedSum = new Float64Array(d);
  const mean = new Float32Array(d);
  for (let i = 0; i < d; i++) {
    weightedSum[i] = signed(sum[i]!) / fp.scale;
    mean[i] = totalWeight > 0 ? weightedSum[i]! / totalWeight : 0;
  }
  return { weightedSum, totalWeight, mean };
}
