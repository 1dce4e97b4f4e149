/**
 * How a device's weight update travels inside SecAgg+: the one place that says how it is encoded on the device,
 * how the unmasked sum is decoded on the server, and how many words a masked input has. Two encodings:
 *  - fixed point (secagg/fixed-point.ts): each coordinate clipped, weighted by the device's example count and
 *    rounded stochastically, the weight appended as one more word, so the sum yields the FedAvg weighted mean
 *    (McMahan et al. 2017) without any single count;
 *  - DDGauss (dp/distributed-dp.ts, Kairouz et al. 2021): the whole update clipped, rotated, rounded and noised
 *    by each device; the sum carries the round's noise and is divided by the survivors — uniform weights, as
 *    DP-FedAvg needs (McMahan et al. 2018, §2), since an example count would be one more thing to protect.
 * Device and server build the codec from the same round parameters (RoundInfo / TaskSettings), so they cannot
 * disagree on the layout.
 */
import { type DdgaussParameters, ddgaussDecode, ddgaussEncode } from '../dp/distributed-dp.ts';
import { type FixedPoint, decodeSum, encodeUpdate } from '../secagg/fixed-point.ts';
import { ddgaussSumProblem, fixedPointSumProblem } from './sum-bounds.ts';

export interface UpdateCodec {
  /** Words in a masked input. */
  readonly length: number;
  /** A device's update Δ = local − global (and its example count) → the words it masks. */
  encode(delta: Float32Array, examples: number): Promise<Uint32Array>;
  /** The unmasked sum of `survivors` encodings → the mean update the server optimizer steps with. */
  decode(sum: Uint32Array, survivors: number): Promise<Float32Array>;
  /**
   * The unmasked sum of `survivors` encodings in original units and the weight it carries (fixed point: Σ w·x and
   * Σ w; DDGauss: the noisy Σ x and the survivors) — what sums of several shards are combined from.
   */
  total(sum: Uint32Array, survivors: number): Promise<WeightedTotal>;
  /**
   * Why `sum` cannot be the sum of `contributors` honest encodings — or undefined when it can. SecAgg+ hides who
   * sent what, and the server adds whatever words a device masks: this holds the one thing it can check, the sum,
   * to what the honest encoders bound (sum-bounds.ts).
   */
  check(sum: Uint32Array, contributors: number): string | undefined;
}

/** A sum in original units and its weight: the mean is total / weight. */
export interface WeightedTotal {
  total: Float64Array;
  weight: number;
}

export class UpdateDecodeError extends Error {
  override name = 'UpdateDecodeError';
}

export interface UpdateEncoding {
  /** Model parameters (the update's dimension). */
  dimension: number;
  fixedPoint: FixedPoint;
  /** Client-level distributed DP: when set, DDGauss replaces the fixed-point encoding. */
  distributedDp?: DdgaussParameters | undefined;
  /** The round's public seed (DDGauss derives its rotation from it). */
  seed: Uint8Array;
}

/** Words in a masked input: the DDGauss-rotated (padded) update, or the fixed-point update plus its weight word. */
export function encodedLength(e: Pick<UpdateEncoding, 'dimension' | 'distributedDp'>): number {
  return e.distributedDp?.paddedDimension ?? e.dimension + 1;
}

export function updateCodec(e: UpdateEncoding): UpdateCodec {
  const dd = e.distributedDp;
  if (dd) {
    return {
      length: encodedLength(e),
      encode: (delta) => ddgaussEncode(delta, dd, e.seed),
      async decode(sum, survivors) {
        const noisySum = await ddgaussDecode(sum, dd, e.seed);
        return finite(Float32Array.from(noisySum, (v) => v / survivors));
      },
      total: async (sum, survivors) => ({ total: await ddgaussDecode(sum, dd, e.seed), weight: survivors }),
      check: (sum, contributors) => ddgaussSumProblem(sum, dd, contributors),
    };
  }
  return {
    length: encodedLength(e),
    encode: async (delta, examples) => encodeUpdate(delta, examples, e.fixedPoint),
    async decode(sum) {
      const decoded = decodeSum(sum, e.fixedPoint);
      if (!(decoded.totalWeight > 0)) throw new UpdateDecodeError('the survivors trained on no examples');
      return finite(decoded.mean);
    },
    async total(sum) {
      const decoded = decodeSum(sum, e.fixedPoint);
      return { total: decoded.weightedSum, weight: decoded.totalWeight };
    },
    check: (sum, contributors) => fixedPointSumProblem(sum, e.fixedPoint, contributors),
  };
}

function finite(mean: Float32Array): Float32Array {
  if (!mean.every(Number.isFinite)) throw new UpdateDecodeError('the unmasked mean update is not finite');
  return mean;
}
